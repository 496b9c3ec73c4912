"""Face landmarks from MediaPipe's face mesh (mome.data.face_mesh): the 478 -> iBUG-68 mapping, a real face, small
faces in large frames, and stage 2's ``--landmarks detect``.

The tests marked ``face_mesh`` need the face mesh environment (tools/install_face_mesh.sh, which tools/install.sh --all
runs): they skip with the command to run when it is absent, or fail under MOME_REQUIRE_REAL=1 (CI). The others use
``fixtures/astronaut_face_mesh.npy``: the 478 points (x, y, z in pixels) that mediapipe 0.10.21's face mesh gave on
scikit-image's astronaut (the whole 512x512 picture).

The lips of the astronaut were marked by hand on an 8x enlargement (pixels of the 512x512 picture, about 1 px
either way): mouth corners, the top of the upper lip and the bottom of the lower lip on the midline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.path import Path as Polygon

from mome.bin.extract import main as extract_main
from mome.data import kaldi
from mome.data.face_mesh import (
    INSTALL_COMMAND,
    MESH_TO_IBUG68,
    FaceMesh,
    FaceMeshError,
    FaceMeshUnavailable,
    detect_image_landmarks,
    detect_landmarks,
    face_mesh_python,
    mesh_to_ibug68,
    write_detected_landmarks,
)
from mome.data.landmarks import read_landmarks
from mome.data.media import write_mp4
from mome.data.roi import MEAN_FACE, ROI_SIZE, apply_transforms, crop_grid, prepare_landmarks, similarity_transforms
from tests.helpers.media import Clip, make_data_dir, tone

FIXTURE = Path(__file__).parent / "fixtures" / "astronaut_face_mesh.npy"
LIPS_BY_HAND = {48: (202.5, 140.0), 54: (244.0, 141.0), 51: (222.5, 138.0), 57: (222.5, 154.0)}
LIPS_BOX = (199.0, 134.0, 248.0, 158.0)  # x0, y0, x1, y1: the lips and the teeth between them, by hand
MOUTH_BY_HAND = [LIPS_BY_HAND[k] for k in (48, 51, 54, 57)]  # a quadrilateral round the mouth

face_mesh = pytest.mark.face_mesh


def require_face_mesh() -> Path:
    """The face mesh environment's Python, or a skip naming the command that makes it (a failure under
    MOME_REQUIRE_REAL=1, as CI runs)."""
    try:
        return face_mesh_python()
    except FaceMeshUnavailable as e:
        if os.environ.get("MOME_REQUIRE_REAL") == "1":
            pytest.fail(f"{e} (MOME_REQUIRE_REAL=1)", pytrace=False)
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def fm():
    require_face_mesh()
    with FaceMesh() as worker:
        yield worker


@pytest.fixture(scope="module")
def astronaut(tmp_path_factory) -> np.ndarray:
    """scikit-image's astronaut, RGB uint8 (512, 512, 3): from this environment's scikit-image, or else from the
    face mesh environment's (tools/install_face_mesh.sh installs it there)."""
    try:
        import skimage.data

        return skimage.data.astronaut()
    except ImportError:
        pass
    python = require_face_mesh()
    out = tmp_path_factory.mktemp("astronaut") / "astronaut.npy"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    code = "import sys, numpy, skimage.data; numpy.save(sys.argv[1], skimage.data.astronaut())"
    done = subprocess.run([str(python), "-c", code, str(out)], env=env, capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"{python} cannot give skimage.data.astronaut(): {done.stderr[-500:]}; re-run {INSTALL_COMMAND}")
    return np.load(out)


def inter_ocular(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[45] - points[36]))


def roi_centre(points: np.ndarray) -> np.ndarray:
    """Where in the frame the centre of the 96x96 mouth ROI of these landmarks lies (x, y)."""
    clean = prepare_landmarks(points[None])
    from mome.data.roi import MOUTH, STABLE_POINTS

    M = similarity_transforms(clean[:, list(STABLE_POINTS)], MEAN_FACE[list(STABLE_POINTS)])
    centres = apply_transforms(M, clean[:, MOUTH]).mean(axis=1)
    grid = crop_grid(M, centres, ROI_SIZE)[0]
    middle = ROI_SIZE // 2
    return grid[middle - 1 : middle + 1, middle - 1 : middle + 1].reshape(-1, 2).mean(axis=0)


def check_on_the_lips(points: np.ndarray, scale: float = 1.0, offset=(0.0, 0.0), tolerance: float = 4.0) -> dict:
    """The iBUG points of the astronaut's face (shown ``scale`` times its size, moved by ``offset``) against the
    hand-marked lips: every mouth point inside the lips' box, the marked points within ``tolerance`` pixels (of the
    512x512 picture), the outer lip round the inner one, the ROI's centre inside the mouth. Returns the errors."""
    offset = np.asarray(offset, np.float64)
    p = (np.asarray(points, np.float64) - offset + 0.5) / scale - 0.5  # back to the 512x512 picture's pixels
    assert np.isfinite(p).all(), "no face found"
    x0, y0, x1, y1 = LIPS_BOX
    mouth = p[48:68]
    assert ((mouth[:, 0] > x0) & (mouth[:, 0] < x1) & (mouth[:, 1] > y0) & (mouth[:, 1] < y1)).all(), mouth
    errors = {k: float(np.linalg.norm(p[k] - xy)) for k, xy in LIPS_BY_HAND.items()}
    assert max(errors.values()) < tolerance, errors
    outer = Polygon(p[48:60])
    assert outer.contains_points(p[[61, 62, 63, 65, 66, 67]]).all(), "inner lip points outside the outer lip"
    centre = (roi_centre(np.asarray(points, np.float64)) - offset + 0.5) / scale - 0.5
    assert Polygon(np.array(MOUTH_BY_HAND)).contains_point(centre), (centre, MOUTH_BY_HAND)
    assert outer.contains_point(centre), centre
    return errors


# ----------------------------------------------------------------------------------- no mediapipe needed


def test_mapping_on_index_coded_points():
    """Point i of a synthetic mesh sits at (i, 1000 + i): the mapped points say which mesh points they are."""
    mesh = np.stack([np.arange(478.0), 1000 + np.arange(478.0), -np.arange(478.0)], axis=1)
    out = mesh_to_ibug68(mesh)
    assert out.shape == (68, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 1] - out[:, 0], 1000)
    want = [np.mean(sources) for sources in MESH_TO_IBUG68]
    np.testing.assert_allclose(out[:, 0], want)
    # the points the ROI reads, as DESIGN.md lists them
    used = {36: 33, 39: 133, 42: 362, 45: 263, 30: 4, 33: 2}
    used.update(zip(range(48, 60), (61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91)))
    used.update(zip(range(60, 68), (78, 82, 13, 312, 308, 317, 14, 87)))
    for ibug, mesh_index in used.items():
        assert out[ibug, 0] == mesh_index, (ibug, out[ibug, 0], mesh_index)
    # 68 distinct places, frames in a batch, 468 points (no iris) and 2-D points alike
    assert len({tuple(s) for s in MESH_TO_IBUG68}) == 68
    batch = np.stack([mesh, mesh + 5, np.full_like(mesh, np.nan)])
    many = mesh_to_ibug68(batch)
    assert many.shape == (3, 68, 2)
    np.testing.assert_allclose(many[1], out + 5)
    assert np.isnan(many[2]).all()
    np.testing.assert_array_equal(mesh_to_ibug68(mesh[:468, :2]), out)
    for bad in (mesh[:100], mesh[:, :1], mesh[0]):
        with pytest.raises(ValueError, match="face mesh points must have shape"):
            mesh_to_ibug68(bad)


def test_mapping_of_a_real_mesh_is_the_ibug_layout():
    """The stored mesh of the astronaut, mapped, is a 68-point face in iBUG order: aligned onto the ROI code's mean
    face, every point lies near its place (a randomly ordered mapping: 0.56 inter-ocular distances RMS; the
    left and right mouth corners swapped: those two points about 0.5 off)."""
    p = mesh_to_ibug68(np.load(FIXTURE)).astype(np.float64)
    M = similarity_transforms(p[None], MEAN_FACE)
    aligned = apply_transforms(M, p[None])[0]
    residual = np.linalg.norm(aligned - MEAN_FACE, axis=1) / inter_ocular(MEAN_FACE)
    assert np.sqrt((residual**2).mean()) < 0.12, residual
    assert residual.max() < 0.25, (residual.argmax(), residual.max())
    # the subject's right eye is on the image's left, the upper lip above the lower one
    assert p[36, 0] < p[39, 0] < p[42, 0] < p[45, 0] and p[48, 0] < p[54, 0]
    assert (p[49:54, 1] < p[55:60, 1][::-1]).all()


def test_mapped_real_mesh_lands_on_the_lips():
    errors = check_on_the_lips(mesh_to_ibug68(np.load(FIXTURE)))
    assert np.mean(list(errors.values())) < 2.0, errors


def test_missing_environment_names_the_command(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("MOME_FACE_MESH_PYTHON", str(tmp_path / "nothing" / "python"))
    with pytest.raises(FaceMeshUnavailable, match=INSTALL_COMMAND):
        face_mesh_python()
    with pytest.raises(FaceMeshUnavailable, match="MOME_FACE_MESH_PYTHON"):
        detect_landmarks(tmp_path / "clip.mp4")
    # stage 2 without landmark files: the error names the option's need and the command
    data = make_data_dir(tmp_path, [Clip("00001", frames=5)])
    (data / "landmarks.scp").unlink()
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(tmp_path / "dump"), "--landmarks", "detect"]) == 1
    err = capsys.readouterr().err
    assert "--landmarks detect" in err and INSTALL_COMMAND in err
    # and without --landmarks detect, the error says that the option exists
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(tmp_path / "dump")]) == 1
    assert "--landmarks detect" in capsys.readouterr().err


def test_an_unfinished_install_is_missing(monkeypatch, tmp_path):
    """tools/venv-mediapipe with a Python but without the install script's stamp (its pip step failed)."""
    import sys

    import mome.data.face_mesh as face_mesh_module

    python = tmp_path / "venv-mediapipe" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    monkeypatch.delenv("MOME_FACE_MESH_PYTHON", raising=False)
    monkeypatch.delenv("MOME_FACE_MESH_VENV", raising=False)
    monkeypatch.setattr(face_mesh_module, "DEFAULT_PYTHON", python)
    with pytest.raises(FaceMeshUnavailable, match=f"(?s)did not finish.*{INSTALL_COMMAND}"):
        face_mesh_python()
    (tmp_path / "venv-mediapipe" / face_mesh_module.STAMP).write_text("done")
    assert face_mesh_python() == python
    # the install script's MOME_FACE_MESH_VENV is found too, under the same rule
    other = tmp_path / "elsewhere"
    (other / "bin").mkdir(parents=True)
    (other / "bin" / "python").symlink_to(sys.executable)
    monkeypatch.setenv("MOME_FACE_MESH_VENV", str(other))
    with pytest.raises(FaceMeshUnavailable, match="did not finish"):
        face_mesh_python()
    (other / face_mesh_module.STAMP).write_text("done")
    assert face_mesh_python() == other / "bin" / "python"


def test_a_worker_that_cannot_start_says_why(monkeypatch):
    """This environment's Python has no mediapipe: the worker dies at its imports, and the error carries its log."""
    import sys

    monkeypatch.setenv("MOME_FACE_MESH_PYTHON", sys.executable)
    with pytest.raises(FaceMeshError, match=f"(?s)did not start: .*No module named .*{INSTALL_COMMAND}"):
        FaceMesh()


# ----------------------------------------------------------------------------------- with the face mesh


@face_mesh
def test_astronaut_mouth_points_on_the_lips(fm, astronaut):
    points = detect_image_landmarks(astronaut, fm)
    assert fm.route == "full"
    errors = check_on_the_lips(points)
    mean = np.mean(list(errors.values()))
    print(
        f"astronaut: mouth points from the hand-marked lips {errors} px, mean {mean:.2f} px "
        f"({mean / inter_ocular(points):.3f} of the eye-corner distance, {inter_ocular(points):.1f} px)"
    )
    assert mean < 2.0
    # the stored fixture is what this mediapipe gives (up to its float arithmetic)
    np.testing.assert_allclose(points, mesh_to_ibug68(np.load(FIXTURE)), atol=1.5)


def _shrink(image: np.ndarray, factor: int) -> np.ndarray:
    h, w, c = image.shape
    return image.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3)).round().astype(np.uint8)


@face_mesh
@pytest.mark.parametrize("factor, corner", [(1, (718, 158)), (2, (974, 464)), (4, (60, 40))])
def test_small_face_in_a_large_frame(fm, astronaut, factor, corner):
    """The astronaut at 1/factor of its size in a 1280x720 frame (the face 100, 50, 25 pixels wide): the mesh on
    the whole frame misses it; the face detector (on the frame, or on tiles of it) finds it."""
    x, y = corner
    picture = _shrink(astronaut, factor) if factor > 1 else astronaut
    frame = np.full((720, 1280, 3), 90, np.uint8)
    frame[y : y + picture.shape[0], x : x + picture.shape[1]] = picture
    fm.reset()
    points = fm(frame)
    assert fm.route in ("detected", "tiles")
    check_on_the_lips(points, scale=1 / factor, offset=(x, y), tolerance=4.0 + 2.0 * factor)
    # the next frame of a video starts from the face found: no search
    points = fm(frame)
    assert fm.route == "tracked"
    check_on_the_lips(points, scale=1 / factor, offset=(x, y), tolerance=4.0 + 2.0 * factor)


@face_mesh
def test_no_face_is_nan(fm):
    fm.reset()
    assert np.isnan(fm(np.full((720, 1280, 3), 90, np.uint8))).all() and fm.route == "none"
    assert np.isnan(fm(np.full((120, 160), 200, np.uint8))).all()


@face_mesh
def test_stage_2_detects_landmarks_for_a_corpus_without_them(fm, astronaut, tmp_path, capsys):
    """A recording of the astronaut moving right 2 px a frame, no landmarks.scp: ``--landmarks detect`` writes its
    landmark file (the published layout) and the ROIs; the merge lists it in landmarks.scp; a rerun keeps it."""
    frames = 12
    canvas = np.full((frames, 360, 640, 3), 90, np.uint8)
    for t in range(frames):
        canvas[t, 20 : 20 + 256, 100 + 2 * t : 356 + 2 * t] = _shrink(astronaut, 2)
    video = tmp_path / "corpus" / "spkA" / "00001.mp4"
    write_mp4(video, canvas, 25, tone(frames / 25), 16000)
    data = make_data_dir(tmp_path / "other", [Clip("00002", frames=5)])  # a data directory to copy the layout of
    shutil.rmtree(data.parent.parent / "corpus")
    kaldi.write_data_dir(
        tmp_path / "data" / "test",
        {
            "text": {"spkA_00001": "hello"},
            "utt2spk": {"spkA_00001": "spkA"},
            "segments": {"spkA_00001": f"spkA_00001 0.00 {frames / 25:.2f}"},
            "video.scp": {"spkA_00001": str(video)},
        },
    )
    data, dump = tmp_path / "data" / "test", tmp_path / "dump" / "test"
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(dump), "--landmarks", "detect"]) == 0
    err = capsys.readouterr().err
    assert "extracted 1, skipped 0" in err and "landmarks detected for 1 recordings" in err
    marks = kaldi.read_table(data / "landmarks.scp")
    assert list(marks) == ["spkA_00001"] and Path(marks["spkA_00001"]).is_file()
    points = read_landmarks(marks["spkA_00001"])
    assert points.shape == (frames, 68, 2) and np.isfinite(points).all()
    for t in range(frames):
        check_on_the_lips(points[t], scale=0.5, offset=(100 + 2 * t, 20), tolerance=8.0)
    assert kaldi.read_table(data / "roi.scp")
    # the Python function gives the same points as the file (one worker for both here)
    np.testing.assert_allclose(detect_landmarks(video, fm), points, atol=1e-4)
    # a rerun (ROIs removed) uses the landmark file of the first run
    shutil.rmtree(dump / "roi")
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(dump), "--landmarks", "detect"]) == 0
    err = capsys.readouterr().err
    assert "extracted 1, skipped 0" in err and "landmarks detected" not in err


@face_mesh
def test_transcribe_file_cuts_the_mouth_of_a_video_without_landmarks(fm, astronaut, tmp_path):
    """AVSR2Text's video reader detects the landmarks of a full-frame video itself: the same ROI as with the
    landmark file that stage 2 would write, and a mouth-free video is a clear error, not a crash."""
    from mome.inference import mouth_roi

    frames = 6
    canvas = np.full((frames, 360, 640, 3), 90, np.uint8)
    for t in range(frames):
        canvas[t, 40 : 40 + 256, 200 + t : 456 + t] = _shrink(astronaut, 2)
    video = tmp_path / "talk.mp4"
    write_mp4(video, canvas, 25, tone(frames / 25), 16000)
    roi = mouth_roi(video)
    assert roi.shape == (frames, 96, 96) and roi.dtype == np.uint8
    marks = tmp_path / "talk.pkl"
    write_detected_landmarks(video, marks)
    np.testing.assert_array_equal(roi, mouth_roi(video, marks))
