"""Compute that follows the compression: prefill and greedy decoding of one 10 s utterance at each rate pair.

One AVSR model (the LLM + MoME-23/4 + one projector per rate) serves every pair. The encoders' outputs are
given (random features at 50 and 25 frames per second, the Whisper and AV-HuBERT rates, width 1024 as in
Whisper medium / AV-HuBERT large): they cost the same at every pair, so only what follows them is timed.
Prefill: projection, prompt and the LLM's first forward pass (KV cache, last logits). Decoding: the whole
greedy ``generate`` with exactly ``--new-tokens`` new tokens (end of text barred before that, so that every
pair decodes the same number). Each pair's time is divided by (1, 1)'s and set against the ratio of the LLM
input tokens (prompt; for decoding prompt + new tokens). Decoding tokens/s at batch 1 and 8: new tokens per
second of the decoding steps (decoding time minus prefill time), at ``--batch-pair``.
"""

from __future__ import annotations

import argparse

import torch

from mome.bench.common import MOME_SETTING, Clock, frozen_llm, interleaved, llm_config, target
from mome.models.avsr import AVSRModel
from mome.models.compressor import MatryoshkaCompressor
from mome.models.encoders.small import SmallAudioEncoder, SmallVideoEncoder
from mome.models.mome import MoMESpec

PAIRS = [(1, 1), (4, 2), (4, 5), (16, 2), (16, 5)]
AUDIO_HZ, VIDEO_HZ = 50, 25


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seconds", type=float, default=10.0, help="utterance length")
    p.add_argument("--new-tokens", type=int, default=32, help="tokens generated per decoding (the recipe's maximum)")
    p.add_argument("--feature-dim", type=int, default=1024, help="encoder output width")
    p.add_argument("--batch-pair", default="4,2", help="rate pair of the batch 1 / batch 8 tokens/s figures")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8], help="batch sizes of the tokens/s figures")


def stand_in_model(config, feature_dim: int, device: str, seed: int, rates=PAIRS) -> AVSRModel:
    """The AVSR model at ``rates`` with encoders that are only placeholders (their outputs are given)."""
    llm = frozen_llm(config, device, seed)
    audio = SmallAudioEncoder(dim=feature_dim, layers=1, heads=1, ffn_dim=8)
    video = SmallVideoEncoder(dim=feature_dim, layers=1, heads=1, ffn_dim=8, channels=(4, 4))
    model = AVSRModel(
        llm, audio, video,
        compressor=MatryoshkaCompressor(sorted({a for a, _ in rates}), sorted({v for _, v in rates}), rate_pairs=rates),
        adapter=MoMESpec(**MOME_SETTING),
    )  # fmt: skip
    return model.to(device).eval()


def features(seconds: float, dim: int, batch: int, device: str, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for modality, hz in (("audio", AUDIO_HZ), ("video", VIDEO_HZ)):
        frames = round(seconds * hz)
        x = torch.randn(1, frames, dim, generator=gen).expand(batch, -1, -1).to(device)
        out[modality] = (x, torch.full((batch,), frames, device=device))
    return out


def run(a: argparse.Namespace) -> dict:
    config = llm_config(a.llm_config, a.tiny)
    seconds, new_tokens, dim = (1.0, 3, 16) if a.tiny else (a.seconds, a.new_tokens, a.feature_dim)
    model = stand_in_model(config, dim, a.device, a.seed)
    batch_pair = tuple(int(r) for r in a.batch_pair.split(","))
    if batch_pair not in PAIRS:
        raise SystemExit(f"--batch-pair {a.batch_pair}: not one of {PAIRS}")
    feats = {b: features(seconds, dim, b, a.device, a.seed) for b in sorted({1, *a.batches})}

    def prompt(pair, batch):
        model.adapter.set_scale(model.scale_index(pair))
        return model.prompt(feats[batch], pair, None, "left")

    def prefill(pair, batch=1):
        def step():
            with torch.no_grad():
                p = prompt(pair, batch)
                model.llm.hf(
                    inputs_embeds=p.inputs_embeds, attention_mask=p.attention_mask, use_cache=True, logits_to_keep=1
                )

        return step

    def decode(pair, batch=1):
        def step():
            with torch.no_grad():
                return model.llm.generate_ids(prompt(pair, batch), 1, new_tokens, min_new_tokens=new_tokens)

        return step

    generated = {pair: [len(row) for row in decode(pair)()] for pair in PAIRS}
    prompt_tokens = {pair: prompt(pair, 1).inputs_embeds.shape[1] for pair in PAIRS}
    clock = Clock(a.device)
    pre = interleaved({str(p): prefill(p) for p in PAIRS}, clock, a.repeats, a.warmup)
    dec = interleaved({str(p): decode(p) for p in PAIRS}, clock, a.repeats, a.warmup)
    batch_cases = {}
    for b in a.batches:
        batch_cases[f"prefill_b{b}"], batch_cases[f"decode_b{b}"] = prefill(batch_pair, b), decode(batch_pair, b)
    by_batch = interleaved(batch_cases, clock, a.repeats, a.warmup)

    rows, targets = [], {}
    base = str(PAIRS[0])
    for pair in PAIRS:
        key = str(pair)
        token_ratio = prompt_tokens[pair] / prompt_tokens[PAIRS[0]]
        decode_token_ratio = (prompt_tokens[pair] + new_tokens) / (prompt_tokens[PAIRS[0]] + new_tokens)
        row = {
            "pair": list(pair),
            "prompt_tokens": prompt_tokens[pair],
            "new_tokens": generated[pair][0],
            "prefill_s": round(pre[key], 4),
            "decode_s": round(dec[key], 4),
            "token_ratio": round(token_ratio, 4),
            "prefill_time_ratio": round(pre[key] / pre[base], 4),
            "decode_token_ratio": round(decode_token_ratio, 4),
            "decode_time_ratio": round(dec[key] / dec[base], 4),
            "decode_step_ms": round((dec[key] - pre[key]) / max(1, new_tokens - 1) * 1e3, 3),
        }
        rows.append(row)
        if pair != PAIRS[0]:
            name = f"{pair[0]},{pair[1]}"
            targets[f"prefill_{name}"] = target(
                row["prefill_time_ratio"] / token_ratio, 1.2, "prefill time ratio / token ratio"
            )
            targets[f"decode_{name}"] = target(row["decode_time_ratio"] / decode_token_ratio, 1.2,
                                              "decoding time ratio / (prompt + new tokens) ratio")  # fmt: skip
    tokens_per_s = {}
    for b in a.batches:
        steps = by_batch[f"decode_b{b}"] - by_batch[f"prefill_b{b}"]
        tokens_per_s[f"batch_{b}"] = {
            "decoding_steps": round(b * new_tokens / steps, 2) if steps > 0 else None,
            "end_to_end": round(b * new_tokens / by_batch[f"decode_b{b}"], 2),
            "prefill_s": round(by_batch[f"prefill_b{b}"], 4),
            "decode_s": round(by_batch[f"decode_b{b}"], 4),
        }
    return {
        "utterance_seconds": seconds,
        "llm_parameters": sum(p.numel() for p in model.llm.hf.parameters()),
        "adapter": MOME_SETTING,
        "rows": rows,
        "all_decoded_new_tokens": all(n == new_tokens for lengths in generated.values() for n in lengths),
        "tokens_per_s_at": list(batch_pair),
        "tokens_per_s": tokens_per_s,
        "targets": targets,
    }
