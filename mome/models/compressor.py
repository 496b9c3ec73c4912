"""Matryoshka token compression: shorten an encoder's token sequence by an integer rate r.

Two modes:
- ``avg``: average each window of r consecutive tokens (the MoME / Llama-MTSK setting);
- ``stack``: concatenate the r tokens of a window along the feature axis (output width D * r).
Ragged batches: a sequence of length n gives ceil(n / r) tokens; padding frames never enter a window's
average (the last partial window is averaged over its real frames only) and are zeros when stacked.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

POOLING_MODES = ("avg", "stack")


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool mask, True on real tokens."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def compressed_lengths(lengths: torch.Tensor, rate: int) -> torch.Tensor:
    """Number of tokens after compression: ceil(n / rate)."""
    return torch.div(lengths + rate - 1, rate, rounding_mode="floor")


def compress(x: torch.Tensor, lengths: torch.Tensor, rate: int, mode: str = "avg") -> tuple[torch.Tensor, torch.Tensor]:
    """Compress (B, T, D) features with (B,) lengths by ``rate``.

    Returns (B, ceil(T / rate), D) for ``avg`` or (B, ceil(T / rate), D * rate) for ``stack``, and the new
    lengths. Windows made only of padding are zeros.
    """
    if mode not in POOLING_MODES:
        raise ValueError(f"pooling mode {mode!r} is not one of {POOLING_MODES}")
    if rate < 1:
        raise ValueError(f"compression rate must be a positive integer, got {rate}")
    batch, time, dim = x.shape
    windows = -(-time // rate)
    mask = lengths_to_mask(lengths, time).to(x.dtype)
    x = x * mask[..., None]  # padding frames must not leak into a window
    pad = windows * rate - time
    if pad:
        x = nn.functional.pad(x, (0, 0, 0, pad))
        mask = nn.functional.pad(mask, (0, pad))
    new_lengths = compressed_lengths(lengths, rate)
    if mode == "stack":
        return x.reshape(batch, windows, rate * dim), new_lengths
    counts = mask.reshape(batch, windows, rate).sum(-1, keepdim=True).clamp_min(1)
    return x.reshape(batch, windows, rate, dim).sum(2) / counts, new_lengths


MODALITIES = ("audio", "video")


class Compressor(nn.Module):
    """Base of the compressors (the config's ``compressor`` choices): shortens each modality's encoder tokens
    by one of the integer rates it was built for.

    ``rates``: {modality: [rate, ...]}; ``rate_pairs``: the (audio rate, video rate) pairs to train (None for
    an absent modality), or None: every audio rate with every video rate. Subclasses implement ``forward``
    and, when the token width changes with the rate, ``output_size``.
    """

    def __init__(self, rates: dict[str, Sequence[int]], rate_pairs: Sequence[Sequence[int]] | None = None):
        super().__init__()
        for modality, values in rates.items():
            if not values or any(int(r) < 1 for r in values):
                raise ValueError(f"{modality} compression rates must be positive integers, got {list(values)}")
        self.rates = {m: [int(r) for r in values] for m, values in rates.items()}
        self.rate_pairs = None if rate_pairs is None else [self._pair(p) for p in rate_pairs]

    @staticmethod
    def _pair(pair) -> tuple[int | None, int | None]:
        """(audio rate, video rate), 0 or None for an absent modality."""
        if len(pair) != 2:
            raise ValueError(f"rate_pairs: {list(pair)} is not an (audio rate, video rate) pair")
        return tuple(None if r is None else (int(r) or None) for r in pair)

    def check_rate(self, modality: str, rate: int) -> None:
        if rate not in self.rates[modality]:
            raise ValueError(
                f"{modality} rate {rate} was not built into this model; "
                f"allowed {modality} rates: {self.rates[modality]}"
            )

    def output_size(self, input_size: int, rate: int) -> int:
        """Width of the compressed tokens of ``input_size``-wide features at ``rate``."""
        return input_size

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, modality: str, rate: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) features, (B,) lengths -> (B, T', output_size(D, rate)) tokens, (B,) lengths."""
        raise NotImplementedError


class MatryoshkaCompressor(Compressor):
    """Parameter-free Matryoshka compression (:func:`compress`) at each modality's rates, trained jointly.

    ``rate_pairs`` (``[[4, 2], [16, 5]]``; 0 for an absent modality) restricts training to some pairs;
    default: every audio rate with every video rate. ``pooling``: ``avg`` or ``stack``.
    """

    def __init__(
        self,
        audio_rates: Sequence[int] = (4, 16),
        video_rates: Sequence[int] = (2, 5),
        rate_pairs: Sequence[Sequence[int]] | None = None,
        pooling: str = "avg",
    ):
        super().__init__({"audio": audio_rates, "video": video_rates}, rate_pairs)
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling mode {pooling!r} is not one of {POOLING_MODES}")
        self.mode = pooling

    def output_size(self, input_size: int, rate: int) -> int:
        return input_size * rate if self.mode == "stack" else input_size

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, modality: str, rate: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, D) features, (B,) lengths -> (B, ceil(T / rate), D or D * rate) tokens, (B,) lengths."""
        self.check_rate(modality, rate)
        return compress(x, lengths, rate, self.mode)

    def extra_repr(self) -> str:
        return f"rates={self.rates}, mode={self.mode}"
