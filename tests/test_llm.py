"""The frozen LLM wrapper: loading, errors, prompt layout, labels, padding and generation."""

from __future__ import annotations

import json

import pytest
import torch

from mome.models.llm import IGNORE_INDEX, MARKERS, FrozenLLM, LLMError, build_llm, load_llm_config
from mome.models.tiny_llm import make_tiny_llm, tiny_llm_config

TEXTS = ["Hello World", "the quick brown fox jumps"]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_llm(**kwargs) -> FrozenLLM:
    return FrozenLLM(*make_tiny_llm(TEXTS, **kwargs))


def sections(llm: FrozenLLM, lengths=((4, 2), (3, 1))):
    gen = torch.Generator().manual_seed(3)
    (a0, a1), (v0, v1) = lengths
    audio = torch.randn(2, max(a0, a1), llm.hidden_size, generator=gen)
    video = torch.randn(2, max(v0, v1), llm.hidden_size, generator=gen)
    return [("audio", audio, torch.tensor([a0, a1])), ("video", video, torch.tensor([v0, v1]))]


def test_weights_frozen_markers_trainable():
    llm = tiny_llm()
    assert not any(p.requires_grad for p in llm.model.parameters())
    assert llm.markers.weight.requires_grad and llm.markers.weight.shape == (len(MARKERS), llm.hidden_size)
    assert [n for n, p in llm.named_parameters() if p.requires_grad] == ["markers.weight"]


def test_prompt_layout_labels_and_right_padding():
    llm = tiny_llm()
    secs = sections(llm)
    targets = llm.tokenize(TEXTS)
    assert torch.equal(targets[0], llm.tokenize(["hello world"])[0])  # lower-cased
    batch = llm.build_prompt(secs, targets, "right")
    table = llm.hf.get_input_embeddings()
    instruction = llm.tokenizer("Transcribe speech and video to text.", add_special_tokens=False)["input_ids"]
    marker = llm.markers.weight
    for i, (a, v) in enumerate([(4, 3), (2, 1)]):
        expected = torch.cat(
            [
                table(torch.tensor([llm.bos_id])),
                marker[0:1],
                secs[0][1][i, :a],
                marker[1:2],
                marker[2:3],
                secs[1][1][i, :v],
                marker[3:4],
                table(torch.tensor(instruction)),
                table(torch.cat([targets[i], torch.tensor([llm.eos_id])])),
            ]
        )
        n = expected.shape[0]
        assert torch.equal(batch.inputs_embeds[i, :n], expected)
        assert batch.attention_mask[i].tolist() == [1] * n + [0] * (batch.attention_mask.shape[1] - n)
        assert torch.equal(batch.inputs_embeds[i, n:], marker[4:5].expand(batch.inputs_embeds.shape[1] - n, -1))
        labels = batch.labels[i]
        t = len(targets[i]) + 1
        assert labels[: n - t].eq(IGNORE_INDEX).all() and labels[n:].eq(IGNORE_INDEX).all()
        assert labels[n - t : n].tolist() == targets[i].tolist() + [llm.eos_id]


def test_left_padding_for_generation_and_task_instructions():
    llm = tiny_llm()
    batch = llm.build_prompt(sections(llm), None, "left")
    assert batch.labels is None
    assert batch.attention_mask[:, -1].tolist() == [1, 1] and batch.attention_mask[1, 0] == 0
    with pytest.raises(ValueError, match="left-padded"):
        llm.generate(llm.build_prompt(sections(llm), None, "right"))
    asr = llm.build_prompt(sections(llm)[:1], None, "left")
    vsr = llm.build_prompt(sections(llm)[1:], None, "left")
    n_asr = len(llm.tokenizer("Transcribe speech to text.", add_special_tokens=False)["input_ids"])
    n_vsr = len(llm.tokenizer("Transcribe video to text.", add_special_tokens=False)["input_ids"])
    assert asr.inputs_embeds.shape[1] == 1 + 2 + 4 + n_asr and vsr.inputs_embeds.shape[1] == 1 + 2 + 3 + n_vsr


def test_loss_only_on_transcript():
    llm = tiny_llm()
    batch = llm.build_prompt(sections(llm), llm.tokenize(TEXTS), "right")
    out = llm(batch)
    logits, labels = out.logits[:, :-1], batch.labels[:, 1:]
    keep = labels != IGNORE_INDEX
    manual = torch.nn.functional.cross_entropy(logits[keep], labels[keep])
    assert torch.allclose(out.loss, manual, atol=1e-6)


def test_ragged_batch_matches_single_rows():
    llm = tiny_llm(initializer_range=0.3)
    secs = sections(llm)
    targets = llm.tokenize(TEXTS)
    batch = llm.build_prompt(secs, targets, "right")
    logits = llm(batch).logits
    gen = llm.generate(llm.build_prompt(secs, None, "left"), max_new_tokens=8)
    for i in range(2):
        row = [(name, x[i : i + 1], lens[i : i + 1]) for name, x, lens in secs]
        single = llm.build_prompt(row, targets[i : i + 1], "right")
        n = single.inputs_embeds.shape[1]
        assert torch.allclose(llm(single).logits[0], logits[i, :n], atol=1e-5)
        assert llm.generate(llm.build_prompt(row, None, "left"), max_new_tokens=8) == [gen[i]]


def test_greedy_and_beam_generation_lengths():
    llm = tiny_llm(initializer_range=0.3)
    batch = llm.build_prompt(sections(llm), None, "left")
    greedy = llm.generate(batch, beam_size=1, max_new_tokens=3)
    beam = llm.generate(batch, beam_size=4, max_new_tokens=3)
    assert len(greedy) == len(beam) == 2 and all(isinstance(t, str) for t in greedy + beam)
    ids = llm.generate_ids(batch, beam_size=1, max_new_tokens=3) + llm.generate_ids(
        batch, beam_size=4, max_new_tokens=3
    )
    assert all(len(row) <= 3 and llm.eos_id not in row.tolist() for row in ids)
    assert [llm.detokenize(row) for row in ids] == greedy + beam
    assert llm.generate(batch, beam_size=4, max_new_tokens=3) == beam  # deterministic: never samples


def test_load_from_directory_and_errors(tmp_path):
    make_tiny_llm(TEXTS, out_dir=tmp_path / "llm")
    llm = FrozenLLM.from_pretrained(tmp_path / "llm")
    assert llm.eos_id == llm.tokenizer.eos_token_id and not any(p.requires_grad for p in llm.model.parameters())
    bare = tmp_path / "no_tok"
    make_tiny_llm(TEXTS)[0].save_pretrained(bare)
    with pytest.raises(LLMError, match=r"LLM directory .*no_tok has no tokenizer"):
        FrozenLLM.from_pretrained(bare)
    t5 = tmp_path / "t5.json"
    t5.write_text(json.dumps({"model_type": "t5", "d_model": 32, "num_layers": 1, "vocab_size": 50}))
    with pytest.raises(LLMError, match="'t5' is not a decoder-only causal LM"):
        load_llm_config(t5)
    from transformers import BertConfig

    with pytest.raises(LLMError, match="not a Llama-family decoder-only LM"):
        build_llm(
            BertConfig(
                hidden_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=64,
                vocab_size=50,
                is_decoder=True,
            )
        )
    with pytest.raises(LLMError, match="does not exist"):
        load_llm_config(tmp_path / "missing.json")


def test_tokenizer_larger_than_vocab_is_rejected():
    model, tokenizer = make_tiny_llm(TEXTS)
    small = build_llm(tiny_llm_config(vocab_size=10))
    with pytest.raises(LLMError, match=r"tokenizer has \d+ tokens but the LLM's embedding table only 10 rows"):
        FrozenLLM(small, tokenizer)


def test_loss_per_row_equals_each_rows_cross_entropy_from_full_logits():
    """The head runs only on each row's labelled positions; the sums are those of the full logits' cross-entropy,
    also for rows whose transcripts start at different places."""
    llm = tiny_llm(initializer_range=0.3)
    secs = sections(llm)
    short = [(name, x, torch.minimum(lens, torch.tensor(1))) for name, x, lens in secs]  # shorter prompts
    batch = llm.build_prompt(secs, llm.tokenize(TEXTS), "right")
    other = llm.build_prompt(short, llm.tokenize(TEXTS), "right")
    for b in (batch, other):
        sums, counts = llm.loss_per_row(b)
        logits, labels = llm(b).logits[:, :-1], b.labels[:, 1:]
        for i in range(len(labels)):
            keep = labels[i] != IGNORE_INDEX
            manual = torch.nn.functional.cross_entropy(logits[i][keep], labels[i][keep], reduction="sum")
            assert torch.allclose(sums[i], manual, atol=1e-4) and counts[i] == keep.sum()
        assert torch.allclose(sums.sum() / counts.sum(), llm(b).loss, atol=1e-6)
