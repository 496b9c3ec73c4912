"""Extra synthetic speech for pretraining the stand-in of Whisper's encoder: many voices, audio only.

Whisper's encoder has heard far more voices than any corpus it is used on. The mini corpus' training set holds 24,
and an encoder pretrained on them alone hears the unseen test voices badly (measured: frame accuracy 79 % on
validation clips of the training speakers, 69.5 % on the test speakers). This set gives the stand-in what Whisper
had: the corpus grammar's sentences (never one of ``exclude``, the held-out sets' sentences) spoken by a new
voice drawn for every ``utterances_per_voice`` utterances (accent, variant, pitch and rate drawn as the corpus'
speakers are, :func:`mome.data.synth.speakers.draw_voice`), placed in a clip as the corpus places them, with
the synthesiser's phonemes as frame labels. No test speaker is a voice of this set: each speaker of the corpus
has an (accent, variant) pair of its own, and ``exclude_voices`` (the corpus' test voices) are never drawn.

Written as a Kaldi data directory (``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``, ``utt2dur``; ``spk2voice``: the
espeak voice of each speaker) with
``phones``: the label of every encoder frame (50 per second), ids of ``phones.txt``
(:func:`mome.data.synth.alignments.frame_labels`; a phoneme missing from the list counts as silence). The
wavs go to ``<dump_dir>/wav/``. Everything is drawn from generators seeded by ``(seed, utterance)``: the same
seed gives the same set.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from pathlib import Path

import numpy as np

from mome.atomic import replace_dir, staging_dir
from mome.data.kaldi import write_table
from mome.data.media import write_wav
from mome.data.synth.alignments import AUDIO_LABEL_RATE, frame_labels, phone_class
from mome.data.synth.corpus import speak_clip
from mome.data.synth.speakers import draw_voice
from mome.data.synth.speech import SAMPLE_RATE
from mome.data.synth.text import Grammar
from mome.progress import progress as progress_bar

log = logging.getLogger(__name__)

_STREAM = 21  # generator stream of this set (the corpus uses 1..12)


def make_speech_set(
    data_dir: str | Path,
    dump_dir: str | Path,
    phone_list: str | Path,
    utterances: int,
    utterances_per_voice: int = 10,
    exclude: Collection[str] = (),
    exclude_voices: Collection[str] = (),
    seed: int = 0,
    max_words: int = 9,
    progress: bool = True,
) -> float:
    """Write the set (module docstring): ``utterances`` clips, a new voice every ``utterances_per_voice``;
    ``exclude``: sentences never spoken; ``exclude_voices``: espeak voice names (``en-us+f3``) never drawn.
    Whole or not at all: both directories appear at the end. Returns the hours of audio written."""
    data_dir, dump_dir = Path(data_dir), Path(dump_dir)
    phones = [line.split()[0] for line in Path(phone_list).read_text(encoding="utf-8").splitlines() if line.strip()]
    ids = {p: i for i, p in enumerate(phones)}
    exclude, exclude_voices = set(exclude), set(exclude_voices)
    work_data, work_dump = staging_dir(data_dir), staging_dir(dump_dir)
    (work_dump / "wav").mkdir(parents=True)
    tables: dict[str, dict[str, str]] = {
        n: {} for n in ("wav.scp", "text", "utt2spk", "utt2dur", "phones", "spk2voice")
    }
    seconds = 0.0
    voice = speaker = None
    for i in progress_bar(range(utterances), desc="speech set", unit="utt", disable=not progress):
        rng = np.random.default_rng([seed, _STREAM, i])
        if i % utterances_per_voice == 0:
            voice_rng = np.random.default_rng([seed, _STREAM, i, 1])
            voice = draw_voice(voice_rng)
            while voice.name in exclude_voices:
                voice = draw_voice(voice_rng)
            speaker, loudness = f"voice{i // utterances_per_voice:05d}", float(voice_rng.uniform(-26, -18))
            tables["spk2voice"][speaker] = voice.name
        grammar = Grammar(rng)
        text = grammar.sentence(max_words=max_words)
        while text in exclude:
            text = grammar.sentence(max_words=max_words)
        speech, lead, audio, _ = speak_clip(text, voice, loudness, rng)
        utt = f"{speaker}_{i:06d}"
        write_wav(work_dump / "wav" / f"{utt}.wav", audio, SAMPLE_RATE)
        units = [(p.start + lead, p.end + lead, phone_class(p.label)) for p in speech.phonemes]
        duration = len(audio) / SAMPLE_RATE
        labels = frame_labels(units, max(1, round(duration * AUDIO_LABEL_RATE)), AUDIO_LABEL_RATE, ids)
        tables["wav.scp"][utt] = str((dump_dir / "wav" / f"{utt}.wav").resolve())
        tables["text"][utt] = text
        tables["utt2spk"][utt] = speaker
        tables["utt2dur"][utt] = f"{duration:.3f}"
        tables["phones"][utt] = " ".join(map(str, labels))
        seconds += duration
    for name, table in tables.items():
        write_table(work_data / name, table)
    spk2utt: dict[str, list[str]] = {}
    for utt, spk in tables["utt2spk"].items():
        spk2utt.setdefault(spk, []).append(utt)
    write_table(work_data / "spk2utt", {s: " ".join(u) for s, u in spk2utt.items()})
    replace_dir(work_dump, dump_dir)
    replace_dir(work_data, data_dir)
    log.info("%s: %d utterances, %.2f h, %d voices", data_dir, utterances, seconds / 3600, len(spk2utt))
    return seconds / 3600
