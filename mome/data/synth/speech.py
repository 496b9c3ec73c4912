"""Speech from espeak-ng, with word and phoneme times taken from the synthesiser itself.

:mod:`.espeak` speaks (libespeak-ng through ctypes, in a server process that keeps the output
reproducible); this module turns its WORD and PHONEME events (sample positions) into word and
phoneme segments in seconds and resamples the audio from 22.05 kHz to 16 kHz.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import resample_poly

from mome.data.synth.espeak import EVENT_WORD, SpeechError, Voice, server

__all__ = ["SAMPLE_RATE", "Segment", "Speech", "SpeechError", "Voice", "synthesize"]

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Segment:
    label: str  # a word, or an espeak phoneme mnemonic without stress marks ("_" for pauses)
    start: float  # seconds
    end: float


@dataclass
class Speech:
    audio: np.ndarray  # float32 mono at SAMPLE_RATE
    words: list[Segment]
    phonemes: list[Segment]

    @property
    def duration(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def _strip_stress(name: str) -> str:
    return name.lstrip("',")


def _split_group(words: list[str], spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Share the phonemes of one WORD event among the ``words`` it covers (espeak-ng joins some word
    pairs, e.g. "there were", into one event): in proportion to their letters, at phoneme boundaries."""
    if len(words) == 1:
        return [(spans[0][0], spans[-1][1])]
    letters = np.cumsum([len(w) for w in words])
    if len(spans) >= len(words):
        cuts = np.round(len(spans) * letters / letters[-1]).astype(int)
        cuts = np.maximum(cuts, np.arange(1, len(words) + 1))  # every word keeps at least one phoneme
        cuts = np.minimum(cuts, len(spans) - np.arange(len(words) - 1, -1, -1))
        starts = np.concatenate([[0], cuts[:-1]])
        return [(spans[a][0], spans[b - 1][1]) for a, b in zip(starts, cuts)]
    start, end = spans[0][0], spans[-1][1]
    edges = start + (end - start) * np.concatenate([[0], letters]) / letters[-1]
    return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _segments(text: str, events, num_samples: int, rate: int) -> tuple[list[Segment], list[Segment]]:
    """Word and phoneme segments from the event stream.

    A phoneme lasts until the next phoneme event (the last one until the end of the audio) and
    belongs to the word whose WORD event came before it; a word spans its first to its last
    non-pause phoneme."""
    words = text.split()
    word_at: dict[int, int] = {}  # 1-based character position -> word index
    pos = 0
    for i, w in enumerate(words):
        pos = text.index(w, pos)
        word_at[pos + 1] = i
        pos += len(w)
    stream: list[tuple[int, str, int | None]] = []  # (sample, phoneme, index of the word event's word)
    current = None
    for kind, sample, text_position, name in events:
        if kind == EVENT_WORD:
            if text_position not in word_at:
                raise SpeechError(
                    f"espeak-ng reported a word at character {text_position} of {text!r}, "
                    "which is not the start of one of its words"
                )
            current = word_at[text_position]
        else:
            stream.append((sample, _strip_stress(name.decode("utf-8", "replace")) or "_", current))
    phonemes: list[Segment] = []
    spoken: dict[int, list[tuple[int, int]]] = {}  # word event -> its non-pause phoneme spans (samples)
    for k, (start, label, word) in enumerate(stream):
        end = stream[k + 1][0] if k + 1 < len(stream) else num_samples
        if end <= start:
            continue
        phonemes.append(Segment(label, start / rate, end / rate))
        if word is not None and not label.startswith("_"):
            spoken.setdefault(word, []).append((start, end))
    heads = sorted(spoken)
    if not heads or heads[0] != 0:
        raise SpeechError(f"espeak-ng gave no phonemes for the first word of {text!r}")
    spans: list[tuple[int, int]] = []
    for head, nxt in zip(heads, heads[1:] + [len(words)]):
        spans += _split_group(words[head:nxt], spoken[head])
    return [Segment(w, a / rate, b / rate) for w, (a, b) in zip(words, spans)], phonemes


def synthesize(text: str, voice: Voice) -> Speech:
    """Speak ``text`` (plain words separated by spaces) with ``voice``; 16 kHz float32 audio in [-1, 1].
    The same text and voice always give the same samples and times."""
    espeak = server()
    pcm, events = espeak.speak(text, voice)
    audio = np.frombuffer(pcm, dtype=np.int16)
    if len(audio) == 0:
        raise SpeechError(f"espeak-ng produced no audio for {text!r} with voice {voice.name!r}")
    words, phonemes = _segments(text, events, len(audio), espeak.sample_rate)
    g = np.gcd(SAMPLE_RATE, espeak.sample_rate)
    audio16 = resample_poly(audio.astype(np.float32) / 32768.0, SAMPLE_RATE // g, espeak.sample_rate // g)
    return Speech(audio16.astype(np.float32), words, phonemes)
