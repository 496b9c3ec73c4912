"""On paper: training FLOPs of one epoch of LRS3 and LRS2 for the papers' configurations, and GPU-hours.

Whisper medium and AV-HuBERT large (frozen: forward once per utterance, for all rate pairs), one projector per
rate, Llama 3.2-1B or 3B (frozen: forward, and backward for input gradients) with MoME-23/4-MHSA trained at
(4,2) (4,5) (16,2) (16,5) in one model, against Llama-AVSR (LoRA, reduction 32): four single-pair models,
each encoding the corpus again. Counted by :mod:`mome.models.accounting` from the configs alone (meta
device, no weights). An epoch is the corpus's utterance count at its mean duration (attention scores, the
only quadratic term, about 1-2 % of the LLM here, are taken at the mean length); transcripts at
``--tokens-per-second`` Llama tokens per second of speech, plus the instruction and <eos>. GPU-hours =
FLOPs / (peak bf16 dense TFLOPS x ``--utilisation``); wall hours on ``--gpus`` GPUs assume DDP scales linearly.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from mome.models.accounting import (
    WHISPER_MEDIUM,
    avhubert_video_flops,
    training_flops_per_utterance,
    whisper_encoder_flops,
)
from mome.models.llm import load_llm_config
from mome.models.lora import LoRASpec
from mome.models.mome import MoMESpec

PAIRS = [(4, 2), (4, 5), (16, 2), (16, 5)]
CONF = Path(__file__).resolve().parents[2] / "egs" / "TEMPLATE" / "avsr" / "conf" / "llm"
# training sets: hours and utterances (LRS3 pretrain 118,516 + trainval 31,982; LRS2 pretrain 96,318 + train 45,839)
CORPORA = {"LRS3": (433.0, 150_498), "LRS2": (223.0, 142_157)}
GPUS = {"A100": 312.0, "H100": 989.0}  # bf16 dense peak TFLOPS (SXM)
INSTRUCTION_TOKENS = 8  # "Transcribe speech and video to text." in Llama 3's tokenizer


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--llm-configs", nargs="+", default=[str(CONF / "llama-3.2-1b.json"), str(CONF / "llama-3.2-3b.json")]
    )
    p.add_argument("--tokens-per-second", type=float, default=3.25, help="transcript tokens per second of speech")
    p.add_argument("--gpus", type=int, default=8, help="GPUs of the wall-clock figure")
    p.add_argument("--utilisation", type=float, default=0.3, help="fraction of the GPU's peak bf16 FLOPS reached")


def run(a: argparse.Namespace) -> dict:
    from mome.bench.common import llm_config

    configs = {"tiny": llm_config(None, True)} if a.tiny else {Path(c).stem: load_llm_config(c) for c in a.llm_configs}
    whisper = (
        dict(WHISPER_MEDIUM, d_model=16, encoder_layers=1, encoder_attention_heads=2, encoder_ffn_dim=32)
        if a.tiny
        else WHISPER_MEDIUM
    )
    avhubert = "tiny" if a.tiny else "large"
    sizes = {"audio": whisper["d_model"], "video": 32 if a.tiny else 1024}
    mome, lora = (
        MoMESpec(experts=23, top_k=4, shared_experts=1, bottleneck=12),
        LoRASpec(reduction=32, alpha=4.0),
    )
    rows = []
    for corpus, (hours, utterances) in CORPORA.items():
        seconds = hours * 3600 / utterances
        transcript = math.ceil(a.tokens_per_second * seconds) + 1  # + <eos>
        text = INSTRUCTION_TOKENS + transcript
        encoders = whisper_encoder_flops(whisper, seconds) + avhubert_video_flops(avhubert, seconds)
        for name, config in configs.items():
            methods = {
                "mome_4_pairs_ppf_all": training_flops_per_utterance(
                    config, mome, PAIRS, seconds, text, transcript, encoders, sizes
                ),
                "mome_4_pairs_ppf_1": training_flops_per_utterance(
                    config, mome, PAIRS, seconds, text, transcript, encoders, sizes, 1
                ),
            }
            single = [
                training_flops_per_utterance(config, lora, [p], seconds, text, transcript, encoders, sizes)
                for p in PAIRS
            ]
            for kind, value in methods.items():
                rows.append(_row(corpus, name, kind, utterances, seconds, [value], a))
            rows.append(_row(corpus, name, "llama_avsr_4_single_pair_models", utterances, seconds, single, a))
            separate_mome = [
                training_flops_per_utterance(config, mome, [p], seconds, text, transcript, encoders, sizes)
                for p in PAIRS
            ]
            joint = {k: v.total for k, v in methods.items()}
            rows[-1]["mome_joint_over_4_single_pair_mome_models"] = {
                k: round(v / sum(m.total for m in separate_mome), 3) for k, v in joint.items()
            }
    return {
        "pairs": [list(p) for p in PAIRS],
        "encoders": {"audio": "Whisper medium encoder", "video": "AV-HuBERT large"} if not a.tiny else "tiny",
        "assumptions": {
            "corpora_hours_utterances": CORPORA,
            "transcript_tokens_per_second": a.tokens_per_second,
            "instruction_tokens": INSTRUCTION_TOKENS,
            "gpu_peak_bf16_tflops": GPUS,
            "utilisation": a.utilisation,
            "gpus": a.gpus,
        },
        "rows": rows,
    }


def _row(corpus: str, llm: str, method: str, utterances: int, seconds: float, parts, a) -> dict:
    total = utterances * sum(p.total for p in parts)
    share = {
        k: round(utterances * sum(getattr(p, k) for p in parts) / total, 4)
        for k in ("encoders", "projectors", "llm", "adapter")
    }
    gpu_hours = {g: round(total / (peak * 1e12 * a.utilisation) / 3600, 1) for g, peak in GPUS.items()}
    return {
        "corpus": corpus,
        "llm": llm,
        "method": method,
        "mean_utterance_seconds": round(seconds, 2),
        "llm_positions_per_utterance": sum(p.llm_positions for p in parts),
        "epoch_pflops": round(total / 1e15, 1),
        "share": share,
        "gpu_hours": gpu_hours,
        f"wall_hours_on_{a.gpus}_gpus": {g: round(h / a.gpus, 2) for g, h in gpu_hours.items()},
    }
