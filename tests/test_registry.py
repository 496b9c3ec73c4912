"""The registry (mome.espnet.choices): a new encoder, adapter or compressor is one class and one entry, and
the defaults a config does not give come from the classes' signatures (``--print_config`` shows them)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from espnet2.utils.get_default_kwargs import get_default_kwargs
from torch import nn

from mome.bin import avsr_train
from mome.espnet import choices
from mome.espnet.task import AVSRTask, model_conf_defaults
from mome.models.avsr import AVSRModel
from mome.models.compressor import Compressor, compressed_lengths
from mome.models.encoders.base import Encoder
from mome.models.lora import LoRASpec
from mome.models.mome import MoMESpec
from tests.helpers.espnet import data_options, make_data_dir, tiny_batch, write_config

ROOT = Path(__file__).resolve().parents[1]


# ---- three new parts, each one class ----------------------------------------------------------------
class FramesAudioEncoder(Encoder):
    """Waveform -> 50 frames of 320 samples per second -> Linear."""

    frame_rate = 50

    def __init__(self, dim: int = 24, frozen: bool = False):
        super().__init__()
        self.proj = nn.Linear(320, dim)
        self.output_size = dim
        self.set_frozen(frozen)

    def forward(self, x, lengths):
        frames = x.shape[1] // 320
        return self.proj(x[:, : frames * 320].reshape(len(x), frames, 320)), (lengths // 320).clamp(1, frames)


@dataclass
class ParityLoRASpec(LoRASpec):
    """Two LoRAs: one for the even scales, one for the odd ones."""

    def adapter_names(self, n_scales: int) -> list[str]:
        return ["even", "odd"][: max(1, min(2, n_scales))]

    def active_adapter_names(self, scale: int) -> list[str]:
        return ["even" if scale % 2 == 0 else "odd"]


class StridedCompressor(Compressor):
    """Keeps the first token of each window of ``rate``."""

    def __init__(self, audio_rates=(3, 6), video_rates=(2, 4), rate_pairs=None):
        super().__init__({"audio": audio_rates, "video": video_rates}, rate_pairs)

    def forward(self, x, lengths, modality, rate):
        self.check_rate(modality, rate)
        return x[:, ::rate], compressed_lengths(lengths, rate)


@pytest.fixture
def registered(monkeypatch):
    """One entry per new part, as a line in mome/espnet/choices.py would add it."""
    monkeypatch.setitem(choices.audio_encoder_choices.classes, "frames", FramesAudioEncoder)
    monkeypatch.setitem(choices.llm_adapter_choices.classes, "parity_lora", ParityLoRASpec)
    monkeypatch.setitem(choices.compressor_choices.classes, "strided", StridedCompressor)


NEW_PARTS = dict(
    audio_encoder="frames",
    audio_encoder_conf={"dim": 16},
    llm_adapter="parity_lora",
    llm_adapter_conf={"reduction": 8},
    compressor="strided",
    compressor_conf={"audio_rates": [3, 6]},
)


def test_new_encoder_adapter_and_compressor_build_forward_and_train(registered, tmp_path):
    root = tmp_path / "data"
    train_dir, valid_dir = make_data_dir(root / "train", 4), make_data_dir(root / "valid", 2, seed=1)
    config = write_config(tmp_path / "train.yaml", root / "tokenizer", train_dir / "text")
    config.write_text(yaml.safe_dump({**yaml.safe_load(config.read_text()), **NEW_PARTS}))  # the new parts' confs whole

    model = AVSRTask.build_model(AVSRTask.get_parser().parse_args(["--config", str(config)]))
    avsr = model.avsr
    assert isinstance(avsr.encoders["audio"], FramesAudioEncoder) and avsr.encoders["audio"].output_size == 16
    assert isinstance(avsr.compressor, StridedCompressor) and isinstance(avsr.adapter.spec, ParityLoRASpec)
    assert avsr.rate_pairs == [(3, 2), (3, 4), (6, 2), (6, 4)]  # the new compressor's rates: conf over defaults
    assert avsr.pair_groups() == [[0], [1], [2], [3]]  # LoRA variants: one pass per scale
    batch = tiny_batch()
    loss, stats, _ = model(**batch)
    loss.backward()
    assert avsr.encoders["audio"].proj.weight.grad is not None
    lora = dict(avsr.adapter.lora_parameters())
    assert any(".even." in n for n in lora) and any(".odd." in n for n in lora)
    assert all(p.grad is not None for n, p in lora.items() if "lora_A" in n)  # each LoRA met its scales
    assert {k for k in stats if k.startswith("loss_ra")} == {
        "loss_ra3_rv2",
        "loss_ra3_rv4",
        "loss_ra6_rv2",
        "loss_ra6_rv4",
    }

    out = tmp_path / "exp"
    avsr_train.main(["--config", str(config), "--output_dir", str(out), *data_options(train_dir, valid_dir)])
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert (saved["audio_encoder"], saved["llm_adapter"], saved["compressor"]) == ("frames", "parity_lora", "strided")
    state = torch.load(out / "1epoch.pth", weights_only=True)
    assert any(k.startswith("avsr.encoders.audio.proj") for k in state)


def test_the_registry_checks_the_base_classes():
    assert choices.audio_encoder_choices.base_type is Encoder and choices.video_encoder_choices.base_type is Encoder
    assert choices.compressor_choices.base_type is Compressor
    for cls in choices.llm_adapter_choices.classes.values():
        assert hasattr(cls, "build")


def test_model_conf_defaults_are_the_models_signature():
    signature = inspect.signature(AVSRModel).parameters
    defaults = model_conf_defaults()
    assert set(defaults) == {
        "projector_hidden",
        "projector_layer_norm",
        "balance_weight",
        "pairs_per_forward",
        "ctc_weight",
        "precomputed_features",
    }
    for key, value in defaults.items():
        if key != "precomputed_features":
            assert value == signature[key].default, key


def test_model_conf_unknown_key_names_the_allowed_ones(tmp_path):
    config = write_config(
        tmp_path / "train.yaml", tmp_path / "tok", tmp_path / "text", model_conf={"balance_wieght": 1}
    )
    args = AVSRTask.get_parser().parse_args(["--config", str(config)])
    with pytest.raises(
        choices.ConfigError, match=r"model_conf: unknown key\(s\) \['balance_wieght'\]; allowed: .*'balance_weight'"
    ):
        AVSRTask.build_model(args)


def test_print_config_shows_the_classes_defaults():
    argv = [
        "--print_config",
        "--audio_encoder",
        "small",
        "--video_encoder",
        "avhubert",
        "--llm",
        "tiny",
        "--llm_adapter",
        "mome",
        "--model_conf",
        "balance_weight=0.5",
    ]
    run = subprocess.run([sys.executable, "-m", "mome.bin.avsr_train", *argv], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    config = yaml.safe_load(run.stdout)
    from mome.models.compressor import MatryoshkaCompressor
    from mome.models.encoders.avhubert import AVHubertVideoEncoder
    from mome.models.encoders.small import SmallAudioEncoder

    assert config["audio_encoder_conf"] == get_default_kwargs(SmallAudioEncoder)
    assert config["audio_encoder_conf"]["dim"] == 144 and config["audio_encoder_conf"]["path"] is None
    assert config["video_encoder_conf"] == get_default_kwargs(AVHubertVideoEncoder)
    assert config["llm_adapter_conf"] == get_default_kwargs(MoMESpec)
    assert (config["llm_adapter_conf"]["experts"], config["llm_adapter_conf"]["top_k"]) == (23, 4)
    assert config["compressor"] == "matryoshka" and config["compressor_conf"] == get_default_kwargs(
        MatryoshkaCompressor
    )
    assert config["compressor_conf"]["audio_rates"] == [4, 16] and config["compressor_conf"]["video_rates"] == [2, 5]
    assert config["llm_conf"]["hidden_size"] == 64  # TinyLLM's
    # model_conf: AVSRModel's defaults, with what the command line gives on top
    assert config["model_conf"] == {**model_conf_defaults(), "balance_weight": 0.5}
    assert config["model_conf"]["projector_layer_norm"] is True and config["model_conf"]["pairs_per_forward"] == "all"


@pytest.mark.parametrize("corpus", ["lrs3", "lrs2"])
def test_the_paper_config_writes_out_the_classes_defaults(corpus):
    """The paper configs spell out every setting; the classes' defaults must be the same settings (else a run
    that leaves one out, a test or a new config, silently trains something else)."""
    config = yaml.safe_load((ROOT / "egs" / corpus / "avsr" / "conf" / "train_mome.yaml").read_text())
    from mome.espnet.preprocess import AVSRPreprocessor

    classes = {
        "llm_adapter_conf": choices.llm_adapter_choices.get_class(config["llm_adapter"]),
        "compressor_conf": choices.compressor_choices.get_class(config["compressor"]),
        "preprocessor_conf": AVSRPreprocessor,
    }
    for key, cls in classes.items():
        defaults = get_default_kwargs(cls)
        for name, value in config[key].items():
            assert defaults[name] == value, (key, name)
    for name, value in config["model_conf"].items():
        assert model_conf_defaults()[name] == value, ("model_conf", name)
    lora = yaml.safe_load((ROOT / "egs" / corpus / "avsr" / "conf" / "train_mtsk_ms.yaml").read_text())[
        "llm_adapter_conf"
    ]
    assert {k: get_default_kwargs(LoRASpec)[k] for k in lora} == lora
