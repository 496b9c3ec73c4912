"""mome.data.noise: babble at a set SNR, and the noisy copies of a data directory."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mome.bin.make_noisy import main as make_noisy_main
from mome.data.kaldi import read_table, write_table
from mome.data.media import read_wav, write_wav
from mome.data.noise import DEFAULT_SNRS, mix, noise_segment, scale_to_snr, snr_db
from tests.helpers.media import tone


def _babble(seconds: float, seed: int = 1) -> np.ndarray:
    return sum(tone(seconds, seed + k) for k in range(4)).astype(np.float32)


@pytest.mark.parametrize("snr", DEFAULT_SNRS)
def test_snr_of_the_written_mixture_is_within_0_1_db(tmp_path, snr):
    speech, noise = tone(1.5, seed=0), _babble(4.0)
    clean, added = scale_to_snr(speech, noise_segment(noise, len(speech), "utt1"), snr)
    mixed = mix(speech, noise, snr, "utt1")
    np.testing.assert_allclose(mixed, clean + added, atol=1e-6)
    write_wav(tmp_path / "m.wav", mixed)
    back = read_wav(tmp_path / "m.wav")
    assert abs(snr_db(clean, back - clean) - snr) < 0.1
    assert np.max(np.abs(back)) <= 1.0


def test_loud_speech_is_scaled_down_not_clipped():
    speech = 0.95 * np.sign(tone(1.0)).astype(np.float32)  # at full scale already
    clean, added = scale_to_snr(speech, _babble(1.0), -5)
    assert np.max(np.abs(clean + added)) <= 32767 / 32768 + 1e-12
    assert np.max(np.abs(clean)) < 0.95  # both parts went down ...
    assert snr_db(clean, added) == pytest.approx(-5, abs=1e-9)  # ... together


def test_noise_segment_is_seeded_by_the_utterance_and_loops():
    noise = np.arange(1000, dtype=np.float32)
    a, b = noise_segment(noise, 300, "spk_00001"), noise_segment(noise, 300, "spk_00001")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, noise_segment(noise, 300, "spk_00002"))
    np.testing.assert_array_equal(np.diff(a), 1)  # a contiguous piece of a longer noise
    looped = noise_segment(noise, 2500, "spk_00001")
    np.testing.assert_array_equal(looped, (looped[0] + np.arange(2500)) % 1000)
    with pytest.raises(ValueError, match="silent speech"):
        scale_to_snr(np.zeros(10), noise[:10], 0)


def test_noisy_copies_of_a_data_dir(tmp_path, capsys):
    data, dump = tmp_path / "data" / "test", tmp_path / "dump"
    data.mkdir(parents=True)
    utts = {"spk_00001": tone(0.6, 3), "spk_00002": tone(0.9, 4)}
    for utt, x in utts.items():
        write_wav(dump / "test" / "wav" / f"{utt}.wav", x)
    write_table(data / "wav.scp", {u: dump / "test" / "wav" / f"{u}.wav" for u in utts})
    write_table(data / "roi.scp", {u: f"/rois/{u}.mkv" for u in utts})
    write_table(data / "text", {u: "hello world" for u in utts})
    write_wav(tmp_path / "babble.wav", 0.3 * _babble(2.0))

    babble = read_wav(tmp_path / "babble.wav")
    argv = [
        "--data_dir",
        str(data),
        "--noise",
        str(tmp_path / "babble.wav"),
        "--snrs",
        "-5,10",
        "--dump_dir",
        str(dump),
    ]
    assert make_noisy_main(argv) == 0
    for snr in (-5, 10):
        out = tmp_path / "data" / f"test_babble_snr{snr}"
        assert (out / "roi.scp").read_text() == (data / "roi.scp").read_text()
        assert (out / "text").read_text() == (data / "text").read_text()
        wavs = read_table(out / "wav.scp")
        assert list(wavs) == list(utts)
        for utt, path in wavs.items():
            assert path == str(dump / f"test_babble_snr{snr}" / "wav" / f"{utt}.wav")
            clean = read_wav(data.parent.parent / "dump" / "test" / "wav" / f"{utt}.wav")
            noisy = read_wav(path)
            # the mixture of the tested mix(), seeded by the utterance id (int16 rounding apart)
            np.testing.assert_allclose(noisy, mix(clean, babble, snr, utt), atol=1 / 32768)
    # resume: nothing rewritten
    target = dump / "test_babble_snr-5" / "wav" / "spk_00001.wav"
    os.utime(target, (1, 1))
    assert make_noisy_main(argv) == 0
    assert target.stat().st_mtime == 1
