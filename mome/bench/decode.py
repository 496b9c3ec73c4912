"""Stage 5 throughput: utterances per CPU-second of ``decode_data_dir`` at beam 1 and 5, batch 1 and 8.

What stage 4 runs, end to end: ESPnet's dataset reads each utterance's wav and 96x96 mouth ROI (FFV1) from
a data directory, the task's evaluation preprocessing crops and normalises them, the batch is encoded once
and decoded at the rate pair (greedy or beam search with the KV cache). The model is built by the task from
a config, as stage 4 builds it from a trained model's ``config.yaml``: the benchmark LLM (random weights) +
MoME-23/4 and the mini recipe's small encoders. Random weights rarely end a hypothesis, so every decoding
runs about ``--max-new-tokens`` steps (an LRS3 test transcript is 7.5 words, about 10 Llama tokens).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from mome.bench.common import MOME_SETTING, SENTENCES, Clock, interleaved, llm_config, tokenizer
from mome.data.roi import write_roi

SMALL_ENCODER = dict(dim=96, layers=2, heads=4, ffn_dim=384)  # the mini recipe's


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--utterances", type=int, default=8, help="utterances in the data directory")
    p.add_argument("--seconds", type=float, default=3.0, help="utterance length")
    p.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--pair", default="4,2", help="rate pair decoded")


def make_data_dir(path: Path, n: int, seconds: float, seed: int) -> Path:
    """``n`` utterances (16 kHz wav, 96x96 FFV1 ROI, text, utt2dur) of noise-like media."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    tables = {name: [] for name in ("wav.scp", "roi.scp", "text", "utt2dur")}
    for i in range(n):
        utt = f"spk{i % 2}_{i:04d}"
        wav, roi = path / f"{utt}.wav", path / f"{utt}.mkv"
        sf.write(wav, (0.1 * rng.standard_normal(round(seconds * 16000))).astype(np.float32), 16000, subtype="PCM_16")
        write_roi(roi, rng.integers(0, 256, (round(seconds * 25), 96, 96), dtype=np.uint8))
        tables["wav.scp"].append(f"{utt} {wav}")
        tables["roi.scp"].append(f"{utt} {roi}")
        tables["text"].append(f"{utt} {SENTENCES[i % len(SENTENCES)]}")
        tables["utt2dur"].append(f"{utt} {seconds:.2f}")
    for name, lines in tables.items():
        (path / name).write_text("\n".join(sorted(lines)) + "\n")
    return path


def task_args(root: Path, config, tiny: bool) -> argparse.Namespace:
    """What a trained model's config.yaml holds, for the benchmark model."""
    (root / "llm.json").write_text(config.to_json_string())
    tokenizer().save_pretrained(root / "tokenizer")
    encoder = dict(SMALL_ENCODER, dim=16, layers=1, ffn_dim=32) if tiny else SMALL_ENCODER
    return argparse.Namespace(
        audio_encoder="small", audio_encoder_conf=dict(encoder),
        video_encoder="small", video_encoder_conf=dict(encoder, channels=[4, 8, 8, 16] if tiny else [8, 16, 32, 64]),
        llm="hf", llm_conf={"config": str(root / "llm.json"), "tokenizer": str(root / "tokenizer")},
        llm_adapter="mome", llm_adapter_conf=dict(MOME_SETTING),
        compressor="matryoshka", compressor_conf={"audio_rates": [4, 16], "video_rates": [2, 5]},
        preprocessor="avsr", preprocessor_conf={"crop_size": 88},
        model_conf={},
    )  # fmt: skip


def run(a: argparse.Namespace) -> dict:
    from mome.espnet.inference import decode_data_dir
    from mome.espnet.task import AVSRTask
    from mome.inference import AVSR2Text

    config = llm_config(a.llm_config, a.tiny)
    n, seconds, max_new = (4, 0.6, 3) if a.tiny else (a.utterances, a.seconds, a.max_new_tokens)
    pair = tuple(int(r) or None for r in a.pair.split(","))
    with tempfile.TemporaryDirectory(prefix="mome-bench-decode.") as tmp:
        root = Path(tmp)
        data_dir = make_data_dir(root / "data", n, seconds, a.seed)
        args = task_args(root, config, a.tiny)
        torch.manual_seed(a.seed)
        model = AVSRTask.build_model(args).to(a.device).eval()
        hyps = {}

        def case(beam: int, batch: int):
            def run_():
                hyps[beam, batch] = decode_data_dir(AVSR2Text(model, args, beam, max_new), data_dir, [pair], batch)[
                    pair
                ]

            return run_

        cases = {f"beam{b}_batch{s}": case(b, s) for b in a.beams for s in a.batches}
        times = interleaved(cases, Clock(a.device), a.repeats, a.warmup)
    rows = []
    for beam in a.beams:
        for batch in a.batches:
            t = times[f"beam{beam}_batch{batch}"]
            rows.append({"beam": beam, "batch": batch, "seconds": round(t, 4), "utterances_per_s": round(n / t, 3),
                         "realtime_factor": round(t / (n * seconds), 4)})  # fmt: skip
    batching = {}
    for beam in a.beams:
        by = {r["batch"]: r["utterances_per_s"] for r in rows if r["beam"] == beam}
        batching[f"beam{beam}"] = {
            f"batch{b}_over_batch{min(by)}": round(v / by[min(by)], 3) for b, v in by.items() if b != min(by)
        }
    same = {}
    for beam in a.beams:
        first = hyps[beam, a.batches[0]]
        same[f"beam{beam}"] = round(np.mean([all(hyps[beam, b][u] == first[u] for b in a.batches) for u in first]), 3)
    return {
        "utterances": n,
        "utterance_seconds": seconds,
        "pair": [r or 0 for r in pair],
        "max_new_tokens": max_new,
        "llm_parameters": sum(p.numel() for p in model.avsr.llm.hf.parameters()),
        "encoders": "small (the mini recipe's): " + str(args.audio_encoder_conf),
        "adapter": MOME_SETTING,
        "rows": rows,
        "batching_speedup": batching,
        "hypotheses_same_across_batch_sizes": same,
        "all_utterances_decoded": all(len(h) == n for h in hyps.values()),
    }
