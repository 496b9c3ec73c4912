"""One MoME training step over all four rate pairs against four separate single-pair steps.

A step is forward (frozen encoders, compressor, projectors, frozen LLM + MoME, cross-entropy and balance
loss), backward and an AdamW update. The joint model trains (4,2) (4,5) (16,2) (16,5) at once, with its
``pairs_per_forward`` at 4 ("all": one LLM pass of 4B rows, each padded to the longest pair's prompt), 2 and
1 (a pass per pair, no padding); the separate models are four single-pair models (Llama-AVSR style, here with
MoME), one step each on the same batch. They start from the joint model's weights, so the benchmark first
checks that every pair's loss is the same in the joint step (at every ``pairs_per_forward``) and in its
single-pair model. Two inputs:

- ``features``: precomputed encoder outputs (the recipe's ``precomputed_features: true``): the LLM alone;
- ``encoders``: raw 16 kHz audio and 88x88 mouth frames through stand-in frozen encoders of the papers'
  architectures at a size whose share of the compute is about the papers' (Whisper base encoder; an
  AV-HuBERT of half width: ResNet-18 front end with 32 channels, 6 layers of 512): the joint step encodes
  once for its four pairs, the separate steps once each.
"""

from __future__ import annotations

import argparse
import copy

import torch

from mome.bench.common import MOME_SETTING, Clock, frozen_llm, interleaved, llm_config, target
from mome.models.avsr import AVSRModel
from mome.models.compressor import MatryoshkaCompressor
from mome.models.encoders.avhubert import AVHubertVideoEncoder
from mome.models.encoders.whisper import WhisperAudioEncoder
from mome.models.mome import MoMESpec

PAIRS = [(4, 2), (4, 5), (16, 2), (16, 5)]
WHISPER_BASE = dict(d_model=512, encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048, num_mel_bins=80,
                    max_source_positions=1500,
                    decoder_layers=1, decoder_attention_heads=8, decoder_ffn_dim=2048)  # fmt: skip
AVHUBERT_HALF = dict(encoder_embed_dim=512, encoder_layers=6, encoder_ffn_embed_dim=2048, encoder_attention_heads=8,
                     resnet_width=32)  # fmt: skip
TINY_WHISPER = dict(WHISPER_BASE, d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32)
TINY_AVHUBERT = dict(encoder_embed_dim=16, encoder_layers=1, encoder_ffn_embed_dim=32, encoder_attention_heads=2,
                     conv_pos=8, conv_pos_groups=4, resnet_width=4)  # fmt: skip


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=2, help="utterances per step")
    p.add_argument("--seconds", type=float, default=4.0, help="utterance length")
    p.add_argument("--words", type=int, default=10, help="transcript words per utterance")
    p.add_argument("--inputs", nargs="+", choices=("features", "encoders"), default=["features", "encoders"])


def encoders(tiny: bool) -> tuple[WhisperAudioEncoder, AVHubertVideoEncoder]:
    audio = WhisperAudioEncoder(TINY_WHISPER if tiny else WHISPER_BASE, frozen=True)
    video = AVHubertVideoEncoder(TINY_AVHUBERT if tiny else AVHUBERT_HALF, frozen=True)
    return audio.eval(), video.eval()


def models(config, tiny: bool, device: str, seed: int) -> tuple[AVSRModel, dict]:
    """The joint model and the four single-pair models, holding the joint model's weights where they share them."""
    audio, video = encoders(tiny)
    base = frozen_llm(config, "cpu", seed)
    copies = {pair: copy.deepcopy(base) for pair in PAIRS}  # before any adapter hooks into it
    torch.manual_seed(seed)
    joint = AVSRModel(base, audio, video, MatryoshkaCompressor(rate_pairs=PAIRS), adapter=MoMESpec(**MOME_SETTING))
    with torch.no_grad():  # trained-looking experts: zero up-projections would leave every expert idle
        for name, p in joint.adapter.named_parameters():
            if "up_" in name:
                p.normal_(std=0.02)
    single = {}
    for pair, llm in copies.items():
        model = AVSRModel(llm, copy.deepcopy(audio), copy.deepcopy(video), MatryoshkaCompressor([pair[0]], [pair[1]]),
                          adapter=MoMESpec(**MOME_SETTING))  # fmt: skip
        state = {k: v for k, v in joint.state_dict().items() if k in model.state_dict()}
        missing = model.load_state_dict(state, strict=False).missing_keys
        if missing:
            raise RuntimeError(f"single-pair model {pair}: no joint weights for {missing}")
        single[pair] = model
    return joint.to(device), {p: m.to(device) for p, m in single.items()}


def batch_inputs(kind: str, model: AVSRModel, batch: int, seconds: float, device: str, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    if kind == "encoders":
        samples, frames = round(seconds * 16000), round(seconds * 25)
        return {
            "audio": (0.1 * torch.randn(batch, samples, generator=gen)).to(device),
            "audio_lengths": torch.full((batch,), samples, device=device),
            "video": torch.randn(batch, frames, 88, 88, generator=gen).to(device),
            "video_lengths": torch.full((batch,), frames, device=device),
        }
    feats = {}
    for modality, hz in (("audio", 50), ("video", 25)):
        steps, dim = round(seconds * hz), model.encoders[modality].output_size
        feats[modality] = (
            torch.randn(batch, steps, dim, generator=gen).to(device),
            torch.full((batch,), steps, device=device),
        )
    return {"features": feats}


def run(a: argparse.Namespace) -> dict:
    config = llm_config(a.llm_config, a.tiny)
    batch, seconds, words = (2, 1.0, 3) if a.tiny else (a.batch, a.seconds, a.words)
    joint, single = models(config, a.tiny, a.device, a.seed)
    texts = [
        " ".join(["the quick brown fox jumps over the lazy dog".split()[i % 9] for i in range(j, j + words)])
        for j in range(batch)
    ]
    optimizers = {
        id(m): torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
        for m in (joint, *single.values())
    }
    clock = Clock(a.device)

    def step(model: AVSRModel, inputs: dict):
        out = model(texts, **inputs)
        out.loss.backward()
        optimizers[id(model)].step()
        optimizers[id(model)].zero_grad(set_to_none=True)
        return out

    def joint_step(size: int, inputs: dict):
        def run_():
            joint.pairs_per_forward = size
            step(joint, inputs)

        return run_

    def separate_steps(inputs: dict):
        def run_():
            for model in single.values():
                step(model, inputs)

        return run_

    results, inputs_of = {}, {kind: batch_inputs(kind, joint, batch, seconds, a.device, a.seed) for kind in a.inputs}
    checks = {
        kind: same_losses(joint, single, texts, inputs) for kind, inputs in inputs_of.items()
    }  # before any update
    for kind, inputs in inputs_of.items():
        check = checks[kind]
        cases = {f"joint_ppf{n}": joint_step(n, inputs) for n in (4, 2, 1)}
        cases["separate_4_steps"] = separate_steps(inputs)
        if kind == "encoders":
            cases["encoders_once"] = encode_once(joint, inputs)
        times = interleaved(cases, clock, a.repeats, a.warmup)
        row = {
            **check,
            "step_s": {n: round(t, 4) for n, t in times.items()},
            "joint_over_separate": {
                f"ppf{n}": round(times[f"joint_ppf{n}"] / times["separate_4_steps"], 3) for n in (4, 2, 1)
            },
            "llm_positions": positions(joint, inputs, texts),
        }
        if kind == "encoders":
            row["encoder_share_of_separate_steps"] = round(4 * times["encoders_once"] / times["separate_4_steps"], 3)
        row["target"] = target(
            min(row["joint_over_separate"].values()), 0.6, "best joint step / four single-pair steps"
        )
        results[kind] = row
    return {
        "batch": batch,
        "utterance_seconds": seconds,
        "pairs": [list(p) for p in PAIRS],
        "adapter": MOME_SETTING,
        "stand_in_encoders": {
            "audio": "whisper " + str(TINY_WHISPER if a.tiny else WHISPER_BASE),
            "video": "avhubert " + str(TINY_AVHUBERT if a.tiny else AVHUBERT_HALF),
        },  # fmt: skip
        "inputs": results,
        "targets": {kind: r["target"] for kind, r in results.items()},
    }


def same_losses(joint: AVSRModel, single: dict, texts, inputs: dict) -> dict:
    """Per-pair losses of the joint step at each pairs_per_forward and of each single-pair model (no update)."""
    with torch.no_grad():
        joint_losses = {}
        for n in (4, 2, 1):
            joint.pairs_per_forward = n
            joint_losses[n] = joint(texts, **inputs)
        alone = {pair: model(texts, **inputs) for pair, model in single.items()}
    ce = {pair: float(joint_losses[4].pair_losses[pair]) for pair in PAIRS}
    diffs = [abs(float(joint_losses[n].pair_losses[p]) - ce[p]) for n in (2, 1) for p in PAIRS]
    diffs += [abs(float(alone[p].pair_losses[p]) - ce[p]) for p in PAIRS]
    balance = [float(joint_losses[n].balance_loss) for n in (4, 2, 1)]
    mean_alone_balance = sum(float(alone[p].balance_loss) for p in PAIRS) / len(PAIRS)
    diffs += [abs(b - mean_alone_balance) for b in balance]
    return {
        "pair_losses": {f"{p[0]},{p[1]}": round(v, 6) for p, v in ce.items()},
        "max_loss_diff": max(diffs),
        "losses_equal": max(diffs) <= 1e-5,
    }


def encode_once(model: AVSRModel, inputs: dict):
    def run_():
        with torch.no_grad():
            model.encode(**inputs)

    return run_


def positions(joint: AVSRModel, inputs: dict, texts) -> dict:
    """LLM positions computed per step: padded rows of the stacked passes against the separate passes."""
    with torch.no_grad():
        encoded = joint.encode(**inputs)
        projected = joint.project(encoded, joint.rate_pairs)
        targets = joint.llm.tokenize(texts)
        counts = {}
        for n in (4, 2, 1):
            total = 0
            for i in range(0, len(PAIRS), n):
                prompt = joint.stacked_prompt(projected, PAIRS[i : i + n], targets)
                total += prompt.attention_mask.numel()
            counts[f"ppf{n}"] = total
    return counts
