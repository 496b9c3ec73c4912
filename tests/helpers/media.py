"""Small media for tests: synthetic face frames with a dark "mouth" at a known place, matching
landmarks, tiny mp4 clips (PyAV), and Kaldi data directories pointing at them.

Import as ``from tests.helpers.media import ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from mome.data import kaldi
from mome.data.landmarks import MOUTH, write_landmarks
from mome.data.media import write_mp4
from mome.data.roi import MEAN_FACE

FPS = 25
SR = 16000
SIZE = 224
MOUTH_CENTRE = MEAN_FACE[MOUTH].mean(axis=0)


def face_landmarks(centre=(112.0, 140.0), angle_deg: float = 0.0, scale: float = 1.0) -> np.ndarray:
    """The mean face rotated by ``angle_deg`` (counter-clockwise on screen is negative), scaled and
    moved so that its mouth centre (mean of points 48-67) lands on ``centre`` (x, y)."""
    a = np.deg2rad(angle_deg)
    rot = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return ((MEAN_FACE - MOUTH_CENTRE) @ rot.T + np.asarray(centre)).astype(np.float32)


def render_face(landmarks: np.ndarray, size: int = SIZE, mouth_open: float = 0.35, seed: int = 0) -> np.ndarray:
    """A gray uint8 frame: a textured light background and a dark filled ellipse "mouth" whose
    centre is the landmarks' mouth centre, its long axis along the mouth corners (48 -> 54), as wide
    as the corners are apart and ``mouth_open`` times as high."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    frame = 150 + 40 * np.sin(xx / 17.0) * np.cos(yy / 23.0) + rng.normal(0, 3, (size, size))
    centre = landmarks[MOUTH].mean(axis=0)
    axis = landmarks[54] - landmarks[48]
    half_width = np.linalg.norm(axis) / 2
    c, s = axis / np.linalg.norm(axis)
    u = (xx - centre[0]) * c + (yy - centre[1]) * s  # along the mouth
    v = -(xx - centre[0]) * s + (yy - centre[1]) * c  # across it
    inside = (u / half_width) ** 2 + (v / (half_width * mouth_open)) ** 2 <= 1
    frame[inside] = 20
    return np.clip(frame, 0, 255).astype(np.uint8)


def tone(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like test audio: noise shaped by a slow envelope, float32 at 16 kHz."""
    rng = np.random.default_rng(seed)
    n = round(seconds * SR)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * np.arange(n) / SR) ** 2
    return (0.2 * envelope * rng.standard_normal(n)).astype(np.float32)


@dataclass
class Clip:
    """One recording to write: ``frames`` video frames, ``audio_seconds`` of audio (None: as long as
    the video, 0: no audio track),
    landmark frames listed in ``missing`` set to NaN (``"all"``: every frame), ``landmarks=False``:
    no landmark file, ``corrupt``: garbage bytes instead of an mp4."""

    name: str
    frames: int = 20
    audio_seconds: float | None = None  # default: the video's length
    missing: list[int] | str = field(default_factory=list)
    landmarks: bool = True
    corrupt: bool = False
    angle_deg: float = 8.0
    scale: float = 0.9
    silent: bool = False  # an all-zero sound track


def clip_landmarks(clip: Clip) -> np.ndarray:
    """Per-frame landmarks: the face drifts 0.5 px right per frame (NaN rows where missing)."""
    points = np.stack([face_landmarks((104 + 0.5 * t, 140), clip.angle_deg, clip.scale) for t in range(clip.frames)])
    if clip.missing == "all":
        points[:] = np.nan
    else:
        points[list(clip.missing)] = np.nan
    return points


def write_clip(video: Path, landmarks: Path, clip: Clip, seed: int = 0) -> np.ndarray | None:
    """Write the mp4 and the landmark pickle of ``clip``; returns the audio written (or None)."""
    video.parent.mkdir(parents=True, exist_ok=True)
    if clip.corrupt:
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
        audio = None
    else:
        truth = clip_landmarks(Clip(clip.name, clip.frames, angle_deg=clip.angle_deg, scale=clip.scale))
        frames = np.stack([render_face(p, seed=seed + t) for t, p in enumerate(truth)])
        seconds = clip.frames / FPS if clip.audio_seconds is None else clip.audio_seconds
        audio = None if clip.audio_seconds == 0 else tone(seconds, seed)
        if clip.silent:
            audio = np.zeros_like(audio)
        write_mp4(video, frames, FPS, audio, SR)
    if clip.landmarks:
        write_landmarks(landmarks, clip_landmarks(clip))
    return audio


def make_data_dir(
    root: Path,
    clips: list[Clip],
    segments: dict[str, list[tuple[float, float]]] | None = None,
    speaker: str = "spkA",
    set_name: str = "test",
) -> Path:
    """Write ``clips`` under ``root/corpus`` and a stage-1 style data directory ``root/data/<set>``.
    Recording ids are ``<speaker>_<clip name>``; a recording listed in ``segments`` is cut into
    utterances ``<recording>_<2-digit index>`` at the given (start, end) seconds."""
    segments = segments or {}
    data = root / "data" / set_name
    names = ("text", "utt2spk", "segments", "utt2dur", "video.scp", "landmarks.scp")
    tables: dict[str, dict[str, str]] = {name: {} for name in names}
    for i, clip in enumerate(clips):
        rec = f"{speaker}_{clip.name}"
        video = root / "corpus" / speaker / f"{clip.name}.mp4"
        marks = root / "landmarks" / speaker / f"{clip.name}.pkl"
        write_clip(video, marks, clip, seed=i)
        tables["video.scp"][rec] = str(video)
        tables["landmarks.scp"][rec] = str(marks)
        spans = segments.get(clip.name, [(0.0, clip.frames / FPS)])
        for k, (start, end) in enumerate(spans):
            utt = rec if clip.name not in segments else f"{rec}_{k:02d}"
            tables["text"][utt] = f"words of {utt.lower()}"
            tables["utt2spk"][utt] = speaker
            tables["segments"][utt] = f"{rec} {start:.2f} {end:.2f}"
            tables["utt2dur"][utt] = f"{end - start:.2f}"
    kaldi.write_data_dir(data, tables)
    return data


def write_video(
    path: Path,
    frames: np.ndarray,
    fps: int = 25,
    pts_ms: list[int] | None = None,
    matrix: list[int] | None = None,
    audio: np.ndarray | None = None,
) -> Path:
    """An mp4 as phones and other tools write it: uint8 RGB ``(T, H, W, 3)`` (or gray) frames at ``fps``, or at
    the millisecond times ``pts_ms`` (variable frame rate), with an optional display matrix (FFmpeg's 9 int32)
    and 16 kHz mono audio."""
    frames = np.asarray(frames, np.uint8)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        video.options = {"crf": "10", "preset": "ultrafast"}
        if pts_ms is not None:
            video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        if matrix is not None:
            video.set_display_matrix(matrix)
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=SR)
            sound.layout = "mono"
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            samples = np.asarray(audio, np.float32)
            for s in range(0, len(samples), 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, s : s + 1024], format="flt", layout="mono")
                frame.sample_rate, frame.pts = SR, s
                container.mux(sound.encode(frame))
            container.mux(sound.encode())
    return path
