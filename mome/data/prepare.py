"""Stage 1: Kaldi data directories ``train``, ``val`` and ``test`` from an LRS3 or LRS2 tree.

Sets:
- LRS3 (and the synthetic mini_lrs3, same layout): train = pretrain + trainval minus a validation list;
  val = that list (``val_count`` trainval clips drawn with a seeded RNG, or an explicit list file); test = test.
- LRS2: the official lists ``pretrain.txt`` + ``train.txt`` -> train, ``val.txt`` -> val, ``test.txt`` -> test.
  Entries are ``<show>/<clip>``; pretrain entries live under ``mvlrs_v1/pretrain``, the rest under ``mvlrs_v1/main``.

Ids: a clip's recording id is its path in the corpus without extension (``trainval/<spk>/<clip>``), which is
unique even where pretrain and trainval share clip numbers. Utterance ids are ``<spk>_<clip>``; pretrain
utterances always carry a segment number, ``<spk>_<clip>_<NN>`` (``00`` for a clip kept whole), so they
never collide with a trainval / main utterance. Pretrain clips longer than ``max_seconds`` are cut between
words using the WORD table; too long and without one, they are skipped.

Bad inputs (missing / empty / unreadable transcript, empty normalised transcript, corrupt video, no
audio track, video much shorter than its audio, missing landmark file, or an unforeseen error) are skipped
with their reason appended to ``<set>/skipped.txt``; nothing is dropped silently. Transcripts are normalised
by :func:`mome.text.normalize_text`, as scoring and the LLM's targets are. Each set directory is built
beside its place and swapped in, so a killed stage 1 leaves the old one or the new one.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import Pool
from pathlib import Path

from mome.data.kaldi import PER_RECORDING, PER_UTT, SKIPPED, append_skipped, rewrite_data_dir, write_data_dir
from mome.data.lrs import LRSFormatError, cut_at_word_boundaries, read_lrs_txt
from mome.data.media import MediaError, probe
from mome.errors import MomeError
from mome.progress import progress
from mome.text import normalize_text

SETS = ("train", "val", "test")
MAX_SECONDS = 16.0  # pretrain clips longer than this are cut at word boundaries (the papers' setting)
MAX_AV_MISMATCH = 0.5  # seconds the video may be shorter than its audio before the clip is unusable


class PrepareError(MomeError, RuntimeError):
    """The corpus cannot be prepared at all (missing folder or list); the message names the path."""


@dataclass(frozen=True)
class Clip:
    """One ``.mp4`` + ``.txt`` pair of the corpus."""

    root: Path  # the folder holding the split folders (LRS3 root, or LRS2's mvlrs_v1)
    split: str  # pretrain, trainval, test (LRS3); pretrain, main (LRS2)
    speaker: str  # LRS3 YouTube id / LRS2 show id
    name: str  # clip number, e.g. 00001

    @property
    def recording(self) -> str:
        return f"{self.split}/{self.speaker}/{self.name}"

    @property
    def utt(self) -> str:
        return f"{self.speaker}_{self.name}"

    @property
    def video(self) -> Path:
        return self.root / self.split / self.speaker / f"{self.name}.mp4"

    @property
    def is_pretrain(self) -> bool:
        return self.split == "pretrain"


@dataclass
class Utterance:
    utt: str
    speaker: str
    recording: str
    start: float
    end: float
    text: str


@dataclass
class ClipResult:
    clip: Clip
    utterances: list[Utterance] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)
    landmarks: str | None = None
    cut: bool = False  # a long pretrain clip cut at word boundaries


@dataclass
class SetSummary:
    name: str
    clips: int = 0
    utterances: int = 0
    cut_clips: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason kind -> count

    def __str__(self) -> str:
        line = f"{self.name}: {self.utterances} utterances from {self.clips} clips"
        if self.cut_clips:
            line += f" (long clips cut at word boundaries: {self.cut_clips})"
        total = sum(self.skipped.values())
        line += f"; skipped {total}"
        if total:
            line += " (" + ", ".join(f"{n} {kind}" for kind, n in sorted(self.skipped.items())) + ")"
        return line


# ------------------------------------------------------------------------------------- one clip


def _skip(result: ClipResult, item: str, kind: str, detail: str = "") -> ClipResult:
    result.skipped.append((item, f"{kind}: {detail}" if detail else kind))
    return result


def process_clip(clip: Clip, max_seconds: float = MAX_SECONDS, landmarks_root: Path | None = None) -> ClipResult:
    """Read, check and (pretrain) cut one clip. Never raises for bad input: it reports a skip."""
    result = ClipResult(clip)
    rec = clip.recording
    txt = clip.video.with_suffix(".txt")
    if not txt.is_file():
        return _skip(result, rec, "transcript missing", str(txt))
    if not txt.read_bytes().strip():
        return _skip(result, rec, "transcript file empty", str(txt))
    try:
        transcript = read_lrs_txt(txt)
    except LRSFormatError as e:
        return _skip(result, rec, "transcript unreadable", str(e))
    text = normalize_text(transcript.text)
    if not text:
        return _skip(result, rec, "empty transcript after normalisation", repr(transcript.text))

    try:
        info = probe(clip.video)
    except MediaError as e:
        return _skip(result, rec, "video unreadable", str(e))
    if info.num_frames <= 0 or info.duration <= 0:
        return _skip(result, rec, "video has no frames", str(clip.video))
    if not info.has_audio:
        return _skip(result, rec, "no audio track", str(clip.video))
    if info.duration < info.audio_duration - MAX_AV_MISMATCH:
        detail = f"{info.duration:.2f} s video, {info.audio_duration:.2f} s audio"
        return _skip(result, rec, "video shorter than audio", detail)

    if landmarks_root is not None:
        pkl = Path(landmarks_root) / clip.split / clip.speaker / f"{clip.name}.pkl"
        if not pkl.is_file():
            return _skip(result, rec, "landmark file missing", str(pkl))
        result.landmarks = os.path.abspath(pkl)

    duration = info.duration
    if not clip.is_pretrain:
        result.utterances.append(Utterance(clip.utt, clip.speaker, rec, 0.0, duration, text))
    elif duration <= max_seconds:
        result.utterances.append(Utterance(f"{clip.utt}_00", clip.speaker, rec, 0.0, duration, text))
    elif not transcript.words:
        return _skip(result, rec, f"longer than {max_seconds:g} s", f"{duration:.2f} s and no WORD table to cut it")
    else:
        result.cut = True
        _cut(result, transcript.words, duration, max_seconds)
    return result


def _cut(result: ClipResult, words, duration: float, max_seconds: float) -> None:
    clip = result.clip
    for i, segment in enumerate(cut_at_word_boundaries(words, max_seconds)):
        utt = f"{clip.utt}_{i:02d}"
        start, end = max(0.0, segment[0].start), min(duration, segment[-1].end)
        text = normalize_text(" ".join(w.word for w in segment))
        if not text:
            _skip(result, utt, "empty transcript after normalisation", repr(" ".join(w.word for w in segment)))
        elif round(end, 2) <= round(start, 2):
            _skip(result, utt, "segment outside the video", f"{start:.2f}-{end:.2f} s, video {duration:.2f} s")
        else:
            result.utterances.append(Utterance(utt, clip.speaker, clip.recording, start, end, text))


# -------------------------------------------------------------------------------------- one set


def _process_clip_guarded(clip: Clip, **kwargs) -> ClipResult:
    """process_clip, with an unforeseen error recorded as the clip's skip reason: one clip never stops the stage."""
    try:
        return process_clip(clip, **kwargs)
    except Exception as e:  # noqa: BLE001
        return _skip(ClipResult(clip), clip.recording, "clip failed", f"{clip.video}: {type(e).__name__}: {e}")


def _process_all(clips: Sequence[Clip], desc: str, nj: int, **kwargs) -> list[ClipResult]:
    work = partial(_process_clip_guarded, **kwargs)
    bar = dict(total=len(clips), desc=desc, unit="clip", mininterval=2.0, dynamic_ncols=True)
    if nj <= 1 or len(clips) < 2:
        return [work(c) for c in progress(clips, **bar)]
    with Pool(nj) as pool:
        return list(progress(pool.imap(work, clips, chunksize=8), **bar))


def write_set(out_dir: Path, results: Iterable[ClipResult]) -> SetSummary:
    """Replace the data directory ``out_dir`` with the utterances of ``results`` (files of later stages in it
    are removed; other files are kept)."""
    summary = SetSummary(out_dir.name)
    tables: dict[str, dict[str, str]] = {n: {} for n in ("text", "utt2spk", "segments", "utt2dur", "video.scp")}
    landmarks: dict[str, str] = {}
    skipped: list[tuple[str, str]] = []
    for r in results:
        summary.clips += 1
        summary.cut_clips += r.cut
        skipped += r.skipped
        for u in r.utterances:
            tables["text"][u.utt] = u.text
            tables["utt2spk"][u.utt] = u.speaker
            tables["segments"][u.utt] = f"{u.recording} {u.start:.2f} {u.end:.2f}"
            tables["utt2dur"][u.utt] = f"{u.end - u.start:.2f}"
        if r.utterances:
            tables["video.scp"][r.clip.recording] = os.path.abspath(r.clip.video)
            if r.landmarks:
                landmarks[r.clip.recording] = r.landmarks
    if landmarks:
        tables["landmarks.scp"] = landmarks
    with rewrite_data_dir(out_dir) as staging:  # swapped in whole: a killed stage 1 leaves the old one
        for name in PER_UTT + PER_RECORDING + ("spk2utt", SKIPPED):  # a rerun starts clean
            (staging / name).unlink(missing_ok=True)
        write_data_dir(staging, tables)
        append_skipped(staging, skipped)
        (staging / SKIPPED).touch()  # present (maybe empty) after stage 1
    summary.utterances = len(tables["utt2spk"])
    summary.skipped = Counter(reason.split(":")[0] for _, reason in skipped)
    return summary


def _prepare_sets(
    out: Path, sets: dict[str, list[Clip]], nj: int, max_seconds: float, landmarks: Path | None
) -> dict[str, SetSummary]:
    summaries = {}
    for name, clips in sets.items():
        results = _process_all(clips, name, nj, max_seconds=max_seconds, landmarks_root=landmarks)
        summaries[name] = write_set(Path(out) / name, results)
    for s in summaries.values():
        print(s, flush=True)
    return summaries


def _existing_dir(path: Path | None, what: str) -> Path | None:
    if path is None:
        return None
    path = Path(path)
    if not path.is_dir():
        raise PrepareError(f"{what} '{path}' does not exist or is not a directory")
    return path


# ------------------------------------------------------------------------------------------ LRS3


def list_clips(root: Path, split: str) -> list[Clip]:
    """Every ``<split>/<speaker>/<clip>`` with an ``.mp4`` or a ``.txt`` (a lone one is skipped later)."""
    found = {(p.parent.name, p.stem) for ext in ("mp4", "txt") for p in (root / split).glob(f"*/*.{ext}")}
    return [Clip(root, split, spk, name) for spk, name in sorted(found)]


def _read_id_list(path: Path) -> list[str]:
    if not path.is_file():
        raise PrepareError(f"list file '{path}' does not exist")
    lines = path.read_text(encoding="utf-8").splitlines()
    return list(dict.fromkeys(line.split()[0] for line in lines if line.strip()))  # first field, de-duplicated


def _val_from_list(trainval: list[Clip], path: Path) -> set[Clip]:
    by_id = {c.utt: c for c in trainval}
    chosen, unknown = set(), []
    for entry in _read_id_list(path):
        key = entry.removesuffix(".mp4").removeprefix("trainval/").replace("/", "_")
        if key in by_id:
            chosen.add(by_id[key])
        else:
            unknown.append(entry)
    if unknown:
        raise PrepareError(
            f"validation list '{path}': {len(unknown)} entries are not trainval clips "
            f"(e.g. {', '.join(unknown[:3])}); entries are '<speaker>/<clip>' or '<speaker>_<clip>'"
        )
    return chosen


def choose_val(trainval: list[Clip], count: int, seed: int) -> set[Clip]:
    """``count`` trainval clips drawn with ``random.Random(seed)``: the same list on every run."""
    if count > len(trainval):
        print(f"warning: --val_count {count} > {len(trainval)} trainval clips; all of them go to val", flush=True)
    return set(random.Random(seed).sample(sorted(trainval, key=lambda c: c.utt), min(count, len(trainval))))


def prepare_lrs3(
    root: str | Path,
    out: str | Path,
    landmarks: str | Path | None = None,
    max_seconds: float = MAX_SECONDS,
    val_count: int = 1200,
    seed: int = 0,
    val_list: str | Path | None = None,
    nj: int = 1,
) -> dict[str, SetSummary]:
    root = _existing_dir(root, "LRS3 corpus root")
    landmarks = _existing_dir(landmarks, "landmarks root")
    for split in ("trainval", "test"):
        _existing_dir(root / split, f"LRS3 {split} folder")
    pretrain = list_clips(root, "pretrain") if (root / "pretrain").is_dir() else []
    if not pretrain:
        print(f"warning: no clips under {root / 'pretrain'}; train = trainval minus val", flush=True)
    trainval = list_clips(root, "trainval")
    val = _val_from_list(trainval, Path(val_list)) if val_list else choose_val(trainval, val_count, seed)
    sets = {
        "train": pretrain + [c for c in trainval if c not in val],
        "val": sorted(val, key=lambda c: c.utt),
        "test": list_clips(root, "test"),
    }
    return _prepare_sets(Path(out), sets, nj, max_seconds, landmarks)


# ------------------------------------------------------------------------------------------ LRS2

LRS2_LISTS = {
    "train": (("pretrain", "pretrain"), ("train", "main")),
    "val": (("val", "main"),),
    "test": (("test", "main"),),
}


def lrs2_clips(root: Path, list_name: str, split: str) -> list[Clip]:
    clips = []
    for entry in _read_id_list(root / f"{list_name}.txt"):
        show, _, name = entry.removesuffix(".mp4").rpartition("/")
        if not show:
            raise PrepareError(f"{root / f'{list_name}.txt'}: entry {entry!r} is not '<show>/<clip>'")
        clips.append(Clip(root / "mvlrs_v1", split, show, name))
    return clips


def prepare_lrs2(
    root: str | Path,
    out: str | Path,
    landmarks: str | Path | None = None,
    max_seconds: float = MAX_SECONDS,
    nj: int = 1,
) -> dict[str, SetSummary]:
    root = _existing_dir(root, "LRS2 corpus root")
    landmarks = _existing_dir(landmarks, "landmarks root")
    for split in ("main", "pretrain"):
        _existing_dir(root / "mvlrs_v1" / split, f"LRS2 {split} folder")
    sets = {
        name: [clip for list_name, split in lists for clip in lrs2_clips(root, list_name, split)]
        for name, lists in LRS2_LISTS.items()
    }
    return _prepare_sets(Path(out), sets, nj, max_seconds, landmarks)
