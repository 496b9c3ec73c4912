"""Elastic decoding: one checkpoint decodes at every trained rate pair into the layout scoring reads; an
untrained pair, a missing checkpoint or data file are named in the error; single-file transcription."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from mome.bin import avsr_inference, avsr_train, transcribe
from mome.espnet.inference import clean_hypothesis, decode_data_dir
from mome.espnet.task import AVSRTask
from mome.inference import AVSR2Text, parse_rates
from tests.helpers.espnet import data_options, train_tiny_model, write_config

PAIRS = [(4, 2), (4, 5), (16, 2), (16, 5)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("inference"), test_clips=5)


def read_text(path: Path) -> dict[str, str]:
    return {
        f[0]: (f[1] if len(f) > 1 else "") for f in (line.split(maxsplit=1) for line in path.read_text().splitlines())
    }


def test_one_checkpoint_decodes_every_rate_pair_into_the_scoring_layout(trained, capsys):
    exp, test_dir = trained
    noisy = test_dir.parent / "test_babble_snr0"  # a second test condition, decoded by the same process
    noisy.mkdir(exist_ok=True)
    for name in ("wav.scp", "roi.scp", "utt2dur"):
        (noisy / name).write_text((test_dir / name).read_text())
    argv = [
        "--model_dir",
        str(exp),
        "--data_dir",
        str(test_dir),
        str(noisy),
        "--beam_size",
        "2",
        "--max_new_tokens",
        "6",
    ]
    assert avsr_inference.main(argv) == 0
    utts = sorted(line.split()[0] for line in (test_dir / "wav.scp").read_text().splitlines())
    hyps = decode_data_dir(AVSR2Text.from_pretrained(exp, beam_size=2, max_new_tokens=6), test_dir, PAIRS, batch_size=8)
    for ra, rv in PAIRS:
        text = exp / f"decode_test_ra{ra}_rv{rv}" / "text"
        written = read_text(text)
        assert sorted(written) == utts == list(written)  # every utterance, sorted
        assert written == {u: clean_hypothesis(h) for u, h in hyps[(ra, rv)].items()}
        assert read_text(exp / f"decode_test_babble_snr0_ra{ra}_rv{rv}" / "text") == written


def test_encoding_once_for_all_pairs_equals_the_models_own_decode(trained):
    exp, test_dir = trained
    avsr = AVSR2Text.from_pretrained(exp, beam_size=3, max_new_tokens=5)
    model, args = avsr.model, avsr.args
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset(
        [(str(test_dir / "wav.scp"), "audio", "sound"), (str(test_dir / "roi.scp"), "video", "roi")],
        preprocess=AVSRTask.build_preprocess_fn(args, train=False),
    )
    utts = sorted(dataset)[:3]
    _, batch = CommonCollateFn()([dataset[u] for u in utts])
    features = model.avsr.encode(**batch)
    for pair in PAIRS:
        ours = [r.text for r in avsr.decode_batch(batch, [pair])[pair]]
        assert ours == [
            clean_hypothesis(h) for h in model.avsr.decode(rates=pair, beam_size=3, max_new_tokens=5, **batch)
        ]
        assert ours == [clean_hypothesis(h) for h in model.avsr.decode_from_features(features, pair, 3, 5)]


def test_untrained_pair_names_the_trained_ones(trained, capsys):
    exp, test_dir = trained
    assert avsr_inference.main(["--model_dir", str(exp), "--data_dir", str(test_dir), "--rates", "4,3"]) == 1
    assert (
        "rate pair 4,3 was not trained into this model; trained pairs (audio,video): 4,2 4,5 16,2 16,5"
        in capsys.readouterr().err
    )
    with pytest.raises(ValueError, match="rates must be 'A,V'"):
        parse_rates("4")


def test_missing_checkpoint_and_data_files_are_named(trained, tmp_path, capsys):
    exp, test_dir = trained
    assert (
        avsr_inference.main(["--model_dir", str(exp), "--data_dir", str(test_dir), "--checkpoint", "9epoch.pth"]) == 1
    )
    err = capsys.readouterr().err
    assert f"checkpoint {exp / '9epoch.pth'} does not exist" in err and "1epoch.pth" in err
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "wav.scp").write_text((test_dir / "wav.scp").read_text())
    assert avsr_inference.main(["--model_dir", str(exp), "--data_dir", str(partial), "--rates", "4,2"]) == 1
    assert f"{partial / 'roi.scp'} does not exist" in capsys.readouterr().err


def test_audio_only_model_trains_from_the_full_data_options_and_decodes_at_video_rate_zero(trained, tmp_path):
    exp, test_dir = trained
    tokenizer = yaml.safe_load((exp / "config.yaml").read_text())["llm_conf"]["tokenizer_dir"]
    config = write_config(
        tmp_path / "asr.yaml",
        Path(tokenizer),
        test_dir / "text",
        video_encoder=None,
        video_encoder_conf=None,
        compressor_conf={"audio_rates": [4, 8]},
    )
    asr = tmp_path / "asr"
    avsr_train.main(
        ["--config", str(config), "--output_dir", str(asr), *data_options(test_dir, test_dir)]
    )  # roi.scp too
    saved = yaml.safe_load((asr / "config.yaml").read_text())
    assert [e[1] for e in saved["train_data_path_and_name_and_type"]] == ["audio", "text"]
    assert (
        avsr_inference.main(
            [
                "--model_dir",
                str(asr),
                "--data_dir",
                str(test_dir),
                "--rates",
                "8,0",
                "--beam_size",
                "1",
                "--max_new_tokens",
                "3",
            ]
        )
        == 0
    )
    assert len(read_text(asr / "decode_test_ra8_rv0" / "text")) == 5


def test_transcribe_a_file_with_and_without_landmarks(trained, tmp_path, capsys):
    from mome.data.landmarks import write_landmarks
    from mome.data.media import write_mp4
    from mome.data.roi import MEAN_FACE

    exp, _ = trained
    rng = np.random.default_rng(0)
    speech = (0.3 * np.sin(np.arange(16000) / 7)).astype(np.float32)
    roi_video = tmp_path / "roi.mp4"
    write_mp4(roi_video, rng.integers(0, 256, (25, 96, 96), dtype=np.uint8), audio=speech)
    assert (
        transcribe.main(
            [str(roi_video), "--model_dir", str(exp), "--rates", "16,5", "--beam_size", "2", "--max_new_tokens", "4"]
        )
        == 0
    )
    expected = (
        AVSR2Text.from_pretrained(exp, beam_size=2, max_new_tokens=4).transcribe_file(roi_video, rates=(16, 5)).text
    )
    assert capsys.readouterr().out == expected + "\n"

    face_video = tmp_path / "face.mp4"
    write_mp4(face_video, rng.integers(0, 256, (25, 224, 224), dtype=np.uint8), audio=speech)
    assert transcribe.main([str(face_video), "--model_dir", str(exp), "--rates", "4,2"]) == 1
    err = capsys.readouterr().err  # no face in noise: the face mesh finds none (or is not installed)
    assert "face.mp4" in err and "are not a mouth ROI" in err and "give --landmarks" in err
    landmarks = tmp_path / "face.pkl"
    write_landmarks(landmarks, np.repeat((MEAN_FACE * 224 / 256)[None], 25, axis=0).astype(np.float32))
    assert (
        transcribe.main(
            [
                str(face_video),
                "--model_dir",
                str(exp),
                "--rates",
                "4,2",
                "--landmarks",
                str(landmarks),
                "--beam_size",
                "1",
                "--max_new_tokens",
                "3",
            ]
        )
        == 0
    )
