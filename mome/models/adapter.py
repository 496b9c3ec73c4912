"""What every LLM adapter (MoME, LoRA / Llama-MTSK) offers the AVSR model.

An adapter changes what the frozen LLM computes without editing the LLM's code, and follows the active
Matryoshka scale (an index into the model's list of rate pairs), which the AVSR model sets before every
forward pass and every ``generate`` call. An adapter whose ``mixes_scales`` is true also takes one scale
per row (a (B,) tensor), so that the prompts of several scales share one LLM forward pass.

An adapter is named in a config by its spec (:class:`AdapterSpec`: the config's ``llm_adapter_conf`` are its
fields), which builds the adapter once the LLM and the number of scales are known.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class AdapterSpec:
    """Base of the adapter specs (the config's ``llm_adapter`` choices): a dataclass of the adapter's settings
    whose :meth:`build` attaches the adapter to an LLM."""

    def build(self, llm, n_scales: int) -> "LLMAdapter":
        """The adapter on ``llm`` (a :class:`mome.models.llm.FrozenLLM`) for ``n_scales`` Matryoshka scales."""
        raise NotImplementedError


class LLMAdapter(nn.Module):
    n_scales: int = 1
    scale: int | torch.Tensor = 0
    mixes_scales: bool = False  # rows of one forward pass may each have their own scale

    def set_scale(self, index: int | torch.Tensor) -> None:
        """One scale index for the batch, or (``mixes_scales`` adapters) a (B,) tensor of one per row."""
        if isinstance(index, torch.Tensor):
            if not self.mixes_scales:
                raise ValueError(
                    f"{type(self).__name__} runs one scale per forward pass: give one index, not one per row"
                )
            low, high = (int(v) for v in index.aminmax())
        else:
            low = high = index
        if not 0 <= low <= high < self.n_scales:
            raise ValueError(
                f"scale index {index if low == high else (low, high)} out of range: "
                f"this adapter was built for {self.n_scales} scales"
            )
        self.scale = index

    def start_recording(self) -> None:
        """Called before a training forward pass whose auxiliary loss will be asked for."""

    def auxiliary_losses(self, attention_mask: torch.Tensor, row_groups: Sequence[slice]) -> list[torch.Tensor] | None:
        """Loss term of the last recorded forward pass (MoME: load balancing) for each group of rows (one per
        scale when several share the pass), None if the adapter has none."""
        return None

    def auxiliary_loss(self, attention_mask: torch.Tensor) -> torch.Tensor | None:
        """The loss term of the last recorded forward pass over all its rows."""
        losses = self.auxiliary_losses(attention_mask, [slice(None)])
        return None if losses is None else losses[0]

    def total_params(self) -> int:
        raise NotImplementedError

    def active_params(self, scale: int = 0) -> int:
        """Parameters that one token uses at the given scale."""
        raise NotImplementedError
