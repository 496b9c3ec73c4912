"""Tiny Llama-family LLMs built offline: a byte-level BPE tokenizer trained on a few sentences and a
randomly initialised causal LM from a small config. For tests and the synthetic mini recipe."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoConfig, PreTrainedModel, PreTrainedTokenizerFast

from mome.models.llm import INSTRUCTIONS, build_llm

BOS, EOS = "<|begin_of_text|>", "<|end_of_text|>"


def train_tiny_tokenizer(texts: Iterable[str], vocab_size: int = 320) -> PreTrainedTokenizerFast:
    """Byte-level BPE (every string encodes, like Llama 3's tokenizer) trained on lower-cased ``texts`` and the
    task instructions."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" " + t.lower() for t in texts] + list(INSTRUCTIONS.values())
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS)


def tiny_llm_config(
    vocab_size: int,
    model_type: str = "llama",
    hidden_size: int = 32,
    layers: int = 2,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate_size: int = 64,
    bos_token_id: int = 0,
    eos_token_id: int = 1,
    tie_word_embeddings: bool = True,
    **extra,
):
    """Config of a small model of any Llama-family type; ``extra`` goes to the config unchanged."""
    return AutoConfig.for_model(
        model_type,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=2048,
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        tie_word_embeddings=tie_word_embeddings,
        **extra,
    )


def make_tiny_llm(
    texts: Iterable[str], out_dir: str | Path | None = None, vocab_size: int = 320, seed: int = 0, **config_kwargs
) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Tokenizer + random LLM; written with ``save_pretrained`` to ``out_dir`` when given."""
    tokenizer = train_tiny_tokenizer(texts, vocab_size)
    config = tiny_llm_config(
        len(tokenizer), bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, **config_kwargs
    )
    torch.manual_seed(seed)
    model = build_llm(config)
    if out_dir is not None:
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return model, tokenizer
