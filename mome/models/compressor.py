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


class MatryoshkaCompressor(nn.Module):
    """Parameter-free compressor that knows the rates it was built for (one modality)."""

    def __init__(self, rates: Sequence[int], mode: str = "avg", modality: str = "audio"):
        super().__init__()
        if mode not in POOLING_MODES:
            raise ValueError(f"pooling mode {mode!r} is not one of {POOLING_MODES}")
        if not rates or any(int(r) < 1 for r in rates):
            raise ValueError(f"{modality} compression rates must be positive integers, got {list(rates)}")
        self.rates = [int(r) for r in rates]
        self.mode = mode
        self.modality = modality

    def output_size(self, input_size: int, rate: int) -> int:
        return input_size * rate if self.mode == "stack" else input_size

    def check_rate(self, rate: int) -> None:
        if rate not in self.rates:
            raise ValueError(f"{self.modality} rate {rate} was not built into this model; allowed {self.modality} rates: {self.rates}")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, rate: int) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_rate(rate)
        return compress(x, lengths, rate, self.mode)

    def extra_repr(self) -> str:
        return f"modality={self.modality}, rates={self.rates}, mode={self.mode}"
