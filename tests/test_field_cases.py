"""Inputs from the field (../shared/field_cases, copied into tests/fixtures/field_cases where small): phone
videos with a display rotation, 30 fps and variable-rate clips, Unicode transcripts, silent sound tracks,
landmark files of other tools, clips longer than the audio encoder's window. Each kind is checked where it is
read (the media / landmark / text readers) and through the stages that read it (stage 1, stage 2, decoding,
scoring, mome-transcribe)."""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from mome.bin import extract as extract_cli
from mome.bin import make_noisy, transcribe
from mome.data.extract import extract
from mome.data.kaldi import read_skipped, read_table, validate_data_dir
from mome.data.landmarks import FACE_RECOGNITION_PARTS, LandmarkError, read_landmarks, write_landmarks
from mome.data.media import (
    UnsupportedMediaError,
    decode_video,
    orientation_from_matrix,
    probe,
    read_audio,
    read_video,
    resample_index,
)
from mome.data.prepare import prepare_lrs3
from mome.data.roi import crop_mouths, mouth_rois, prepare_landmarks, read_roi
from mome.scoring.score import find_sclite, score
from mome.text import normalize_text
from tests.helpers.media import SR, Clip, face_landmarks, make_data_dir, render_face, tone, write_video

FIELD = Path(__file__).parent / "fixtures" / "field_cases"
ONE = 1 << 16  # 1.0 in the display matrix's 16.16 fixed point
W = 1 << 30  # its last entry (2.30 fixed point)


def lrs3_corpus(root: Path, clips: dict[str, tuple[Path, str, Path | None]]) -> tuple[Path, Path]:
    """An LRS3 tree with ``clips`` as test/<speaker>/00001 (video copied, ``Text:`` line, landmark file copied)
    and one trainval clip; returns (corpus root, landmarks root)."""
    corpus, marks = root / "lrs3", root / "landmarks"
    first = next(iter(clips.values()))
    for split, speaker, (video, text, landmarks) in [("trainval", "spkAAAA", first)] + [
        ("test", spk, value) for spk, value in clips.items()
    ]:
        (corpus / split / speaker).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(video, corpus / split / speaker / "00001.mp4")
        (corpus / split / speaker / "00001.txt").write_bytes(
            text if isinstance(text, bytes) else f"Text:  {text}\nConf:  3\nRef:  fieldtest\n".encode()
        )
        if landmarks is not None:
            (marks / split / speaker).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(landmarks, marks / split / speaker / "00001.pkl")
    return corpus, marks


def stage_1_2(tmp_path: Path, clips) -> Path:
    corpus, marks = lrs3_corpus(tmp_path, clips)
    prepare_lrs3(corpus, tmp_path / "data", landmarks=marks, val_count=0)
    assert (
        extract_cli.main(["--data_dir", str(tmp_path / "data" / "test"), "--dump_dir", str(tmp_path / "dump" / "test")])
        == 0
    )
    return tmp_path / "data" / "test"


# ------------------------------------------------------------------------------------ 1. rotation


def test_display_matrix_orientations_by_hand():
    # (swap axes, flip rows, flip columns); a 90-degree phone turn is the field case's matrix
    assert orientation_from_matrix([0, -ONE, 0, ONE, 0, 0, 0, 0, W]) == (True, True, False)
    assert orientation_from_matrix([0, ONE, 0, -ONE, 0, 0, 0, 0, W]) == (True, False, True)
    assert orientation_from_matrix([-ONE, 0, 0, 0, -ONE, 0, 0, 0, W]) == (False, True, True)
    assert orientation_from_matrix([-ONE, 0, 0, 0, ONE, 0, 0, 0, W]) == (False, False, True)
    assert orientation_from_matrix([ONE, 0, 0, 0, ONE, 0, 0, 0, W]) == (False, False, False)
    c, s = round(ONE * np.cos(np.pi / 4)), round(ONE * np.sin(np.pi / 4))
    with pytest.raises(UnsupportedMediaError, match=r"clip.mp4: display matrix turns the picture by 45.0 degrees"):
        orientation_from_matrix([c, -s, 0, s, c, 0, 0, 0, W], "clip.mp4")


def _pattern(height: int = 48, width: int = 64) -> np.ndarray:
    """An upright picture no turn or mirror maps onto itself: a gradient plus a bright top-left block."""
    yy, xx = np.mgrid[0:height, 0:width]
    image = 40 + 2 * xx + yy
    image[4:16, 4:20] = 250
    return np.repeat(image.astype(np.uint8)[None], 3, axis=0)  # 3 frames


@pytest.mark.parametrize(
    "matrix, store",
    [
        ([0, -ONE, 0, ONE, 0, 0, 0, 0, W], lambda up: np.rot90(up, -1, axes=(1, 2))),  # shown turned 90 ccw
        ([0, ONE, 0, -ONE, 0, 0, 0, 0, W], lambda up: np.rot90(up, 1, axes=(1, 2))),  # shown turned 90 cw
        ([-ONE, 0, 0, 0, -ONE, 0, 0, 0, W], lambda up: up[:, ::-1, ::-1]),  # 180
        ([-ONE, 0, 0, 0, ONE, 0, 0, 0, W], lambda up: up[:, :, ::-1]),  # mirrored left-right
        ([0, ONE, 0, ONE, 0, 0, 0, 0, W], lambda up: np.swapaxes(up, 1, 2)),  # transposed
    ],
    ids=["rot90", "rot270", "rot180", "hflip", "transpose"],
)
def test_stored_sideways_comes_out_upright(tmp_path, matrix, store):
    upright = _pattern()
    stored = np.ascontiguousarray(store(upright))
    path = write_video(tmp_path / "phone.mp4", stored, matrix=matrix)
    frames = read_video(path)
    assert frames.shape == upright.shape
    assert np.abs(frames.astype(int) - upright).mean() < 3
    assert probe(path).width == stored.shape[2]  # the header keeps the stored size


def test_rotated_phone_video_field_case_stage_2_and_transcribe(tmp_path):
    """Field case: phoneRotated is ctrlUpright stored sideways with a 90-degree display rotation; the
    landmarks were found on the upright picture. Both must give the same mouth ROI, in stage 2 and
    in mome-transcribe; the sideways frames would give another crop."""
    marks = FIELD / "rotated_video" / "landmarks.pkl"
    clips = {
        name: (FIELD / "rotated_video" / f"{name}.mp4", "A PHONE VIDEO", marks)
        for name in ("phoneRotated", "ctrlUpright")
    }
    data = stage_1_2(tmp_path, clips)
    rois = {utt: read_roi(path) for utt, path in read_table(data / "roi.scp").items()}
    rotated, upright = rois["phoneRotated_00001"].astype(int), rois["ctrlUpright_00001"].astype(int)
    assert rotated.shape == upright.shape == (50, 96, 96)
    assert np.abs(rotated - upright).mean() < 4  # the same picture (h264 noise apart)
    with av.open(str(FIELD / "rotated_video" / "phoneRotated.mp4")) as c:
        sideways = np.stack([f.to_ndarray(format="gray") for f in c.decode(video=0)])
    assert np.abs(mouth_rois(sideways, read_landmarks(marks)).astype(int) - upright).mean() > 10
    np.testing.assert_array_equal(
        transcribe.mouth_roi(str(FIELD / "rotated_video" / "phoneRotated.mp4"), str(marks)), rois["phoneRotated_00001"]
    )


# ---------------------------------------------------------------------------------- 2. frame rate


def test_resample_index_by_hand():
    # 30 fps, 12 frames (0.4 s) -> 10 frames at 25 fps, each the frame on screen at (k + 0.5) / 25 s
    times = [i / 30 for i in range(12)]
    assert resample_index(times, 30.0).tolist() == [0, 1, 3, 4, 5, 6, 7, 9, 10, 11]
    assert resample_index([i / 25 for i in range(7)], 25.0).tolist() == list(range(7))  # frame for frame
    # variable rate: frames at 0, 50, 70, 200, 210 ms (20 fps on average: the last shows 50 ms) -> 6 frames
    assert resample_index([0, 0.05, 0.07, 0.2, 0.21], 20.0).tolist() == [0, 1, 2, 2, 2, 4]
    # 12.5 fps upward: each frame twice; times that do not start at 0 are taken from the first frame
    assert resample_index([1.0, 1.08, 1.16], 12.5).tolist() == [0, 0, 1, 1, 2, 2]


def _numbered_frames(n: int) -> np.ndarray:
    """Gray frames whose level tells their index (20 + 7 i)."""
    return np.stack([np.full((32, 48), 20 + 7 * i, np.uint8) for i in range(n)])


def test_30fps_clip_is_resampled_by_timestamp_audio_untouched(tmp_path):
    audio = tone(1.0, seed=3)
    path = write_video(tmp_path / "30fps.mp4", _numbered_frames(30), fps=30, audio=audio)
    video = decode_video(path)
    expected = [int((k + 0.5) / 25 * 30) for k in range(25)]  # the 30 fps frame showing at each 25 fps centre
    assert video.fps == 25 and video.source_fps == 30 and video.decoded == 30 and video.resampled
    assert video.source_index.tolist() == expected
    levels = video.frames.reshape(25, -1).mean(1)
    np.testing.assert_allclose(levels, 20 + 7 * np.array(expected), atol=2)
    assert len(read_video(path)) == 25 and len(read_video(path, start=0.2, end=0.6)) == 10
    back = read_audio(path)
    assert len(back) == SR  # one second, as recorded
    assert np.corrcoef(back, audio)[0, 1] > 0.95
    # a mouth-ROI video of another tool at 30 fps, in a roi.scp, is read the same way
    roi = read_roi(write_video(tmp_path / "roi30.mp4", _numbered_frames(30), fps=30))
    np.testing.assert_allclose(roi.reshape(25, -1).mean(1), 20 + 7 * np.array(expected), atol=2)


def test_variable_frame_rate_clip_is_resampled_by_timestamp(tmp_path):
    pts = [0, 40, 80, 100, 120, 200, 240, 280, 320, 360]  # ms: a burst, a gap
    path = write_video(tmp_path / "vfr.mp4", _numbered_frames(10), pts_ms=pts)
    video = decode_video(path)
    # on screen at 20, 60, 100, 140, 180, 220, ... ms
    assert video.source_index.tolist() == [0, 1, 3, 4, 4, 5, 6, 7, 8, 9]
    np.testing.assert_allclose(video.frames.reshape(10, -1).mean(1), 20 + 7 * video.source_index, atol=2)


def test_30fps_clip_through_stage_2_and_transcribe(tmp_path):
    """Landmarks made on the 30 fps frames follow the frames kept: the ROI is what the kept frames and their
    (cleaned) landmarks give, 25 frames a second, with the audio of the whole clip."""
    n = 60  # 2 s at 30 fps; the face drifts 1 px right per frame
    marks = np.stack([face_landmarks((100 + t, 140), 8.0, 0.9) for t in range(n)])
    frames = np.stack([render_face(p, seed=t) for t, p in enumerate(marks)])
    video = write_video(tmp_path / "src" / "clip.mp4", frames, fps=30, audio=tone(2.0))
    write_landmarks(tmp_path / "src" / "clip.pkl", marks)
    data = stage_1_2(tmp_path, {"spk30fps": (video, "THIRTY FRAMES A SECOND", tmp_path / "src" / "clip.pkl")})
    assert read_table(data / "utt2dur") == {"spk30fps_00001": "2.00"}
    roi = read_roi(read_table(data / "roi.scp")["spk30fps_00001"])
    assert len(roi) == 50 and len(sf.read(read_table(data / "wav.scp")["spk30fps_00001"])[0]) == 2 * SR
    kept = [int((k + 0.5) / 25 * 30) for k in range(50)]
    frames = decode_video(video, fps=30).frames  # the 60 decoded frames
    np.testing.assert_array_equal(roi, crop_mouths(frames[kept], prepare_landmarks(marks)[kept]))
    np.testing.assert_array_equal(transcribe.mouth_roi(str(video), str(tmp_path / "src" / "clip.pkl")), roi)


# -------------------------------------------------------------------------------- 3. Unicode text


def test_one_normalisation_keeps_letters_of_any_script():
    cases = {
        "WE MET AT THE CAF\u00c9 IN S\u00c3O PAULO": "we met at the café in são paulo",
        "IT\u2019S WHAT WE DON\u2019T SEE": "it's what we don't see",
        "don\u02bct  DON`T don\u00b4t don't": "don't don't don't don't",
        "CAFE\u0301 na\u00efve": "café naïve",  # combining accent composed
        "A WELL-KNOWN FACT.": "a well known fact",
        "IN 1990 WE HAD 3D TV": "in 1990 we had 3d tv",
        "{LG} SO I SAID {NS} YES [noise] <unk>": "so i said yes",
        "\u2018QUOTED\u2019 'words'": "quoted words",
        "\uff26\uff35\uff2c\uff2c width": "full width",
        "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!": (
            "\u043f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440"
        ),
        "\u0928\u092e\u0938\u094d\u0924\u0947": "\u0928\u092e\u0938\u094d\u0924\u0947",  # vowel signs are marks: kept
        "{LG}": "",
    }
    for raw, want in cases.items():
        assert normalize_text(raw) == want, raw
        assert normalize_text(want) == want  # idempotent


@pytest.mark.parametrize("backend", ["python", "sclite"])
def test_identical_transcripts_score_zero_with_both_backends(tmp_path, backend):
    if backend == "sclite" and find_sclite() is None:
        pytest.skip("sclite (SCTK) not installed")
    scoring = FIELD / "unicode_text" / "scoring"
    counts = score(scoring / "ref_text", scoring / "hyp_text", tmp_path / "score", backend=backend)
    assert (counts.correct, counts.ref_words) == (12, 12) and counts.errors == 0
    assert (tmp_path / "score" / "wer").read_text() == "%WER 0.00 [ 0 / 12, 0 ins, 0 del, 0 sub ]\n"
    assert "i don't know the café" in (tmp_path / "score" / "hyp.trn").read_text()
    # an accent is a letter: café against cafe is one substitution (not a match, not two words)
    (tmp_path / "hyp2").write_text(
        "spkA_00001 i don't know the cafe\nspkA_00002 it's a naïve idea\nspkB_00001 fifty people came\n"
    )
    assert score(scoring / "ref_text", tmp_path / "hyp2", tmp_path / "score2", backend=backend).substitutions == 1


def test_stage_1_references_keep_their_words(tmp_path):
    video = FIELD / "landmark_formats" / "clip.mp4"
    texts = {p.stem: p.read_bytes() for p in (FIELD / "unicode_text" / "corpus").glob("*.txt")}
    corpus, _ = lrs3_corpus(tmp_path, {spk: (video, text, None) for spk, text in texts.items()})
    prepare_lrs3(corpus, tmp_path / "data", val_count=0)
    assert read_table(tmp_path / "data" / "test" / "text") == {
        "spkAccent_00001": "we met at the café in são paulo",
        "spkCrlf_00001": "only crlf",
        "spkCurly_00001": "it's what we don't see",
        "spkDigits_00001": "in 1990 we had 3d tv",
        "spkHyphen_00001": "a well known fact",
        "spkMark_00001": "so i said yes",
        "spkTTTT_00001": "see you",
    }
    assert read_skipped(tmp_path / "data" / "test") == [
        ("test/spkOnlyMark/00001", "empty transcript after normalisation: '{LG}'")
    ]


def test_llm_targets_are_the_normalised_references():
    from mome.models.llm import tokenize_transcript
    from mome.models.tiny_llm import train_tiny_tokenizer

    tokenizer = train_tiny_tokenizer(["it's the café in são paulo", "we don't see"], vocab_size=300)
    raw = "IT\u2019S THE CAFE\u0301 IN S\u00c3O PAULO."
    ids = tokenize_transcript(tokenizer, raw)
    assert ids == tokenize_transcript(tokenizer, normalize_text(raw))
    assert tokenizer.decode(ids) == " it's the café in são paulo"


# ----------------------------------------------------------------------------- 4. silent sound track


def test_a_silent_track_gets_no_noisy_copy_and_every_other_utterance_does(tmp_path, capsys):
    data = make_data_dir(tmp_path, [Clip("00001"), Clip("00002", silent=True), Clip("00003")])
    extract(data, tmp_path / "dump" / "test")
    assert len(read_table(data / "wav.scp")) == 3  # the clean set keeps it (video is still there)
    babble = tmp_path / "babble.wav"
    sf.write(babble, 0.3 * tone(3.0, seed=9), SR, subtype="PCM_16")
    argv = ["--data_dir", str(data), "--noise", str(babble), "--snrs", "-5,0", "--dump_dir", str(tmp_path / "dump")]
    assert make_noisy.main(argv) == 0
    for snr in (-5, 0):
        noisy = tmp_path / "data" / f"test_babble_snr{snr}"
        validate_data_dir(noisy)
        assert (
            sorted(read_table(noisy / "wav.scp")) == sorted(read_table(noisy / "text")) == ["spkA_00001", "spkA_00003"]
        )
        ((utt, reason),) = read_skipped(noisy)
        assert utt == "spkA_00002" and reason.startswith("silent-audio: ") and "spkA_00002.wav" in reason
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["test", "test_babble_snr-5", "test_babble_snr0"]
    # a silent noise recording is an error naming it, before any directory is made
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SR), SR, subtype="PCM_16")
    argv[3], argv[5] = str(silent), "10"
    assert make_noisy.main(argv) == 1
    assert f"{silent}: the noise recording is silent" in capsys.readouterr().err
    assert not (tmp_path / "data" / "test_babble_snr10").exists()


# ------------------------------------------------------------------------ 5. landmark files of other tools

LAYOUTS = ("lists", "stacked", "faBatch", "xyz", "topdict", "emptyList")  # every one holds 68 points per frame


def test_landmark_layouts_of_other_tools_read_as_the_published_one():
    reference = read_landmarks(FIELD / "landmark_formats" / "spkTTTT.pkl")
    assert reference.shape == (25, 68, 2) and not np.isnan(reference).any()
    for name in LAYOUTS:
        points = read_landmarks(FIELD / "landmark_formats" / f"{name}.pkl")
        missing = np.isnan(points).any(axis=(1, 2))
        assert points.shape == (25, 68, 2), name
        np.testing.assert_allclose(points[~missing], reference[~missing], atol=1e-4, err_msg=name)
        assert missing.sum() == (3 if name == "emptyList" else 0), name
    assert np.isnan(read_landmarks(FIELD / "landmark_formats" / "allNone.pkl")).all()
    path = FIELD / "landmark_formats" / "dicts.pkl"  # lips only: 13 points, not 68
    with pytest.raises(
        LandmarkError, match=rf"{path}: frame 0 is a dict with keys \['bottom_lip', 'top_lip'\] holding 13 points"
    ):
        read_landmarks(path)


def test_face_recognition_dicts_and_other_shapes(tmp_path):
    import pickle

    points = np.random.default_rng(0).uniform(0, 200, (3, 68, 2)).astype(np.float32)
    # face_recognition's layout: 9 parts, the lips listing corners and inner points twice
    frames = [{part: [tuple(p[i]) for i in idx] for part, idx in FACE_RECOGNITION_PARTS.items()} for p in points]
    assert len(frames[0]["top_lip"]) == len(frames[0]["bottom_lip"]) == 12
    (tmp_path / "fr.pkl").write_bytes(pickle.dumps(frames[:2] + [None]))
    np.testing.assert_array_equal(read_landmarks(tmp_path / "fr.pkl")[:2], points[:2])
    np.save(tmp_path / "stack.npy", points)
    np.testing.assert_array_equal(read_landmarks(tmp_path / "stack.npy"), points)
    (tmp_path / "nan.pkl").write_bytes(pickle.dumps([points[0], np.full((68, 2), np.nan), np.zeros((0, 2))]))
    assert np.isnan(read_landmarks(tmp_path / "nan.pkl")[1:]).all()
    for bad, message in [
        ([np.zeros((2, 68, 2))], "frame 0 holds 2 faces"),
        ([np.zeros((5, 2))], r"frame 0 has shape \(5, 2\), expected \(68, 2\)"),
        ({"fps": 25, "boxes": [1], "names": ["a"]}, "a dict with keys"),
        ("not landmarks", "holds a str"),
        ([], "no frames"),
    ]:
        (tmp_path / "bad.pkl").write_bytes(pickle.dumps(bad))
        with pytest.raises(LandmarkError, match=f"{tmp_path / 'bad.pkl'}: {message}"):
            read_landmarks(tmp_path / "bad.pkl")


def test_stage_2_reads_every_layout_and_skips_the_rest_with_reasons(tmp_path, capsys):
    video = FIELD / "landmark_formats" / "clip.mp4"
    names = (*LAYOUTS, "spkTTTT", "allNone", "dicts")
    data = stage_1_2(tmp_path, {n: (video, "SEE YOU", FIELD / "landmark_formats" / f"{n}.pkl") for n in names})
    rois = {utt.split("_")[0]: read_roi(path) for utt, path in read_table(data / "roi.scp").items()}
    assert sorted(rois) == sorted((*LAYOUTS, "spkTTTT"))
    for name in ("lists", "stacked", "faBatch", "xyz", "topdict"):  # the same points: the same ROI
        np.testing.assert_array_equal(rois[name], rois["spkTTTT"], err_msg=name)
    assert rois["emptyList"].shape == rois["spkTTTT"].shape
    reasons = dict(read_skipped(data))
    dicts = tmp_path / "landmarks" / "test" / "dicts" / "00001.pkl"
    assert reasons["dicts_00001"].startswith(f"bad-landmarks-file: {dicts}: frame 0 is a dict with keys")
    assert reasons["allNone_00001"].startswith("no-landmarks: ")
    assert "no frame has landmarks" in reasons["allNone_00001"]
    # mome-transcribe reads the same layouts, and names a bad file
    np.testing.assert_array_equal(
        transcribe.mouth_roi(str(video), str(FIELD / "landmark_formats" / "topdict.pkl")), rois["spkTTTT"]
    )
    assert transcribe.main([str(video), "--model_dir", str(tmp_path), "--rates", "4,2", "--landmarks", str(dicts)]) == 1


# -------------------------------------------------------------------- 6. longer than the audio window


@pytest.fixture(scope="module")
def whisper_window_model(tmp_path_factory):
    """A model whose frozen Whisper stand-in has a 1 s window (max_source_positions 50), and a test set
    with one 2.5 s utterance among short ones."""
    from transformers import WhisperModel

    from mome.espnet.features import load_config
    from mome.espnet.task import AVSRTask
    from tests.helpers.espnet import make_data_dir as make_espnet_data_dir
    from tests.helpers.espnet import tiny_whisper_config, write_config

    root = tmp_path_factory.mktemp("window")
    torch.manual_seed(0)
    WhisperModel(tiny_whisper_config(max_source_positions=50)).save_pretrained(root / "whisper")
    data = make_espnet_data_dir(root / "test", 4)
    long = "spk1_9999"
    sf.write(data / f"{long}.wav", 0.3 * tone(2.5, seed=7), SR, subtype="PCM_16")
    np.savez_compressed(
        data / f"{long}.npz", roi=np.random.default_rng(1).integers(0, 256, (62, 96, 96), dtype=np.uint8)
    )
    for name, value in (
        ("wav.scp", data / f"{long}.wav"),
        ("roi.scp", data / f"{long}.npz"),
        ("text", "a long one"),
        ("utt2dur", "2.50"),
    ):
        with open(data / name, "a") as f:
            f.write(f"{long} {value}\n")
    config = write_config(root / "train.yaml", root / "tokenizer", data / "text", audio_encoder="whisper")
    values = yaml.safe_load(config.read_text())
    values["audio_encoder_conf"] = {"path": str(root / "whisper")}  # frozen, loaded from the directory
    config.write_text(yaml.safe_dump(values))
    args = load_config(config)
    model = AVSRTask.build_model(args).eval()
    return model, args, data, long


def test_a_clip_longer_than_the_audio_window_costs_nobody_their_hypothesis(whisper_window_model):
    from mome.espnet.inference import decode_data_dir
    from mome.inference import AVSR2Text

    model, args, data, long = whisper_window_model
    assert model.avsr.encoders["audio"].max_frames == 100  # 1 s
    hyps = decode_data_dir(AVSR2Text(model, args, beam_size=1, max_new_tokens=4), data, [(4, 2), (16, 5)], batch_size=8)
    assert hyps.skipped == []
    for pair in ((4, 2), (16, 5)):
        assert sorted(hyps[pair]) == sorted(read_table(data / "text")) and long in hyps[pair]


def test_an_utterance_that_cannot_be_read_or_decoded_is_recorded_and_the_others_decode(
    whisper_window_model, tmp_path, monkeypatch
):
    from mome.espnet.inference import decode_data_dir, write_text
    from mome.inference import AVSR2Text

    model, args, data, long = whisper_window_model
    broken = tmp_path / "test"
    shutil.copytree(data, broken)
    victim = sorted(read_table(broken / "roi.scp"))[0]
    (broken / f"{victim}.npz").write_bytes(b"not an npz")
    with open(broken / "roi.scp", "w") as f:
        f.writelines(f"{u} {broken / Path(p).name}\n" for u, p in read_table(data / "roi.scp").items())
    encode = model.avsr.encode

    def failing_encode(**inputs):  # the long utterance makes its batch fail (as a too-long clip did)
        if int(inputs["audio_lengths"].max()) == round(2.5 * SR):
            raise ValueError("audio longer than this encoder's window")
        return encode(**inputs)

    monkeypatch.setattr(model.avsr, "encode", failing_encode)
    hyps = decode_data_dir(AVSR2Text(model, args, beam_size=1, max_new_tokens=4), broken, [(4, 2)], batch_size=8)
    reasons = dict(hyps.skipped)
    assert sorted(reasons) == sorted([victim, long])
    assert reasons[victim].startswith("unreadable-input: ") and reasons[long].startswith("decode-failed: ValueError")
    assert sorted(hyps[(4, 2)]) == sorted(set(read_table(data / "text")) - {victim, long})  # the others, all of them
    text = write_text(tmp_path / "decode" / "text", hyps[(4, 2)], hyps.skipped)
    assert len(read_table(text)) == 3 and [u for u, _ in read_skipped(text.parent)] == sorted([victim, long])
