"""Per-video 68-point face landmark files, in the layouts that landmark tools write.

The published landmark sets for LRS2 / LRS3 are pickles, one per video, holding a list with one
``(68, 2)`` array of (x, y) pixel coordinates per frame, or ``None`` where no face was found. Other tools
write the same points in other containers; :func:`read_landmarks` reads every layout that holds 68 points
per frame (iBUG order):

- the whole file: a list / tuple of frames, one stacked ``(T, 68, 2|3)`` (or ``(T, 1, 68, 2|3)``) array,
  ``.npy`` / ``.npz``, or a dict holding one of these (``{"landmarks": [...], "fps": 25}``);
- one frame: a ``(68, 2)`` array or nested list, ``(68, 3)`` (x, y, z: z is dropped), ``(1, 68, 2|3)``
  (face_alignment's one-face batch), face_recognition's per-face dict (``chin`` ... ``bottom_lip``, 72 points
  with the lip corners repeated), a dict holding one of these, or ``None`` / ``[]`` / an empty array / a
  frame with a NaN for "no face in this frame".

Anything else is a :class:`LandmarkError` naming the file and saying what was found (stage 2 then skips the
clip with that reason). In memory, landmarks are one ``(T, 68, 2)`` float32 array with NaN rows for frames
without a face. We write the published layout, so the synthetic corpus looks like the real one.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mome import atomic
from mome.errors import MomeError

N_POINTS = 68
MOUTH = slice(48, 68)  # outer and inner lip contour in the 68-point (iBUG) scheme
WHOLE_FILE_KEYS = ("landmarks", "landmark", "lmks", "points", "keypoints", "preds", "frames")

# face_recognition's face_landmarks() dict: part -> the iBUG index of each of its points (the lips list
# the corners and inner points twice); read back by taking every index from its first occurrence
FACE_RECOGNITION_PARTS = {
    "chin": list(range(0, 17)),
    "left_eyebrow": list(range(17, 22)),
    "right_eyebrow": list(range(22, 27)),
    "nose_bridge": list(range(27, 31)),
    "nose_tip": list(range(31, 36)),
    "left_eye": list(range(36, 42)),
    "right_eye": list(range(42, 48)),
    "top_lip": list(range(48, 55)) + [64, 63, 62, 61, 60],
    "bottom_lip": list(range(54, 60)) + [48, 60, 67, 66, 65, 64],
}


class LandmarkError(MomeError, ValueError):
    """Unreadable or malformed landmark file; the message names the file."""


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, Mapping):
        return f"a dict with keys {sorted(map(str, value))[:10]}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    return f"a {type(value).__name__}"


def _from_face_recognition(parts: Mapping) -> np.ndarray:
    points = np.full((N_POINTS, 2), np.nan)
    for part, indices in FACE_RECOGNITION_PARTS.items():
        values = np.asarray(parts[part], dtype=np.float64).reshape(-1, 2)
        if len(values) != len(indices):
            raise ValueError(f"face_recognition part {part!r} has {len(values)} points, expected {len(indices)}")
        for index, xy in zip(indices, values):
            if np.isnan(points[index, 0]):
                points[index] = xy
    return points


def _frame(value, where: str) -> np.ndarray | None:
    """One frame's ``(68, 2)`` points, or None for a frame without a face; ValueError says what is wrong."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if set(FACE_RECOGNITION_PARTS) <= set(value):
            return _from_face_recognition(value)
        inner = [k for k in WHOLE_FILE_KEYS if k in value]
        if inner:
            return _frame(value[inner[0]], where)
        n = sum(np.asarray(v).size // 2 for v in value.values() if isinstance(v, (list, tuple, np.ndarray)))
        raise ValueError(
            f"{where} is {_describe(value)} holding {n} points, not the {N_POINTS} points of the "
            f"iBUG layout (face_recognition's dict has {sorted(FACE_RECOGNITION_PARTS)})"
        )
    try:
        points = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where} is {_describe(value)}, not {N_POINTS} (x, y) points") from None
    if points.size == 0:
        return None
    if points.ndim == 3 and points.shape[0] == 1:  # a batch of one face
        points = points[0]
    if points.ndim == 3 and points.shape[1:2] == (N_POINTS,):
        raise ValueError(f"{where} holds {points.shape[0]} faces (shape {points.shape}): keep one face per frame")
    if points.ndim != 2 or points.shape[0] != N_POINTS or points.shape[1] not in (2, 3):
        raise ValueError(
            f"{where} has shape {points.shape}, expected ({N_POINTS}, 2), ({N_POINTS}, 3) or (1, {N_POINTS}, 2)"
        )
    points = points[:, :2]
    return None if not np.isfinite(points).all() else points


def _frames(obj, path: Path) -> Sequence:
    """The per-frame sequence of a loaded file (unwrapping a top-level dict)."""
    if isinstance(obj, Mapping):
        keys = [k for k in WHOLE_FILE_KEYS if k in obj]
        if not keys:
            sequences = [k for k, v in obj.items() if isinstance(v, (list, tuple, np.ndarray)) and len(v)]
            if len(sequences) != 1:
                raise LandmarkError(
                    f"{path}: a dict with keys {sorted(map(str, obj))[:10]} and no "
                    f"{'/'.join(WHOLE_FILE_KEYS)} entry holding the per-frame landmarks"
                )
            keys = sequences
        obj = obj[keys[0]]
    if isinstance(obj, np.ndarray) and obj.dtype != object:
        if obj.ndim == 4 and obj.shape[1] == 1:
            obj = obj[:, 0]
        if obj.ndim != 3:
            raise LandmarkError(
                f"{path}: an array of shape {obj.shape}; expected (frames, {N_POINTS}, 2) "
                f"or a sequence with one entry per frame"
            )
        return list(obj)
    if isinstance(obj, (np.ndarray, list, tuple)):
        return list(obj)
    raise LandmarkError(f"{path}: holds {_describe(obj)}, not a sequence of per-frame landmarks")


def _load(path: Path):
    try:
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        with open(path, "rb") as f:
            return pickle.load(f)
    except Exception as e:  # noqa: BLE001 - any decoding failure is a bad file
        raise LandmarkError(f"{path}: cannot read landmarks ({type(e).__name__}: {e})") from None


def read_landmarks(path: str | Path) -> np.ndarray:
    """``(T, 68, 2)`` float32 landmarks of a ``.pkl`` / ``.npy`` / ``.npz`` file in any layout listed in the
    module docstring, NaN rows for frames without a face. Raises :class:`LandmarkError` (naming the file,
    the frame and what it holds) for a missing, unreadable or differently shaped file."""
    path = Path(path)
    if not path.is_file():
        raise LandmarkError(f"{path}: landmark file missing")
    frames = _frames(_load(path), path)
    if not frames:
        raise LandmarkError(f"{path}: no frames")
    out = np.full((len(frames), N_POINTS, 2), np.nan, dtype=np.float32)
    for i, value in enumerate(frames):
        try:
            points = _frame(value, f"frame {i}")
        except ValueError as e:
            raise LandmarkError(f"{path}: {e}") from None
        if points is not None:
            out[i] = points
    return out


def write_landmarks(path: str | Path, landmarks: np.ndarray) -> None:
    """Write ``(T, 68, 2)`` landmarks in the published pickle layout (NaN frames become None)."""
    landmarks = np.asarray(landmarks, dtype=np.float32)
    frames = [None if np.isnan(p).any() else p for p in landmarks]
    atomic.write_bytes(path, pickle.dumps(frames))
