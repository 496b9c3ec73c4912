"""Training step and prefill of the frozen LLM alone, with LoRA (Q, V, reduction 32) and with MoME-23/4.

The three share the LLM's random weights. Training step: the AVSR training path of one batch of prompts
(``FrozenLLM.loss_per_row``: logits from the first labelled position on), the input embeddings requiring
gradients as the projectors' outputs do, backward included (MoME: with its load-balancing loss); the frozen
LLM alone still back-propagates through every layer. Prefill: one forward pass with the KV cache and the
last position's logits, as ``generate`` starts. Fresh adapters leave the LLM's function unchanged (zero
up-projection, zero LoRA B): the benchmark checks that the three give equal logits.
"""

from __future__ import annotations

import argparse
import copy

import torch

from mome.bench.common import LORA_SETTING, MOME_SETTING, Clock, frozen_llm, interleaved, llm_config, target
from mome.models.llm import IGNORE_INDEX, PromptBatch
from mome.models.lora import LoRAAdapter, LoRASpec
from mome.models.mome import MoMEAdapter, MoMESpec, sorted_dispatch


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch", type=int, default=2, help="prompts per training step")
    p.add_argument("--tokens", type=int, default=256, help="positions per prompt (training and prefill)")
    p.add_argument("--labelled", type=int, default=16, help="transcript tokens per training prompt (the loss)")
    p.add_argument("--prefill-batch", type=int, default=1, help="prompts per prefill")


def variants(config, device: str, seed: int) -> dict:
    """{"frozen": (llm, None), "lora": (llm, adapter), "mome": (llm, adapter)} on the same LLM weights."""
    base = frozen_llm(config, device, seed)
    lora_llm, mome_llm = copy.deepcopy(base), copy.deepcopy(base)
    lora = LoRAAdapter(lora_llm, LoRASpec(**LORA_SETTING))
    mome = MoMEAdapter(mome_llm.layers, mome_llm.hidden_size, MoMESpec(**MOME_SETTING)).to(device)
    return {"frozen": (base, None), "lora": (lora_llm, lora), "mome": (mome_llm, mome)}


def run(a: argparse.Namespace) -> dict:
    config = llm_config(a.llm_config, a.tiny)
    batch, tokens, labelled, prefill_batch = (
        (2, 24, 4, 1) if a.tiny else (a.batch, a.tokens, a.labelled, a.prefill_batch)
    )
    models = variants(config, a.device, a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    embeds = (0.02 * torch.randn(batch, tokens, config.hidden_size, generator=gen)).to(a.device)
    mask = torch.ones(batch, tokens, dtype=torch.long, device=a.device)
    labels = torch.full((batch, tokens), IGNORE_INDEX, device=a.device)
    labels[:, -labelled:] = torch.randint(0, config.vocab_size, (batch, labelled), generator=gen).to(a.device)
    prefill = PromptBatch(embeds[:prefill_batch].clone(), mask[:prefill_batch])

    def train_step(llm, adapter):
        def step():
            llm.zero_grad(set_to_none=True)
            x = embeds.detach().requires_grad_(True)
            if adapter is not None:
                adapter.start_recording()
            sums, counts = llm.loss_per_row(PromptBatch(x, mask, labels))
            loss = sums.sum() / counts.sum()
            aux = adapter.auxiliary_loss(mask) if adapter is not None else None
            (loss if aux is None else loss + 0.01 * aux).backward()

        return step

    def prefill_pass(llm):
        def step():
            with torch.no_grad():
                return llm.hf(inputs_embeds=prefill.inputs_embeds, attention_mask=prefill.attention_mask,
                              use_cache=True, logits_to_keep=1).logits  # fmt: skip

        return step

    logits = {name: prefill_pass(llm)() for name, (llm, _) in models.items()}
    diffs = {name: float((logits[name] - logits["frozen"]).abs().max()) for name in ("lora", "mome")}
    clock = Clock(a.device)
    train = interleaved({n: train_step(*m) for n, m in models.items()}, clock, a.repeats, a.warmup)
    pre = interleaved({n: prefill_pass(m[0]) for n, m in models.items()}, clock, a.repeats, a.warmup)
    frozen_params = sum(p.numel() for p in models["frozen"][0].hf.parameters())
    ratio = lambda times, a_, b_: times[a_] / times[b_]  # noqa: E731
    spec = MoMESpec(**MOME_SETTING)
    return {
        "llm": {"parameters": frozen_params, "hidden_size": config.hidden_size, "layers": config.num_hidden_layers},
        "mome": MOME_SETTING,
        "lora": {
            **LORA_SETTING,
            "targets": ["q_proj", "v_proj"],
            "rank": LoRASpec(**LORA_SETTING).rank(config.hidden_size),
        },
        "adapter_parameters": {n: models[n][1].total_params() for n in ("lora", "mome")},
        "train_step": {
            "batch": batch,
            "tokens": tokens,
            "labelled": labelled,
            "mome_dispatch": "sorted" if sorted_dispatch(batch * tokens, spec.top_k, spec.experts) else "dense",
        },
        "prefill": {
            "batch": prefill_batch,
            "tokens": tokens,
            "mome_dispatch": "sorted" if sorted_dispatch(prefill_batch * tokens, spec.top_k, spec.experts) else "dense",
        },
        "fresh_adapters_max_logit_diff": diffs,
        "fresh_adapters_equal_frozen": all(d == 0.0 for d in diffs.values()),
        "train_step_s": {n: round(t, 4) for n, t in train.items()},
        "prefill_s": {n: round(t, 4) for n, t in pre.items()},
        "ratios": {
            "train_step_mome_over_lora": round(ratio(train, "mome", "lora"), 3),
            "train_step_mome_over_frozen": round(ratio(train, "mome", "frozen"), 3),
            "train_step_lora_over_frozen": round(ratio(train, "lora", "frozen"), 3),
            "prefill_mome_over_lora": round(ratio(pre, "mome", "lora"), 3),
            "prefill_mome_over_frozen": round(ratio(pre, "mome", "frozen"), 3),
            "prefill_lora_over_frozen": round(ratio(pre, "lora", "frozen"), 3),
        },
        "targets": {
            "train_step": target(ratio(train, "mome", "lora"), 1.10, "MoME / LoRA, training step"),
            "prefill": target(ratio(pre, "mome", "lora"), 1.10, "MoME / LoRA, prefill"),
        },
    }
