"""Per-video 68-point face landmark files.

The published landmark sets for LRS2 / LRS3 are pickles, one per video, holding a list with one
``(68, 2)`` array of (x, y) pixel coordinates per frame, or ``None`` where no face was found.
We read that layout (and plain ``.npy``) and write it, so the synthetic corpus looks like the real one.
In memory, landmarks are one ``(T, 68, 2)`` float array with NaN rows for missing frames.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

N_POINTS = 68
MOUTH = slice(48, 68)  # outer and inner lip contour in the 68-point (iBUG) scheme


class LandmarkError(ValueError):
    """Unreadable or malformed landmark file; the message names the file."""


def read_landmarks(path: str | Path) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise LandmarkError(f"{path}: landmark file missing")
    try:
        if path.suffix == ".npy":
            frames = np.load(path, allow_pickle=False)
        else:
            with open(path, "rb") as f:
                frames = pickle.load(f)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a bad file
        raise LandmarkError(f"{path}: cannot read landmarks ({type(e).__name__}: {e})") from None
    out = np.full((len(frames), N_POINTS, 2), np.nan, dtype=np.float32)
    for i, points in enumerate(frames):
        if points is None:
            continue
        points = np.asarray(points, dtype=np.float32)
        if points.shape != (N_POINTS, 2):
            raise LandmarkError(f"{path}: frame {i} has shape {points.shape}, expected ({N_POINTS}, 2)")
        out[i] = points
    return out


def write_landmarks(path: str | Path, landmarks: np.ndarray) -> None:
    """Write ``(T, 68, 2)`` landmarks in the published pickle layout (NaN frames become None)."""
    landmarks = np.asarray(landmarks, dtype=np.float32)
    frames = [None if np.isnan(p).any() else p for p in landmarks]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(frames, f)
