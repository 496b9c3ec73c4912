"""MoME: routing maths, balance loss, shared / per-scale routers, placements and zero-init equivalence."""

from __future__ import annotations

import math

import pytest
import torch

import mome.models.mome as mome_module
from mome.models.llm import FrozenLLM
from mome.models.mome import (
    BottleneckExperts,
    MoMEAdapter,
    MoMELayer,
    MoMESpec,
    RouterRecord,
    RoutingState,
    balance_loss,
    route,
    sorted_dispatch,
)
from mome.models.tiny_llm import make_tiny_llm

TEXTS = ["hello world", "the quick brown fox jumps"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_llm(model_type: str = "llama") -> FrozenLLM:
    return FrozenLLM(*make_tiny_llm(TEXTS, model_type=model_type))


def prompt(llm: FrozenLLM, side: str = "right", targets: bool = True):
    gen = torch.Generator().manual_seed(1)
    audio = torch.randn(2, 5, llm.hidden_size, generator=gen)
    ids = llm.tokenize(TEXTS) if targets else None
    return llm.build_prompt([("audio", audio, torch.tensor([5, 3]))], ids, side)


def test_route_topk_renormalised():
    logits = torch.tensor([[math.log(1.0), math.log(2.0), math.log(3.0), math.log(4.0)]])
    weights, chosen = route(logits, 2)
    assert chosen.tolist() == [[3, 2]]
    assert torch.allclose(weights, torch.tensor([[4 / 7, 3 / 7]]))
    weights, chosen = route(logits, 1)
    assert chosen.tolist() == [[3]] and weights.tolist() == [[1.0]]


def constant_expert(bank: BottleneckExperts, index: int, value: torch.Tensor) -> None:
    """Make one expert of a bank output ``value`` whatever its input."""
    with torch.no_grad():
        bank.up_weight[index].zero_()
        bank.up_bias[index].copy_(value)


def test_expert_bank_equals_separate_bottleneck_experts():
    bank = BottleneckExperts(3, 6, 2)
    torch.nn.init.normal_(bank.up_weight)
    torch.nn.init.normal_(bank.up_bias)
    x = torch.randn(5, 6)
    separate = [
        torch.nn.functional.gelu(x @ bank.down_weight[:, e] + bank.down_bias[e]) @ bank.up_weight[e] + bank.up_bias[e]
        for e in range(3)
    ]
    gates = torch.tensor([[0.0, 0.3, 0.7]] * 5)
    assert torch.allclose(bank(x, gates), 0.3 * separate[1] + 0.7 * separate[2], atol=1e-5)
    assert torch.allclose(bank(x), sum(separate), atol=1e-5)
    assert bank.params_per_expert == 6 * 2 + 2 + 2 * 6 + 6
    assert torch.equal(BottleneckExperts(2, 6, 2)(x), torch.zeros(5, 6))  # zero-initialised up-projection


def test_layer_sums_topk_weighted_plus_shared():
    d = 4
    layer = MoMELayer(d, MoMESpec(experts=3, top_k=2, shared_experts=1, bottleneck=2), 1, RoutingState())
    for e in range(3):
        constant_expert(layer.experts, e, torch.full((d,), 10.0**e))  # 1, 10, 100
    constant_expert(layer.shared, 0, torch.full((d,), 1000.0))
    with torch.no_grad():  # router logits = x[:3]
        layer.routers[0].weight.copy_(torch.eye(3, d))
    x = torch.tensor([[math.log(1.0), math.log(2.0), math.log(6.0), 0.0]])
    out = layer(x)
    # top-2 = experts 2 (p=6/9) and 1 (p=2/9); renormalised 0.75, 0.25
    expected = 0.75 * 100 + 0.25 * 10 + 1000
    assert torch.allclose(out, torch.full((1, d), expected))


def test_balance_loss_hand_computed_and_padding_free():
    # 3 tokens, 2 experts, top-1: probs (.25,.75)->1, (.8,.2)->0, (.1,.9)->1
    logits = torch.log(torch.tensor([[[0.25, 0.75], [0.8, 0.2], [0.1, 0.9]]]))
    chosen = torch.tensor([[[1], [0], [1]]])
    expected = 2 * ((1 / 3) * (1.15 / 3) + (2 / 3) * (1.85 / 3))
    value = balance_loss([RouterRecord(logits, chosen)], torch.ones(1, 3), 2)
    assert math.isclose(value.item(), expected, rel_tol=1e-6)
    # a padded 4th position with any logits / choice changes nothing; the same over two layers
    padded_logits = torch.cat([logits, torch.tensor([[[9.0, -9.0]]])], 1)
    padded_chosen = torch.cat([chosen, torch.tensor([[[0]]])], 1)
    mask = torch.tensor([[1, 1, 1, 0]])
    record = RouterRecord(padded_logits, padded_chosen)
    assert math.isclose(balance_loss([record], mask, 2).item(), expected, rel_tol=1e-6)
    assert math.isclose(balance_loss([record, record], mask, 2).item(), expected, rel_tol=1e-6)
    assert not math.isclose(balance_loss([record], torch.ones(1, 4), 2).item(), expected, rel_tol=1e-3)


def test_balance_loss_equals_k_when_balanced():
    logits = torch.zeros(1, 4, 4)
    chosen = torch.tensor([[[0, 1], [2, 3], [0, 2], [1, 3]]])
    assert math.isclose(balance_loss([RouterRecord(logits, chosen)], None, 4).item(), 2.0, rel_tol=1e-6)


def test_one_router_serves_all_scales_and_per_scale_option():
    llm = tiny_llm()
    shared = MoMEAdapter(llm.layers, llm.hidden_size, MoMESpec(experts=4, top_k=[1, 2, 3]), n_scales=3)
    layer = shared.layers[0]
    assert len(layer.routers) == 1 and layer.router(0) is layer.router(2)
    per_scale = MoMEAdapter(
        llm.layers, llm.hidden_size, MoMESpec(experts=4, top_k=2, router_per_scale=True), n_scales=3
    )
    routers = per_scale.layers[0].routers
    assert len(routers) == 3 and routers[0] is not routers[1] and not torch.equal(routers[0].weight, routers[1].weight)
    per_scale.detach()
    batch = prompt(llm)
    for scale, k in enumerate([1, 2, 3]):  # top-k follows the active scale in every layer
        shared.set_scale(scale)
        shared.start_recording()
        llm(batch)
        records = shared.state.records
        assert len(records) == len(llm.layers) and all(r.chosen.shape[-1] == k for r in records)
        assert shared.auxiliary_loss(batch.attention_mask) is not None
    with pytest.raises(ValueError, match="scale index 3 out of range"):
        shared.set_scale(3)


def test_bad_specs():
    llm = tiny_llm()
    with pytest.raises(ValueError, match=r"top-k 5 is not in 1..4"):
        MoMEAdapter(llm.layers, llm.hidden_size, MoMESpec(experts=4, top_k=5))
    with pytest.raises(ValueError, match="location 'attn'"):
        MoMEAdapter(llm.layers, llm.hidden_size, MoMESpec(location="attn"))
    with pytest.raises(ValueError, match="top_k has 2 values but the model has 3 scales"):
        MoMEAdapter(llm.layers, llm.hidden_size, MoMESpec(top_k=[1, 2]), n_scales=3)


@pytest.mark.parametrize("model_type", ["llama", "qwen2", "mistral"])
@pytest.mark.parametrize("location", ["mhsa", "ffn", "layer"])
def test_fresh_mome_equals_frozen_llm(model_type, location):
    llm = tiny_llm(model_type)
    batch, gen_batch = prompt(llm), prompt(llm, "left", targets=False)
    bare_logits = llm(batch).logits
    bare_greedy = llm.generate(gen_batch, max_new_tokens=6)
    adapter = MoMEAdapter(llm.layers, llm.hidden_size, MoMESpec(experts=4, top_k=2, bottleneck=3, location=location))
    assert torch.equal(llm(batch).logits, bare_logits)
    assert llm.generate(gen_batch, max_new_tokens=6) == bare_greedy
    for layer in adapter.layers:  # non-zero experts: the branch is really there
        torch.nn.init.normal_(layer.experts.up_weight, std=1.0)
        torch.nn.init.normal_(layer.shared.up_weight, std=1.0)
    assert not torch.allclose(llm(batch).logits, bare_logits)
    adapter.detach()
    assert torch.equal(llm(batch).logits, bare_logits)


@pytest.mark.parametrize(
    "location, target, expected_input",
    [
        ("mhsa", "self_attn", "input_layernorm"),
        ("ffn", "mlp", "post_attention_layernorm"),
        ("layer", "input_layernorm", "input_layernorm"),
    ],
)
def test_branch_input_is_the_normalised_sublayer_input(location, target, expected_input):
    llm = tiny_llm()
    adapter = MoMEAdapter(llm.layers, llm.hidden_size, MoMESpec(experts=2, top_k=1, location=location))
    seen = {}
    decoder_layer = llm.layers[1]
    getattr(decoder_layer, expected_input).register_forward_hook(lambda m, a, out: seen.setdefault("norm", out))
    adapter.layers[1].register_forward_pre_hook(lambda m, a: seen.setdefault("branch", a[0]))
    llm(prompt(llm))
    assert torch.equal(seen["branch"], seen["norm"])


@pytest.fixture(params=["dense", "sorted"])
def dispatch(request, monkeypatch):
    """Run a test under each dispatch form: 0 slots per expert forces the sorted form, a huge number the dense."""
    monkeypatch.setattr(mome_module, "SORTED_MIN_SLOTS_PER_EXPERT", 0 if request.param == "sorted" else 10**9)
    return request.param


def test_dispatch_rule_follows_the_slots_per_expert():
    per_expert = mome_module.SORTED_MIN_SLOTS_PER_EXPERT
    assert not sorted_dispatch(1, 4, 23) and not sorted_dispatch(64, 4, 23)  # decoding, short prompts: dense
    assert sorted_dispatch(per_expert * 23 // 4 + 1, 4, 23) and not sorted_dispatch(per_expert * 23 // 4 - 1, 4, 23)
    assert sorted_dispatch(600, 4, 23) and sorted_dispatch(2400, 4, 23)  # prefill, training: sorted


def test_both_dispatch_forms_give_the_same_sums_and_gradients():
    bank = BottleneckExperts(7, 16, 5)
    torch.nn.init.normal_(bank.up_weight)
    torch.nn.init.normal_(bank.up_bias)
    x = torch.randn(50, 16, requires_grad=True)
    logits = torch.randn(50, 7, requires_grad=True)
    k_per_token = torch.randint(1, 4, (50,))  # mixed scales: some slots empty (-1)
    results = []
    for form in ("dense", "sorted"):
        weights, chosen = route(logits, 3, k_per_token)
        assert (chosen == -1).any()
        gates = torch.zeros(50, 7).scatter_add(-1, chosen.clamp_min(0), weights)
        out = bank(x, gates) if form == "dense" else bank.forward_sorted(x, weights, chosen, gates)
        out.pow(2).sum().backward()
        results.append([out.detach()] + [t.grad.clone() for t in (x, logits, *bank.parameters())])
        for t in (x, logits, *bank.parameters()):
            t.grad = None
    for dense, sorted_ in zip(*results):
        assert torch.allclose(dense, sorted_, atol=1e-5, rtol=1e-5)
    # the per-token sum written out: expert by expert
    weights, chosen = route(logits.detach(), 3, k_per_token)
    expected = torch.zeros(50, 16)
    for t in range(50):
        for w, e in zip(weights[t], chosen[t]):
            if e >= 0:
                h = torch.nn.functional.gelu(x[t] @ bank.down_weight[:, e] + bank.down_bias[e])
                expected[t] += w * (h @ bank.up_weight[e] + bank.up_bias[e])
    assert torch.allclose(results[1][0], expected.detach(), atol=1e-5)


def test_every_expert_gets_a_gradient_even_unrouted(dispatch):
    llm = tiny_llm()
    adapter = MoMEAdapter(llm.layers, llm.hidden_size, MoMESpec(experts=64, top_k=1, bottleneck=2))
    batch = prompt(llm)
    adapter.start_recording()
    out = llm(batch)
    chosen = set(adapter.state.records[0].chosen.flatten().tolist())  # layer 0's choices
    loss = out.loss + 0.01 * adapter.auxiliary_loss(batch.attention_mask)
    loss.backward()
    assert all(p.grad is not None for p in adapter.parameters())  # DDP: no unused parameters
    assert all(p.grad is None for p in llm.model.parameters())
    layer = adapter.layers[0]
    up_grad = layer.experts.up_weight.grad.abs().sum((1, 2))
    assert len(chosen) < 64  # some expert was left out ...
    assert all(up_grad[e] == 0 for e in range(64) if e not in chosen)  # ... and learns nothing from the CE
    assert up_grad.sum() > 0 and layer.shared.up_weight.grad.abs().sum() > 0
    assert layer.routers[0].weight.grad.abs().sum() > 0  # from the balance loss


def test_one_scale_per_row_equals_each_row_at_its_own_scale(dispatch):
    spec = MoMESpec(experts=5, top_k=[1, 3, 2], shared_experts=1, bottleneck=3, router_per_scale=True)
    layer = MoMELayer(8, spec, 3, RoutingState())
    torch.nn.init.normal_(layer.experts.up_weight)
    x = torch.randn(3, 4, 8)
    layer.state.scale, layer.state.recording = torch.tensor([2, 0, 1]), True
    mixed = layer(x)
    record = layer.state.records[-1]
    assert record.chosen.shape == (3, 4, 3)  # slots for the largest k; a row's extra slots are -1
    assert (
        (record.chosen[0, :, 2:] == -1).all()
        and (record.chosen[1, :, 1:] == -1).all()
        and (record.chosen[2] >= 0).all()
    )
    for row, scale in enumerate([2, 0, 1]):
        layer.state.scale = scale
        assert torch.allclose(mixed[row], layer(x[row : row + 1])[0], atol=1e-6)
        alone = layer.state.records[-1]
        assert torch.equal(alone.chosen[0], record.chosen[row, :, : spec.top_k[scale]])
        # the balance loss of a row group ignores the empty slots: the same as the row routed alone
        assert torch.allclose(
            balance_loss([RouterRecord(record.logits[row], record.chosen[row])], None, 5),
            balance_loss([alone], None, 5),
            atol=1e-6,
        )
    layer.state.scale = torch.tensor([0, 1])
    with pytest.raises(ValueError, match=r"2 per-row scale indices for an input of shape \(3, 4\)"):
        layer(x)


# ---- dtypes that only real runs (bf16 autocast) would show -------------------------------------------
def test_routing_softmax_is_fp32_whatever_the_logits_dtype():
    logits = torch.randn(64, 8).to(torch.bfloat16)
    weights, chosen = route(logits, 3)
    reference_weights, reference_chosen = route(logits.float(), 3)
    assert weights.dtype == torch.float32
    assert torch.equal(chosen, reference_chosen) and torch.equal(weights, reference_weights)
    # the balance loss takes its probabilities in fp32 too
    record = RouterRecord(logits, chosen)
    loss = balance_loss([record], None, 8)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, balance_loss([RouterRecord(logits.float(), chosen)], None, 8))


def test_layer_under_bf16_autocast_routes_in_fp32_and_returns_the_input_dtype():
    d = 16
    layer = MoMELayer(d, MoMESpec(experts=6, top_k=2, shared_experts=1, bottleneck=4), 1, RoutingState(recording=True))
    x = torch.randn(3, 5, d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x.to(torch.bfloat16))
        logits = layer.routers[0](x.reshape(-1, d).to(torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert layer.state.records[0].logits.dtype == torch.bfloat16  # the router ran under autocast
    expected = torch.softmax(logits.float(), -1).topk(2, -1)
    weights, chosen = route(layer.state.records[0].logits.reshape(-1, 6), 2)
    assert torch.equal(chosen, expected.indices)
    torch.testing.assert_close(weights, expected.values / expected.values.sum(-1, keepdim=True), rtol=0, atol=0)
