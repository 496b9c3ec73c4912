"""Mixture of Matryoshka Experts (MoME): routed bottleneck experts beside a frozen LLM sub-layer.

One MoME layer per decoder layer, always in parallel with a frozen sub-layer (never in series):
- ``mhsa``:  h   = x + Attn(LN1 x) + MoME(LN1 x)
- ``ffn``:   out = h + MLP(LN2 h)  + MoME(LN2 h)
- ``layer``: out = Layer(x)        + MoME(LN1 x)
Attached with forward hooks, so the LLM's code and checkpoint keys stay untouched and any Llama-family
model works. Experts are Linear(d, w) -> GELU -> Linear(w, d) with the up-projection zero-initialised: a
fresh model computes exactly what the frozen LLM computes.

Dispatch (how the routed experts meet their tokens, :meth:`BottleneckExperts.routed`): one rule picks one of
two forms by size. Few tokens (decoding, short prompts): every expert runs on every token as two matrix
products, with a gate matrix that is zero outside each token's top-k (no per-expert work at all). Many
tokens (prefill, training): the token slots are sorted by expert and each expert runs only on its own tokens
(1 / (E / k) of the arithmetic). Both give the same sums, and every expert's weights stay in the autograd
graph either way (DDP sees no unused parameters).

Routing: softmax (fp32) over a bias-free linear router, top-k, renormalised weights; shared experts are
added unweighted. One router serves every Matryoshka scale (one per scale as an option); k may differ per
scale. Load balancing (Switch / Mixtral): E * sum_e f_e * P_e over all layers' tokens, where f_e is the
fraction of tokens whose top-k includes expert e and P_e the mean router probability of e; padding is
left out. It equals k for perfectly balanced routing.

Several scales in one forward pass: the active scale is one index for the whole batch, or a (B,) tensor
with one index per row (the AVSR model stacks the prompts of all its rate pairs into one LLM batch). Each
row then uses its own scale's router and top-k, and the balance loss can be taken per group of rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from mome.models.adapter import AdapterSpec, LLMAdapter

LOCATIONS = ("mhsa", "ffn", "layer")


@dataclass
class MoMESpec(AdapterSpec):
    """MoME's settings (the defaults are the paper's: 23 routed experts, top-4, one shared, width 12, beside
    the self-attention, one router for every scale)."""

    experts: int = 23
    top_k: int | Sequence[int] = 4  # one k, or one per scale
    shared_experts: int = 1
    bottleneck: int = 12
    location: str = "mhsa"
    router_per_scale: bool = False

    def top_k_per_scale(self, n_scales: int) -> list[int]:
        ks = [int(self.top_k)] * n_scales if isinstance(self.top_k, int) else [int(k) for k in self.top_k]
        if len(ks) != n_scales:
            raise ValueError(f"top_k has {len(ks)} values but the model has {n_scales} scales")
        for k in ks:
            if not 1 <= k <= self.experts:
                raise ValueError(f"top-k {k} is not in 1..{self.experts} (the number of routed experts)")
        return ks

    def __post_init__(self):
        if not isinstance(self.top_k, int):  # a list from YAML
            self.top_k = [int(k) for k in self.top_k]

    def build(self, llm, n_scales: int) -> "MoMEAdapter":
        return MoMEAdapter(llm.layers, llm.hidden_size, self, n_scales)

    def validate(self, n_scales: int) -> None:
        if self.experts < 1:
            raise ValueError(f"MoME needs at least one routed expert, got experts={self.experts}")
        if self.shared_experts < 0 or self.bottleneck < 1:
            raise ValueError(f"bad MoME sizes: shared_experts={self.shared_experts}, bottleneck={self.bottleneck}")
        if self.location not in LOCATIONS:
            raise ValueError(f"MoME location {self.location!r} is not one of {LOCATIONS}")
        self.top_k_per_scale(n_scales)


@dataclass
class RouterRecord:
    logits: torch.Tensor  # (..., E) as computed, before softmax
    chosen: torch.Tensor  # (..., k) expert indices; -1 in slots past a row's own k (rows of mixed scales)


@dataclass
class RoutingState:
    """Shared by all MoME layers of a model: the active scale (one index, or a (B,) tensor of one index per
    row of the batch), and the router records of a pass."""

    scale: int | torch.Tensor = 0
    recording: bool = False
    records: list[RouterRecord] = field(default_factory=list)


# The sorted form runs one small matrix product per expert: it pays once the average routed expert gets at
# least this many token slots (measured on CPU by ``python -m mome.bench dispatch``, widths 576 and 2048).
SORTED_MIN_SLOTS_PER_EXPERT = 64


def sorted_dispatch(tokens: int, top_k: int, experts: int) -> bool:
    """The one dispatch rule: sort tokens by expert when ``tokens * top_k >= SORTED_MIN_SLOTS_PER_EXPERT * experts``."""
    return tokens * top_k >= SORTED_MIN_SLOTS_PER_EXPERT * experts


class BottleneckExperts(nn.Module):
    """A bank of n bottleneck experts, Linear(d, w) -> GELU -> Linear(w, d) each, stored as stacked weights
    (``down_weight`` (d, n, w), ``down_bias`` (n, w), ``up_weight`` (n, w, d), ``up_bias`` (n, d)).

    ``forward(x (N, d), gates (N, n) | None) -> (N, d)``: sum_e gates[:, e] * expert_e(x), every expert on
    every token as two matrix products (no per-expert loop, no host sync); experts with gate 0 add exactly
    nothing. Without gates every expert counts once (shared experts).
    ``routed(x (N, d), weights (N, k), chosen (N, k)) -> (N, d)``: sum_j weights[:, j] * expert_{chosen[:, j]}(x)
    (chosen -1: an empty slot), through whichever form :func:`sorted_dispatch` picks.
    """

    def __init__(self, n: int, hidden_size: int, width: int):
        super().__init__()
        self.n, self.width = n, width
        bound = 1 / math.sqrt(hidden_size)  # nn.Linear's default initialisation for the down-projection
        self.down_weight = nn.Parameter(torch.empty(hidden_size, n, width).uniform_(-bound, bound))
        self.down_bias = nn.Parameter(torch.empty(n, width).uniform_(-bound, bound))
        # zero up-projection: a fresh expert adds nothing, the LLM's output is unchanged
        self.up_weight = nn.Parameter(torch.zeros(n, width, hidden_size))
        self.up_bias = nn.Parameter(torch.zeros(n, hidden_size))

    @property
    def params_per_expert(self) -> int:
        return sum(p.numel() for p in self.parameters()) // self.n if self.n else 0

    def forward(self, x: torch.Tensor, gates: torch.Tensor | None = None) -> torch.Tensor:
        """(N, d) tokens -> (N, d): the sum over the n experts of each one's GELU bottleneck output, each
        weighted by its column of ``gates`` (N, n) when given (zero: that expert adds nothing), else all weighted 1."""
        hidden = nn.functional.gelu((x @ self.down_weight.flatten(1)).view(-1, self.n, self.width) + self.down_bias)
        if gates is None:
            return hidden.flatten(1) @ self.up_weight.flatten(0, 1) + self.up_bias.sum(0)
        gates = gates.to(hidden.dtype)
        return (hidden * gates[..., None]).flatten(1) @ self.up_weight.flatten(0, 1) + gates @ self.up_bias

    def routed(self, x: torch.Tensor, weights: torch.Tensor, chosen: torch.Tensor) -> torch.Tensor:
        # gate matrix (N, n); scatter_add: empty slots (index -1 -> 0, weight 0) add nothing
        gates = torch.zeros(len(x), self.n, dtype=weights.dtype, device=x.device).scatter_add(
            -1, chosen.clamp_min(0), weights
        )
        if sorted_dispatch(len(x), chosen.shape[-1], self.n):
            return self.forward_sorted(x, weights, chosen, gates)
        return self(x, gates)

    def forward_sorted(
        self, x: torch.Tensor, weights: torch.Tensor, chosen: torch.Tensor, gates: torch.Tensor
    ) -> torch.Tensor:
        """The routed sum with each expert run only on the tokens that chose it (``gates``: the (N, n) gate matrix
        of ``weights`` / ``chosen``, for the up-projection biases)."""
        # token slots sorted by expert; empty slots (-1) sort first and are dropped
        slots = chosen.flatten()
        order = slots.argsort()
        counts = torch.bincount(slots + 1, minlength=self.n + 1).tolist()
        order = order[counts[0] :]
        tokens = order // chosen.shape[-1]
        slot_weights = weights.flatten().index_select(0, order)[:, None].to(x.dtype)
        out = gates.to(x.dtype) @ self.up_bias  # every slot's weighted up-bias at once
        start = 0
        experts = zip(counts[1:], self.down_weight.unbind(1), self.down_bias.unbind(0), self.up_weight.unbind(0))
        for count, down, down_bias, up in experts:
            if count:
                rows = tokens[start : start + count]
                hidden = nn.functional.gelu(torch.addmm(down_bias, x.index_select(0, rows), down))
                hidden = hidden * slot_weights[start : start + count]
                out.index_add_(0, rows, (hidden @ up).to(out.dtype))
                start += count
        return out


def route(logits: torch.Tensor, k: int, k_per_token: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k routing: (fp32 weights renormalised over the k chosen experts, chosen indices), both (..., k).

    With ``k_per_token`` (shape ``logits.shape[:-1]``, each <= k) a token keeps only its own top
    ``k_per_token`` of the k slots: the other slots get weight 0 and index -1.
    """
    probs = torch.softmax(logits.float(), dim=-1)
    weights, chosen = probs.topk(k, dim=-1)
    if k_per_token is not None:
        keep = torch.arange(k, device=logits.device) < k_per_token[..., None]
        weights, chosen = weights * keep, chosen.masked_fill(~keep, -1)
    return weights / weights.sum(-1, keepdim=True), chosen


def chosen_counts(chosen: torch.Tensor, n_experts: int) -> torch.Tensor:
    """(..., k) expert indices (-1: empty slot) -> (N, E) 0/1 rows: which experts each token chose."""
    flat = chosen.reshape(-1, chosen.shape[-1])
    hot = nn.functional.one_hot(flat.clamp_min(0), n_experts) * (flat >= 0)[..., None]
    return hot.sum(1)


def balance_loss(records: Sequence[RouterRecord], attention_mask: torch.Tensor | None, n_experts: int) -> torch.Tensor:
    """E * sum_e(f_e * P_e) over every recorded layer's tokens; positions where attention_mask is 0 are left out."""
    probs = torch.cat([torch.softmax(r.logits.float(), -1).reshape(-1, n_experts) for r in records])
    chosen = torch.cat([chosen_counts(r.chosen, n_experts) for r in records]).to(probs.dtype)
    if attention_mask is None:
        weight = torch.ones(probs.shape[0], device=probs.device)
    else:
        weight = torch.cat([attention_mask.reshape(-1).to(probs.device, probs.dtype)] * len(records))
        if weight.numel() != probs.shape[0]:
            raise ValueError(f"attention mask of shape {tuple(attention_mask.shape)} does not match the router records")
    total = weight.sum().clamp_min(1)
    fraction = (chosen * weight[:, None]).sum(0) / total
    mean_prob = (probs * weight[:, None]).sum(0) / total
    return n_experts * (fraction * mean_prob).sum()


def _first_input(args: tuple, kwargs: dict, name: str) -> torch.Tensor:
    return kwargs[name] if name in kwargs else args[0]


class MoMELayer(nn.Module):
    """Router + routed and shared bottleneck experts for one decoder layer."""

    def __init__(self, hidden_size: int, spec: MoMESpec, n_scales: int, state: RoutingState):
        super().__init__()
        spec.validate(n_scales)
        self.top_k = spec.top_k_per_scale(n_scales)
        self.state = state
        self.routers = nn.ModuleList(
            nn.Linear(hidden_size, spec.experts, bias=False) for _ in range(n_scales if spec.router_per_scale else 1)
        )
        self.experts = BottleneckExperts(spec.experts, hidden_size, spec.bottleneck)
        self.shared = (
            BottleneckExperts(spec.shared_experts, hidden_size, spec.bottleneck) if spec.shared_experts else None
        )
        # top-k per scale as a tensor, for rows of mixed scales (not saved: it comes from the spec)
        self.register_buffer("top_k_table", torch.tensor(self.top_k), persistent=False)

    def router(self, scale: int) -> nn.Linear:
        return self.routers[scale if len(self.routers) > 1 else 0]

    def _route(self, flat: torch.Tensor, scale: int | torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(logits, weights, chosen) for the tokens of ``flat``; ``scale``: one index or one per token."""
        if isinstance(scale, int):
            logits = self.router(scale)(flat)
            return (logits, *route(logits, self.top_k[scale]))
        if len(self.routers) == 1:
            logits = self.routers[0](flat)
        else:  # every scale's router on every token (routers are tiny), then each token's own
            stacked = torch.cat([r.weight for r in self.routers])  # (S * E, d)
            logits = (flat @ stacked.T).view(len(flat), len(self.routers), -1)
            logits = logits.gather(1, scale.view(-1, 1, 1).expand(-1, 1, logits.shape[-1])).squeeze(1)
        if len(set(self.top_k)) == 1:
            return (logits, *route(logits, self.top_k[0]))
        return (logits, *route(logits, max(self.top_k), self.top_k_table[scale]))

    def _token_scales(self, lead: torch.Size) -> int | torch.Tensor:
        scale = self.state.scale
        if isinstance(scale, int):
            return scale
        if len(lead) < 1 or lead[0] != scale.shape[0]:
            raise ValueError(f"{scale.shape[0]} per-row scale indices for an input of shape {tuple(lead)} (rows first)")
        return scale.to(self.top_k_table.device).view(-1, *([1] * (len(lead) - 1))).expand(lead).reshape(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., d) hidden states of the LLM sub-layer's input -> (..., d) adapter output, to add to the
        sub-layer's own: the top-k routed experts (the router of the current scale, :attr:`state`) plus the
        shared ones."""
        lead = x.shape[:-1]
        flat = x.reshape(-1, x.shape[-1]).to(self.routers[0].weight.dtype)
        logits, weights, chosen = self._route(flat, self._token_scales(lead))
        if self.state.recording:
            self.state.records.append(RouterRecord(logits.reshape(*lead, -1), chosen.reshape(*lead, -1)))
        out = self.experts.routed(flat, weights, chosen)
        if self.shared is not None:
            out = out + self.shared(flat)
        return out.reshape(*lead, -1).to(x.dtype)

    # forward hooks (with_kwargs=True); bound methods, so a deep copy of the model rebinds them
    def attention_hook(self, module, args, kwargs, output):
        branch = self(_first_input(args, kwargs, "hidden_states"))
        return (output[0] + branch, *output[1:]) if isinstance(output, tuple) else output + branch

    def mlp_hook(self, module, args, kwargs, output):
        return output + self(_first_input(args, kwargs, "x"))

    def layer_hook(self, module, args, kwargs, output):
        branch = self(module.input_layernorm(_first_input(args, kwargs, "hidden_states")))
        return (output[0] + branch, *output[1:]) if isinstance(output, tuple) else output + branch


class MoMEAdapter(LLMAdapter):
    """MoME layers hooked into every decoder layer of a Llama-family LLM."""

    mixes_scales = True  # set_scale takes one index per row: routers and top-k follow each row's scale

    def __init__(self, decoder_layers: nn.ModuleList, hidden_size: int, spec: MoMESpec, n_scales: int = 1):
        super().__init__()
        spec.validate(n_scales)
        self.spec, self.n_scales = spec, n_scales
        self.state = RoutingState()
        self.layers = nn.ModuleList(MoMELayer(hidden_size, spec, n_scales, self.state) for _ in decoder_layers)
        self._handles = [self._attach(target, layer) for target, layer in zip(decoder_layers, self.layers)]

    def _attach(self, decoder_layer: nn.Module, layer: MoMELayer):
        if self.spec.location == "mhsa":
            return decoder_layer.self_attn.register_forward_hook(layer.attention_hook, with_kwargs=True)
        if self.spec.location == "ffn":
            return decoder_layer.mlp.register_forward_hook(layer.mlp_hook, with_kwargs=True)
        return decoder_layer.register_forward_hook(layer.layer_hook, with_kwargs=True)

    def detach(self) -> None:
        """Remove the hooks: the LLM computes as if MoME were not there."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def set_scale(self, index: int | torch.Tensor) -> None:
        super().set_scale(index)
        self.state.scale = index

    def start_recording(self) -> None:
        self.state.records = []
        self.state.recording = True

    def auxiliary_losses(self, attention_mask: torch.Tensor, row_groups) -> list[torch.Tensor] | None:
        records, self.state.records, self.state.recording = self.state.records, [], False
        if not records:
            return None
        losses = []
        for rows in row_groups:
            group = [RouterRecord(r.logits[rows], r.chosen[rows]) for r in records]
            mask = None if attention_mask is None else attention_mask[rows]
            losses.append(balance_loss(group, mask, self.spec.experts))
        return losses

    def total_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def active_params(self, scale: int = 0) -> int:
        total = 0
        for layer in self.layers:
            experts = layer.top_k[scale] + (layer.shared.n if layer.shared is not None else 0)
            total += layer.router(scale).weight.numel() + experts * layer.experts.params_per_expert
        return total
