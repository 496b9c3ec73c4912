"""Every benchmark at a toy size (``--tiny``): the JSON it prints and the equality checks it makes. Never a time."""

from __future__ import annotations

import json

import pytest
import torch

from mome.bench import BENCHMARKS
from mome.bench.__main__ import main


def run_bench(name: str, capsys, *extra: str) -> dict:
    assert main([name, "--tiny", *extra]) == 0
    report = json.loads(capsys.readouterr().out)  # stdout holds the JSON alone
    assert report["benchmark"] == name and report["command"].startswith(f"python -m mome.bench {name}")
    assert {"cpu", "logical_cores", "torch_threads", "torch", "device"} <= set(report["machine"])
    assert report["clock"] == "process CPU time"  # one thread on CPU
    return report


def targets_are_well_formed(report: dict) -> None:
    for t in report["targets"].values():
        assert set(t) == {"value", "limit", "met", "what"} and t["met"] == (t["value"] <= t["limit"])


def test_every_benchmark_has_a_test():
    tested = {
        name[len("test_") : -len("_bench")]
        for name in globals()
        if name.startswith("test_") and name.endswith("_bench")
    }
    assert tested == set(BENCHMARKS)


def test_adapters_bench(capsys):
    r = run_bench("adapters", capsys)
    assert r["fresh_adapters_equal_frozen"] and r["fresh_adapters_max_logit_diff"] == {"lora": 0.0, "mome": 0.0}
    assert set(r["train_step_s"]) == set(r["prefill_s"]) == {"frozen", "lora", "mome"}
    assert {"train_step_mome_over_lora", "prefill_mome_over_lora", "prefill_mome_over_frozen"} <= set(r["ratios"])
    assert r["adapter_parameters"]["mome"] > 0 and r["lora"]["rank"] >= 1
    assert set(r["targets"]) == {"train_step", "prefill"}
    targets_are_well_formed(r)


def test_dispatch_bench(capsys):
    r = run_bench("dispatch", capsys)
    assert r["all_outputs_equal"]
    assert {row["form_chosen"] for row in r["rows"]} == {"dense", "sorted"}  # the tiny sizes take both forms
    for row in r["rows"]:
        assert row["outputs_equal"] and row["choices_equal"] and row["gradients_equal"] and row["max_abs_diff"] <= 1e-5
        assert set(row["forward_ms"]) == set(row["forward_backward_ms"]) == {"rule", "dense", "sorted", "loop"}
    targets_are_well_formed(r)


def test_rates_bench(capsys):
    r = run_bench("rates", capsys)
    assert r["all_decoded_new_tokens"]
    assert [row["pair"] for row in r["rows"]] == [[1, 1], [4, 2], [4, 5], [16, 2], [16, 5]]
    tokens = [row["prompt_tokens"] for row in r["rows"]]
    assert tokens == sorted(tokens, reverse=True) and r["rows"][0]["token_ratio"] == 1.0
    assert set(r["tokens_per_s"]) == {"batch_1", "batch_8"}
    assert len(r["targets"]) == 8  # prefill and decoding at each compressed pair
    targets_are_well_formed(r)


def test_train_step_bench(capsys):
    r = run_bench("train_step", capsys)
    for kind in ("features", "encoders"):
        row = r["inputs"][kind]
        assert (
            row["losses_equal"] and row["max_loss_diff"] <= 1e-5
        )  # joint (any pairs_per_forward) = single-pair models
        assert set(row["joint_over_separate"]) == {"ppf4", "ppf2", "ppf1"}
        positions = row["llm_positions"]
        assert positions["ppf4"] >= positions["ppf2"] >= positions["ppf1"]  # stacking pads to the longest prompt
    assert 0 < r["inputs"]["encoders"]["encoder_share_of_separate_steps"]
    targets_are_well_formed(r)


def test_data_bench(capsys):
    r = run_bench("data", capsys)
    assert r["all_roi_frames_written"]
    assert {(row["clip_seconds"], row["kind"]) for row in r["rows"]} == {
        (s, k) for s in (0.4, 2.0) for k in ("audio", "roi", "stage2", "frames_in_memory")
    }
    assert all(row["frames"] == round(25 * row["clip_seconds"]) and row["peak_memory_mb"] >= 0 for row in r["rows"])


def test_decode_bench(capsys):
    r = run_bench("decode", capsys)
    assert r["all_utterances_decoded"]
    assert {(row["beam"], row["batch"]) for row in r["rows"]} == {(1, 1), (1, 8), (5, 1), (5, 8)}
    assert set(r["batching_speedup"]) == set(r["hypotheses_same_across_batch_sizes"]) == {"beam1", "beam5"}


def test_flops_bench(capsys):
    r = run_bench("flops", capsys)
    assert {(row["corpus"], row["method"]) for row in r["rows"]} == {
        (c, m)
        for c in ("LRS3", "LRS2")
        for m in ("mome_4_pairs_ppf_all", "mome_4_pairs_ppf_1", "llama_avsr_4_single_pair_models")
    }
    for row in r["rows"]:
        assert sum(row["share"].values()) == pytest.approx(1.0, abs=1e-3) and row["epoch_pflops"] >= 0
    by = {(row["corpus"], row["method"]): row for row in r["rows"]}
    # stacking all four pairs pads every row to the longest prompt
    assert (
        by["LRS3", "mome_4_pairs_ppf_all"]["llm_positions_per_utterance"]
        > by["LRS3", "mome_4_pairs_ppf_1"]["llm_positions_per_utterance"]
    )


def test_training_flops_formula_equals_torchs_count_of_a_real_step():
    """The LLM part of the on-paper count against FlopCounterMode over a real frozen-LLM training step (one
    rate pair, no adapter work counted; attention on the math kernel, which the counter sees)."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from mome.bench.common import frozen_llm
    from mome.models.accounting import prompt_tokens, training_flops_per_utterance
    from mome.models.llm import IGNORE_INDEX, PromptBatch
    from mome.models.mome import MoMESpec
    from mome.models.tiny_llm import tiny_llm_config

    config = tiny_llm_config(400, hidden_size=64, layers=2, heads=4, kv_heads=2, intermediate_size=128)
    llm = frozen_llm(config)
    seconds, text, labelled = 1.0, 9, 5
    length = prompt_tokens(seconds, 4, 2, 50.0, 25.0, text)
    paper = training_flops_per_utterance(
        config, MoMESpec(), [(4, 2)], seconds, text, labelled - 1, 0.0, {"audio": 8, "video": 8}
    )
    assert paper.llm_positions == length
    x = torch.randn(1, length, 64, requires_grad=True)
    labels = torch.full((1, length), IGNORE_INDEX)
    labels[:, -labelled:] = 3
    counter = FlopCounterMode(display=False)
    with counter, sdpa_kernel(SDPBackend.MATH):
        sums, counts = llm.loss_per_row(PromptBatch(x, torch.ones(1, length, dtype=torch.long), labels))
        (sums.sum() / counts.sum()).backward()
    assert counter.get_total_flops() == pytest.approx(paper.llm, rel=0.02)


def test_encoder_flops_formulas_equal_torchs_count():
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from mome.models.accounting import avhubert_video_flops, whisper_encoder_flops
    from mome.models.encoders.avhubert import AVHubertVideoEncoder
    from mome.models.encoders.whisper import WhisperAudioEncoder

    whisper = dict(d_model=256, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=1024, num_mel_bins=80,
                   max_source_positions=1500,
                   decoder_layers=1, decoder_attention_heads=4, decoder_ffn_dim=64)  # fmt: skip
    seconds = 2.0
    for encoder, inputs, paper in (
        (
            WhisperAudioEncoder(whisper),
            (torch.zeros(1, 32000), torch.tensor([32000])),
            whisper_encoder_flops(whisper, seconds),
        ),
        (
            AVHubertVideoEncoder("tiny"),
            (torch.zeros(1, 50, 88, 88), torch.tensor([50])),
            avhubert_video_flops("tiny", seconds),
        ),
    ):
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            encoder.eval()(*inputs)
        # the counter sees matrix products and convolutions (Whisper's log-mel filter bank too); the formula
        # counts norms and biases as 2 x their parameters
        assert counter.get_total_flops() == pytest.approx(paper, rel=0.1)
