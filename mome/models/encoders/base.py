"""What every encoder shares: the padding mask from lengths, and the frozen switch.

A frozen encoder has no trainable parameters, stays in eval mode when its parent calls ``.train()``
(no dropout, no layer drop, fixed batch-norm statistics) and runs without building an autograd graph.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool, True at the positions inside each item's length."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def check_lengths(x: torch.Tensor, lengths: torch.Tensor, axis: int = 1) -> torch.Tensor:
    """Lengths as a long tensor on x's device; each must lie in [1, x.shape[axis]]."""
    lengths = torch.as_tensor(lengths, device=x.device).long()
    if lengths.dim() != 1 or lengths.numel() != x.shape[0]:
        raise ValueError(f"lengths must have shape ({x.shape[0]},), got {tuple(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[axis]):
        raise ValueError(
            f"lengths must lie in [1, {x.shape[axis]}] (the padded input size), got {lengths.tolist()}"
        )
    return lengths


class Encoder(nn.Module):
    """Base class: ``forward(x, lengths) -> (features (B, T', D), feature_lengths (B,))``.

    Subclasses set ``output_size`` (D) and ``frame_rate`` (output tokens per second) and call
    ``self.set_frozen(frozen)`` at the end of their constructor.
    """

    output_size: int
    frame_rate: int

    def __init__(self) -> None:
        super().__init__()
        self.frozen = False

    def set_frozen(self, frozen: bool) -> "Encoder":
        self.frozen = bool(frozen)
        self.requires_grad_(not self.frozen)
        if self.frozen:
            super().train(False)
        return self

    def train(self, mode: bool = True) -> "Encoder":
        # A frozen encoder is an inference-time feature extractor: keep it in eval mode.
        return super().train(mode and not self.frozen)

    def grad_context(self) -> contextlib.AbstractContextManager:
        return torch.no_grad() if self.frozen else contextlib.nullcontext()

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
