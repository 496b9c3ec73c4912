"""Stage 2 end to end on tiny data directories: outputs, bad inputs, resume, shards."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from mome.bin.extract import main as extract_main
from mome.data.extract import ExtractError, merge, roi_path, run_job, wav_path
from mome.data.kaldi import read_skipped, read_table
from mome.data.media import read_audio, read_wav
from mome.data.roi import read_roi
from tests.helpers.media import FPS, SR, Clip, make_data_dir

# one whole clip with 0.3 s more audio than video; one 50-frame recording cut into two segments,
# with a few frames of missing landmarks (interpolated, not skipped)
GOOD = [Clip("00001", frames=20, audio_seconds=1.1), Clip("00002", frames=50, missing=[3, 4, 5, 30])]
SEGMENTS = {"00002": [(0.0, 1.2), (1.2, 2.0)]}
UTTS = ["spkA_00001", "spkA_00002_00", "spkA_00002_01"]
BAD = [  # (clip, the reason key it must be skipped with)
    (Clip("00003", audio_seconds=0), "no-audio"),
    (Clip("00004", corrupt=True), "corrupt-video"),
    (Clip("00005", frames=10, audio_seconds=1.5), "video-shorter-than-audio"),
    (Clip("00006", missing="all"), "no-landmarks"),
    (Clip("00007", landmarks=False), "no-landmarks-file"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The three good utterances, written once; tests copy the folder."""
    root = tmp_path_factory.mktemp("corpus")
    make_data_dir(root, GOOD, SEGMENTS)
    return root


@pytest.fixture
def root(corpus, tmp_path):
    shutil.copytree(corpus, tmp_path / "r")
    return tmp_path / "r"


def test_three_utterances_end_to_end(root, capsys):
    data, dump = root / "data" / "test", root / "dump" / "test"
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(dump)]) == 0
    assert "extracted 3, skipped 0" in capsys.readouterr().err
    wavs, rois = read_table(data / "wav.scp"), read_table(data / "roi.scp")
    assert list(wavs) == list(rois) == UTTS == list(read_table(data / "text"))
    frames = {"spkA_00001": 20, "spkA_00002_00": 30, "spkA_00002_01": 20}
    for utt, n in frames.items():
        assert wavs[utt] == str(wav_path(dump, utt)) and rois[utt] == str(roi_path(dump, utt))
        audio, roi = read_wav(wavs[utt]), read_roi(rois[utt])
        assert audio.shape == (n * SR // FPS,)  # 640 samples per frame: trimmed to the video
        assert roi.shape == (n, 96, 96) and roi.dtype == np.uint8
        for t in range(n):  # the rendered mouth sits in the middle (frames without landmarks too)
            ys, xs = np.nonzero(roi[t] < 80)
            assert abs(xs.mean() - 47.5) < 1.5 and abs(ys.mean() - 47.5) < 1.5, (utt, t)
    # a segment's audio is that span of the recording (int16 rounding apart)
    full = read_audio(root / "corpus" / "spkA" / "00002.mp4")
    np.testing.assert_allclose(read_wav(wavs["spkA_00002_01"]), full[30 * 640 : 50 * 640], atol=1 / 32768)
    assert not (data / "skipped.txt").exists()


def test_bad_inputs_are_skipped_with_reasons(tmp_path, capsys):
    clips = GOOD[:1] + [clip for clip, _ in BAD]
    data = make_data_dir(tmp_path, clips)
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(tmp_path / "dump")]) == 0
    err = capsys.readouterr().err
    assert (
        "extracted 1, skipped 5 (corrupt-video: 1, no-audio: 1, no-landmarks: 1, no-landmarks-file: 1, "
        "video-shorter-than-audio: 1)"
    ) in err
    skipped = dict(read_skipped(data))
    assert {utt: reason.split(":")[0] for utt, reason in skipped.items()} == {
        f"spkA_{clip.name}": key for clip, key in BAD
    }
    assert "00004.mp4" in skipped["spkA_00004"]  # the reason names the file
    for name in ("text", "utt2spk", "segments", "utt2dur", "wav.scp", "roi.scp", "video.scp", "landmarks.scp"):
        assert list(read_table(data / name)) == ["spkA_00001"], name
    assert (data / "spk2utt").read_text() == "spkA spkA_00001\n"
    # merging again logs nothing twice
    merge(data, tmp_path / "dump")
    assert len(read_skipped(data)) == 5


def test_resume_keeps_finished_work(root):
    data, dump = root / "data" / "test", root / "dump" / "test"
    first = run_job(data, dump)
    assert first.extracted == UTTS and first.skipped == []
    stamps = {p: p.stat().st_mtime_ns for p in dump.rglob("*.*") if p.suffix in (".wav", ".mkv")}
    assert len(stamps) == 6
    again = run_job(data, dump)
    assert again.extracted == [] and sorted(again.already_done) == UTTS
    roi_path(dump, "spkA_00002_01").unlink()  # an unfinished utterance is redone, alone
    third = run_job(data, dump)
    assert third.extracted == ["spkA_00002_01"]
    for p, stamp in stamps.items():
        if p.stem != "spkA_00002_01":  # its wav and ROI are both rewritten
            assert p.stat().st_mtime_ns == stamp, p
    assert not list(dump.rglob(".*.tmp"))


def test_shards_then_merge(root, capsys):
    data, dump = root / "data" / "test", root / "dump" / "test"
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(dump), "--job", "2", "--njobs", "2"]) == 0
    assert not roi_path(dump, "spkA_00001").exists() and roi_path(dump, "spkA_00002_01").exists()
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(dump), "--job", "1", "--njobs", "2"]) == 0
    assert not (data / "wav.scp").exists()
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(dump), "--merge"]) == 0
    assert list(read_table(data / "roi.scp")) == UTTS
    assert "extracted 3, skipped 0" in capsys.readouterr().err


def test_a_corpus_without_landmarks_is_an_error(root, capsys):
    data = root / "data" / "test"
    (data / "landmarks.scp").unlink()
    with pytest.raises(ExtractError, match="landmarks.scp missing"):
        run_job(data, root / "dump")
    assert extract_main(["--data_dir", str(data), "--dump_dir", str(root / "dump")]) == 1
    assert "landmarks.scp missing" in capsys.readouterr().err


def test_streamed_outputs_equal_the_whole_clip_in_memory(root, monkeypatch):
    """Chunks of 7 frames (segment boundaries fall inside chunks): each segment's ROI and wav are what the
    whole decoded clip gives, cut at the segment."""
    import mome.data.extract as extract_module
    from mome.data.landmarks import read_landmarks
    from mome.data.media import read_video
    from mome.data.roi import crop_mouths, prepare_landmarks

    monkeypatch.setattr(extract_module, "CHUNK_FRAMES", 7)
    data, dump = root / "data" / "test", root / "dump" / "test"
    assert run_job(data, dump).extracted == UTTS
    video = root / "corpus" / "spkA" / "00002.mp4"
    rois = crop_mouths(read_video(video), prepare_landmarks(read_landmarks(root / "landmarks" / "spkA" / "00002.pkl")))
    audio = read_audio(video)
    for utt, (first, last) in {"spkA_00002_00": (0, 30), "spkA_00002_01": (30, 50)}.items():
        assert np.array_equal(read_roi(roi_path(dump, utt)), rois[first:last])
        np.testing.assert_allclose(read_wav(wav_path(dump, utt)), audio[first * 640 : last * 640], atol=1 / 32768)
    assert not list(dump.rglob(".*.tmp"))
