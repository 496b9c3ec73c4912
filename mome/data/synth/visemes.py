"""From phonemes to mouth movement: viseme classes and smoothed per-frame mouth parameters.

Many phonemes share one mouth shape (/p b m/ all close the lips), so lip reading is ambiguous in
the same way as on real faces. We use 14 classes, close to the MPEG-4 viseme set (its /n l/ class
is merged into /t d/). Each class has a target for five mouth parameters; a track of targets at
1 ms resolution is smoothed with a Gaussian (co-articulation: the lips move continuously from one
target to the next and start a little before the sound) and read out at the frame times.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from mome.data.synth.speech import Segment

VISEMES = ("sil", "PP", "FF", "TH", "DD", "KK", "CH", "SS", "RR", "AA", "EH", "IH", "OH", "UW")
MOUTH_PARAMS = ("open", "width", "round", "teeth", "tongue")
# targets per viseme, columns as MOUTH_PARAMS, each in [0, 1]:
# open = jaw/lip opening, width = lip-corner spread, round = protrusion/rounding,
# teeth = how much of the upper teeth shows, tongue = how much tongue shows
TARGETS = np.array(
    [
        [0.00, 0.45, 0.15, 0.0, 0.0],  # sil  rest, lips together
        [0.00, 0.40, 0.25, 0.0, 0.0],  # PP   p b m: lips pressed
        [0.12, 0.50, 0.05, 1.0, 0.0],  # FF   f v: upper teeth on the lower lip
        [0.20, 0.50, 0.05, 0.7, 1.0],  # TH   th: tongue between the teeth
        [0.22, 0.50, 0.10, 0.6, 0.5],  # DD   t d n l
        [0.32, 0.50, 0.15, 0.3, 0.2],  # KK   k g ng h
        [0.25, 0.35, 0.75, 0.8, 0.0],  # CH   ch j sh zh: protruded, teeth close
        [0.10, 0.65, 0.00, 1.0, 0.0],  # SS   s z: spread, teeth close
        [0.25, 0.35, 0.60, 0.3, 0.0],  # RR   r
        [0.95, 0.60, 0.10, 0.4, 0.3],  # AA   open vowels (a, aI, aU)
        [0.55, 0.65, 0.05, 0.5, 0.2],  # EH   mid vowels (e, schwa, strut, er)
        [0.30, 0.85, 0.00, 0.7, 0.1],  # IH   close front vowels, y
        [0.65, 0.30, 0.80, 0.2, 0.2],  # OH   back rounded vowels (o, aw, oy)
        [0.25, 0.15, 1.00, 0.0, 0.0],  # UW   u, w
    ],
    dtype=np.float32,
)
assert TARGETS.shape == (len(VISEMES), len(MOUTH_PARAMS))

# espeak-ng's English phoneme mnemonics, by leading letters (stress marks already stripped);
# longer prefixes are tried first
_PREFIX = {
    "tS": "CH",
    "dZ": "CH",
    "S": "CH",
    "Z": "CH",
    "p": "PP",
    "b": "PP",
    "m": "PP",
    "f": "FF",
    "v": "FF",
    "T": "TH",
    "D": "TH",
    "t": "DD",
    "d": "DD",
    "n": "DD",
    "l": "DD",
    "k": "KK",
    "g": "KK",
    "N": "KK",
    "h": "KK",
    "x": "KK",
    "?": "KK",
    "s": "SS",
    "z": "SS",
    "r": "RR",
    "R": "RR",
    "a": "AA",
    "A": "AA",
    "e": "EH",
    "E": "EH",
    "@": "EH",
    "3": "EH",
    "V": "EH",
    "i": "IH",
    "I": "IH",
    "j": "IH",
    "y": "IH",
    "0": "OH",
    "O": "OH",
    "o": "OH",
    "u": "UW",
    "U": "UW",
    "w": "UW",
    "_": "sil",
}


def viseme_of(phoneme: str) -> int | None:
    """The viseme index of an espeak phoneme, or None for markers that have no mouth shape of their own."""
    name = phoneme.lstrip("',")
    for n in (2, 1):
        if name[:n] in _PREFIX:
            return VISEMES.index(_PREFIX[name[:n]])
    return None


def viseme_sequence(phonemes: Sequence[Segment]) -> list[tuple[int, float, float]]:
    """(viseme, start, end) per phoneme; markers without a shape continue the previous viseme."""
    out: list[tuple[int, float, float]] = []
    for p in phonemes:
        v = viseme_of(p.label)
        if v is None:
            v = out[-1][0] if out else 0
        out.append((v, p.start, p.end))
    return out


def mouth_track(
    phonemes: Sequence[Segment],
    num_frames: int,
    fps: float = 25.0,
    offset: float = 0.0,
    smoothing: float = 0.03,
    lead: float = 0.02,
) -> np.ndarray:
    """Per-frame mouth parameters ``(num_frames, 5)`` (columns as MOUTH_PARAMS).

    ``offset`` shifts the phoneme times (the silence placed before the speech in the clip);
    ``smoothing`` is the Gaussian's standard deviation in seconds; ``lead`` moves the lips ahead
    of the sound. Outside the phonemes the mouth rests (viseme ``sil``)."""
    step = 0.001
    n = int(np.ceil(num_frames / fps / step)) + 1
    targets = np.repeat(TARGETS[:1], n, axis=0)
    for v, start, end in viseme_sequence(phonemes):
        a = max(0, int(round((start + offset - lead) / step)))
        b = min(n, int(round((end + offset - lead) / step)))
        targets[a:b] = TARGETS[v]
    smooth = gaussian_filter1d(targets, smoothing / step, axis=0, mode="nearest")
    frame_times = (np.arange(num_frames) + 0.5) / fps
    idx = np.minimum(np.round(frame_times / step).astype(int), n - 1)
    return smooth[idx]
