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

from mome.models.adapter import AdapterSpec
from mome.models.llm import build_llm
from mome.models.lora import LoRASpec
from mome.models.mome import MoMESpec
from mome.models.projector import RateProjectors

# <bos> <audio> </audio> <video> </video>: prompt tokens besides the modality tokens and the text
MARKER_TOKENS = {"audio": 2, "video": 2}


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def meta_llm(config: PretrainedConfig) -> PreTrainedModel:
    with torch.device("meta"):
        return build_llm(config)


def adapter_params(config: PretrainedConfig, spec: AdapterSpec, n_scales: int = 1, scale: int = 0) -> tuple[int, int]:
    """(total, active) adapter parameters of ``spec`` on the LLM described by ``config``."""
    model = meta_llm(config)
    llm = SimpleNamespace(model=model, layers=model.model.layers, hidden_size=config.hidden_size)  # what build reads
    with torch.device("meta"):
        adapter = spec.build(llm, n_scales)
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
        return sum(
            count(RateProjectors({r: size * (r if stacked else 1) for r in rates[m]}, llm_hidden, hidden, layer_norm))
            for m, size in encoder_sizes.items()
        )


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


def prompt_tokens(
    seconds: float, audio_rate: int | None, video_rate: int | None, audio_hz: float, video_hz: float, text_tokens: int
) -> int:
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


# --------------------------------------------------------------------------------------------------
# Training FLOPs on paper (one utterance, one epoch)
# --------------------------------------------------------------------------------------------------
# Transformer stacks and 1-D convolutions evaluated once per output step: 2 x the parameters per step (one
# multiply-add per weight). 2-D / 3-D convolutions reuse their weights over space: counted by torch's
# FlopCounterMode on the meta device. Attention scores: 2 x 2 x L^2 x width per layer and sequence (QK^T and
# AV, the full square, as kernels without causal skipping compute it). Backward through a frozen layer
# computes input gradients only (1 x its forward); a trained layer also weight gradients (2 x).

WHISPER_MEDIUM = dict(d_model=1024, encoder_layers=24, encoder_attention_heads=16, encoder_ffn_dim=4096,
                      num_mel_bins=80, max_source_positions=1500, decoder_layers=1, decoder_attention_heads=16,
                      decoder_ffn_dim=4096)  # fmt: skip


def whisper_encoder_flops(config: dict, seconds: float) -> float:
    """Forward FLOPs of a Whisper encoder (``WhisperConfig`` fields) on ``seconds`` of audio at its real length:
    conv1 at 100 mel frames / s, conv2 and the layers at 50 tokens / s."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    with torch.device("meta"):
        encoder = WhisperEncoder(WhisperConfig(**config))
    tokens = 50 * seconds
    layers = count(encoder.layers) + count(encoder.layer_norm)
    return 2 * (count(encoder.conv1) * 2 * tokens + count(encoder.conv2) * tokens + layers * tokens) + attention_flops(
        config["encoder_layers"], config["d_model"], tokens
    )


def avhubert_video_flops(config: str | dict, seconds: float, size: int = 88) -> float:
    """Forward FLOPs of AV-HuBERT on ``seconds`` of ``size`` x ``size`` mouth frames (25 / s): the ResNet
    front end counted by FlopCounterMode, projections and layers at 2 x parameters per frame."""
    from torch.utils.flop_counter import FlopCounterMode

    from mome.models.encoders.avhubert import AVHubertVideoEncoder

    with torch.device("meta"):
        encoder = AVHubertVideoEncoder(config)
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            encoder.frontend(torch.zeros(1, 25, size, size))  # one second; the front end is linear in time
    frames = 25 * seconds
    dense = count(encoder) - count(encoder.frontend)
    cfg = encoder.config
    return (
        counter.get_total_flops() * seconds
        + 2 * dense * frames
        + attention_flops(cfg.encoder_layers, cfg.encoder_embed_dim, frames)
    )


def attention_flops(layers: int, width: int, length: float, rows: int = 1) -> float:
    """Forward FLOPs of the attention scores and their weighted sum: ``rows`` sequences of ``length``."""
    return rows * layers * 2 * 2 * length * length * width


@dataclass
class UtteranceFlops:
    """Training FLOPs of one utterance, by part (forward + backward; encoders forward only, frozen)."""

    encoders: float
    projectors: float
    llm: float
    adapter: float
    llm_positions: int  # LLM input positions computed (padding included)

    @property
    def total(self) -> float:
        return self.encoders + self.projectors + self.llm + self.adapter


def adapter_forward_flops_per_position(config: PretrainedConfig, spec: MoMESpec | LoRASpec) -> float:
    """Forward FLOPs of an adapter for one LLM position, all layers: MoME computes its router and the top-k +
    shared experts only (the sorted dispatch); LoRA its A and B on every target projection."""
    d, layers = config.hidden_size, config.num_hidden_layers
    if isinstance(spec, MoMESpec):
        k = max([spec.top_k] if isinstance(spec.top_k, int) else spec.top_k)
        return layers * 2 * (d * spec.experts + (k + spec.shared_experts) * 2 * d * spec.bottleneck)
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    out = {"q_proj": config.num_attention_heads * head_dim, "k_proj": config.num_key_value_heads * head_dim,
           "v_proj": config.num_key_value_heads * head_dim, "o_proj": d}  # fmt: skip
    rank = spec.rank(d)
    return layers * 2 * sum(rank * (d + out[t]) for t in spec.targets)


def training_flops_per_utterance(
    config: PretrainedConfig,
    adapter: MoMESpec | LoRASpec,
    pairs: Sequence[tuple[int | None, int | None]],
    seconds: float,
    text_tokens: int,
    labelled_tokens: int,
    encoder_flops: float,
    encoder_sizes: dict[str, int],
    pairs_per_forward: int | None = None,
    audio_hz: float = 50.0,
    video_hz: float = 25.0,
) -> UtteranceFlops:
    """Forward + backward FLOPs of one training step's share for one utterance of ``seconds``, trained at every
    pair of ``pairs`` (one model; ``pairs_per_forward`` pairs stacked per LLM pass, their rows padded to the
    longest prompt of the pass; None: all). ``text_tokens``: prompt tokens besides <bos>, markers and the
    modality tokens (instruction + transcript + <eos>); ``labelled_tokens``: those with a loss (transcript +
    <eos>); ``encoder_flops``: the frozen encoders' forward on the utterance (once for all pairs)."""
    model = meta_llm(config)
    d, vocab = config.hidden_size, config.vocab_size
    layer_params = llm_forward_params(model) - vocab * d  # every decoder layer and the final norm
    head_dim = getattr(config, "head_dim", None) or d // config.num_attention_heads
    width = config.num_attention_heads * head_dim
    lengths = [prompt_tokens(seconds, a, v, audio_hz, video_hz, text_tokens) for a, v in pairs]
    size = len(pairs) if pairs_per_forward is None else pairs_per_forward
    passes = [lengths[i : i + size] for i in range(0, len(lengths), size)]
    positions = sum(len(p) * max(p) for p in passes)
    attention = sum(attention_flops(config.num_hidden_layers, width, max(p), len(p)) for p in passes)
    head = 2 * vocab * d * labelled_tokens * len(pairs)
    llm = 2 * (2 * layer_params * positions + head) + 3 * attention  # input gradients: 1 x the matmuls, 2 x attention
    adapter_flops = 3 * adapter_forward_flops_per_position(config, adapter) * positions  # + input and weight gradients
    projectors = 0.0
    for a, v in pairs:
        for rate, hz, modality in ((a, audio_hz, "audio"), (v, video_hz, "video")):
            if rate is not None:
                tokens = math.ceil(seconds * hz / rate)
                size_in = encoder_sizes[modality]
                projectors += 3 * 2 * (size_in * d + d * d) * tokens  # Linear -> ReLU -> Linear, trained
    return UtteranceFlops(encoder_flops, projectors, llm, adapter_flops, positions)
