"""Parameter and FLOP accounting (meta device) and the mome-params / mome-flops CLIs, checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mome.bin import flops, params
from mome.models.accounting import adapter_params, llm_forward_params, meta_llm, projector_params, prompt_tokens
from mome.models.lora import LoRASpec, MTSKPerScaleSpec, MTSKSharedAndPerScaleSpec, MTSKSharedSpec
from mome.models.mome import MoMESpec
from mome.models.tiny_llm import tiny_llm_config

CONF = Path(__file__).resolve().parents[1] / "egs/TEMPLATE/avsr/conf/llm"
# hidden 32, 2 layers, 4 heads of 8, 2 kv heads, MLP 64, vocab 100, tied embeddings
SMALL = dict(vocab_size=100, hidden_size=32, layers=2, heads=4, kv_heads=2, intermediate_size=64)


@pytest.fixture
def small_config(tmp_path):
    path = tmp_path / "small.json"
    path.write_text(tiny_llm_config(**SMALL).to_json_string())
    return path


def test_mome_counts_by_hand():
    # expert 32->3->32 with biases: 32*3+3 + 3*32+32 = 227; router 32*4 = 128
    total, active = adapter_params(
        tiny_llm_config(**SMALL), MoMESpec(experts=4, top_k=2, shared_experts=1, bottleneck=3)
    )
    assert total == 2 * (5 * 227 + 128)
    assert active == 2 * (3 * 227 + 128)  # 2 routed + 1 shared + the router, per layer
    per_scale, _ = adapter_params(
        tiny_llm_config(**SMALL), MoMESpec(experts=4, top_k=2, bottleneck=3, router_per_scale=True), n_scales=3
    )
    assert per_scale == total + 2 * 2 * 128


def test_lora_counts_by_hand():
    # rank 32/8 = 4; q: A 4x32 + B 32x4 = 256; v: A 4x32 + B 16x4 = 192; 448 per layer
    config = tiny_llm_config(**SMALL)
    one = 2 * 448
    assert adapter_params(config, LoRASpec(reduction=8)) == (one, one)
    assert adapter_params(config, MTSKSharedSpec(reduction=8), n_scales=3) == (one, one)
    assert adapter_params(config, MTSKPerScaleSpec(reduction=8), n_scales=3) == (3 * one, one)
    assert adapter_params(config, MTSKSharedAndPerScaleSpec(reduction=8), n_scales=3) == (4 * one, 2 * one)


def test_projector_and_llm_forward_params_by_hand():
    # 16 -> 32 -> 32 + LayerNorm: 16*32+32 + 32*32+32 + 64 = 1664 per rate
    assert projector_params(32, {"audio": 16, "video": 16}, {"audio": [4, 16], "video": [2]}) == 3 * 1664
    # per layer: q 1024, k 512, v 512, o 1024, MLP 3*32*64, 2 norms 64 = 9280; final norm 32; head 100*32
    expected = 2 * 9280 + 32 + 3200
    assert llm_forward_params(meta_llm(tiny_llm_config(**SMALL))) == expected
    assert llm_forward_params(meta_llm(tiny_llm_config(**SMALL, tie_word_embeddings=False))) == expected
    assert prompt_tokens(10, 4, 2, 50, 25, 0) == 1 + 2 + 125 + 2 + 125
    assert prompt_tokens(10, 16, None, 50, 25, 7) == 1 + 2 + 32 + 7


def test_params_cli(small_config, capsys):
    argv = ["--llm_config", str(small_config), "--adapter", "mome",
            "--experts", "4", "--top_k", "2", "--bottleneck", "3",
            "--audio_dim", "16", "--video_dim", "0", "--audio_rates", "4", "--json"]  # fmt: skip
    assert params.main(argv) == 0
    assert json.loads(capsys.readouterr().out) == {
        "total_adapter_params": 2526, "active_adapter_params": 1618, "projector_params": 1664
    }  # fmt: skip
    assert (
        params.main(
            ["--llm_config", str(small_config), "--adapter", "mtsk-ss", "--lora_reduction", "8", "--scales", "3"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "total adapter params" in text and "2,688" in text and "rank 4" in text
    assert params.main(["--llm_config", str(small_config), "--adapter", "mome", "--top_k", "30"]) == 1
    assert "top-k 30 is not in 1..23" in capsys.readouterr().err


def test_flops_cli(small_config, capsys):
    argv = [
        "--llm_config",
        str(small_config),
        "--seconds",
        "10",
        "--rates",
        "1,1",
        "4,2",
        "16,0",
        "--text_tokens",
        "5",
        "--json",
    ]
    assert flops.main(argv) == 0
    rows = json.loads(capsys.readouterr().out)["rates"]
    per_token = 2 * 9280 + 32 + 3200
    assert [(r["audio_rate"], r["video_rate"], r["tokens"]) for r in rows] == [(1, 1, 760), (4, 2, 260), (16, None, 40)]
    assert all(r["tflops"] == pytest.approx(2 * per_token * r["tokens"] / 1e12) for r in rows)
    assert flops.main(argv[:-1]) == 0
    assert "audio_rate" in capsys.readouterr().out


def test_published_llama_configs():
    one = meta_llm(params.load_llm_config(CONF / "llama-3.2-1b.json"))
    assert llm_forward_params(one) == 1_235_814_400  # Llama 3.2-1B's published size (tied head counted once)
    config = params.load_llm_config(CONF / "llama-3.2-3b.json")
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads, config.tie_word_embeddings) == (
        3072,
        28,
        24,
        True,
    )
    # MoME-23/4 (1 shared, w 12, MHSA) on 3.2-3B: 12.7M active (paper); Llama-AVSR LoRA r=96: 27.5M
    _, active = adapter_params(config, MoMESpec(experts=23, top_k=4, shared_experts=1, bottleneck=12))
    assert active == 28 * (5 * (2 * 3072 * 12 + 12 + 3072) + 3072 * 23) == 12_732_048
    assert adapter_params(config, LoRASpec(reduction=32, alpha=4)) == (27_525_120, 27_525_120)
