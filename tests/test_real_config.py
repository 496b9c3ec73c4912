"""The mini recipe's real-weights configurations (egs/mini_lrs3/avsr/conf/train_mome_real.yaml, its audio-only
form train_asr_mome_real.yaml and its projectors' warm-up train_ctc_real.yaml) build on the real parts of
tools/get_pretrained.sh: Whisper base and SmolLM2-135M frozen and left out of the checkpoint, MoME on all 30 layers
of SmolLM2, the configured rate pairs, and a finite loss at every pair on one batch; the warm-up trains the
projectors by CTC alone, and the AVSR model starts from its weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from mome.espnet.model import pair_name
from mome.espnet.task import AVSRTask
from tests.helpers.espnet import tiny_batch
from tests.helpers.real_parts import real_part

pytestmark = pytest.mark.real

CONF = Path(__file__).resolve().parents[1] / "egs/mini_lrs3/avsr/conf"


@pytest.mark.parametrize(
    "name, pairs",
    [
        ("train_mome_real.yaml", [(4, 2), (4, 5), (16, 2), (16, 5)]),
        ("train_asr_mome_real.yaml", [(4, None), (16, None)]),
        ("train_ctc_real.yaml", [(4, None), (16, None)]),
    ],
)
def test_real_config_builds_freezes_the_real_parts_and_trains(name, pairs, tmp_path, monkeypatch):
    monkeypatch.setenv("MOME_PRETRAINED", str(real_part("whisper-base").parent))
    real_part("SmolLM2-135M-Instruct")
    conf = yaml.safe_load((CONF / name).read_text())
    if "video_encoder" in conf:
        conf["video_encoder_conf"] = {}  # stage 3's encoder is the recipe's; a fresh one of the same class here
    conf["model_conf"]["precomputed_features"] = False  # encoders in the step: raw audio and video in the batch
    config = tmp_path / name
    config.write_text(yaml.safe_dump(conf))
    args = AVSRTask.get_parser().parse_args(["--config", str(config)])
    torch.manual_seed(0)
    model = AVSRTask.build_model(args)

    assert model.avsr.rate_pairs == pairs
    hf = model.avsr.llm.hf
    assert (hf.config.hidden_size, hf.config.num_hidden_layers, hf.config.vocab_size) == (576, 30, 49152)
    assert model.avsr.adapter is None if name == "train_ctc_real.yaml" else len(model.avsr.adapter.layers) == 30
    state = model.state_dict()
    assert not any(k.startswith("avsr.encoders.audio") for k in state)  # Whisper is reloaded from its path
    assert not any(k.startswith("avsr.llm.model.") and "experts" not in k for k in state)
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert any(n.startswith("avsr.encoders.audio") for n in frozen) and any(".embed_tokens." in n for n in frozen)

    batch = tiny_batch()
    if "video_encoder" not in conf:
        del batch["video"], batch["video_lengths"]
    loss, stats, _ = model(**batch)
    assert torch.isfinite(loss)
    if name == "train_ctc_real.yaml":  # CTC alone: no LLM pass, no per-pair cross-entropy
        assert model.avsr.ctc_weight == 1.0 and "loss_ce" not in stats and torch.equal(loss, stats["loss_ctc"])
        return
    for a, v in pairs:
        assert torch.isfinite(stats[f"loss_{pair_name((a, v))}"])


@pytest.mark.parametrize("name", ["train_mome_real.yaml", "train_asr_mome_real.yaml"])
def test_real_configs_start_from_the_warm_up_s_projectors(name):
    warm_up = yaml.safe_load((CONF / "train_ctc_real.yaml").read_text())
    avsr = yaml.safe_load((CONF / name).read_text())
    assert avsr["init_param"] == ["exp/ctc_real/valid.loss.best.pth"] and avsr["ignore_init_mismatch"]
    assert warm_up["model_conf"]["ctc_weight"] == 1.0 and 0 < avsr["model_conf"]["ctc_weight"] < 1
    # the same audio encoder and preprocessing, so both read the same dumped features (one dump)
    for key in ("audio_encoder", "audio_encoder_conf", "preprocessor_conf", "llm_conf"):
        assert warm_up[key] == avsr[key], key
    assert warm_up["compressor_conf"]["audio_rates"] == avsr["compressor_conf"]["audio_rates"]
