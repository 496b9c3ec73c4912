"""Projectors from compressed encoder tokens into the LLM's embedding space: one per compression rate.

Each is Linear -> ReLU -> Linear, optionally followed by LayerNorm (the MoME setting).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn


class Projector(nn.Sequential):
    def __init__(self, input_size: int, output_size: int, hidden_size: int | None = None, layer_norm: bool = True):
        hidden_size = hidden_size or output_size
        layers: list[nn.Module] = [nn.Linear(input_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, output_size)]
        if layer_norm:
            layers.append(nn.LayerNorm(output_size))
        super().__init__(*layers)


class RateProjectors(nn.Module):
    """One :class:`Projector` per rate, keyed by the rate (``projectors["4"]``); ``input_sizes``: the width of
    the compressed tokens at each rate (the compressor's ``output_size``)."""

    def __init__(
        self,
        input_sizes: Mapping[int, int],
        output_size: int,
        hidden_size: int | None = None,
        layer_norm: bool = True,
    ):
        super().__init__()
        self.projectors = nn.ModuleDict(
            {str(r): Projector(size, output_size, hidden_size, layer_norm) for r, size in input_sizes.items()}
        )

    def forward(self, x: torch.Tensor, rate: int) -> torch.Tensor:
        """(B, T, input_sizes[rate]) compressed tokens -> (B, T, output_size)."""
        return self.projectors[str(rate)](x)
