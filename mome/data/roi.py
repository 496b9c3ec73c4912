"""Mouth regions of interest (ROI) from 68-point face landmarks, and their storage.

The recipe (auto_avsr style, our own code):

1. frames without landmarks are filled by linear interpolation over time; frames before the first
   (after the last) detection take the first (last) one;
2. the landmarks are smoothed over time with a 12-frame moving average;
3. per frame, a similarity transform (rotation, uniform scale, translation; least squares) maps the
   stable points (eye corners and the bottom of the nose) onto a canonical mean face;
4. a 96x96 crop of the aligned face, centred on the mean of the mouth points (48-67), is read out of
   the original frame: the output grid is mapped back through the inverse transform and sampled
   bilinearly, so the whole frame is never warped.

Coordinates: landmark ``(x, y)`` is in pixels, with the centre of pixel ``frame[i, j]`` at ``x=j, y=i``.

Storage: ROIs are uint8 ``(T, 96, 96)`` videos written losslessly as FFV1 (gray) in Matroska (.mkv),
which decodes frame-exact. Measured per second of video (raw: 225 KiB): FFV1 142 KiB vs 213 KiB for
``np.savez_compressed`` on textured faces that went through h264, 91 vs 136 KiB on the rendered
mini corpus; FFV1 writes as fast and reads at about 10 ms per second of video (npz: 2-3 ms), which
is small beside training. ``read_roi`` also reads ``.npz`` / ``.npy``, so either can sit in a roi.scp.
"""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
from scipy.ndimage import convolve1d, map_coordinates

from mome.data.landmarks import MOUTH, N_POINTS
from mome.data.media import VIDEO_FPS, resample, upright_frames
from mome.errors import MomeError

ROI_SIZE = 96
SMOOTH_FRAMES = 12
STABLE_POINTS = (33, 36, 39, 42, 45)  # nose bottom centre, outer and inner corners of both eyes
ROI_EXT = ".mkv"


class RoiError(MomeError, ValueError):
    """Landmarks or an ROI file that cannot be used; the message says why."""


# --------------------------------------------------------------------------------------------------
# The canonical mean face
# --------------------------------------------------------------------------------------------------
def _mean_face() -> np.ndarray:
    """A frontal 68-point (iBUG order) face in a 256x256 frame, designed from textbook proportions.

    Design units: outer eye corners 116 apart on the line y=100, eyes 38 wide with 40 between them,
    mouth 64 wide (about 0.55 of the outer-eye distance) with its corners at y=188, the bottom of
    the nose at y=166, the chin at y=240 (lower face about 1.2x the eye-to-nose distance). Points
    are written for the image-left half and mirrored about x=128 where symmetric. The face is then
    scaled by 0.75 about the frame centre, so that a 96x96 crop holds the mouth at half its width,
    the nostrils at the top and the chin at the bottom (the usual look of LRS mouth ROIs; a face in
    a 224x224 LRS3 crop has about this size). Only the alignment targets (33, 36, 39, 42, 45) and
    the mouth (crop centre) matter for the ROI; the rest complete the face."""
    pts = np.zeros((N_POINTS, 2), np.float64)
    # jaw 0..16: half ellipse from the ears (y=105) round the chin (y=240)
    angle = np.pi * np.arange(17) / 16
    pts[0:17] = np.stack([128 - 88 * np.cos(angle), 105 + 135 * np.sin(angle)], 1)
    # brows 17..21 (image left, outer to inner); 22..26 mirror them inner to outer
    t = np.linspace(0, 1, 5)
    pts[17:22] = np.stack([60 + 52 * t, 84 - 10 * np.sin(np.pi * t)], 1)
    # nose: bridge 27..30 down the middle, bottom 31..35 left to right
    pts[27:31] = np.stack([np.full(4, 128.0), np.linspace(102, 137, 4)], 1)
    pts[31:36] = np.stack([128 + np.array([-18, -9, 0, 9, 18]), np.array([162, 164, 166, 164, 162])], 1)
    # eye 36..41 (image left): outer corner, upper lid x2, inner corner, lower lid x2
    pts[36:42] = [(70, 100), (83, 93), (96, 93), (108, 100), (96, 106), (83, 106)]
    # outer lip 48..59: left corner, upper lip to the right corner (54), lower lip back
    pts[48:60] = [
        (96, 188),
        (106, 180),
        (118, 176),
        (128, 178),
        (138, 176),
        (150, 180),
        (160, 188),
        (150, 198),
        (139, 203),
        (128, 204),
        (117, 203),
        (106, 198),
    ]
    # inner lip 60..67: left corner, upper, right corner (64), lower
    pts[60:68] = [(101, 188), (115, 185), (128, 186), (141, 185), (155, 188), (141, 191), (128, 192), (115, 191)]
    # mirror: brows 22..26 are 21..17, eye 42..47 is (39, 38, 37, 36, 41, 40)
    mirror = lambda p: np.stack([256 - p[:, 0], p[:, 1]], 1)  # noqa: E731
    pts[22:27] = mirror(pts[21:16:-1])
    pts[42:48] = mirror(pts[[39, 38, 37, 36, 41, 40]])
    return 128 + 0.75 * (pts - 128)


MEAN_FACE = _mean_face()


# --------------------------------------------------------------------------------------------------
# Landmark clean-up
# --------------------------------------------------------------------------------------------------
def interpolate_missing(landmarks: np.ndarray) -> np.ndarray:
    """Fill NaN frames of ``(T, 68, 2)`` landmarks linearly in time; edges hold the nearest detection."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    present = ~np.isnan(landmarks).any(axis=(1, 2))
    if not present.any():
        raise RoiError("no frame has landmarks")
    if present.all():
        return landmarks.copy()
    frames = np.arange(len(landmarks))
    flat = landmarks.reshape(len(landmarks), -1)
    filled = np.stack([np.interp(frames, frames[present], flat[present, k]) for k in range(flat.shape[1])], 1)
    return filled.reshape(landmarks.shape)


def smooth(landmarks: np.ndarray, frames: int = SMOOTH_FRAMES) -> np.ndarray:
    """Moving average over ``frames`` frames, centred on each frame (for an even length the two end
    taps get half weight, so a straight-line track is unchanged); the ends are padded by holding
    the first / last frame."""
    if frames <= 1 or len(landmarks) == 1:
        return np.asarray(landmarks, dtype=np.float64).copy()
    half = frames // 2
    kernel = np.ones(2 * half + 1)
    if frames % 2 == 0:
        kernel[[0, -1]] = 0.5
    return convolve1d(np.asarray(landmarks, dtype=np.float64), kernel / kernel.sum(), axis=0, mode="nearest")


# --------------------------------------------------------------------------------------------------
# Alignment and cropping
# --------------------------------------------------------------------------------------------------
def similarity_transforms(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transforms taking points ``src`` (T, K, 2) onto ``dst`` (K, 2):
    returns (T, 2, 3) matrices ``[[a, -b, tx], [b, a, ty]]`` with ``dst ~ M @ [x, y, 1]``."""
    src = np.asarray(src, dtype=np.float64)
    T, K, _ = src.shape
    x, y = src[..., 0], src[..., 1]
    # unknowns (a, b, tx, ty): u = a x - b y + tx, v = b x + a y + ty
    rows_u = np.stack([x, -y, np.ones_like(x), np.zeros_like(x)], -1)
    rows_v = np.stack([y, x, np.zeros_like(x), np.ones_like(x)], -1)
    A = np.concatenate([rows_u, rows_v], axis=1)  # (T, 2K, 4)
    rhs = np.concatenate([dst[:, 0], dst[:, 1]])  # (2K,)
    AtA = np.einsum("tki,tkj->tij", A, A)
    Atb = np.einsum("tki,k->ti", A, rhs)
    a, b, tx, ty = np.linalg.solve(AtA, Atb[..., None])[..., 0].T
    return np.stack([np.stack([a, -b, tx], -1), np.stack([b, a, ty], -1)], 1)


def apply_transforms(M: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (T, 2, 3) transforms to (T, K, 2) points."""
    return np.einsum("tij,tkj->tki", M[:, :, :2], points) + M[:, None, :, 2]


def crop_grid(M: np.ndarray, centres: np.ndarray, size: int = ROI_SIZE) -> np.ndarray:
    """Source-frame (x, y) of every output pixel: (T, size, size, 2). Output pixel (r, c) sits at
    ``centre + (c, r) - (size - 1) / 2`` in the aligned face; the inverse transform takes it back."""
    offsets = np.arange(size) - (size - 1) / 2
    inverse = np.linalg.inv(M[:, :, :2])  # (T, 2, 2)
    # aligned point minus the translation, split into its per-column (x) and per-row (y) parts
    ax = (centres[:, 0] - M[:, 0, 2])[:, None] + offsets  # (T, size)
    ay = (centres[:, 1] - M[:, 1, 2])[:, None] + offsets
    grid = np.empty((len(M), size, size, 2), np.float32)
    for k in range(2):
        grid[..., k] = inverse[:, k, 0, None, None] * ax[:, None, :] + inverse[:, k, 1, None, None] * ay[:, :, None]
    return grid


def sample_bilinear(frames: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Bilinear samples of gray ``frames`` (T, H, W) at (x, y) positions ``grid`` (T, S, S, 2);
    positions outside the frame take the nearest edge pixel. Returns uint8 (T, S, S)."""
    out = np.empty(grid.shape[:3], np.uint8)
    for t, frame in enumerate(frames):
        rows_cols = [grid[t, ..., 1], grid[t, ..., 0]]
        values = map_coordinates(frame, rows_cols, order=1, mode="nearest", output=np.float32)
        out[t] = np.clip(np.rint(values), 0, 255)
    return out


def prepare_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Interpolate missing frames, then smooth: the landmarks the crop is computed from."""
    landmarks = np.asarray(landmarks)
    if landmarks.ndim != 3 or landmarks.shape[1:] != (N_POINTS, 2) or len(landmarks) == 0:
        raise RoiError(f"landmarks must have shape (T>0, {N_POINTS}, 2), got {landmarks.shape}")
    return smooth(interpolate_missing(landmarks))


def crop_mouths(frames: np.ndarray, points: np.ndarray, size: int = ROI_SIZE, chunk: int = 256) -> np.ndarray:
    """96x96 uint8 mouth crops ``(T, size, size)`` of gray ``frames`` (T, H, W) given clean
    (interpolated and smoothed, see ``prepare_landmarks``) ``(T, 68, 2)`` landmarks."""
    frames = np.asarray(frames)
    if frames.ndim == 4:  # RGB -> luma
        frames = np.rint(frames @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
    if len(frames) != len(points):
        raise RoiError(f"{len(frames)} video frames but {len(points)} landmark frames")
    out = np.empty((len(frames), size, size), np.uint8)
    for s in range(0, len(frames), chunk):  # bounded memory on long clips
        p = points[s : s + chunk]
        M = similarity_transforms(p[:, list(STABLE_POINTS)], MEAN_FACE[list(STABLE_POINTS)])
        centres = apply_transforms(M, p[:, MOUTH]).mean(axis=1)
        out[s : s + chunk] = sample_bilinear(frames[s : s + chunk], crop_grid(M, centres, size))
    return out


def mouth_rois(frames: np.ndarray, landmarks: np.ndarray, size: int = ROI_SIZE) -> np.ndarray:
    """Mouth crops of ``frames`` from raw ``(T, 68, 2)`` landmarks (NaN rows for missing frames)."""
    return crop_mouths(frames, prepare_landmarks(landmarks), size)


# --------------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------------
def _atomic_target(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


class RoiWriter:
    """uint8 ROI frames written as they come (``write(rois)``, ``(T, H, W)``): FFV1 gray in Matroska for
    ``.mkv``, encoded frame by frame (memory stays flat in the clip's length); ``.npz``
    (``np.savez_compressed``) keeps the frames until the end. Written under a temporary name and renamed
    on a clean exit of the ``with`` block, so a file that exists is complete; :meth:`discard` (or an
    exception) leaves nothing behind."""

    def __init__(self, path: str | Path, fps: int = 25):
        self.path = Path(path)
        if self.path.suffix not in (".mkv", ".npz"):
            raise RoiError(f"{self.path}: unknown ROI format {self.path.suffix!r} (use .mkv or .npz)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp, self.fps = _atomic_target(self.path), fps
        self.container = self.stream = None
        self.kept: list[np.ndarray] = []  # .npz only
        self.frames, self.shape, self.discarded = 0, None, False

    def write(self, rois: np.ndarray) -> None:
        rois = np.asarray(rois)
        if rois.dtype != np.uint8 or rois.ndim != 3 or (self.shape is not None and rois.shape[1:] != self.shape):
            raise RoiError(f"ROI frames must be uint8 (T, H, W) of one size, got {rois.dtype} {rois.shape}")
        if not len(rois):
            return
        self.shape = rois.shape[1:]
        if self.path.suffix == ".npz":
            self.kept.append(rois)
        else:
            if self.container is None:
                self.container = av.open(str(self.tmp), "w", format="matroska")
                self.stream = self.container.add_stream("ffv1", rate=self.fps)
                self.stream.width, self.stream.height, self.stream.pix_fmt = rois.shape[2], rois.shape[1], "gray"
                # FFV1's defaults (Golomb-Rice coder, small context) came out smallest and fastest on
                # 96x96 ROIs; the range coder was 5-10% larger here
            for image in rois:
                self.container.mux(self.stream.encode(av.VideoFrame.from_ndarray(image, format="gray")))
        self.frames += len(rois)

    def discard(self) -> None:
        if self.container is not None:
            self.container.close()
            self.container = None
        self.kept, self.discarded = [], True
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> RoiWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None or self.discarded:
            self.discard()
            return
        if not self.frames:
            self.discard()
            raise RoiError(f"{self.path}: no ROI frames to write")
        if self.path.suffix == ".npz":
            with open(self.tmp, "wb") as f:
                np.savez_compressed(f, roi=np.concatenate(self.kept))
        else:
            self.container.mux(self.stream.encode())
            self.container.close()
            self.container = None
        os.replace(self.tmp, self.path)


def write_roi(path: str | Path, rois: np.ndarray, fps: int = 25) -> None:
    """Write uint8 ``(T, H, W)`` frames losslessly: FFV1 gray in Matroska for ``.mkv``,
    ``np.savez_compressed`` for ``.npz``. Writes a temporary file and renames it, so a file that
    exists is complete."""
    rois = np.asarray(rois)
    if rois.dtype != np.uint8 or rois.ndim != 3 or len(rois) == 0:
        raise RoiError(f"ROI must be uint8 (T>0, H, W), got {rois.dtype} {rois.shape}")
    with RoiWriter(path, fps) as writer:
        writer.write(rois)


def read_roi(path: str | Path) -> np.ndarray:
    """Read an ROI file (.mkv FFV1, .npz or .npy; any video PyAV reads) as uint8 ``(T, H, W)``; a video is
    turned upright by its display matrix and resampled to 25 fps by timestamp, as corpus videos are."""
    path = Path(path)
    if not path.is_file():
        raise RoiError(f"{path}: ROI file missing")
    if path.suffix == ".npz":
        with np.load(path) as data:
            return data["roi"]
    if path.suffix == ".npy":
        return np.load(path)
    try:  # upright and at 25 fps: an ROI video of another tool may carry a display rotation or another rate
        with av.open(str(path)) as container:
            rate = float(container.streams.video[0].average_rate or VIDEO_FPS)
            return np.stack([image for _, image in resample(upright_frames(container, path, gray=True), rate)])
    except (av.FFmpegError, ValueError) as e:
        raise RoiError(f"{path}: cannot read ROI ({type(e).__name__}: {e})") from None
