"""The ESPnet task: configs naming our choices train on ESPnet's trainer; bad keys fail early; NaN steps are
skipped and counted; a killed run resumes to the same weights; the paper configs build; preprocessing."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mome.atomic import KILL_IN_SAVE
from mome.bin import avsr_train
from mome.espnet.choices import ConfigError
from mome.espnet.preprocess import AVSRPreprocessor, crop, time_mask
from mome.espnet.shapes import write_shape_file
from mome.espnet.task import AVSRTask
from mome.models.llm import tokenize_transcript
from tests.helpers.espnet import data_options, make_data_dir, make_pretrained, tiny_batch, write_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("espnet_data")
    train, valid = make_data_dir(root / "train", 4), make_data_dir(root / "valid", 2, seed=1)
    return root, train, valid


def train(config: Path, out: Path, train_dir: Path, valid_dir: Path, *extra: str) -> Path:
    avsr_train.main(["--config", str(config), "--output_dir", str(out), *data_options(train_dir, valid_dir), *extra])
    return out


def test_config_naming_our_choices_trains_on_espnets_trainer(data, tmp_path):
    root, train_dir, valid_dir = data
    config = write_config(tmp_path / "train.yaml", root / "tokenizer", train_dir / "text")
    out = train(config, tmp_path / "exp", train_dir, valid_dir)

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["audio_encoder"], saved["video_encoder"], saved["llm"], saved["llm_adapter"]) == (
        "small",
        "small",
        "tiny",
        "mome",
    )
    # shape files written from utt2dur: frames at 25 fps
    shapes = dict(line.split() for line in (out / "shape" / "train.shape").read_text().splitlines())
    durations = dict(line.split() for line in (train_dir / "utt2dur").read_text().splitlines())
    assert shapes == {u: str(round(float(d) * 25)) for u, d in durations.items()}
    # checkpoint of the epoch, resume state, averaged model for decoding
    for name in ("1epoch.pth", "checkpoint.pth", "valid.loss.ave.pth"):
        assert (out / name).exists(), name
    state = torch.load(out / "1epoch.pth", weights_only=True)
    up = [v for k, v in state.items() if k.endswith("experts.up_weight")]
    assert up and all(torch.isfinite(v).all() for v in up)
    assert any(v.abs().sum() > 0 for v in up), "MoME up-projections start at zero: a step must have moved them"


def test_unknown_config_key_fails_at_start(data, tmp_path, capsys):
    root, train_dir, valid_dir = data
    config = write_config(tmp_path / "bad.yaml", root / "tokenizer", train_dir / "text", bogus_option=3)
    with pytest.raises(SystemExit):
        avsr_train.main(["--config", str(config), "--output_dir", str(tmp_path / "exp")])
    assert f"unrecognized arguments: bogus_option (from {config})" in capsys.readouterr().err

    bad_conf = write_config(
        tmp_path / "bad2.yaml", root / "tokenizer", train_dir / "text", llm_adapter_conf={"expert": 4}
    )
    args = AVSRTask.get_parser().parse_args(["--config", str(bad_conf)])
    with pytest.raises(ConfigError, match=r"llm_adapter_conf: .*'expert'.*allowed keys for MoMESpec: \['experts'"):
        AVSRTask.build_model(args)


def test_nan_loss_skips_the_step_counts_it_and_training_goes_on(tmp_path, caplog):
    train_dir = make_data_dir(tmp_path / "train", 3, nan_utts=(1,))
    valid_dir = make_data_dir(tmp_path / "valid", 2, seed=1)
    config = write_config(tmp_path / "train.yaml", tmp_path / "tokenizer", train_dir / "text", batch_size=1)
    caplog.set_level(logging.INFO)
    out = train(config, tmp_path / "exp", train_dir, valid_dir)
    assert "epoch 1: skipped 1 of 3 optimiser steps" in caplog.text
    state = torch.load(out / "1epoch.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


KILL_IN_EPOCH_2 = """
import os, signal, sys
from mome.espnet.trainer import AVSRTrainer
from mome.espnet.model import AVSRESPnetModel
forward = AVSRESPnetModel.forward
def dying_forward(self, *args, **kwargs):
    out = forward(self, *args, **kwargs)
    if self.training and os.path.exists(os.path.join(sys.argv[sys.argv.index("--output_dir") + 1], "1epoch.pth")):
        os.kill(os.getpid(), signal.SIGKILL)  # killed in the middle of epoch 2
    return out
AVSRESPnetModel.forward = dying_forward
from mome.bin import avsr_train
avsr_train.main(sys.argv[1:])
"""


@pytest.fixture(scope="module")
def two_epochs(data, tmp_path_factory):
    """A 2-epoch config and its uninterrupted run."""
    root, train_dir, valid_dir = data
    tmp = tmp_path_factory.mktemp("two_epochs")
    config = write_config(tmp / "train.yaml", root / "tokenizer", train_dir / "text", max_epoch=2, keep_nbest_models=2)
    return config, train(config, tmp / "reference", train_dir, valid_dir)


def test_resume_after_a_killed_run_ends_where_an_uninterrupted_run_ends(data, two_epochs, tmp_path):
    root, train_dir, valid_dir = data
    config, reference = two_epochs

    killed = tmp_path / "killed"
    argv = ["--config", str(config), "--output_dir", str(killed), *data_options(train_dir, valid_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-c", KILL_IN_EPOCH_2, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == -9, run.stderr[-3000:]
    assert (killed / "1epoch.pth").exists() and not (killed / "2epoch.pth").exists()

    train(config, killed, train_dir, valid_dir, "--resume", "true")
    ours, theirs = (torch.load(d / "2epoch.pth", weights_only=True) for d in (killed, reference))
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("corpus", ["lrs3", "lrs2"])
def test_paper_configs_build_and_leave_pretrained_weights_out_of_checkpoints(tmp_path_factory, monkeypatch, corpus):
    pretrained = tmp_path_factory.getbasetemp() / "pretrained"
    if not pretrained.exists():
        make_pretrained(pretrained)
    monkeypatch.setenv("MOME_PRETRAINED", str(pretrained))
    configs = sorted((ROOT / "egs" / corpus / "avsr" / "conf").glob("train_*.yaml"))
    names = {c.name for c in configs}
    assert {
        "train_mome.yaml",
        "train_llama_avsr.yaml",
        "train_mtsk_ms.yaml",
        "train_mtsk_ss.yaml",
        "train_mtsk_mss.yaml",
        "train_asr_mome.yaml",
        "train_vsr_mome.yaml",
    } <= names
    for config in configs:
        args = AVSRTask.get_parser().parse_args(["--config", str(config)])
        model = AVSRTask.build_model(args)
        state = model.state_dict()
        assert not any(k.startswith("avsr.encoders.") for k in state), config.name
        llm_keys = [k for k in state if k.startswith("avsr.llm.model.")]
        assert all("lora_" in k for k in llm_keys), (config.name, llm_keys[:3])
        trainable = {n for n, p in model.named_parameters() if p.requires_grad}
        assert trainable <= set(state), config.name
        if config.name == "train_mome.yaml":
            spec = model.avsr.adapter.spec
            assert (spec.experts, spec.top_k, spec.shared_experts, spec.bottleneck) == (23, 4, 1, 12)
            assert model.avsr.rate_pairs == [(4, 2), (4, 5), (16, 2), (16, 5)]
        if config.name == "train_asr_mome.yaml":
            assert model.avsr.rate_pairs == [(r, None) for r in (4, 8, 12, 16, 20)]


def test_mini_config_parses_and_names_the_small_model():
    args = AVSRTask.get_parser().parse_args(["--config", str(ROOT / "egs/mini_lrs3/avsr/conf/train_mome.yaml")])
    assert (args.audio_encoder, args.video_encoder, args.llm, args.llm_adapter) == ("small", "small", "hf", "mome")
    assert args.llm_conf == {"path": "exp/pretrain_lm"} and args.audio_encoder_conf == {
        "path": "exp/pretrain_audio/encoder"
    }
    assert (
        args.llm_adapter_conf["experts"],
        args.llm_adapter_conf["top_k"],
        args.llm_adapter_conf["shared_experts"],
    ) == (8, 2, 1)
    assert args.compressor_conf == {"audio_rates": [4, 16], "video_rates": [2, 5], "pooling": "avg"}


def test_cosine_schedules_span_the_whole_run():
    """ESPnet's cosine scheduler restarts after first_cycle_steps: in every recipe config it must be the run's
    length (max_epoch x num_iters_per_epoch), or the learning rate climbs again at the end (or never anneals)."""
    checked = []
    for config in sorted((ROOT / "egs").glob("*/avsr/conf/train_*.yaml")):
        conf = yaml.safe_load(config.read_text())
        if conf.get("scheduler") == "cosineannealingwarmuprestarts":
            steps = conf["max_epoch"] * conf["num_iters_per_epoch"]
            assert conf["scheduler_conf"]["first_cycle_steps"] == steps, config
            checked.append(config.name)
    assert {"train_mome.yaml", "train_ctc_real.yaml", "train_mome_real.yaml"} <= set(checked)


def test_encoders_run_once_per_batch_for_all_rate_pairs(data, tmp_path):
    root, train_dir, _ = data
    config = write_config(tmp_path / "train.yaml", root / "tokenizer", train_dir / "text")
    args = AVSRTask.get_parser().parse_args(["--config", str(config)])
    model = AVSRTask.build_model(args)
    calls = {"audio": 0, "video": 0}
    for name, encoder in model.avsr.encoders.items():
        encoder.register_forward_hook(lambda *a, name=name: calls.__setitem__(name, calls[name] + 1))
    batch = tiny_batch()
    loss, stats, weight = model(**batch)
    assert calls == {"audio": 1, "video": 1}
    assert {k for k in stats if k.startswith("loss_ra")} == {
        "loss_ra4_rv2",
        "loss_ra4_rv5",
        "loss_ra16_rv2",
        "loss_ra16_rv5",
    }
    assert weight.tolist() == [2]


def test_preprocessor_tokenises_crops_normalises_and_adds_noise_at_the_snr(data):
    root, train_dir, _ = data
    from mome.espnet.choices import TinyLLM

    spec = TinyLLM(tokenizer_dir=str(root / "tokenizer"), texts=str(train_dir / "text"), vocab_size=300, hidden_size=32)
    tokenizer = spec.load_tokenizer()
    ids = AVSRPreprocessor(train=True, tokenizer=tokenizer).text("The Cat SAT")
    assert ids.dtype == np.int64 and tokenizer.decode(ids.tolist()) == " the cat sat"
    assert (
        ids.tolist()
        == tokenize_transcript(tokenizer, "The Cat SAT")
        == spec.build().tokenize(["The Cat SAT"])[0].tolist()
    )

    frames = np.zeros((3, 96, 96), np.uint8)
    frames[:, 4:92, 4:92] = 255  # the centre 88x88 is white, the 4-pixel border black
    evaluation = AVSRPreprocessor(train=False, tokenizer=None)
    out = evaluation.video(frames)
    assert out.shape == (3, 88, 88) and out.dtype == np.float32
    np.testing.assert_allclose(out, (1.0 - 0.421) / 0.165, rtol=1e-6)

    np.random.seed(0)
    crops = {tuple(crop(np.arange(96 * 96).reshape(1, 96, 96), 88, np.random)[0, 0, :1]) for _ in range(50)}
    assert len(crops) > 5 and all(0 <= c[0] // 96 <= 8 and c[0] % 96 <= 8 for c in crops)

    masked = time_mask(np.ones(32000, np.float32), 6400, 16000, np.random.RandomState(1), 0.0)
    assert 0 < (masked == 0).sum() <= 2 * 6399

    noise = root / "babble.wav"
    import soundfile as sf

    sf.write(noise, np.random.default_rng(3).standard_normal(16000) * 0.1, 16000, subtype="FLOAT")
    clean = (0.3 * np.sin(np.arange(8000) / 5)).astype(np.float32)
    training = AVSRPreprocessor(train=True, tokenizer=None, noise=str(noise), snrs=[10], mask_window=0)
    noisy = training.audio(clean)
    snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))
    assert snr == pytest.approx(10.0, abs=0.01)
    assert np.array_equal(
        AVSRPreprocessor(train=True, tokenizer=None, noise=str(noise), snrs=["clean"], mask_window=0).audio(clean),
        clean,
    )


def test_shape_file_keeps_utterances_present_everywhere(tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    (data / "utt2dur").write_text("a 1.00\nb 0.52\nc 2.0\n")
    (data / "wav.scp").write_text("a x.wav\nb y.wav\nc z.wav\n")
    (data / "roi.scp").write_text("a x.npz\nc z.npz\n")
    out = write_shape_file(tmp_path / "s" / "train.shape", [data / "wav.scp", data / "roi.scp"])
    assert out.read_text() == "a 25\nc 50\n"
    with pytest.raises(FileNotFoundError, match="text"):
        write_shape_file(tmp_path / "t.shape", [data / "wav.scp", data / "text"])


def test_sample_rate_other_than_16k_is_refused(tmp_path):
    import soundfile as sf

    from mome.espnet.readers import check_sample_rate

    sf.write(tmp_path / "a.wav", np.zeros(800, np.float32), 8000)
    (tmp_path / "wav.scp").write_text(f"a {tmp_path / 'a.wav'}\n")
    with pytest.raises(ValueError, match=r"a.wav is sampled at 8000 Hz; the encoders take 16000 Hz"):
        check_sample_rate(tmp_path / "wav.scp")


def _same_weights(a: Path, b: Path) -> bool:
    ours, theirs = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.parametrize("file", ["checkpoint.pth", "1epoch.pth"])
def test_killed_inside_a_checkpoint_save_resumes_to_the_same_weights(data, two_epochs, tmp_path, file):
    """SIGKILL in the middle of ESPnet's save of the first checkpoint.pth (nothing to resume from: the run
    starts over) or of 1epoch.pth (checkpoint.pth of epoch 1 is whole, its epoch file is not): the rerun
    ends with the uninterrupted run's weights and averaged model, and no temporary file is left."""
    root, train_dir, valid_dir = data
    config, reference = two_epochs
    out = tmp_path / "killed"
    argv = ["--config", str(config), "--output_dir", str(out), *data_options(train_dir, valid_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", KILL_IN_SAVE: file}
    run = subprocess.run(
        [sys.executable, "-m", "mome.bin.avsr_train", *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        start_new_session=True,
    )  # its own process group: killpg spares us
    assert run.returncode == -9, run.stderr[-3000:]
    (half,) = [p for p in out.iterdir() if p.name.startswith(f".{file}.tmp.")]
    assert not (out / file).exists() and half.stat().st_size > 0
    if file == "1epoch.pth":  # killed between the two saves of epoch 1
        assert torch.load(out / "checkpoint.pth", weights_only=False)["reporter"]["epoch"] == 1

    train(config, out, train_dir, valid_dir, "--resume", "true")
    assert _same_weights(out / "2epoch.pth", reference / "2epoch.pth")
    assert _same_weights(out / "valid.loss.ave.pth", reference / "valid.loss.ave.pth")
    assert os.readlink(out / "latest.pth") == "2epoch.pth" and (out / "1epoch.pth").is_file()
    assert not [p.name for p in out.iterdir() if ".tmp." in p.name]
