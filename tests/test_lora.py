"""LoRA baselines through peft: Llama-AVSR and Llama-MTSK MS / SS / MSS."""

from __future__ import annotations

import pytest
import torch

from mome.models.llm import FrozenLLM
from mome.models.lora import LoRAAdapter, LoRASpec, MTSKPerScaleSpec, MTSKSharedAndPerScaleSpec, MTSKSharedSpec
from mome.models.tiny_llm import make_tiny_llm

TEXTS = ["hello world", "the quick brown fox jumps"]
ACTIVE = {  # variant -> active adapters at scales 0, 1, 2
    LoRASpec: [["default"]] * 3,
    MTSKSharedSpec: [["shared"]] * 3,
    MTSKPerScaleSpec: [["scale0"], ["scale1"], ["scale2"]],
    MTSKSharedAndPerScaleSpec: [["shared", "scale0"], ["shared", "scale1"], ["shared", "scale2"]],
}


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_llm() -> FrozenLLM:
    return FrozenLLM(*make_tiny_llm(TEXTS, initializer_range=0.3))


def prompt(llm: FrozenLLM, side: str = "right"):
    audio = torch.randn(2, 5, llm.hidden_size, generator=torch.Generator().manual_seed(1))
    return llm.build_prompt(
        [("audio", audio, torch.tensor([5, 3]))], llm.tokenize(TEXTS) if side == "right" else None, side
    )


def lora_layers(llm: FrozenLLM):
    return [m for n, m in llm.model.named_modules() if n.endswith(("q_proj", "v_proj")) and hasattr(m, "lora_A")]


@pytest.mark.parametrize("kind", list(ACTIVE))
def test_active_adapters_follow_the_scale(kind):
    llm = tiny_llm()
    adapter = LoRAAdapter(llm, kind(reduction=8, alpha=4), n_scales=3)
    layers = lora_layers(llm)
    assert len(layers) == 2 * len(llm.layers)  # q_proj and v_proj of every layer, nothing else
    assert not any("k_proj" in n and "lora" in n for n, _ in llm.model.named_parameters())
    for scale, expected in enumerate(ACTIVE[kind]):
        adapter.set_scale(scale)
        assert adapter.active_adapters == expected
        assert all(sorted(layer.active_adapters) == sorted(expected) for layer in layers)
        # every LoRA stays trainable whatever is active; the LLM stays frozen
        assert all(p.requires_grad for _, p in adapter.lora_parameters())
        assert not any(p.requires_grad for n, p in llm.model.named_parameters() if "lora_" not in n)
    rank = 32 // 8
    assert layers[0].lora_A[ACTIVE[kind][0][0]].weight.shape == (rank, 32)


@pytest.mark.parametrize("kind", list(ACTIVE))
def test_fresh_lora_equals_frozen_llm(kind):
    llm = tiny_llm()
    batch, gen_batch = prompt(llm), prompt(llm, "left")
    bare_logits, bare_greedy = llm(batch).logits, llm.generate(gen_batch, max_new_tokens=6)
    adapter = LoRAAdapter(llm, kind(reduction=8), n_scales=3)
    for scale in range(3):
        adapter.set_scale(scale)
        assert torch.equal(llm(batch).logits, bare_logits)
        assert llm.generate(gen_batch, max_new_tokens=6) == bare_greedy


def test_ss_switches_weights_and_trains_every_scale():
    llm = tiny_llm()
    batch = prompt(llm)
    bare = llm(batch).logits
    adapter = LoRAAdapter(llm, MTSKPerScaleSpec(reduction=8), n_scales=2)
    for _, p in adapter.lora_parameters(["scale0"]):
        torch.nn.init.normal_(p, std=0.5)
    adapter.set_scale(1)
    assert torch.equal(llm(batch).logits, bare)  # scale 1's LoRA is still zero
    adapter.set_scale(0)
    assert not torch.allclose(llm(batch).logits, bare)
    # a training step visits both scales: both adapters receive gradients
    loss = 0
    for scale in range(2):
        adapter.set_scale(scale)
        loss = loss + llm(batch).loss
    loss.backward()
    for name in ("scale0", "scale1"):
        assert all(p.grad is not None for n, p in adapter.lora_parameters([name]) if "lora_B" in n)
        assert any(p.grad.abs().sum() > 0 for n, p in adapter.lora_parameters([name]) if "lora_B" in n)


def test_mss_uses_shared_and_scale_adapter_together():
    llm = tiny_llm()
    batch = prompt(llm)
    bare = llm(batch).logits
    adapter = LoRAAdapter(llm, MTSKSharedAndPerScaleSpec(reduction=8), n_scales=2)
    for _, p in adapter.lora_parameters(["shared"]):
        torch.nn.init.normal_(p, std=0.5)
    with_shared = []
    for scale in range(2):
        adapter.set_scale(scale)
        with_shared.append(llm(batch).logits)
    assert torch.equal(with_shared[0], with_shared[1]) and not torch.allclose(with_shared[0], bare)
    for _, p in adapter.lora_parameters(["scale1"]):
        torch.nn.init.normal_(p, std=0.5)
    adapter.set_scale(1)
    assert not torch.allclose(llm(batch).logits, with_shared[1])
    adapter.set_scale(0)
    assert torch.equal(llm(batch).logits, with_shared[0])


def test_bad_reduction():
    with pytest.raises(ValueError, match="LoRA reduction must be >= 1"):
        LoRAAdapter(tiny_llm(), LoRASpec(reduction=0))
