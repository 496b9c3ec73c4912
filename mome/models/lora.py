"""LoRA baselines through peft: Llama-AVSR and Llama-MTSK (Matryoshka LoRA), one spec class per variant.

- ``lora``     (:class:`LoRASpec`, Llama-AVSR): one LoRA, one model per rate pair;
- ``mtsk_ms``  (:class:`MTSKSharedSpec`) one LoRA shared by all scales;
- ``mtsk_ss``  (:class:`MTSKPerScaleSpec`) one LoRA per scale, switched with the active scale;
- ``mtsk_mss`` (:class:`MTSKSharedAndPerScaleSpec`) the shared LoRA and the scale's own LoRA both active.
A variant is the peft adapters it creates and those active at a scale. LoRA sits on the attention
projections named in ``targets`` (q_proj, v_proj), rank = hidden / reduction. peft's B matrices start at
zero, so a fresh model computes exactly what the frozen LLM computes.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from peft import LoraConfig, get_peft_model

from mome.models.adapter import AdapterSpec, LLMAdapter


@dataclass
class LoRASpec(AdapterSpec):
    """Llama-AVSR: one LoRA (peft adapter ``default``) for every scale."""

    reduction: int = 32
    alpha: float = 4.0
    targets: Sequence[str] = ("q_proj", "v_proj")
    dropout: float = 0.0

    kind: ClassVar[str] = "lora"  # the variant's name (its config choice)

    def __post_init__(self):
        self.targets = tuple(self.targets)

    def validate(self) -> None:
        if self.reduction < 1:
            raise ValueError(f"LoRA reduction must be >= 1, got {self.reduction}")

    def rank(self, hidden_size: int) -> int:
        return max(1, hidden_size // self.reduction)

    def adapter_names(self, n_scales: int) -> list[str]:
        """The peft adapters the variant creates (the first one wraps the model)."""
        return ["default"]

    def active_adapter_names(self, scale: int) -> list[str]:
        """The peft adapters active at ``scale``."""
        return ["default"]

    def build(self, llm, n_scales: int) -> "LoRAAdapter":
        return LoRAAdapter(llm, self, n_scales)


@dataclass
class MTSKSharedSpec(LoRASpec):
    """Llama-MTSK MS: one LoRA shared by all scales."""

    kind: ClassVar[str] = "mtsk_ms"

    def adapter_names(self, n_scales: int) -> list[str]:
        return ["shared"]

    def active_adapter_names(self, scale: int) -> list[str]:
        return ["shared"]


@dataclass
class MTSKPerScaleSpec(LoRASpec):
    """Llama-MTSK SS: one LoRA per scale, switched with the active scale."""

    kind: ClassVar[str] = "mtsk_ss"

    def adapter_names(self, n_scales: int) -> list[str]:
        return [f"scale{i}" for i in range(n_scales)]

    def active_adapter_names(self, scale: int) -> list[str]:
        return [f"scale{scale}"]


@dataclass
class MTSKSharedAndPerScaleSpec(LoRASpec):
    """Llama-MTSK MSS: the shared LoRA and the scale's own LoRA, both active."""

    kind: ClassVar[str] = "mtsk_mss"

    def adapter_names(self, n_scales: int) -> list[str]:
        return ["shared", *(f"scale{i}" for i in range(n_scales))]

    def active_adapter_names(self, scale: int) -> list[str]:
        return ["shared", f"scale{scale}"]


class LoRAAdapter(LLMAdapter):
    """Wraps ``llm.model`` (a :class:`mome.models.llm.FrozenLLM`) in a peft model holding the named LoRAs.

    The LoRA weights live inside the LLM's modules (``llm.model``); this object owns no parameters itself.
    """

    def __init__(self, llm, spec: LoRASpec, n_scales: int = 1):
        super().__init__()
        spec.validate()
        self.spec, self.n_scales = spec, n_scales
        config = LoraConfig(
            r=spec.rank(llm.hidden_size),
            lora_alpha=spec.alpha,
            lora_dropout=spec.dropout,
            target_modules=list(spec.targets),
            bias="none",
        )
        names = spec.adapter_names(n_scales)
        with warnings.catch_warnings():  # peft 0.21 calls a transformers 5 API deprecated for v6
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            peft_model = get_peft_model(llm.model, config, adapter_name=names[0])
        for name in names[1:]:
            peft_model.add_adapter(name, config)
        llm.model = peft_model
        self.__dict__["peft_model"] = peft_model  # a reference, not a submodule (no duplicate state-dict keys)
        self.set_scale(0)

    def lora_parameters(self, names: Sequence[str] | None = None):
        """(name, parameter) of the LoRA weights, optionally only of the named adapters."""
        for name, param in self.peft_model.named_parameters():
            if "lora_" in name and (names is None or any(f".{a}." in name for a in names)):
                yield name, param

    def set_scale(self, index: int) -> None:
        super().set_scale(index)
        self.peft_model.base_model.set_adapter(self.spec.active_adapter_names(index))
        # peft freezes inactive adapters; all of them stay trainable (a batch visits every scale)
        for _, param in self.lora_parameters():
            param.requires_grad_(True)

    @property
    def active_adapters(self) -> list[str]:
        return list(self.peft_model.base_model.active_adapters)

    def total_params(self) -> int:
        return sum(p.numel() for _, p in self.lora_parameters())

    def active_params(self, scale: int = 0) -> int:
        return sum(p.numel() for _, p in self.lora_parameters(self.spec.active_adapter_names(scale)))
