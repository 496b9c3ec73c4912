"""The frozen decoder-only LLM: loading, trainable marker tokens, prompt assembly and generation.

Any Hugging Face causal LM of the Llama family works (Llama, Qwen2, Mistral, SmolLM, ...): decoder layers at
``model.model.layers``, each with ``self_attn``, ``mlp`` and ``input_layernorm``. Every LLM weight is frozen.
The modality markers <audio> </audio> <video> </video> and the padding vector are a small trainable embedding
of their own, so the (possibly tied) vocabulary table stays frozen and the tokenizer untouched.

Prompt of one row (ASR / VSR drop the other modality and use their own instruction):
    <bos> <audio> A_1..A_n </audio> <video> V_1..V_m </video> "Transcribe speech and video to text." transcript <eos>
Rows are padded after the transcript for training (right) and before <bos> for generation (left), so that
the multimodal prefix and the text stay contiguous. Labels are -100 everywhere except transcript and <eos>.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from mome.errors import MomeError
from mome.text import normalize_text

IGNORE_INDEX = -100
MARKERS = ("<audio>", "</audio>", "<video>", "</video>", "<pad>")
INSTRUCTIONS = {
    ("audio", "video"): "Transcribe speech and video to text.",
    ("audio",): "Transcribe speech to text.",
    ("video",): "Transcribe video to text.",
}
# what each prompt position holds (PromptBatch.token_types): padding, <bos> and markers, modality tokens,
# the instruction, the transcript (and <eos>)
TOKEN_TYPES = ("other", "audio", "video", "instruction", "text")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


class LLMError(MomeError, ValueError):
    """An LLM directory or config that cannot serve as the frozen decoder."""


def tokenize_transcript(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of one transcript as the prompt holds it: normalised as references and scoring normalise
    (:func:`mome.text.normalize_text`: lower case, letters of any script, ``'`` for apostrophes), a leading
    space (it follows the instruction), no bos / eos. Used by the model and by the data loader's
    preprocessing alike."""
    return tokenizer(" " + normalize_text(text), add_special_tokens=False)["input_ids"]


def check_decoder_only(config: PretrainedConfig, source: str) -> None:
    if getattr(config, "is_encoder_decoder", False) or config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise LLMError(
            f"{source}: model_type {config.model_type!r} is not a decoder-only causal LM "
            "(expected a Llama-family model such as llama, qwen2, mistral)"
        )


def load_llm_config(path: str | Path) -> PretrainedConfig:
    """Config from a ``save_pretrained`` directory or a ``config.json``-style file; checked to be decoder-only."""
    path = Path(path)
    if path.is_dir():
        config = AutoConfig.from_pretrained(path)
    elif path.is_file():
        with open(path) as f:
            values = json.load(f)
        if "model_type" not in values:
            raise LLMError(f"{path}: LLM config has no 'model_type'")
        config = AutoConfig.for_model(**values)
    else:
        raise LLMError(f"LLM config {path} does not exist")
    check_decoder_only(config, str(path))
    return config


def build_llm(config: PretrainedConfig, dtype: torch.dtype | None = None) -> PreTrainedModel:
    """Randomly initialised causal LM from a config (tests, the mini recipe, meta-device accounting)."""
    check_decoder_only(config, f"config of type {type(config).__name__}")
    model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    decoder_layers(model)
    return model


def load_llm(path: str | Path, dtype: torch.dtype | None = None) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model and tokenizer from a local ``save_pretrained`` directory (no downloads)."""
    path = Path(path)
    config = load_llm_config(path)
    if not path.is_dir():
        raise LLMError(f"{path}: loading weights needs a save_pretrained directory, not a file")
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise LLMError(
            f"LLM directory {path} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
            "save one there with tokenizer.save_pretrained()"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, config=config, dtype=dtype, local_files_only=True)
    decoder_layers(model)
    return model, tokenizer


def unwrap(model: nn.Module) -> PreTrainedModel:
    """The Hugging Face model inside a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder layers of a Llama-family causal LM; a clear error for anything else."""
    inner = getattr(unwrap(model), "model", None)
    layers = getattr(inner, "layers", None)
    needed = ("self_attn", "mlp", "input_layernorm")
    if not isinstance(layers, nn.ModuleList) or not all(hasattr(layer, n) for layer in layers for n in needed):
        raise LLMError(
            f"{type(unwrap(model)).__name__} is not a Llama-family decoder-only LM "
            f"(expected model.layers[i] with {', '.join(needed)})"
        )
    return layers


@dataclass
class PromptBatch:
    inputs_embeds: torch.Tensor  # (B, L, d)
    attention_mask: torch.Tensor  # (B, L) long, 1 on real positions
    labels: torch.Tensor | None = None  # (B, L) long, IGNORE_INDEX outside transcript + <eos>
    token_types: torch.Tensor | None = None  # (B, L) long, an index into TOKEN_TYPES per position


class FrozenLLM(nn.Module):
    """A frozen causal LM plus its trainable marker embeddings, prompt builder and decoder."""

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, instructions: dict | None = None):
        super().__init__()
        decoder_layers(model)
        check_decoder_only(unwrap(model).config, type(unwrap(model)).__name__)
        model.requires_grad_(False)
        self.model = model  # replaced by a peft wrapper when LoRA adapters are attached
        self.tokenizer = tokenizer
        self.instructions = dict(INSTRUCTIONS if instructions is None else instructions)
        table = self.hf.get_input_embeddings().weight
        if len(tokenizer) > table.shape[0]:
            raise LLMError(
                f"tokenizer has {len(tokenizer)} tokens but the LLM's embedding table only {table.shape[0]} rows"
            )
        self.bos_id = tokenizer.bos_token_id
        self.eos_id = tokenizer.eos_token_id
        if self.eos_id is None:
            raise LLMError("the LLM tokenizer defines no eos token; set tokenizer.eos_token")
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_id
        self.markers = nn.Embedding(len(MARKERS), table.shape[1])
        std = 0.02 if table.is_meta else float(table.float().std())
        nn.init.normal_(self.markers.weight, std=std)

    @classmethod
    def from_pretrained(cls, path: str | Path, dtype: torch.dtype | None = None, **kwargs) -> FrozenLLM:
        return cls(*load_llm(path, dtype), **kwargs)

    @property
    def hf(self) -> PreTrainedModel:
        return unwrap(self.model)

    @property
    def hidden_size(self) -> int:
        return self.hf.get_input_embeddings().weight.shape[1]

    @property
    def layers(self) -> nn.ModuleList:
        return decoder_layers(self.model)

    # -- text -------------------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """Transcripts -> token ids (lower-cased, a leading space as after the instruction; no bos / eos)."""
        return [torch.tensor(tokenize_transcript(self.tokenizer, t), dtype=torch.long) for t in texts]

    def detokenize(self, ids: torch.Tensor) -> str:
        return self.tokenizer.decode(ids.tolist(), skip_special_tokens=True).strip()

    def instruction(self, modalities: tuple[str, ...]) -> str:
        if modalities not in self.instructions:
            raise ValueError(f"no instruction for modalities {modalities}; known: {list(self.instructions)}")
        return self.instructions[modalities]

    # -- prompt -----------------------------------------------------------------------------------------
    def _embed_ids(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        table = self.hf.get_input_embeddings()
        return table(torch.as_tensor(ids, dtype=torch.long, device=table.weight.device))

    def _marker(self, name: str) -> torch.Tensor:
        index = torch.tensor([MARKERS.index(name)], device=self.markers.weight.device)
        return self.markers(index)

    def build_prompt(
        self,
        sections: Sequence[tuple[str, torch.Tensor, torch.Tensor]],
        targets: Sequence[torch.Tensor] | None = None,
        padding_side: str = "right",
    ) -> PromptBatch:
        """Assemble the batch of prompts.

        sections: ``(modality, embeddings (B, T, d), lengths (B,))`` in prompt order, modality "audio" / "video";
        targets: transcript token ids per row (training), or None (generation).
        """
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if not sections:
            raise ValueError("a prompt needs at least one modality section")
        modalities = tuple(name for name, _, _ in sections)
        batch = sections[0][1].shape[0]
        if any(feats.shape[0] != batch or len(lens) != batch for _, feats, lens in sections):
            raise ValueError(f"modality batch sizes differ: {[(n, f.shape[0]) for n, f, _ in sections]}")
        if targets is not None and len(targets) != batch:
            raise ValueError(f"{len(targets)} transcripts for a batch of {batch}")
        dtype = self.hf.get_input_embeddings().weight.dtype
        head = self._embed_ids([self.bos_id]) if self.bos_id is not None else None
        instruction = self._embed_ids(
            self.tokenizer(self.instruction(modalities), add_special_tokens=False)["input_ids"]
        )
        rows, label_rows, type_rows = [], [], []
        for i in range(batch):
            pieces = [] if head is None else [head]
            types = [0] * len(pieces)
            for name, feats, lens in sections:
                n = int(lens[i])
                pieces += [self._marker(f"<{name}>"), feats[i, :n], self._marker(f"</{name}>")]
                types += [0, *[TOKEN_TYPES.index(name)] * n, 0]
            pieces.append(instruction)
            types += [TOKEN_TYPES.index("instruction")] * len(instruction)
            if targets is not None:
                ids = torch.cat(
                    [targets[i].to(instruction.device), torch.tensor([self.eos_id], device=instruction.device)]
                )
                prefix = sum(p.shape[0] for p in pieces)
                pieces.append(self._embed_ids(ids))
                types += [TOKEN_TYPES.index("text")] * len(ids)
                label_rows.append(torch.cat([torch.full((prefix,), IGNORE_INDEX, device=ids.device), ids]))
            rows.append(torch.cat([p.to(dtype) for p in pieces]))
            type_rows.append(torch.tensor(types, device=instruction.device))
        return self._pad(rows, label_rows if targets is not None else None, padding_side, type_rows)

    def _pad(
        self,
        rows: list[torch.Tensor],
        label_rows: list[torch.Tensor] | None,
        side: str,
        type_rows: list[torch.Tensor] | None = None,
    ) -> PromptBatch:
        longest = max(r.shape[0] for r in rows)
        pad = self._marker("<pad>").to(rows[0].dtype)
        embeds = pad.expand(len(rows), longest, -1).clone()
        mask = torch.zeros(len(rows), longest, dtype=torch.long, device=embeds.device)
        labels = torch.full_like(mask, IGNORE_INDEX) if label_rows is not None else None
        types = torch.zeros_like(mask) if type_rows is not None else None
        for i, row in enumerate(rows):
            span = slice(0, row.shape[0]) if side == "right" else slice(longest - row.shape[0], longest)
            embeds[i, span] = row
            mask[i, span] = 1
            if labels is not None:
                labels[i, span] = label_rows[i]
            if types is not None:
                types[i, span] = type_rows[i]
        return PromptBatch(embeds, mask, labels, types)

    # -- running ----------------------------------------------------------------------------------------
    def forward(self, batch: PromptBatch):
        """Causal-LM output; ``.loss`` is the mean cross-entropy over transcript + <eos> tokens when labelled."""
        return self.hf(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask, labels=batch.labels)

    def loss_per_row(self, batch: PromptBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed cross-entropy, number of labelled tokens) of each row, both (B,) float32: the loss of any
        group of rows is ``sums[rows].sum() / counts[rows].sum()`` (what ``forward(...).loss`` gives for all).
        The output head runs only on the labelled positions of each row (rows of a batch may have their
        transcripts at different places: rate pairs stacked in one pass), on the decoder's final hidden states
        (the Llama family's head: no logit scaling)."""
        if batch.labels is None:
            raise ValueError("loss_per_row needs a labelled prompt (build_prompt with targets)")
        labels = nn.functional.pad(batch.labels, (0, 1), value=IGNORE_INDEX)[:, 1:]  # position t predicts t + 1
        hidden = self.hf.model(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask).last_hidden_state
        rows, positions = (labels != IGNORE_INDEX).nonzero(as_tuple=True)
        logits = self.hf.get_output_embeddings()(hidden[rows, positions])
        losses = nn.functional.cross_entropy(logits.float(), labels[rows, positions], reduction="none")
        sums = torch.zeros(len(labels), device=losses.device).index_add(0, rows, losses)
        return sums, torch.bincount(rows, minlength=len(labels)).float()

    def _generation_config(self, beam_size: int, max_new_tokens: int, min_new_tokens: int = 0) -> GenerationConfig:
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens,
            num_beams=beam_size,  # Hugging Face's name of the beam width
            do_sample=False,
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
            bos_token_id=self.bos_id,
        )

    @staticmethod
    def _check_left_padded(batch: PromptBatch) -> None:
        if batch.attention_mask[:, -1].min() == 0:
            raise ValueError("generation needs left-padded prompts (build_prompt(..., padding_side='left'))")

    def _cut_at_eos(self, row: torch.Tensor) -> torch.Tensor:
        ends = (row == self.eos_id).nonzero()
        return row[: int(ends[0])] if len(ends) else row

    @torch.no_grad()
    def generate_ids(
        self, batch: PromptBatch, beam_size: int = 1, max_new_tokens: int = 32, min_new_tokens: int = 0
    ) -> list[torch.Tensor]:
        """New token ids per row, cut before <eos>. Greedy (beam_size=1) or beam search with KV cache; never
        samples. Prompts must be left-padded. ``min_new_tokens``: <eos> is barred before that many new tokens
        (benchmarks fix the decoding length with it)."""
        self._check_left_padded(batch)
        config = self._generation_config(beam_size, max_new_tokens, min_new_tokens)
        new_tokens = self.hf.generate(
            inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask, generation_config=config
        )
        return [self._cut_at_eos(row) for row in new_tokens]

    @torch.no_grad()
    def generate_scored(
        self,
        batch: PromptBatch,
        beam_size: int = 1,
        max_new_tokens: int = 32,
        logits_processor: LogitsProcessor | None = None,
    ) -> list[tuple[torch.Tensor, torch.Tensor, bool]]:
        """Per row ``(ids (N,), log_probs (M,), ended)``: the new token ids cut before <eos> (as
        :meth:`generate_ids`), the natural-log probability the decoder gave each chosen token (the <eos> included
        when the hypothesis ended: ``M = N + 1``, else ``M = N``), from Hugging Face's
        ``compute_transition_scores`` (beam search: the chosen beam's per-step log-softmax, which sum to the
        beam's score before length normalisation; greedy: the log-softmax of the logits).
        ``logits_processor`` (e.g. :class:`~mome.models.ctc_prefix.CTCPrefixLogitsProcessor`) changes the
        scores the search ranks by; ``log_probs`` stay the decoder's own."""
        self._check_left_padded(batch)
        config = self._generation_config(beam_size, max_new_tokens)
        config.output_scores = logits_processor is None
        config.output_logits = logits_processor is not None  # the decoder's own scores, not the processed ones
        config.return_dict_in_generate = True
        out = self.hf.generate(
            inputs_embeds=batch.inputs_embeds,
            attention_mask=batch.attention_mask,
            generation_config=config,
            logits_processor=None if logits_processor is None else LogitsProcessorList([logits_processor]),
        )
        beam_indices = getattr(out, "beam_indices", None) if beam_size > 1 else None
        scores = self.hf.compute_transition_scores(
            out.sequences,
            out.scores if logits_processor is None else out.logits,
            beam_indices,
            normalize_logits=beam_indices is None or logits_processor is not None,
        )
        rows = []
        for row, row_scores in zip(out.sequences, scores):
            ids = self._cut_at_eos(row)
            ended = len(ids) < len(row) and int(row[len(ids)]) == self.eos_id
            rows.append((ids, row_scores[: len(ids) + int(ended)].float(), ended))
        return rows

    def generate(self, batch: PromptBatch, beam_size: int = 1, max_new_tokens: int = 32) -> list[str]:
        """Transcripts decoded from :meth:`generate_ids`."""
        return [self.detokenize(ids) for ids in self.generate_ids(batch, beam_size, max_new_tokens)]
