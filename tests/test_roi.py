"""mome.data.roi: landmark clean-up, alignment to the mean face, the crop, ROI storage."""

from __future__ import annotations

import numpy as np
import pytest

from mome.data.roi import (
    MEAN_FACE,
    STABLE_POINTS,
    RoiError,
    RoiWriter,
    apply_transforms,
    interpolate_missing,
    mouth_rois,
    read_roi,
    similarity_transforms,
    smooth,
    write_roi,
)
from tests.helpers.media import face_landmarks, render_face


def test_mean_face_is_symmetric_and_sized_for_the_crop():
    mirrored = 256 - MEAN_FACE[:, 0]
    assert mirrored[36] == MEAN_FACE[45, 0] and mirrored[39] == MEAN_FACE[42, 0]
    assert MEAN_FACE[54, 0] - MEAN_FACE[48, 0] == pytest.approx(48)  # half the 96-px crop
    assert MEAN_FACE[[30, 33, 51, 57, 8], 0].tolist() == [128] * 5
    # top to bottom: brows, eyes, nose tip, nose bottom, mouth, chin
    ys = [MEAN_FACE[19, 1], MEAN_FACE[36, 1], MEAN_FACE[30, 1], MEAN_FACE[33, 1], MEAN_FACE[62, 1], MEAN_FACE[8, 1]]
    assert ys == sorted(ys)


def test_similarity_transform_recovers_rotation_scale_shift():
    a, s = np.deg2rad(-30), 1.7
    src = MEAN_FACE @ (s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])).T + [40, -12]
    M = similarity_transforms(src[None, list(STABLE_POINTS)], MEAN_FACE[list(STABLE_POINTS)])
    # the inverse: scale 1/1.7, rotation +30 degrees
    np.testing.assert_allclose(np.hypot(M[0, 0, 0], M[0, 1, 0]), 1 / s)
    np.testing.assert_allclose(np.degrees(np.arctan2(M[0, 1, 0], M[0, 0, 0])), 30)
    np.testing.assert_allclose(apply_transforms(M, src[None])[0], MEAN_FACE, atol=1e-9)


@pytest.mark.parametrize("angle,scale,centre", [(0, 1.0, (112, 140)), (25, 0.7, (90, 150)), (-15, 1.25, (130, 120))])
def test_mouth_ends_up_centred_level_and_normalised(angle, scale, centre):
    points = face_landmarks(centre, angle, scale)
    frame = render_face(points, mouth_open=0.35)
    roi = mouth_rois(frame[None].repeat(3, 0), points[None].repeat(3, 0))
    assert roi.shape == (3, 96, 96) and roi.dtype == np.uint8
    ys, xs = np.nonzero(roi[1] < 80)  # the dark ellipse
    assert abs(xs.mean() - 47.5) < 0.7 and abs(ys.mean() - 47.5) < 0.7
    # rotation and scale are undone: 48 px wide (mouth corners of the mean face), 0.35 of that high
    assert abs((xs.max() - xs.min() + 1) - 48) <= 2
    assert abs((ys.max() - ys.min() + 1) - 48 * 0.35) <= 2


def test_interpolation_is_linear_inside_and_holds_the_edges():
    track = np.zeros((8, 68, 2))
    track[:, :, 0] = np.arange(8)[:, None] * 2.0  # x = 2t
    track[:, 5, 1] = 7.0
    track[[0, 1, 3, 4, 7]] = np.nan
    filled = interpolate_missing(track)
    np.testing.assert_allclose(filled[:, 0, 0], [4, 4, 4, 6, 8, 10, 12, 12])
    assert np.all(filled[:, 5, 1] == 7.0)
    with pytest.raises(RoiError, match="no frame has landmarks"):
        interpolate_missing(np.full((4, 68, 2), np.nan))


def test_smoothing_is_a_centred_12_frame_average():
    spike = np.zeros((40, 68, 2))
    spike[20] = 12.0
    out = smooth(spike)
    # 13 taps: 1/12 each, half weight at both ends (t-6 and t+6)
    np.testing.assert_allclose(out[20], 1.0)
    np.testing.assert_allclose(out[[14, 15, 25, 26], 0, 0], [0.5, 1.0, 1.0, 0.5])
    assert np.all(out[:14] == 0) and np.all(out[27:] == 0)
    assert out.sum() == pytest.approx(spike.sum())
    ramp = np.arange(40.0)[:, None, None] * np.ones((1, 68, 2))
    np.testing.assert_allclose(smooth(ramp)[6:34], ramp[6:34])  # a straight track is unchanged
    assert smooth(ramp)[0, 0, 0] > 0  # ends held, not zero-padded


def test_missing_frames_still_give_one_roi_per_frame():
    points = np.stack([face_landmarks((112 + t, 140), 5, 0.9) for t in range(10)])
    frames = np.stack([render_face(p) for p in points])
    points[[0, 4, 5]] = np.nan
    assert mouth_rois(frames, points).shape == (10, 96, 96)
    with pytest.raises(RoiError, match="10 video frames but 9 landmark frames"):
        mouth_rois(frames, points[:9])


@pytest.mark.parametrize("ext", [".mkv", ".npz"])
def test_roi_storage_is_frame_exact(tmp_path, ext):
    rng = np.random.default_rng(0)
    rois = rng.integers(0, 256, (13, 96, 96), dtype=np.uint8)  # noise: the hardest case for lossless coding
    rois[5] = 0
    rois[6] = 255
    write_roi(tmp_path / f"a{ext}", rois)
    assert [p.name for p in tmp_path.iterdir()] == [f"a{ext}"]
    back = read_roi(tmp_path / f"a{ext}")
    assert back.dtype == np.uint8 and back.shape == rois.shape
    np.testing.assert_array_equal(back, rois)


@pytest.mark.parametrize("ext", [".mkv", ".npz"])
def test_roi_writer_in_pieces_equals_one_write_and_discard_leaves_nothing(tmp_path, ext):
    rois = np.random.default_rng(1).integers(0, 256, (9, 96, 96), dtype=np.uint8)
    with RoiWriter(tmp_path / f"a{ext}") as writer:
        for piece in (rois[:4], rois[4:4], rois[4:]):
            writer.write(piece)
        assert not (tmp_path / f"a{ext}").exists()  # renamed into place only at the end
    np.testing.assert_array_equal(read_roi(tmp_path / f"a{ext}"), rois)
    with RoiWriter(tmp_path / f"b{ext}") as writer:
        writer.write(rois)
        writer.discard()
    with pytest.raises(RoiError, match="no ROI frames"), RoiWriter(tmp_path / f"c{ext}"):
        pass
    with pytest.raises(RoiError, match="of one size"), RoiWriter(tmp_path / f"d{ext}") as writer:
        writer.write(rois)
        writer.write(rois[:, :8])
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"a{ext}"]


def test_roi_storage_errors(tmp_path):
    with pytest.raises(RoiError, match="uint8"):
        write_roi(tmp_path / "a.mkv", np.zeros((2, 96, 96), np.float32))
    with pytest.raises(RoiError, match="unknown ROI format '.avi'"):
        write_roi(tmp_path / "a.avi", np.zeros((2, 96, 96), np.uint8))
    with pytest.raises(RoiError, match="b.mkv: ROI file missing"):
        read_roi(tmp_path / "b.mkv")


def _moving_average_12(track: np.ndarray) -> np.ndarray:
    """The 12-frame centred average written out frame by frame: taps t-6 .. t+6, the two end ones at half
    weight, the track held at its ends."""
    T = len(track)
    out = np.zeros_like(track, dtype=np.float64)
    for t in range(T):
        for offset in range(-6, 7):
            weight = 0.5 if abs(offset) == 6 else 1.0
            out[t] += weight / 12 * track[min(max(t + offset, 0), T - 1)]
    return out


def test_the_roi_pipeline_smooths_the_landmarks_over_12_frames():
    rng = np.random.default_rng(3)
    points = np.stack([face_landmarks((112 + t, 140), 5, 0.9) for t in range(30)])
    jittered = points + rng.normal(0, 2.0, points.shape)  # detector noise, frame to frame
    jittered[[4, 17]] = np.nan
    from mome.data.roi import crop_mouths, prepare_landmarks

    expected = _moving_average_12(interpolate_missing(jittered))
    np.testing.assert_allclose(prepare_landmarks(jittered), expected, rtol=0, atol=1e-9)
    frames = np.stack([render_face(p) for p in points])
    np.testing.assert_array_equal(mouth_rois(frames, jittered), crop_mouths(frames, expected))
