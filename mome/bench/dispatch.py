"""The MoME layer alone: our dispatch against a per-expert loop, the way the public reference code runs it.

The reference (:class:`LoopMoME`, kept here and only here) routes like ours (softmax in fp32, top-k,
renormalised) and then, for each expert, finds the tokens that chose it (``torch.where`` on a one-hot
mask), gathers them, runs the expert and adds the weighted result back with ``index_add_``. It reads the
weights of one of our layers, so both compute the same function: the benchmark checks outputs (to 1e-5),
expert choices and gradients before it times anything. Timed: forward alone (no autograd) and forward +
backward, at each LLM width and token count, with our two forms (dense gated, sorted by expert) beside the
one our size rule picks.
"""

from __future__ import annotations

import argparse
import contextlib
from unittest import mock

import torch
from torch import nn

import mome.models.mome as mome_module
from mome.bench.common import MOME_SETTING, Clock, interleaved, target
from mome.models.mome import MoMELayer, MoMESpec, RoutingState, sorted_dispatch


class LoopMoME(nn.Module):
    """Reference MoME layer: per-expert loop with gather and ``index_add_``, on the weights of ``layer``."""

    def __init__(self, layer: MoMELayer):
        super().__init__()
        self.layer = layer  # borrowed weights; nothing of its forward is used

    @staticmethod
    def expert(bank, e: int, x: torch.Tensor) -> torch.Tensor:
        hidden = nn.functional.gelu(x @ bank.down_weight[:, e] + bank.down_bias[e])
        return hidden @ bank.up_weight[e] + bank.up_bias[e]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(..., d) hidden states -> (..., d) adapter output and (N, k) chosen experts, N = tokens."""
        layer = self.layer
        flat = x.reshape(-1, x.shape[-1])
        logits = layer.routers[0](flat)
        probs = torch.softmax(logits, dim=-1, dtype=torch.float)
        weights, chosen = probs.topk(layer.top_k[0], dim=-1)
        weights = (weights / weights.sum(-1, keepdim=True)).to(flat.dtype)
        out = torch.zeros_like(flat)
        mask = nn.functional.one_hot(chosen, layer.experts.n).permute(2, 1, 0)  # (E, k, N)
        for e in range(layer.experts.n):
            slot, token = torch.where(mask[e])
            if token.numel():
                out.index_add_(0, token, self.expert(layer.experts, e, flat[token]) * weights[token, slot, None])
        if layer.shared is not None:
            for e in range(layer.shared.n):
                out = out + self.expert(layer.shared, e, flat)
        return out.reshape(x.shape), chosen


@contextlib.contextmanager
def form(name: str):
    """Force one of our two dispatch forms ("rule": leave the size rule alone)."""
    if name == "rule":
        yield
        return
    with mock.patch.object(mome_module, "SORTED_MIN_SLOTS_PER_EXPERT", 0 if name == "sorted" else 10**12):
        yield


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--widths", type=int, nargs="+", default=[576, 2048], help="LLM hidden sizes")
    p.add_argument("--tokens", type=int, nargs="+", default=[64, 600, 2400], help="tokens per call")


def run(a: argparse.Namespace) -> dict:
    widths, token_counts = ([32], [8, 400]) if a.tiny else (a.widths, a.tokens)  # tiny: both forms
    spec = MoMESpec(**MOME_SETTING)
    clock = Clock(a.device)
    rows, worst = [], {"forward": 0.0, "forward_backward": 0.0}
    for width in widths:
        torch.manual_seed(a.seed)
        layer = MoMELayer(width, spec, 1, RoutingState()).to(a.device)
        for bank in (layer.experts, layer.shared):
            nn.init.normal_(bank.up_weight, std=0.02)  # trained-looking experts: zero ones would compare trivially
            nn.init.normal_(bank.up_bias, std=0.02)
        reference = LoopMoME(layer)
        for tokens in token_counts:
            x = torch.randn(1, tokens, width, device=a.device)
            check = compare(layer, reference, x)
            cases = {}
            for name, module in (("rule", layer), ("dense", layer), ("sorted", layer), ("loop", reference)):
                cases[name] = _case(module, x, name)
            forward = interleaved({n: f[0] for n, f in cases.items()}, clock, a.repeats, a.warmup)
            backward = interleaved({n: f[1] for n, f in cases.items()}, clock, a.repeats, a.warmup)
            row = {
                "width": width,
                "tokens": tokens,
                "form_chosen": "sorted" if sorted_dispatch(tokens, spec.top_k, spec.experts) else "dense",
                **check,
                "forward_ms": {n: round(t * 1e3, 3) for n, t in forward.items()},
                "forward_backward_ms": {n: round(t * 1e3, 3) for n, t in backward.items()},
                "ours_over_loop": {
                    "forward": round(forward["rule"] / forward["loop"], 3),
                    "forward_backward": round(backward["rule"] / backward["loop"], 3),
                },
            }
            for kind in worst:
                worst[kind] = max(worst[kind], row["ours_over_loop"][kind])
            rows.append(row)
    return {
        "setting": {**MOME_SETTING, "dtype": "float32"},
        "rule": f"sorted when tokens * top_k >= {mome_module.SORTED_MIN_SLOTS_PER_EXPERT} * experts",
        "rows": rows,
        "all_outputs_equal": all(r["outputs_equal"] and r["choices_equal"] and r["gradients_equal"] for r in rows),
        "targets": {
            "forward": target(worst["forward"], 1.0, "slowest ours / loop, forward alone, over all sizes"),
            "forward_backward": target(worst["forward_backward"], 1.0, "slowest ours / loop, forward + backward"),
        },
    }


def _case(module, x: torch.Tensor, name: str):
    def forward():
        with torch.no_grad(), form(name):
            module(x)

    def forward_backward():
        xg = x.detach().requires_grad_(True)
        with form(name):
            out = module(xg)
            (out[0] if isinstance(out, tuple) else out).sum().backward()

    return forward, forward_backward


def compare(layer: MoMELayer, reference: LoopMoME, x: torch.Tensor, atol: float = 1e-5) -> dict:
    """Outputs (absolute difference), expert choices and gradients (input and every weight; difference relative
    to the gradient's largest entry) of each of our forms against the loop."""
    results = {}
    for name, module in (("dense", layer), ("sorted", layer), ("loop", reference)):
        layer.zero_grad(set_to_none=True)
        xg = x.detach().requires_grad_(True)
        with form(name):
            layer.state.recording, layer.state.records = True, []
            out = module(xg)
            layer.state.recording = False
        out, chosen = (
            out if isinstance(out, tuple) else (out, layer.state.records[-1].chosen.reshape(-1, layer.top_k[0]))
        )
        (out * torch.linspace(-1, 1, out.numel(), device=out.device).view(out.shape)).sum().backward()
        grads = [xg.grad] + [p.grad for p in layer.parameters()]
        results[name] = (out.detach(), chosen, grads)
    loop_out, loop_chosen, loop_grads = results["loop"]
    diff = max(float((results[f][0] - loop_out).abs().max()) for f in ("dense", "sorted"))
    grad_diff = max(  # relative to the largest entry of each gradient (sums over thousands of tokens)
        float((g - h).abs().max() / h.abs().max().clamp_min(1e-12))
        for f in ("dense", "sorted")
        for g, h in zip(results[f][2], loop_grads)
        if g is not None
    )
    layer.zero_grad(set_to_none=True)
    return {
        "max_abs_diff": diff,
        "outputs_equal": diff <= atol,
        "choices_equal": all(
            torch.equal(results[f][1].reshape(loop_chosen.shape), loop_chosen) for f in ("dense", "sorted")
        ),
        "max_grad_rel_diff": grad_diff,
        "gradients_equal": grad_diff <= atol,
    }
