"""Synthetic speakers: a YouTube-like id, a voice and a face, all drawn from a random generator.

Speakers differ in what a recogniser must cope with: accent (espeak-ng's English dialects),
voice variant (male and female), pitch, pitch range and speaking rate; and, on the video side,
face proportions, mouth size and how far it opens, skin, lip, hair and eye colours, hair style,
background, lighting and where the face sits in the crop. :func:`clip_style` adds the per-clip
variation of one speaker's videos (framing, lighting, brightness).
"""

from __future__ import annotations

import string
from dataclasses import dataclass, replace

import numpy as np

from mome.data.synth.face import CANVAS, MARGIN, FaceStyle
from mome.data.synth.speech import Voice

ACCENTS = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
MALE_VARIANTS = (
    "m1",
    "m2",
    "m3",
    "m4",
    "m5",
    "m6",
    "m7",
    "m8",
    "Andy",
    "Lee",
    "david",
    "john",
    "paul",
    "rob",
    "robert",
    "Gene",
    "Jacky",
    "Mike",
    "Michael",
    "Reed",
    "ian",
    "norbert",
    "quincy",
    "travis",
    "victor",
    "ed",
    "iven",
    "klatt",
    "Denis",
    "Hugo",
    "michel",
)
FEMALE_VARIANTS = (
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "Annie",
    "anika",
    "aunty",
    "belinda",
    "linda",
    "steph",
    "steph2",
    "steph3",
    "Alicia",
    "Andrea",
    "grandma",
    "shelby",
)
_ID_ALPHABET = string.ascii_letters + string.digits + "-_"

_SKIN_LIGHT, _SKIN_DARK = np.array([0.96, 0.80, 0.70]), np.array([0.34, 0.21, 0.15])
_HAIR = [
    (0.08, 0.06, 0.05),
    (0.22, 0.14, 0.09),
    (0.40, 0.27, 0.16),
    (0.72, 0.58, 0.36),
    (0.55, 0.25, 0.12),
    (0.60, 0.60, 0.60),
    (0.15, 0.12, 0.12),
]
_IRIS = [(0.30, 0.18, 0.10), (0.22, 0.14, 0.08), (0.25, 0.40, 0.60), (0.30, 0.45, 0.30), (0.45, 0.45, 0.45)]


@dataclass(frozen=True)
class Speaker:
    id: str  # 11 characters of YouTube's id alphabet
    voice: Voice
    face: FaceStyle
    female: bool
    loudness_db: float  # speech level (RMS, dB full scale)


def speaker_id(rng: np.random.Generator) -> str:
    return "".join(_ID_ALPHABET[i] for i in rng.integers(len(_ID_ALPHABET), size=11))


def _colour(c) -> tuple[float, float, float]:
    return tuple(float(x) for x in np.clip(c, 0, 1))


def _face(rng: np.random.Generator, female: bool) -> FaceStyle:
    u = rng.uniform
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * u(0, 1) ** 1.3 + rng.normal(0, 0.02, 3)
    lip = skin * np.array([0.85, 0.58, 0.60]) + np.array([0.08, 0.0, 0.02])
    if female and u() < 0.5:  # lipstick
        lip = 0.5 * lip + 0.5 * np.array([u(0.55, 0.8), u(0.1, 0.25), u(0.15, 0.3)])
    bg = rng.uniform(0.15, 0.85, 3)
    return FaceStyle(
        centre=(CANVAS / 2 + u(-5, 5), MARGIN + 94 + u(-5, 5)),
        scale=u(0.92, 1.08),
        angle=u(-0.06, 0.06),
        face_hw=u(55, 60) if female else u(58, 65),
        face_top=u(96, 108),
        chin=u(86, 100),
        jaw_power=u(2.0, 2.2) if female else u(2.2, 2.7),
        neck_hw=u(24, 29) if female else u(28, 34),
        hairline=u(-62, -48) if u() < 0.9 else -130.0,
        hair_volume=u(3, 10),
        long_hair=bool(u() < (0.75 if female else 0.1)),
        eye_dx=u(24, 28),
        eye_hw=u(10.5, 13),
        eye_hh=u(4.0, 5.6),
        iris_r=u(4.0, 5.0),
        gaze=(u(-1.5, 1.5), u(-0.8, 0.8)),
        brow_y=u(-16, -12),
        brow_thick=u(2.2, 3.2) if female else u(3.0, 4.8),
        brow_arch=u(1.5, 4.0),
        nose_y=u(37, 43),
        nose_hw=u(11.5, 16),
        mouth_y=u(57, 62),
        mouth_hw=u(18.5, 23),
        lip_up=u(5.5, 8.5) if female else u(4.5, 7.5),
        lip_low=u(7, 10.5) if female else u(6, 9.5),
        max_open=u(18, 28),
        skin=_colour(skin),
        lip=_colour(lip),
        hair=_colour(np.array(_HAIR[rng.integers(len(_HAIR))]) * u(0.85, 1.15)),
        iris=_IRIS[rng.integers(len(_IRIS))],
        shirt=_colour(rng.uniform(0.05, 0.9, 3)),
        bg_top=_colour(bg * u(1.0, 1.3)),
        bg_bottom=_colour(bg * u(0.5, 0.9)),
    )


def draw_voice(rng: np.random.Generator, accent: str | None = None, variant: str | None = None) -> Voice:
    """A voice of the corpus' kind: the accent and variant given (or drawn), speaking rate, pitch, pitch range and
    pause between words drawn."""
    accent = accent or ACCENTS[rng.integers(len(ACCENTS))]
    if variant is None:
        variants = MALE_VARIANTS + FEMALE_VARIANTS
        variant = variants[rng.integers(len(variants))]
    return Voice(
        f"{accent}+{variant}",
        rate=int(rng.integers(135, 190)),
        pitch=int(rng.integers(30, 71)),
        pitch_range=int(rng.integers(30, 85)),
        word_gap=int(rng.integers(0, 2)),
    )


def make_speakers(rng: np.random.Generator, count: int) -> list[Speaker]:
    """``count`` speakers with distinct ids and distinct (accent, voice variant) pairs, half of them female."""
    pairs_m = [(a, v) for a in ACCENTS for v in MALE_VARIANTS]
    pairs_f = [(a, v) for a in ACCENTS for v in FEMALE_VARIANTS]
    order_m = rng.permutation(len(pairs_m))
    order_f = rng.permutation(len(pairs_f))
    speakers, ids = [], set()
    for i in range(count):
        female = i % 2 == 1
        accent, variant = pairs_f[order_f[i // 2]] if female else pairs_m[order_m[i // 2]]
        sid = speaker_id(rng)
        while sid in ids:
            sid = speaker_id(rng)
        ids.add(sid)
        voice = draw_voice(rng, accent, variant)
        speakers.append(Speaker(sid, voice, _face(rng, female), female, float(rng.uniform(-26, -18))))
    return speakers


def clip_style(face: FaceStyle, rng: np.random.Generator) -> FaceStyle:
    """One clip of a speaker: framing, lighting and brightness vary a little from clip to clip."""
    u = rng.uniform
    angle = u(0, 2 * np.pi)
    return replace(
        face,
        centre=(face.centre[0] + u(-3, 3), face.centre[1] + u(-3, 3)),
        scale=face.scale * u(0.96, 1.04),
        angle=face.angle + u(-0.03, 0.03),
        light=(float(np.cos(angle)), float(np.sin(angle))),
        light_strength=u(0.0, 0.3),
        brightness=u(0.85, 1.1),
    )
