"""68-point face landmarks for videos that come without landmark files, from MediaPipe's face mesh.

MediaPipe 0.10.21 (the last release whose wheel holds its face models, so that it works offline) cannot live
in the main environment (it needs numpy < 2 and an older protobuf), so it has its own,
``tools/venv-mediapipe`` (made by ``tools/install_face_mesh.sh``, which ``tools/install.sh`` runs), and runs
there as a subprocess: :class:`FaceMesh` starts ``mome/data/face_mesh_worker.py`` under that environment's
Python and sends it RGB frames over a pipe; the worker finds the face (on large frames with a face detector
first, then the mesh on a crop around the face) and answers with the 478 mesh points. Here they are mapped
onto the 68-point iBUG layout that the ROI code reads (:data:`MESH_TO_IBUG68`) and written as landmark files
in the published layout (:func:`mome.data.landmarks.write_landmarks`).

    >>> from mome.data.face_mesh import detect_landmarks, write_detected_landmarks
    >>> points = detect_landmarks("clip.mp4")           # (T, 68, 2) float32 pixels, NaN rows: no face  # doctest: +SKIP
    >>> write_detected_landmarks("clip.mp4", "clip.pkl")  # what stage 2 reads                          # doctest: +SKIP

Frames are the video's decoded frames, upright (display rotation applied), one landmark row per decoded
frame: the rows of a landmark file (stage 2 then follows them through any frame-rate resampling).

The environment is found at ``$MOME_FACE_MESH_PYTHON`` (a Python executable), else in ``$MOME_FACE_MESH_VENV``
(the install script's variable), else at ``tools/venv-mediapipe`` of this checkout (the last two once the install
script has finished them: its stamp file);
when it is missing, :class:`FaceMeshUnavailable` says which command makes it.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import av
import numpy as np

from mome.data.landmarks import N_POINTS, write_landmarks
from mome.data.media import MediaError, upright_frames
from mome.errors import MomeError

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("face_mesh_worker.py")
PYTHON_VARIABLE = "MOME_FACE_MESH_PYTHON"
VENV_VARIABLE = "MOME_FACE_MESH_VENV"  # where tools/install_face_mesh.sh made it, when not tools/venv-mediapipe
DEFAULT_PYTHON = ROOT / "tools" / "venv-mediapipe" / "bin" / "python"
INSTALL_COMMAND = "tools/install_face_mesh.sh"
STAMP = ".mome-face-mesh-stamp"  # written by the install script when the environment is complete
MESH_POINTS = 478  # with the iris points (refine_landmarks); the first 468 are the face mesh proper
ROUTES = {0: "none", 1: "tracked", 2: "full", 3: "detected", 4: "tiles"}  # face_mesh_worker.ROUTES, inverted

# iBUG-68 point -> the MediaPipe mesh points it is (the mean where two are given). Correspondences as in
# Peizhi Yan's "Mediapipe_2_Dlib_Landmarks" table; the points the ROI uses (mome.data.roi.STABLE_POINTS and
# the mouth) are: eye corners 36/39/42/45 = 33/133/362/263, nose 30 = 4 and 33 = 2, outer lip 48-59 and
# inner lip 60-67 as listed. "Right" and "left" are the subject's: the right eye is on the image's left.
MESH_TO_IBUG68: tuple[tuple[int, ...], ...] = (
    # 0-16 jaw, from the right ear round the chin to the left ear
    (127,),
    (234,),
    (93,),
    (132, 58),
    (58, 172),
    (136,),
    (150,),
    (176,),
    (152,),
    (400,),
    (379,),
    (365,),
    (397, 288),
    (361,),
    (323,),
    (454,),
    (356,),
    # 17-21 right brow (outer to inner), 22-26 left brow (inner to outer)
    (70,),
    (63,),
    (105,),
    (66,),
    (107,),
    (336,),
    (296,),
    (334,),
    (293,),
    (300,),
    # 27-30 nose bridge (top to tip), 31-35 bottom of the nose (right to left)
    (168, 6),
    (197, 195),
    (5,),
    (4,),
    (75,),
    (97,),
    (2,),
    (326,),
    (305,),
    # 36-41 right eye: outer corner, upper lid x2, inner corner, lower lid x2; 42-47 left eye: inner corner first
    (33,),
    (160,),
    (158,),
    (133,),
    (153,),
    (144,),
    (362,),
    (385,),
    (387,),
    (263,),
    (373,),
    (380,),
    # 48-59 outer lip: right corner, upper lip to the left corner (54), lower lip back
    (61,),
    (39,),
    (37,),
    (0,),
    (267,),
    (269,),
    (291,),
    (321,),
    (314,),
    (17,),
    (84,),
    (91,),
    # 60-67 inner lip: right corner, upper lip, left corner (64), lower lip
    (78,),
    (82,),
    (13,),
    (312,),
    (308,),
    (317,),
    (14,),
    (87,),
)
assert len(MESH_TO_IBUG68) == N_POINTS

# the mapping as a (68, 478) averaging matrix
_WEIGHTS = np.zeros((N_POINTS, MESH_POINTS))
for _row, _sources in enumerate(MESH_TO_IBUG68):
    _WEIGHTS[_row, list(_sources)] = 1 / len(_sources)


class FaceMeshError(MomeError, RuntimeError):
    """The face mesh worker failed (its message and the tail of its log say how)."""


class FaceMeshUnavailable(FaceMeshError):
    """The face mesh environment is missing; the message names the command that makes it."""


def mesh_to_ibug68(mesh: np.ndarray) -> np.ndarray:
    """iBUG-68 points of MediaPipe face mesh points: ``(..., 478 or 468, 2 or 3)`` -> ``(..., 68, 2)`` float32,
    in the units of the input (pixels); z is dropped. NaN in (a frame without a face) gives NaN out."""
    mesh = np.asarray(mesh, dtype=np.float64)
    if mesh.ndim < 2 or mesh.shape[-2] not in (468, MESH_POINTS) or mesh.shape[-1] not in (2, 3):
        raise ValueError(f"face mesh points must have shape (..., {MESH_POINTS} or 468, 2 or 3), got {mesh.shape}")
    return np.einsum("pm,...mc->...pc", _WEIGHTS[:, : mesh.shape[-2]], mesh[..., :2]).astype(np.float32)


def face_mesh_python() -> Path:
    """The face mesh environment's Python: ``$MOME_FACE_MESH_PYTHON``, else ``$MOME_FACE_MESH_VENV/bin/python``,
    else tools/venv-mediapipe's (the last two once their install finished); raises :class:`FaceMeshUnavailable`
    naming the command that makes it."""
    given = os.environ.get(PYTHON_VARIABLE)
    venv = os.environ.get(VENV_VARIABLE)
    python = Path(given) if given else Path(venv) / "bin" / "python" if venv else DEFAULT_PYTHON
    usable = python.is_file() and os.access(python, os.X_OK)
    what = "is not an executable Python"
    if usable and not given and not (python.parents[1] / STAMP).is_file():
        usable, what = False, f"is there, but its install did not finish (no {STAMP})"
    if not usable:
        where = f"${PYTHON_VARIABLE}={given}" if given else str(python)
        raise FaceMeshUnavailable(
            f"the face mesh environment is missing ({where} {what}): make it with "
            f"`{INSTALL_COMMAND}` (tools/install.sh --all does it too), or set {PYTHON_VARIABLE} to "
            "the Python of an environment holding mediapipe==0.10.21; or give the video a landmark file"
        )
    return python


class FaceMesh:
    """One face mesh worker process (``mome/data/face_mesh_worker.py`` in the face mesh environment) for many
    images; a context manager (or call :meth:`close`). ``options`` override the worker's ``DEFAULTS`` (crop
    scales, the frame size up to which the mesh is tried on the whole frame, detection confidence).

    ``mesh(image)``: the 478 ``(x, y, z)`` mesh points in pixels of an RGB uint8 ``(H, W, 3)`` image (a gray
    ``(H, W)`` one is repeated to RGB), or None without a face; ``route`` then says how the last face was found
    (``tracked``, ``full``, ``detected``, ``tiles`` or ``none``: see the worker's docstring). Calling the object
    gives the ``(68, 2)`` float32 iBUG points, NaN without a face. Consecutive images are taken as frames of one
    video (the face of the last image is tried first): call :meth:`reset` between unrelated ones."""

    def __init__(self, python: str | Path | None = None, options: Mapping | None = None):
        self.python = Path(python) if python else face_mesh_python()
        self.log_file = tempfile.TemporaryFile()
        env = {**os.environ, "GLOG_minloglevel": "2", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONNOUSERSITE": "1"}
        env.pop("PYTHONPATH", None)  # the worker must not see the main environment's packages
        command = [str(self.python), str(WORKER), "--options", json.dumps(dict(options or {}))]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_file, env=env
        )
        self.route = "none"
        self.frames = 0
        line = self.process.stdout.readline()
        try:
            hello = json.loads(line)
        except ValueError:
            hello = {}
        if not hello.get("ready"):
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            why = self._log_tail()
            self.close()
            raise FaceMeshError(
                f"the face mesh worker ({self.python} {WORKER.name}) did not start: {why}\n"
                f"re-make its environment with `{INSTALL_COMMAND}`"
            )
        self.version = hello.get("mediapipe")

    def _log_tail(self, chars: int = 2000) -> str:
        try:
            self.log_file.seek(0)
            text = self.log_file.read().decode(errors="replace")
        except (OSError, ValueError):
            return "(no log)"
        lines = [s for s in text.splitlines() if not s.startswith(("W0000", "I0000", "INFO: Created TensorFlow"))]
        return "\n".join(lines)[-chars:] or "(its log is empty)"

    def _read(self, n: int) -> bytes:
        data = self.process.stdout.read(n)
        if len(data) != n:
            code = self.process.poll()
            raise FaceMeshError(
                f"the face mesh worker stopped (exit code {code}) after {self.frames} images: {self._log_tail()}"
            )
        return data

    def mesh(self, image: np.ndarray) -> np.ndarray | None:
        image = np.asarray(image)
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"images must be uint8 (H, W, 3) RGB or (H, W) gray, got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        try:
            self.process.stdin.write(b"FRAM" + struct.pack("<II", h, w) + np.ascontiguousarray(image).tobytes())
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            why = self._log_tail()
            raise FaceMeshError(f"the face mesh worker is gone after {self.frames} images: {why}") from None
        n, route = struct.unpack("<II", self._read(8))
        self.frames += 1
        self.route = ROUTES.get(route, str(route))
        if not n:
            return None
        return np.frombuffer(self._read(n * 12), "<f4").reshape(n, 3).astype(np.float32)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        points = self.mesh(image)
        return np.full((N_POINTS, 2), np.nan, np.float32) if points is None else mesh_to_ibug68(points)

    def reset(self) -> None:
        """Forget the last face (the next image is searched whole)."""
        try:
            self.process.stdin.write(b"RSET")
        except (BrokenPipeError, ValueError):
            raise FaceMeshError(
                f"the face mesh worker is gone after {self.frames} images: {self._log_tail()}"
            ) from None

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(b"STOP")
                self.process.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream and not stream.closed:
                stream.close()
        self.log_file.close()

    def __enter__(self) -> FaceMesh:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def detect_image_landmarks(image: np.ndarray, face_mesh: FaceMesh | None = None) -> np.ndarray:
    """``(68, 2)`` float32 iBUG points (pixels) of the face in one RGB ``(H, W, 3)`` (or gray) uint8 image; NaN
    when no face is found. Starts a worker unless ``face_mesh`` is given."""
    if face_mesh is not None:
        face_mesh.reset()
        return face_mesh(image)
    with FaceMesh() as fm:
        return fm(image)


def detect_landmarks(video_path: str | Path, face_mesh: FaceMesh | None = None) -> np.ndarray:
    """``(T, 68, 2)`` float32 iBUG landmarks (pixels, ``x`` right, ``y`` down) of a video file, one row per
    decoded frame, upright (as landmark files are: see the module docstring); NaN rows for frames without a
    face. Raises :class:`mome.data.media.MediaError` for an unreadable video, :class:`FaceMeshUnavailable`
    when the face mesh environment is missing. Starts a worker unless ``face_mesh`` is given (reuse one for many
    videos: a worker starts in about a second)."""
    own = face_mesh is None
    fm = FaceMesh() if own else face_mesh
    try:
        fm.reset()
        path = Path(video_path)
        if not path.is_file():
            raise MediaError(f"{path}: media file missing")
        rows = []
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise MediaError(f"{path}: no video stream")
                for image, _ in upright_frames(container, path, gray=False):
                    rows.append(fm(image))
        except (av.FFmpegError, OSError) as e:
            raise MediaError(f"{path}: video decoding failed at frame {len(rows)} ({type(e).__name__}: {e})") from None
        if not rows:
            raise MediaError(f"{path}: no video frames decoded")
        return np.stack(rows)
    finally:
        if own:
            fm.close()


def write_detected_landmarks(
    video_path: str | Path, out_path: str | Path, face_mesh: FaceMesh | None = None
) -> np.ndarray:
    """Detect the landmarks of a video (:func:`detect_landmarks`) and write them to ``out_path`` in the
    published pickle layout that stage 2 reads (a list with one ``(68, 2)`` array or None per frame; written
    whole or not at all). Returns the ``(T, 68, 2)`` landmarks."""
    landmarks = detect_landmarks(video_path, face_mesh)
    write_landmarks(out_path, landmarks)
    return landmarks


def detect_landmark_files(
    videos: Mapping[str, str | Path] | Iterable[tuple[str, str | Path]],
    out_dir: str | Path,
    face_mesh: FaceMesh | None = None,
) -> dict[str, Path | str]:
    """Landmark files ``<out_dir>/<key>.pkl`` for ``videos`` (key -> video path), with one worker for all;
    a file that exists is kept (so an interrupted run resumes). Returns key -> the file, or key -> the reason
    (a string) for a video that cannot be read."""
    items = list(videos.items() if isinstance(videos, Mapping) else videos)
    out_dir = Path(out_dir)
    done: dict[str, Path | str] = {}
    todo = []
    for key, video in items:
        target = out_dir / f"{key}.pkl"
        if target.is_file():
            done[key] = target
        else:
            todo.append((key, video, target))
    if not todo:
        return done
    own = face_mesh is None
    fm = FaceMesh() if own else face_mesh
    try:
        for key, video, target in todo:
            began = time.perf_counter()
            try:
                points = write_detected_landmarks(video, target, fm)
            except MediaError as e:
                done[key] = str(e)
                continue
            found = int((~np.isnan(points[:, :, 0]).any(axis=1)).sum())
            seconds = time.perf_counter() - began
            log.info("%s: face found in %d of %d frames (%.2f s)", video, found, len(points), seconds)
            done[key] = target
    finally:
        if own:
            fm.close()
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m mome.data.face_mesh VIDEO OUT.pkl [VIDEO OUT.pkl ...]``: landmark files for videos;
    ``--check``: whether the face mesh environment works (exit code 1 and the command that makes it if not)."""
    import argparse

    p = argparse.ArgumentParser(prog="python -m mome.data.face_mesh", description=main.__doc__)
    p.add_argument("pairs", nargs="*", metavar="VIDEO OUT", help="video files and the landmark file of each")
    p.add_argument("--check", action="store_true", help="start the worker once and say which mediapipe it runs")
    a = p.parse_args(argv)
    if len(a.pairs) % 2 or not (a.pairs or a.check):
        p.error("give a landmark file (OUT.pkl) after each video (or --check)")
    try:
        with FaceMesh() as fm:
            if a.check:
                print(f"face mesh: mediapipe {fm.version} in {fm.python}")
            for video, out in zip(a.pairs[::2], a.pairs[1::2]):
                points = write_detected_landmarks(video, out, fm)
                found = int((~np.isnan(points[:, :, 0]).any(axis=1)).sum())
                print(f"{video}: face in {found} of {len(points)} frames -> {out}")
    except (FaceMeshError, MediaError, OSError) as e:
        print(f"face_mesh: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
