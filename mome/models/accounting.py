"""Parameter and FLOP accounting from an LLM config alone: modules are built on the meta device (no weights).

- Adapter parameters: total, and active = what one token uses (MoME: its top-k routed experts, the shared
  experts and the router; LoRA: the adapters active at one scale; MSS: shared + one scale's).
- Projector parameters: one projector per (modality, rate).
- LLM forward FLOPs per input token: 2 x the parameters a token passes through, i.e. every parameter except
  the input embedding table, with the output head counted even when tied to it (its matmul is real work).
  Attention-score FLOPs (QK^T, AV; they grow with the context), adapters and the encoders are not counted.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import torch
from transformers import PretrainedConfig, PreTrainedModel

from mome.models.llm import build_llm
from mome.models.lora import LoRAAdapter, LoRASpec
from mome.models.mome import MoMEAdapter, MoMESpec
from mome.models.projector import RateProjectors

# <bos> <audio> </audio> <video> </video>: prompt tokens besides the modality tokens and the text
MARKER_TOKENS = {"audio": 2, "video": 2}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta_llm(config: PretrainedConfig) -> PreTrainedModel:
    with torch.device("meta"):
        return build_llm(config)


def adapter_params(config: PretrainedConfig, spec: MoMESpec | LoRASpec, n_scales: int = 1, scale: int = 0) -> tuple[int, int]:
    """(total, active) adapter parameters of ``spec`` on the LLM described by ``config``."""
    model = meta_llm(config)
    with torch.device("meta"):
        if isinstance(spec, MoMESpec):
            adapter = MoMEAdapter(model.model.layers, config.hidden_size, spec, n_scales)
        else:
            adapter = LoRAAdapter(SimpleNamespace(model=model, hidden_size=config.hidden_size), spec, n_scales)
    return adapter.total_params(), adapter.active_params(scale)


def projector_params(
    llm_hidden: int,
    encoder_sizes: dict[str, int],
    rates: dict[str, Sequence[int]],
    hidden: int | None = None,
    layer_norm: bool = True,
    stacked: bool = False,
) -> int:
    with torch.device("meta"):
        return sum(count(RateProjectors(rates[m], size, llm_hidden, hidden, layer_norm, stacked)) for m, size in encoder_sizes.items())


def llm_forward_params(model: PreTrainedModel) -> int:
    """Parameters one token passes through: all but the input embedding table, the output head always."""
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    unique = sum(p.numel() for p in model.parameters())
    return unique - embedding.numel() + (head.numel() if head is embedding else 0)


@dataclass
class RateCost:
    audio_rate: int | None
    video_rate: int | None
    tokens: int
    tflops: float


def prompt_tokens(seconds: float, audio_rate: int | None, video_rate: int | None, audio_hz: float, video_hz: float, text_tokens: int) -> int:
    """LLM input length: <bos>, each present modality's markers and ceil(frames / rate) tokens, then the text."""
    tokens = 1 + text_tokens
    for rate, hz, modality in ((audio_rate, audio_hz, "audio"), (video_rate, video_hz, "video")):
        if rate is not None:
            tokens += MARKER_TOKENS[modality] + math.ceil(round(seconds * hz) / rate)
    return tokens


def rate_costs(
    config: PretrainedConfig,
    seconds: float,
    rate_pairs: Sequence[tuple[int | None, int | None]],
    audio_hz: float = 50.0,
    video_hz: float = 25.0,
    text_tokens: int = 0,
) -> tuple[int, list[RateCost]]:
    """(parameters counted per token, cost of one utterance at each rate pair)."""
    per_token = llm_forward_params(meta_llm(config))
    costs = []
    for audio_rate, video_rate in rate_pairs:
        tokens = prompt_tokens(seconds, audio_rate, video_rate, audio_hz, video_hz, text_tokens)
        costs.append(RateCost(audio_rate, video_rate, tokens, 2 * per_token * tokens / 1e12))
    return per_token, costs
