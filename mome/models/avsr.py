"""The AVSR model as plain PyTorch: encoders -> Matryoshka compressor -> one projector per rate -> frozen LLM
(+ MoME or LoRA adapter).

Encoders are black boxes (``forward(x, lengths) -> (features (B, T', D), lengths)``, attribute
``output_size``); either may be absent (ASR: audio only, VSR: video only). The model is trained at every
configured (audio rate, video rate) pair at once: the encoders run once per batch, then each pair builds
its own prompt; the loss is the mean cross-entropy over the pairs plus ``balance_weight`` times the mean
load-balancing loss of the routers (MoME). At inference the caller picks any pair the model was built for.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product

import torch
from torch import nn

from mome.models.adapter import LLMAdapter
from mome.models.compressor import MatryoshkaCompressor
from mome.models.llm import FrozenLLM
from mome.models.lora import LoRAAdapter, LoRASpec
from mome.models.mome import MoMEAdapter, MoMESpec
from mome.models.projector import RateProjectors

MODALITIES = ("audio", "video")
RatePair = tuple[int | None, int | None]


@dataclass
class AVSROutput:
    loss: torch.Tensor
    ce_loss: torch.Tensor
    balance_loss: torch.Tensor | None = None
    pair_losses: dict[RatePair, torch.Tensor] = field(default_factory=dict)


def build_adapter(spec: MoMESpec | LoRASpec | None, llm: FrozenLLM, n_scales: int) -> LLMAdapter | None:
    if spec is None:
        return None
    if isinstance(spec, MoMESpec):
        return MoMEAdapter(llm.layers, llm.hidden_size, spec, n_scales)
    if isinstance(spec, LoRASpec):
        return LoRAAdapter(llm, spec, n_scales)
    raise TypeError(f"adapter spec must be a MoMESpec, a LoRASpec or None, got {type(spec).__name__}")


class AVSRModel(nn.Module):
    def __init__(
        self,
        llm: FrozenLLM,
        audio_encoder: nn.Module | None = None,
        video_encoder: nn.Module | None = None,
        audio_rates: Sequence[int] = (4, 16),
        video_rates: Sequence[int] = (2, 5),
        rate_pairs: Sequence[RatePair] | None = None,
        pooling: str = "avg",
        projector_hidden: int | None = None,
        projector_layer_norm: bool = True,
        adapter: MoMESpec | LoRASpec | None = None,
        balance_weight: float = 0.01,
        freeze_encoders: bool = True,
    ):
        super().__init__()
        encoders = {"audio": audio_encoder, "video": video_encoder}
        if all(e is None for e in encoders.values()):
            raise ValueError("the AVSR model needs an audio encoder, a video encoder or both")
        self.llm = llm
        self.encoders = nn.ModuleDict({m: e for m, e in encoders.items() if e is not None})
        self.freeze_encoders = freeze_encoders
        if freeze_encoders:
            self.encoders.requires_grad_(False)
        rates = {"audio": audio_rates, "video": video_rates}
        self.compressors = nn.ModuleDict({m: MatryoshkaCompressor(rates[m], pooling, m) for m in self.encoders})
        self.projectors = nn.ModuleDict(
            {
                m: RateProjectors(rates[m], enc.output_size, llm.hidden_size, projector_hidden, projector_layer_norm, pooling == "stack")
                for m, enc in self.encoders.items()
            }
        )
        self.rate_pairs = self._check_pairs(rate_pairs)
        self.adapter = build_adapter(adapter, llm, len(self.rate_pairs))
        self.balance_weight = balance_weight

    # -- configuration ----------------------------------------------------------------------------------
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.encoders)

    def _all_pairs(self) -> list[RatePair]:
        choices = [self.compressors[m].rates if m in self.compressors else [None] for m in MODALITIES]
        return [tuple(p) for p in product(*choices)]

    def _check_pairs(self, pairs: Sequence[RatePair] | None) -> list[RatePair]:
        if pairs is None:
            return self._all_pairs()
        checked = [self._normalise_pair(p) for p in pairs]
        if len(set(checked)) != len(checked):
            raise ValueError(f"rate pairs repeat: {checked}")
        return checked

    def _normalise_pair(self, rates) -> RatePair:
        """(ra, rv) with None for an absent modality; a bare int is the one modality's rate."""
        if isinstance(rates, int):
            rates = (rates,)
        rates = tuple(rates)
        if len(rates) == 1 and len(self.modalities) == 1:
            rates = (rates[0], None) if self.modalities == ("audio",) else (None, rates[0])
        if len(rates) != 2:
            raise ValueError(f"rates must be (audio rate, video rate), got {rates}")
        for modality, rate in zip(MODALITIES, rates):
            if rate is None and modality in self.encoders:
                raise ValueError(f"the model has a {modality} encoder: give a {modality} rate (got {rates})")
            if rate is not None:
                if modality not in self.compressors:
                    raise ValueError(f"the model has no {modality} encoder: its rate must be None (got {rates})")
                self.compressors[modality].check_rate(int(rate))
        return tuple(None if r is None else int(r) for r in rates)

    def scale_index(self, rates) -> int:
        """Index of a rate pair in the model's scale list (what the adapters switch on)."""
        pair = self._normalise_pair(rates)
        if pair not in self.rate_pairs:
            raise ValueError(f"rate pair {pair} was not built into this model; built pairs: {self.rate_pairs}")
        return self.rate_pairs.index(pair)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_encoders:
            self.encoders.eval()  # frozen encoders never run dropout / batch-norm updates
        return self

    # -- pieces -----------------------------------------------------------------------------------------
    def encode(self, audio=None, audio_lengths=None, video=None, video_lengths=None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        inputs = {"audio": (audio, audio_lengths), "video": (video, video_lengths)}
        for modality, (x, _) in inputs.items():
            if x is None and modality in self.encoders:
                raise ValueError(f"the model has a {modality} encoder but no {modality} input was given")
            if x is not None and modality not in self.encoders:
                raise ValueError(f"{modality} input given but the model has no {modality} encoder")
        sizes = {m: x.shape[0] for m, (x, _) in inputs.items() if x is not None}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"audio and video batch sizes differ: audio {sizes['audio']}, video {sizes['video']}")
        features = {}
        for modality, encoder in self.encoders.items():
            x, lengths = inputs[modality]
            if lengths is None:
                lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoders):
                features[modality] = encoder(x, lengths)
        return features

    def prompt(self, features, pair: RatePair, targets=None, padding_side: str = "right"):
        sections = []
        for modality, rate in zip(MODALITIES, pair):
            if rate is None:
                continue
            x, lengths = features[modality]
            tokens, token_lengths = self.compressors[modality](x, lengths, rate)
            sections.append((modality, self.projectors[modality](tokens, rate), token_lengths))
        return self.llm.build_prompt(sections, targets, padding_side)

    def _set_scale(self, index: int) -> None:
        if self.adapter is not None:
            self.adapter.set_scale(index)

    # -- training and inference -------------------------------------------------------------------------
    def forward(self, texts, audio=None, audio_lengths=None, video=None, video_lengths=None) -> AVSROutput:
        """texts: transcripts (str) or LLM token ids per utterance (1-D LongTensors, no bos / eos)."""
        features = self.encode(audio, audio_lengths, video, video_lengths)
        batch = next(iter(features.values()))[0].shape[0]
        if len(texts) != batch:
            raise ValueError(f"{len(texts)} transcripts for a batch of {batch}")
        targets = self.llm.tokenize(texts) if isinstance(texts[0], str) else list(texts)
        pair_losses, balance = {}, []
        for index, pair in enumerate(self.rate_pairs):
            prompt = self.prompt(features, pair, targets, "right")
            self._set_scale(index)
            if self.adapter is not None:
                self.adapter.start_recording()
            pair_losses[pair] = self.llm(prompt).loss
            aux = self.adapter.auxiliary_loss(prompt.attention_mask) if self.adapter is not None else None
            if aux is not None:
                balance.append(aux)
        ce = torch.stack(list(pair_losses.values())).mean()
        balance_loss = torch.stack(balance).mean() if balance else None
        loss = ce if balance_loss is None else ce + self.balance_weight * balance_loss
        return AVSROutput(loss, ce, balance_loss, pair_losses)

    @torch.no_grad()
    def decode(
        self,
        audio=None,
        video=None,
        rates=(4, 2),
        beam: int = 1,
        max_new_tokens: int = 32,
        audio_lengths=None,
        video_lengths=None,
    ) -> list[str]:
        """Transcribe a batch at one rate pair (greedy for beam=1, else beam search)."""
        index = self.scale_index(rates)
        features = self.encode(audio, audio_lengths, video, video_lengths)
        prompt = self.prompt(features, self.rate_pairs[index], None, "left")
        self._set_scale(index)
        return self.llm.generate(prompt, num_beams=beam, max_new_tokens=max_new_tokens)
