"""What every LLM adapter (MoME, LoRA / Llama-MTSK) offers the AVSR model.

An adapter changes what the frozen LLM computes without editing the LLM's code, and follows the active
Matryoshka scale (an index into the model's list of rate pairs), which the AVSR model sets before every
forward pass and every ``generate`` call.
"""
from __future__ import annotations

import torch
from torch import nn


class LLMAdapter(nn.Module):
    n_scales: int = 1
    scale: int = 0

    def set_scale(self, index: int) -> None:
        if not 0 <= index < self.n_scales:
            raise ValueError(f"scale index {index} out of range: this adapter was built for {self.n_scales} scales")
        self.scale = index

    def start_recording(self) -> None:
        """Called before a training forward pass whose auxiliary loss will be asked for."""

    def auxiliary_loss(self, attention_mask: torch.Tensor) -> torch.Tensor | None:
        """Loss term of the last recorded forward pass (MoME: load balancing), None if the adapter has none."""
        return None

    def total_params(self) -> int:
        raise NotImplementedError

    def active_params(self, scale: int = 0) -> int:
        """Parameters that one token uses at the given scale."""
        raise NotImplementedError
