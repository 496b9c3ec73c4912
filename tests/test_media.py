"""mome.data.media: probing and decoding tiny mp4s written with PyAV, wav I/O."""

from __future__ import annotations

import numpy as np
import pytest

from mome.data.media import (
    MediaError,
    WavWriter,
    iter_audio,
    iter_video,
    probe,
    read_audio,
    read_video,
    read_wav,
    write_mp4,
    write_wav,
)
from tests.helpers.media import FPS, SR, tone


def _frames(n: int, size: int = 64) -> np.ndarray:
    # a distinct flat brightness per frame, so frames can be told apart after h264
    return np.stack([np.full((size, size), 20 + 8 * i, np.uint8) for i in range(n)])


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """20 frames (0.8 s) with 0.3 s more audio than video."""
    path = tmp_path_factory.mktemp("media") / "clip.mp4"
    audio = tone(1.1)
    write_mp4(path, _frames(20), FPS, audio, SR)
    return path, audio


def test_probe(clip):
    info = probe(clip[0])
    assert (info.num_frames, info.fps, info.width, info.height) == (20, 25.0, 64, 64)
    assert info.duration == pytest.approx(0.8)
    assert info.has_audio and info.audio_duration == pytest.approx(1.1, abs=0.07)


def test_audio_is_trimmed_to_the_video_and_aligned(clip):
    path, source = clip
    audio = read_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (round(0.8 * SR),)
    # AAC is lossy but the waveform must line up with the source at lag 0
    lags = np.arange(-200, 201)
    corr = [np.dot(audio[1000:9000], source[1000 + k : 9000 + k]) for k in lags]
    assert lags[int(np.argmax(corr))] == 0
    assert np.corrcoef(audio[1000:12000], source[1000:12000])[0, 1] > 0.9


def test_audio_span_matches_the_full_decode(clip):
    full = read_audio(clip[0])
    part = read_audio(clip[0], start=0.2, end=0.6)
    assert part.shape == (6400,)
    np.testing.assert_array_equal(part, full[3200:9600])


def test_short_audio_is_padded_to_the_video(tmp_path):
    path = tmp_path / "short.mp4"
    write_mp4(path, _frames(25), FPS, tone(0.9), SR)  # 1.0 s of video
    audio = read_audio(path)
    assert audio.shape == (SR,)
    assert np.all(audio[-1000:] == 0) and np.abs(audio[:8000]).max() > 0.05


def test_read_video_spans_and_colour(clip):
    gray = read_video(clip[0])
    assert gray.shape == (20, 64, 64) and gray.dtype == np.uint8
    # brightness rises frame by frame (8 levels each)
    assert np.all(np.diff(gray.mean(axis=(1, 2))) > 4)
    part = read_video(clip[0], start=0.2, end=0.6, gray=False)
    assert part.shape == (10, 64, 64, 3)
    np.testing.assert_allclose(part.mean(axis=(1, 2, 3)), gray[5:15].mean(axis=(1, 2)), atol=3)


def test_errors_name_the_file(tmp_path, clip):
    with pytest.raises(MediaError, match="missing.mp4: media file missing"):
        probe(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 50)
    with pytest.raises(MediaError, match="bad.mp4: cannot open"):
        read_video(bad)
    silent = tmp_path / "silent.mp4"
    write_mp4(silent, _frames(5), FPS)
    assert not probe(silent).has_audio
    with pytest.raises(MediaError, match="silent.mp4: no audio stream"):
        read_audio(silent)
    with pytest.raises(ValueError, match="empty time span"):
        read_video(clip[0], start=0.5, end=0.5)


def test_wav_round_trip(tmp_path):
    x = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 0.25], np.float32)
    write_wav(tmp_path / "a.wav", x)
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # the temporary file was renamed
    y = read_wav(tmp_path / "a.wav")
    np.testing.assert_allclose(y, [0, 0.5, -0.5, 32767 / 32768, -1.0, 0.25], atol=1e-9)
    import soundfile as sf

    info = sf.info(str(tmp_path / "a.wav"))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert read_wav(tmp_path / "a.wav", 8000).shape == (3,)


def test_streams_equal_the_whole_reads(tmp_path, clip):
    frames = list(iter_video(clip[0], start=0.2, end=0.6))
    np.testing.assert_array_equal(np.stack(frames), read_video(clip[0], start=0.2, end=0.6))
    audio = np.concatenate(list(iter_audio(clip[0])))
    whole = read_audio(clip[0])
    np.testing.assert_array_equal(audio[: len(whole)], whole[: len(audio)])
    x = tone(0.3)
    with WavWriter(tmp_path / "a.wav") as wav:
        wav.write(x[:1000])
        wav.write(x[1000:])
    write_wav(tmp_path / "b.wav", x)
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    with WavWriter(tmp_path / "c.wav") as wav:
        wav.write(x)
        wav.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav", "b.wav"]


def test_fast_gray_equals_swscale_gray(tmp_path):
    import av

    from mome.data.media import _luma

    rng = np.random.default_rng(0)
    write_mp4(tmp_path / "noise.mp4", rng.integers(0, 256, (3, 48, 64, 3), dtype=np.uint8))
    with av.open(str(tmp_path / "noise.mp4")) as container:
        for frame in container.decode(video=0):
            gray = _luma(frame)
            assert gray.shape == (48, 64) and gray.max() > 235  # stretched to full range
            np.testing.assert_array_equal(gray, frame.to_ndarray(format="gray"))
