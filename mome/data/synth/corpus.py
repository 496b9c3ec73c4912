"""The synthetic mini LRS3 corpus: planning, one clip end to end, babble noise, and the whole run.

Layout written under ``out`` (the LRS3 layout, file for file)::

    lrs3/{pretrain,trainval,test}/<speaker>/<5-digit clip>.mp4   25 fps 224x224 h264 + 16 kHz AAC
    lrs3/{pretrain,trainval,test}/<speaker>/<5-digit clip>.txt   Text / Conf / Ref, FRAME and WORD tables
    landmarks/{pretrain,trainval,test}/<speaker>/<clip>.pkl      68 points per frame, crop pixels
    alignments/{pretrain,trainval,test}/<speaker>/<clip>.phn     the synthesiser's phonemes: "start end phoneme"
                                                                 per line, seconds in the clip (for pretraining
                                                                 the stand-in encoders only, never a model input)
    noise/babble.wav                                             16 kHz mono, many overlapping talkers
    stats.json, README.txt                                       what was generated

Test speakers never appear in pretrain/trainval (as in LRS3) and no test sentence occurs in
training. Everything is drawn from generators seeded by ``(seed, stream, index)``, so a clip does
not depend on the number of jobs or the order in which clips are made: the same seed gives the
same transcripts, landmarks and audio samples (and, x264 being single-threaded, the same bytes).

Runs are resumable: a clip counts as done when its ``.txt`` exists, and the ``.txt`` is written
last, after the mp4 and the landmarks (each written under a temporary name and renamed).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from mome.data.landmarks import write_landmarks
from mome.data.lrs import Frame, Transcript, Word, read_lrs_txt, write_lrs_txt
from mome.data.synth.face import BLINK, CROP, MARGIN, clip_landmarks, render_clip
from mome.data.synth.mp4 import write_mp4
from mome.data.synth.speakers import Speaker, clip_style, make_speakers
from mome.data.synth.speech import SAMPLE_RATE, Speech, SpeechError, Voice, synthesize
from mome.data.synth.text import Grammar, make_sentences
from mome.data.synth.visemes import mouth_track
from mome.progress import progress as progress_bar

log = logging.getLogger(__name__)

FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS
SPLITS = ("pretrain", "trainval", "test")
MIN_SECONDS, MAX_SECONDS = 1.0, 4.0
# generator streams: (seed, stream, index) seeds every random choice
_SPEAKERS, _TEXT_TRAIN, _TEXT_TEST, _BABBLE, _CLIP = 1, 2, 3, 4, 10


@dataclass(frozen=True)
class CorpusSize:
    pretrain: int
    trainval: int
    test: int
    train_speakers: int
    test_speakers: int
    max_words: int = 9
    babble_seconds: float = 60.0
    babble_talkers: int = 12


SIZES = {
    "default": CorpusSize(pretrain=1300, trainval=700, test=200, train_speakers=24, test_speakers=8),
    "tiny": CorpusSize(
        pretrain=8,
        trainval=4,
        test=8,
        train_speakers=3,
        test_speakers=2,
        max_words=6,
        babble_seconds=10.0,
        babble_talkers=6,
    ),
}


@dataclass(frozen=True)
class Clip:
    split: str
    speaker: Speaker
    clip: str  # 5 digits
    text: str  # lower case words
    seed: tuple[int, int, int]

    @property
    def name(self) -> str:
        return f"{self.split}/{self.speaker.id}/{self.clip}"


def plan(size: CorpusSize, seed: int) -> list[Clip]:
    """Every clip of the corpus: split, speaker, clip number, sentence and seed."""
    speakers = make_speakers(np.random.default_rng([seed, _SPEAKERS]), size.train_speakers + size.test_speakers)
    train_speakers, test_speakers = speakers[: size.train_speakers], speakers[size.train_speakers :]
    test_text = make_sentences(np.random.default_rng([seed, _TEXT_TEST]), size.test, max_words=size.max_words)
    train_text = make_sentences(
        np.random.default_rng([seed, _TEXT_TRAIN]),
        size.pretrain + size.trainval,
        max_words=size.max_words,
        exclude=set(test_text),
    )
    texts = {"pretrain": train_text[: size.pretrain], "trainval": train_text[size.pretrain :], "test": test_text}
    clips = []
    for split_index, split in enumerate(SPLITS):
        pool = test_speakers if split == "test" else train_speakers
        order = np.random.default_rng([seed, _CLIP, split_index]).permutation(len(texts[split]))
        counts: dict[str, int] = {}
        for i, text in enumerate(texts[split]):
            speaker = pool[order[i] % len(pool)]
            counts[speaker.id] = counts.get(speaker.id, 0) + 1
            clips.append(Clip(split, speaker, f"{counts[speaker.id]:05d}", text, (seed, _CLIP + 1 + split_index, i)))
    return clips


# --------------------------------------------------------------------------------------------------
# One clip
# --------------------------------------------------------------------------------------------------
def _speak_to_fit(text: str, voice: Voice, lead: float, trail: float) -> tuple[Speech, float, float]:
    """Synthesize so that lead silence + speech + trail silence fits in MAX_SECONDS: shorten the
    silences first, then speak faster."""
    for _ in range(6):
        speech = synthesize(text, voice)
        spoken = speech.words[-1].end
        if lead + spoken + trail <= MAX_SECONDS:
            return speech, lead, trail
        lead, trail = min(lead, 0.12), min(trail, 0.12)
        if lead + spoken + trail <= MAX_SECONDS:
            return speech, lead, trail
        voice = Voice(voice.name, min(int(voice.rate * 1.15) + 1, 400), voice.pitch, voice.pitch_range, 0)
    raise SpeechError(f"{text!r} does not fit in {MAX_SECONDS} s even at {voice.rate} words per minute")


def _place_audio(
    speech: Speech, lead: float, num_samples: int, loudness_db: float, noise_db: float, rng: np.random.Generator
) -> np.ndarray:
    """The speech at ``lead`` seconds in a clip of ``num_samples``, at the speaker's level, over a faint noise floor."""
    spoken = speech.audio[: int(round(speech.words[-1].end * SAMPLE_RATE))]
    rms = float(np.sqrt(np.mean(spoken**2))) + 1e-9
    out = rng.normal(0, 10 ** (noise_db / 20), num_samples).astype(np.float32)
    start = int(round(lead * SAMPLE_RATE))
    piece = spoken * (10 ** (loudness_db / 20) / rms)
    n = min(len(piece), num_samples - start)
    out[start : start + n] += piece[:n]
    return np.clip(out, -1, 1)


def _head_motion(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """Crop offsets ``(T, 2)`` in [0, 2 * MARGIN]: slow sways plus a little tracker jitter."""
    t = np.arange(num_frames) / FPS
    out = np.full((num_frames, 2), float(MARGIN))
    for axis in range(2):
        for _ in range(2):
            out[:, axis] += rng.uniform(0.5, 2.5) * np.sin(2 * np.pi * rng.uniform(0.1, 0.7) * t + rng.uniform(0, 6.3))
        out[:, axis] += rng.normal(0, 0.3, num_frames)
    return np.clip(np.round(out), 0, 2 * MARGIN).astype(np.int32)


def _blinks(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    out = np.zeros(num_frames)
    shape = np.array([0.5, 1.0, 0.8, 0.3])
    t = int(rng.integers(0, 3 * FPS))
    while t < num_frames:
        n = min(len(shape), num_frames - t)
        out[t : t + n] = shape[:n]
        t += int(rng.integers(2 * FPS, 6 * FPS))
    return out


def _face_boxes(points: np.ndarray) -> list[tuple[float, float, float, float]]:
    """Per-frame face box (x, y, w, h) relative to the crop: jaw and brows, plus the forehead."""
    x0, x1 = points[:, :27, 0].min(1), points[:, :27, 0].max(1)
    brow, chin = points[:, 17:27, 1].min(1), points[:, :17, 1].max(1)
    y0 = brow - 0.6 * (points[:, 33, 1] - brow)
    box = np.clip(np.stack([x0, y0, x1, chin], 1) / CROP, 0, 1)
    return [(b[0], b[1], b[2] - b[0], b[3] - b[1]) for b in box]


def speak_clip(text: str, voice: Voice, loudness_db: float, rng: np.random.Generator):
    """``text`` spoken by ``voice`` in a clip as the corpus lays one out (silences drawn before and after, the level
    near ``loudness_db``, a faint noise floor): ``(speech, lead seconds, 16 kHz audio, number of video frames)``."""
    speech, lead, trail = _speak_to_fit(text, voice, rng.uniform(0.15, 0.45), rng.uniform(0.15, 0.4))
    num_frames = int(np.ceil(max(lead + speech.words[-1].end + trail, MIN_SECONDS) * FPS - 1e-6))
    audio = _place_audio(
        speech, lead, num_frames * SAMPLES_PER_FRAME, loudness_db + rng.uniform(-2, 2), rng.uniform(-66, -56), rng
    )
    return speech, lead, audio, num_frames


def make_clip(out: Path, clip: Clip) -> float:
    """Write one clip's mp4, landmarks and transcript; returns its duration in seconds."""
    rng = np.random.default_rng(list(clip.seed))
    speaker = clip.speaker
    speech, lead, audio, num_frames = speak_clip(clip.text, speaker.voice, speaker.loudness_db, rng)
    states = np.zeros((num_frames, 6))
    states[:, :5] = mouth_track(speech.phonemes, num_frames, FPS, offset=lead)
    states[:, BLINK] = _blinks(rng, num_frames)
    style = clip_style(speaker.face, rng)
    offsets = _head_motion(rng, num_frames)
    frames = render_clip(style, states, offsets)
    points = clip_landmarks(style, states, offsets)

    video = out / "lrs3" / f"{clip.name}.mp4"
    write_mp4(video, frames, audio, fps=FPS, sample_rate=SAMPLE_RATE)
    write_landmarks(out / "landmarks" / f"{clip.name}.pkl", points)  # written whole by one pickle.dump
    write_phn(out / "alignments" / f"{clip.name}.phn", speech.phonemes, lead, num_frames / FPS)
    first_frame = int(rng.integers(0, 3000))  # LRS3 numbers frames in the source video
    words = [
        Word(w.label.upper(), round(w.start + lead, 2), round(w.end + lead, 2), round(float(rng.uniform(2, 10)), 1))
        for w in speech.words
    ]
    transcript = Transcript(
        text=clip.text.upper(),
        conf=str(int(rng.integers(1, 6))),
        ref=speaker.id,
        frames=[Frame(first_frame + i, *box) for i, box in enumerate(_face_boxes(points))],
        words=words,
    )
    txt = video.with_suffix(".txt")
    tmp = txt.with_name(txt.name + ".part")
    write_lrs_txt(tmp, transcript)
    os.replace(tmp, txt)
    return num_frames / FPS


def write_phn(path: Path, phonemes, offset: float, duration: float) -> None:
    """The clip's phoneme segments (shifted by ``offset`` seconds, cut at ``duration``), whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for p in phonemes:
        start, end = p.start + offset, min(p.end + offset, duration)
        if end > start:
            lines.append(f"{start:.4f} {end:.4f} {p.label}\n")
    tmp = path.with_name(path.name + ".part")
    tmp.write_text("".join(lines))
    os.replace(tmp, path)


def clip_done(out: Path, clip: Clip) -> float | None:
    """The duration of an already complete clip, or None."""
    txt = out / "lrs3" / f"{clip.name}.txt"
    landmarks = out / "landmarks" / f"{clip.name}.pkl"
    alignment = out / "alignments" / f"{clip.name}.phn"
    if not (txt.is_file() and txt.with_suffix(".mp4").is_file() and landmarks.is_file() and alignment.is_file()):
        return None
    return len(read_lrs_txt(txt).frames) / FPS


# --------------------------------------------------------------------------------------------------
# Babble noise
# --------------------------------------------------------------------------------------------------
def make_babble(path: Path, seed: int, seconds: float, talkers: int, exclude: set[str]) -> None:
    """A 16 kHz mono wav of ``talkers`` synthetic voices talking at once, none of them a corpus speaker,
    saying sentences that are not in the corpus."""
    rng = np.random.default_rng([seed, _BABBLE])
    voices = [s.voice for s in make_speakers(np.random.default_rng([seed, _BABBLE, 1]), talkers)]
    grammar = Grammar(rng)
    total = int(seconds * SAMPLE_RATE)
    mix = np.zeros(total, np.float64)
    for voice in voices:
        stream = np.zeros(total)
        pos = int(rng.integers(0, SAMPLE_RATE))
        while pos < total:
            text = grammar.sentence()
            if text in exclude:
                continue
            speech = synthesize(text, voice).audio
            speech = speech / (np.sqrt(np.mean(speech**2)) + 1e-9)
            n = min(len(speech), total - pos)
            stream[pos : pos + n] += speech[:n]
            pos += n + int(rng.integers(0, SAMPLE_RATE // 3))
        mix += stream * 10 ** (rng.uniform(-6, 0) / 20)
    mix *= 10 ** (-20 / 20) / (np.sqrt(np.mean(mix**2)) + 1e-9)  # -20 dBFS RMS
    mix /= max(1.0, float(np.abs(mix).max()) / 0.99)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.wav")
    sf.write(tmp, mix.astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------------
def _work(task):
    """Run in a worker process: ("clip", out, clip) or ("babble", out, args)."""
    kind, out, payload = task
    if kind == "babble":
        make_babble(out / "noise" / "babble.wav", *payload)
        return kind, None, 0.0
    return kind, payload, make_clip(out, payload)


def _stats(clips: list[Clip], seconds: dict[str, float], wall: float, made: int, size_name: str, seed: int) -> dict:
    train_words = {w for c in clips if c.split != "test" for w in c.text.split()}
    stats: dict = {"size": size_name, "seed": seed, "splits": {}}
    for split in SPLITS:
        part = [c for c in clips if c.split == split]
        stats["splits"][split] = {
            "utterances": len(part),
            "speakers": len({c.speaker.id for c in part}),
            "words": sum(len(c.text.split()) for c in part),
            "hours": round(sum(seconds[c.name] for c in part) / 3600, 4),
        }
    test_words = [w for c in clips if c.split == "test" for w in c.text.split()]
    stats.update(
        utterances=len(clips),
        speakers=len({c.speaker.id for c in clips}),
        vocabulary=len({w for c in clips for w in c.text.split()}),
        train_vocabulary=len(train_words),
        test_oov_rate=round(sum(w not in train_words for w in test_words) / max(len(test_words), 1), 4),
        hours=round(sum(seconds.values()) / 3600, 4),
        wall_seconds=round(wall, 1),  # of the last run, which made ``clips_made`` clips (the others existed)
        clips_made=made,
        speakers_detail=[
            {
                "id": s.id,
                "voice": s.voice.name,
                "rate": s.voice.rate,
                "pitch": s.voice.pitch,
                "female": s.female,
                "splits": sorted({c.split for c in clips if c.speaker.id == s.id}),
            }
            for s in {c.speaker.id: c.speaker for c in clips}.values()
        ],
    )
    return stats


def _readme(stats: dict) -> str:
    lines = [
        "Synthetic mini LRS3 (mome.data.synth): espeak-ng speech with a drawn face whose mouth follows the phonemes.",
        f"size={stats['size']} seed={stats['seed']}; regenerate with:",
        f"  python -m mome.bin.make_mini_lrs3 --output_dir DIR --size {stats['size']} --seed {stats['seed']}",
        "",
        f"{'split':10s} {'utts':>6s} {'spk':>4s} {'words':>7s} {'hours':>7s}",
    ]
    for split, s in stats["splits"].items():
        lines.append(f"{split:10s} {s['utterances']:6d} {s['speakers']:4d} {s['words']:7d} {s['hours']:7.3f}")
    lines += [
        "",
        f"speakers {stats['speakers']} (test speakers unseen in training), vocabulary {stats['vocabulary']} "
        f"words, test OOV rate {stats['test_oov_rate']:.3f}, {stats['hours']:.3f} h in all",
        f"last run: {stats['clips_made']} clips made in {stats['wall_seconds']} s",
        "",
    ]
    return "\n".join(lines)


def generate(
    out: str | Path, size: str = "default", seed: int = 0, nj: int | None = None, progress: bool = True
) -> dict:
    """Generate (or complete) the corpus under ``out``; returns the statistics also written to
    ``out/stats.json`` and ``out/README.txt``."""
    if size not in SIZES:
        raise ValueError(f"unknown corpus size {size!r}; choose one of {sorted(SIZES)}")
    nj = nj or os.cpu_count() or 1
    if nj < 1:
        raise ValueError(f"--nj must be at least 1, got {nj}")
    out = Path(out)
    start = time.time()
    spec = SIZES[size]
    clips = plan(spec, seed)
    seconds: dict[str, float] = {}
    tasks = []
    babble = out / "noise" / "babble.wav"
    if not babble.is_file():
        tasks.append(("babble", out, (seed, spec.babble_seconds, spec.babble_talkers, {c.text for c in clips})))
    for clip in clips:
        done = clip_done(out, clip)
        if done is None:
            tasks.append(("clip", out, clip))
        else:
            seconds[clip.name] = done
    jobs = min(nj, len(tasks) // 16)  # a worker takes seconds to start: not worth it for a handful of clips
    log.info(
        "%s: %d clips planned, %d already done, %d tasks on %d jobs",
        out,
        len(clips),
        len(seconds),
        len(tasks),
        max(jobs, 1),
    )

    def collect(result) -> None:
        kind, clip, duration = result
        if kind == "clip":
            seconds[clip.name] = duration
        bar.update()

    with progress_bar(total=len(tasks), desc="mini_lrs3", unit="clip", disable=not progress) as bar:
        if jobs <= 1:
            for result in map(_work, tasks):
                collect(result)
        else:
            import multiprocessing

            with multiprocessing.get_context("spawn").Pool(jobs) as pool:
                for result in pool.imap_unordered(_work, tasks, chunksize=4):
                    collect(result)
    made = sum(kind == "clip" for kind, _, _ in tasks)
    stats = _stats(clips, seconds, time.time() - start, made, size, seed)
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    (out / "README.txt").write_text(_readme(stats))
    return stats
