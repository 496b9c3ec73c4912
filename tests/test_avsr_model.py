"""The AVSR model end to end with tiny dummy encoders: multi-scale loss, gradients, decoding, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mome.models.avsr import MODALITIES, AVSRModel
from mome.models.compressor import MatryoshkaCompressor
from mome.models.llm import FrozenLLM
from mome.models.lora import MTSKPerScaleSpec, MTSKSharedAndPerScaleSpec
from mome.models.mome import MoMESpec
from mome.models.tiny_llm import make_tiny_llm

TEXTS = ["hello world", "the quick brown fox jumps"]


class AudioEncoder(nn.Module):
    """16 kHz waveform -> 50 Hz frames of 320 samples -> Linear."""

    output_size, frame_rate, hop = 16, 50, 320

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(self.hop, self.output_size)
        self.calls = 0

    def forward(self, x, lengths):
        self.calls += 1
        frames = x.shape[1] // self.hop
        return self.proj(x[:, : frames * self.hop].reshape(len(x), frames, self.hop)), lengths // self.hop


class VideoEncoder(nn.Module):
    output_size, frame_rate = 12, 25

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, self.output_size)
        self.calls = 0

    def forward(self, x, lengths):
        self.calls += 1
        return self.proj(x.flatten(2)), lengths


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def build(
    adapter=None,
    audio=True,
    video=True,
    audio_rates=(2, 4),
    video_rates=(1, 3),
    rate_pairs=None,
    pooling="avg",
    **kwargs,
) -> AVSRModel:
    llm = FrozenLLM(*make_tiny_llm(TEXTS, initializer_range=0.3))
    compressor = MatryoshkaCompressor(audio_rates, video_rates, rate_pairs, pooling)
    return AVSRModel(
        llm, AudioEncoder() if audio else None, VideoEncoder() if video else None, compressor, adapter, **kwargs
    )


def inputs():
    gen = torch.Generator().manual_seed(2)
    return {
        "audio": torch.randn(2, 3200, generator=gen),
        "audio_lengths": torch.tensor([3200, 1900]),  # 10 and 5 frames
        "video": torch.randn(2, 5, 4, 4, generator=gen),
        "video_lengths": torch.tensor([5, 2]),
    }


def test_loss_averages_pairs_plus_balance_and_encoders_run_once():
    model = build(MoMESpec(experts=4, top_k=2, bottleneck=3))
    assert model.rate_pairs == [(2, 1), (2, 3), (4, 1), (4, 3)]
    out = model(TEXTS, **inputs())
    assert model.encoders["audio"].calls == 1 and model.encoders["video"].calls == 1
    assert set(out.pair_losses) == set(model.rate_pairs)
    ce = sum(out.pair_losses.values()) / 4
    assert torch.allclose(out.ce_loss, ce) and torch.allclose(out.loss, ce + 0.01 * out.balance_loss)
    assert 0.0 < out.balance_loss.item() <= 4.0  # E * sum_e f_e P_e is at most E (= k when balanced)
    # each pair's loss is that pair's own prompt: (4, 3) alone gives the same number
    single = build(MoMESpec(experts=4, top_k=2, bottleneck=3), rate_pairs=[(4, 3)])
    single.load_state_dict(model.state_dict())
    assert torch.allclose(single(TEXTS, **inputs()).ce_loss, out.pair_losses[(4, 3)], atol=1e-6)


@pytest.mark.parametrize("spec", [MoMESpec(experts=4, top_k=2, bottleneck=3), MTSKSharedAndPerScaleSpec(reduction=8)])
def test_gradients_reach_only_trainable_parts(spec):
    model = build(spec)
    model.train()
    model(TEXTS, **inputs()).loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    for name, p in model.named_parameters():
        frozen = name.startswith("encoders.") or (name.startswith("llm.model.") and "lora_" not in name)
        assert (name in trainable) != frozen, name
        assert (p.grad is None) == frozen, name
    for rate in ("2", "4"):
        assert model.projectors["audio"].projectors[rate][0].weight.grad.abs().sum() > 0
    for rate in ("1", "3"):
        assert model.projectors["video"].projectors[rate][0].weight.grad.abs().sum() > 0
    assert model.llm.markers.weight.grad[:4].abs().sum(1).gt(0).all()  # the four modality markers


def test_decode_every_pair_and_zero_init_equivalence():
    model = build(MoMESpec(experts=4, top_k=2, bottleneck=3)).eval()
    x = inputs()
    kwargs = dict(audio_lengths=x["audio_lengths"], video_lengths=x["video_lengths"], max_new_tokens=5)
    with_mome = {}
    for pair in model.rate_pairs:
        with_mome[pair] = model.decode(x["audio"], x["video"], rates=pair, **kwargs)
        assert len(with_mome[pair]) == 2 and all(isinstance(t, str) for t in with_mome[pair])
        assert len(model.decode(x["audio"], x["video"], rates=pair, beam_size=3, **kwargs)) == 2
    assert len({tuple(v) for v in with_mome.values()}) > 1  # the rate pair matters
    with torch.no_grad():
        logits = model.llm(model.prompt(model.encode(**x), (2, 1), model.llm.tokenize(TEXTS))).logits
    model.adapter.detach()  # the bare frozen LLM with the same projectors
    for pair in model.rate_pairs:
        assert model.decode(x["audio"], x["video"], rates=pair, **kwargs) == with_mome[pair]
    with torch.no_grad():
        assert torch.equal(model.llm(model.prompt(model.encode(**x), (2, 1), model.llm.tokenize(TEXTS))).logits, logits)


def test_ragged_batch_decodes_like_single_utterances():
    model = build().eval()
    x = inputs()
    batch = model.decode(
        x["audio"],
        x["video"],
        rates=(2, 3),
        audio_lengths=x["audio_lengths"],
        video_lengths=x["video_lengths"],
        max_new_tokens=6,
    )
    for i in range(2):
        a = x["audio"][i : i + 1, : x["audio_lengths"][i]]
        v = x["video"][i : i + 1, : x["video_lengths"][i]]
        assert model.decode(a, v, rates=(2, 3), max_new_tokens=6) == [batch[i]]


def test_asr_and_vsr_models():
    x = inputs()
    asr = build(MoMESpec(experts=3, top_k=1, bottleneck=2), video=False)
    assert asr.rate_pairs == [(2, None), (4, None)]
    assert torch.isfinite(asr(TEXTS, audio=x["audio"], audio_lengths=x["audio_lengths"]).loss)
    assert len(asr.decode(x["audio"], rates=4, max_new_tokens=3)) == 2
    vsr = build(MTSKPerScaleSpec(reduction=8), audio=False, pooling="stack")
    assert vsr.rate_pairs == [(None, 1), (None, 3)]
    assert vsr.projectors["video"].projectors["3"][0].in_features == 36
    assert torch.isfinite(vsr(TEXTS, video=x["video"], video_lengths=x["video_lengths"]).loss)
    assert len(vsr.decode(video=x["video"], rates=(None, 3), max_new_tokens=3)) == 2
    with pytest.raises(ValueError, match="no audio encoder"):
        vsr.decode(x["audio"], x["video"], rates=(4, 3))


def test_bad_inputs_give_clear_errors():
    model = build(MoMESpec(experts=4, top_k=2, bottleneck=3), rate_pairs=[(2, 1), (4, 3)])
    x = inputs()
    with pytest.raises(ValueError, match=r"audio rate 8 .*allowed audio rates: \[2, 4\]"):
        model.decode(x["audio"], x["video"], rates=(8, 1))
    with pytest.raises(ValueError, match=r"video rate 5 .*allowed video rates: \[1, 3\]"):
        model.decode(x["audio"], x["video"], rates=(2, 5))
    with pytest.raises(ValueError, match=r"rate pair \(2, 3\) was not built .*\[\(2, 1\), \(4, 3\)\]"):
        model.decode(x["audio"], x["video"], rates=(2, 3))
    with pytest.raises(ValueError, match="audio and video batch sizes differ: audio 2, video 1"):
        model.decode(x["audio"], x["video"][:1], rates=(2, 1))
    with pytest.raises(ValueError, match="no video input"):
        model(TEXTS, audio=x["audio"])
    with pytest.raises(ValueError, match="1 transcripts for a batch of 2"):
        model(TEXTS[:1], **x)
    with pytest.raises(ValueError, match=r"top-k 5 is not in 1..4"):
        build(MoMESpec(experts=4, top_k=5))
    with pytest.raises(ValueError, match="needs an audio encoder, a video encoder or both"):
        build(audio=False, video=False)
    with pytest.raises(ValueError, match=r"rate pairs repeat"):
        build(rate_pairs=[(2, 1), (2, 1)])


def count_calls(modules) -> dict:
    calls = {name: 0 for name in modules}
    for name, module in modules.items():
        module.register_forward_hook(lambda *a, name=name: calls.__setitem__(name, calls[name] + 1))
    return calls


@pytest.mark.parametrize(
    "spec",
    [
        MoMESpec(experts=4, top_k=2, bottleneck=3),
        MoMESpec(experts=4, top_k=[1, 2, 3, 2], bottleneck=3, router_per_scale=True),  # per-row k and routers
        None,
    ],
)
def test_all_pairs_in_one_llm_pass_equal_one_pass_per_pair(spec):
    one = build(spec, pairs_per_forward=1)
    for layer in one.adapter.layers if spec is not None else []:  # non-zero experts: routing matters
        torch.nn.init.normal_(layer.experts.up_weight, std=0.5)
    shared = build(spec, pairs_per_forward="all")
    shared.load_state_dict(one.state_dict())
    assert one.pair_groups() == [[0], [1], [2], [3]] and shared.pair_groups() == [[0, 1, 2, 3]]
    outputs = {}
    for name, model in (("one", one), ("all", shared)):
        projectors = {f"{m}{r}": p for m in MODALITIES for r, p in model.projectors[m].projectors.items()}
        calls = count_calls({**projectors, "llm": model.llm.hf.model})  # the decoder: once per pass
        model.train()
        out = model(TEXTS, **inputs())
        out.loss.backward()
        # each (modality, rate) is projected once per batch; the LLM runs once per pass
        assert calls == {"audio2": 1, "audio4": 1, "video1": 1, "video3": 1, "llm": 4 if name == "one" else 1}
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        outputs[name] = (out, grads)
    (a, grads_a), (b, grads_b) = outputs["one"], outputs["all"]
    assert torch.allclose(a.loss, b.loss, atol=1e-5) and torch.allclose(a.ce_loss, b.ce_loss, atol=1e-5)
    for pair in one.rate_pairs:
        assert torch.allclose(a.pair_losses[pair], b.pair_losses[pair], atol=1e-5), pair
    assert len({round(v.item(), 4) for v in a.pair_losses.values()}) == 4  # the pairs really differ
    if spec is not None:
        assert torch.allclose(a.balance_loss, b.balance_loss, atol=1e-5)
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 0
    for name in grads_a:
        assert torch.allclose(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-4), name


def test_per_scale_lora_runs_one_pass_per_pair():
    model = build(MTSKPerScaleSpec(reduction=8), pairs_per_forward="all")
    assert model.pair_groups() == [[0], [1], [2], [3]]  # peft cannot switch adapters per row
    calls = count_calls({"llm": model.llm.hf.model})
    assert torch.isfinite(model(TEXTS, **inputs()).loss) and calls["llm"] == 4
    assert build(rate_pairs=[(2, 1), (4, 3)], pairs_per_forward=3).pair_groups() == [[0, 1]]
    with pytest.raises(ValueError, match="pairs_per_forward must be 'all' or a positive integer, got 0"):
        build(pairs_per_forward=0)
    with pytest.raises(ValueError, match="runs one scale per forward pass"):
        model.adapter.set_scale(torch.tensor([0, 1]))


def test_precomputed_features_skip_the_encoders_and_give_the_same_loss():
    model = build(MoMESpec(experts=4, top_k=2, bottleneck=3))
    x = inputs()
    with torch.no_grad():
        online = model(TEXTS, **x)
        encoded = model.encode(**x)
    calls = count_calls(dict(model.encoders))
    with torch.no_grad():
        offline = model(TEXTS, features=encoded)
        mixed = model(TEXTS, audio=x["audio"], audio_lengths=x["audio_lengths"], features={"video": encoded["video"]})
    assert calls == {"audio": 1, "video": 0}
    assert torch.equal(online.loss, offline.loss) and torch.equal(online.loss, mixed.loss)
    assert model.decode_from_features(encoded, (4, 3), max_new_tokens=4) == model.decode(
        rates=(4, 3), max_new_tokens=4, **x
    )
    with pytest.raises(ValueError, match=r"precomputed audio features must be \(batch, frames, 16\)"):
        model(TEXTS, video=x["video"], features={"audio": (torch.zeros(2, 5, 7), None)})
    with pytest.raises(ValueError, match="both raw video input and precomputed video features"):
        model(TEXTS, **x, features={"video": encoded["video"]})


def test_ctc_weight_adds_a_ctc_loss_on_each_projected_sequence_against_the_llm_embeddings():
    model = build(MoMESpec(experts=4, top_k=2, shared_experts=1, bottleneck=4), ctc_weight=0.3)
    targets = model.llm.tokenize(TEXTS)
    out = model(TEXTS, **inputs())
    # the combination: (1 - w) * CE + w * CTC + balance_weight * balance
    expected = 0.7 * out.ce_loss + 0.3 * out.ctc_loss + model.balance_weight * out.balance_loss
    assert torch.allclose(out.loss, expected)
    # CTC is the mean over the four (modality, rate) sequences of torch's CTC against [embeddings; blank]
    projected = model.project(model.encode(**inputs()), model.rate_pairs)
    assert len(projected) == 4
    table = torch.cat([model.llm.hf.get_input_embeddings().weight, model.ctc_blank[None]])
    each = [
        nn.functional.ctc_loss(
            (x @ table.T).log_softmax(-1).transpose(0, 1),
            torch.cat(targets),
            n,
            torch.tensor([len(t) for t in targets]),
            blank=len(table) - 1,
            zero_infinity=True,
        )
        for x, n in projected.values()
    ]
    assert torch.allclose(out.ctc_loss, torch.stack(each).mean())
    # its gradient reaches the projectors and the blank, never the frozen embeddings
    out.ctc_loss.backward()
    assert model.ctc_blank.grad is not None and model.ctc_blank.grad.abs().sum() > 0
    assert model.projectors["audio"].projectors["2"][0].weight.grad.abs().sum() > 0
    assert model.llm.hf.get_input_embeddings().weight.grad is None


def test_ctc_is_near_zero_for_tokens_that_spell_the_transcript_and_off_by_default():
    model = build(video=False, audio_rates=(1,), ctc_weight=0.5)
    (ids,) = model.llm.tokenize(["hello world"])
    table = model.llm.hf.get_input_embeddings().weight
    with torch.no_grad():
        model.ctc_blank.copy_(-table.mean(0))  # far from every token
    # each token's embedding, scaled up (near one-hot after the softmax), with a blank between repeats
    spelled = torch.stack([50 * table[i] for i in ids.tolist()])[None]
    projected = {("audio", 1): (spelled, torch.tensor([len(ids)]))}
    assert model.ctc_loss(projected, [ids]) < 0.05
    shuffled = {("audio", 1): (spelled.flip(1), torch.tensor([len(ids)]))}
    assert model.ctc_loss(shuffled, [ids]) > 1.0
    # too few tokens for the transcript: zero_infinity makes it 0, not inf
    short = {("audio", 1): (spelled[:, :1], torch.tensor([1]))}
    assert len(ids) > 1 and model.ctc_loss(short, [ids]) == 0
    plain = build()
    assert plain.ctc_blank is None and plain(TEXTS, **inputs()).ctc_loss is None
    with pytest.raises(ValueError, match="ctc_weight"):
        build(ctc_weight=1.5)


def test_ctc_weight_one_trains_the_projectors_alone_without_an_llm_pass(monkeypatch):
    model = build(MoMESpec(experts=4, top_k=2, shared_experts=1, bottleneck=4), ctc_weight=1.0)
    with_llm = build(MoMESpec(experts=4, top_k=2, shared_experts=1, bottleneck=4), ctc_weight=0.5)
    with_llm.load_state_dict(model.state_dict())

    def no_llm_pass(*args, **kwargs):
        raise AssertionError("the LLM ran")

    monkeypatch.setattr(model.llm, "loss_per_row", no_llm_pass)
    out = model(TEXTS, **inputs())
    assert out.ce_loss is None and out.balance_loss is None and out.pair_losses == {}
    # the loss is the CTC term alone, the same CTC as with the LLM's cross-entropy beside it
    reference = with_llm(TEXTS, **inputs())
    assert torch.equal(out.loss, out.ctc_loss) and torch.allclose(out.ctc_loss, reference.ctc_loss)
    out.loss.backward()
    learning = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert "ctc_blank" in learning and learning <= {"ctc_blank"} | {
        name for name, _ in model.projectors.named_parameters(prefix="projectors")
    }
    assert any(name.startswith("projectors.video.") for name in learning)


def test_a_model_trained_by_ctc_alone_transcribes_by_best_path_ctc(monkeypatch):
    model = build(video=False, audio_rates=(1,), ctc_weight=1.0)
    table = model.llm.hf.get_input_embeddings().weight.detach()
    with torch.no_grad():
        model.ctc_blank.copy_(3 * torch.randn(table.shape[1], generator=torch.Generator().manual_seed(0)))
    blank = model.ctc_blank.detach()
    a, b = model.llm.tokenize(["hello world"])[0].tolist()[:2]
    # frames a a <blank> a b <blank> b b; the first row is 6 frames long, the second 4 (the rest is padding)
    frames = [table[a], table[a], blank, table[a], table[b], blank, table[b], table[b]]
    tokens = 50 * torch.stack(frames)[None].repeat(2, 1, 1)
    monkeypatch.setattr(model, "project", lambda features, pairs: {("audio", 1): (tokens, torch.tensor([6, 4]))})

    rows = model.decode_scored_from_features(features=None, rates=1, beam_size=4)
    # repeats merge, blanks go, a repeat across a blank stays; padding frames are never read
    assert [row["ids"].tolist() for row in rows] == [[a, a, b], [a, a]]
    assert all(row["ended"] and row["prompt_tokens"] == 0 for row in rows)
    assert rows[0]["log_probs"].shape == (3,) and bool((rows[0]["log_probs"] > -1e-3).all())  # near one-hot
    assert model.decode_from_features(None, rates=1) == [model.llm.detokenize(r["ids"]) for r in rows]
    # a decoding ctc_weight has nothing to weigh here (the LLM path is untrained): refused, not ignored
    with pytest.raises(ValueError, match="ctc_weight 0.5: the model was trained by CTC alone"):
        model.decode_scored_from_features(features=None, rates=1, beam_size=4, ctc_weight=0.5)
