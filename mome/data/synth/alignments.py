"""Frame labels and pronunciations from the synthesiser's alignments: what the mini recipe's stand-ins learn from.

mini_lrs3 writes, beside the corpus, the phonemes espeak-ng spoke in each clip
(``alignments/<split>/<speaker>/<clip>.phn``, one ``start end phoneme`` line per segment, seconds); the word
times are in the clip's LRS ``.txt`` (its WORD table). From them, for the training set:

- frame labels: the phoneme of every audio frame (50 per second) and the viseme the drawn mouth shows in every
  video frame (25 per second), the frame-level units the small encoders are pretrained on (as AV-HuBERT is);
- pronunciations: the phonemes and the visemes of every training word as spoken (Kaldi ``lexiconp.txt``:
  ``word probability unit unit ...``), from which the stand-in LLM learns the sound and the look of the words
  in text (see :mod:`mome.pretrain.lm`).

None of this is ever an input of the AVSR model. Written into Kaldi data directories as ESPnet ``text_int``
tables (``<utt> id id ...``): ``phones`` and ``visemes``; and into ``lang_dir``: the label lists ``phones.txt`` /
``visemes.txt`` (one label per line, line number = id) and ``phones.lexiconp.txt`` / ``visemes.lexiconp.txt``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mome.data.kaldi import read_table, write_table
from mome.data.lrs import LRSFormatError, read_lrs_txt
from mome.data.synth.visemes import VISEMES, viseme_of
from mome.errors import MomeError

log = logging.getLogger(__name__)

SILENCE = "_"  # espeak-ng's pause; also the label outside the spoken part of a clip (id 0 in both lists)
AUDIO_LABEL_RATE = 50  # labels per second: the small audio encoder's output rate (and Whisper's)
VIDEO_LABEL_RATE = 25  # one per video frame
LIP_LEAD = 0.02  # seconds the drawn lips move ahead of the sound (mome.data.synth.visemes.mouth_track)

Segment = tuple[float, float, str]  # start, end (seconds), label
WordSpan = tuple[str, float, float]  # word, start, end


class AlignmentError(MomeError, ValueError):
    """An alignment file that cannot be read; the message names the file."""


def read_phn(path: str | Path) -> list[Segment]:
    """``(start, end, phoneme)`` per line of a ``.phn`` file, seconds."""
    segments = []
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 3:
                    raise AlignmentError(f"{path}:{lineno}: expected 'start end phoneme', got {line.strip()!r}")
                segments.append((float(fields[0]), float(fields[1]), fields[2]))
    except (OSError, ValueError) as e:
        raise AlignmentError(f"{path}: {e}") from None
    return segments


def phone_class(phoneme: str) -> str:
    """The label of an espeak-ng phoneme: its mnemonic, pauses of every length folded into SILENCE."""
    return SILENCE if phoneme.startswith("_") else phoneme


def viseme_units(segments: Sequence[Segment]) -> list[Segment]:
    """The phoneme segments as viseme segments, shifted earlier by LIP_LEAD; markers without a mouth shape of
    their own keep the previous viseme, as the drawing does; the rest viseme is SILENCE."""
    out, previous = [], 0
    for start, end, phoneme in segments:
        v = viseme_of(phoneme)
        previous = previous if v is None else v
        out.append((start - LIP_LEAD, end - LIP_LEAD, SILENCE if previous == 0 else VISEMES[previous]))
    return out


def frame_labels(
    units: Sequence[Segment], num_frames: int, rate: float, ids: dict[str, int], offset: float = 0.0
) -> np.ndarray:
    """Label id of the unit at the centre of each of ``num_frames`` frames at ``rate`` per second from ``offset``
    seconds; SILENCE outside every unit and for units missing from ``ids``."""
    silence = ids[SILENCE]
    centres = offset + (np.arange(num_frames) + 0.5) / rate
    out = np.full(num_frames, silence, dtype=np.int64)
    if units:
        starts, ends = np.array([s for s, _, _ in units]), np.array([e for _, e, _ in units])
        index = np.searchsorted(starts, centres, side="right") - 1
        inside = (index >= 0) & (centres < ends[np.maximum(index, 0)])
        out[inside] = np.array([ids.get(label, silence) for _, _, label in units])[index[inside]]
    return out


def word_units(units: Sequence[Segment], words: Sequence[WordSpan]) -> list[tuple[str, tuple[str, ...]]]:
    """Each word with the units (other than SILENCE) whose middle lies inside it."""
    return [
        (word, tuple(u for s, e, u in units if start <= (s + e) / 2 < end and u != SILENCE))
        for word, start, end in words
    ]


def write_lexicon(path: Path, counts: dict[str, Counter]) -> None:
    """Kaldi ``lexiconp.txt``: ``word probability unit ...`` per pronunciation, the most frequent first."""
    lines = []
    for word in sorted(counts):
        total = sum(counts[word].values())
        for units, n in counts[word].most_common():
            lines.append(f"{word} {n / total:.4f} {' '.join(units)}\n")
    path.write_text("".join(lines), encoding="utf-8")


def read_lexicon(path: str | Path) -> dict[str, tuple[list[tuple[str, ...]], np.ndarray]]:
    """``lexiconp.txt`` -> ``{word: (pronunciations, probabilities)}``."""
    entries: dict[str, tuple[list, list]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            if len(fields) < 3:
                raise AlignmentError(f"{path}:{lineno}: expected 'word probability unit ...', got {line.strip()!r}")
            prons, probs = entries.setdefault(fields[0], ([], []))
            prons.append(tuple(fields[2:]))
            probs.append(float(fields[1]))
    return {w: (prons, np.array(probs) / sum(probs)) for w, (prons, probs) in entries.items()}


def _utterances(data_dir: Path, alignments: Path) -> dict[str, tuple[list[Segment], list[WordSpan], float, float]]:
    segments, videos = read_table(data_dir / "segments"), read_table(data_dir / "video.scp")
    items = {}
    for utt, value in segments.items():
        recording, start, end = value.split()
        phn, txt = alignments / f"{recording}.phn", Path(videos.get(recording, "")).with_suffix(".txt")
        if not phn.is_file() or not txt.is_file():
            continue
        try:
            words = [(w.word.lower(), w.start, w.end) for w in read_lrs_txt(txt).words]
        except LRSFormatError as e:
            raise AlignmentError(str(e)) from None
        items[utt] = ([(s, e, phone_class(p)) for s, e, p in read_phn(phn)], words, float(start), float(end))
    missing = len(segments) - len(items)
    if missing:
        log.warning(
            "%s: %d of %d utterances have no alignment under %s; left out", data_dir, missing, len(segments), alignments
        )
    return items


def write_labels(data_dirs: Sequence[str | Path], alignments: str | Path, lang_dir: str | Path) -> dict[str, int]:
    """Write ``phones`` and ``visemes`` into each data directory, from the ``.phn`` file of each utterance's
    recording (``<alignments>/<recording>.phn``: the layout of video.scp's keys) at its ``segments`` times; and
    the label lists and pronunciation lexicons of the first data directory (the training set) into
    ``lang_dir``. Utterances without an alignment are left out (and counted in the log). Returns the number of
    utterances written per data directory."""
    alignments, lang_dir = Path(alignments), Path(lang_dir)
    per_dir = [(Path(d), _utterances(Path(d), alignments)) for d in data_dirs]
    train = per_dir[0][1]
    phones = sorted({p for segs, _, _, _ in train.values() for _, _, p in segs} - {SILENCE})
    lists = {"phones": [SILENCE, *phones], "visemes": [SILENCE, *VISEMES[1:]]}
    lang_dir.mkdir(parents=True, exist_ok=True)
    ids = {}
    for name, labels in lists.items():
        (lang_dir / f"{name}.txt").write_text("".join(f"{label}\n" for label in labels))
        ids[name] = {label: i for i, label in enumerate(labels)}
    lexicons: dict[str, dict[str, Counter]] = {"phones": {}, "visemes": {}}
    for segs, words, _, _ in train.values():
        for name, units in (("phones", segs), ("visemes", viseme_units(segs))):
            for word, pron in word_units(units, words):
                if pron:
                    lexicons[name].setdefault(word, Counter())[pron] += 1
    for name, counts in lexicons.items():
        write_lexicon(lang_dir / f"{name}.lexiconp.txt", counts)
    counts = {}
    for data_dir, items in per_dir:
        tables: dict[str, dict[str, str]] = {"phones": {}, "visemes": {}}
        for utt, (segs, _, start, end) in items.items():
            for name, units, rate in (
                ("phones", segs, AUDIO_LABEL_RATE),
                ("visemes", viseme_units(segs), VIDEO_LABEL_RATE),
            ):
                labels = frame_labels(units, max(1, round((end - start) * rate)), rate, ids[name], start)
                tables[name][utt] = " ".join(map(str, labels))
        for name, table in tables.items():
            write_table(data_dir / name, table)
        counts[str(data_dir)] = len(items)
    return counts
