"""The mini recipe's stand-in for a pretrained LLM: a small Llama trained on the text of mini_lrs3's world.

MoME keeps its LLM frozen, so the LLM must already write the language before the AVSR model is trained. With
no real LLM on a fresh machine, the mini recipe makes one: a SentencePiece tokenizer (BPE, ESPnet's usual
unit; BPE so that transformers' Llama tokenizer reads it exactly) and a small ``LlamaForCausalLM``, trained
with Hugging Face's ``Trainer`` and saved with ``save_pretrained`` (model and tokenizer), so that training
configs load it as ``llm: hf`` exactly like a real Llama directory.

Its text is an endless stream of documents of ``block_size`` tokens, made of sentences of the corpus grammar
(:class:`mome.data.synth.text.Grammar`) from which the test and validation sentences are removed, with
``</s>`` after each. Besides plain sentences, a document holds:

- repeats: an earlier sentence of the document again, half of the time after a transcription instruction.
  Real LLMs copy from their context (induction heads) and follow instructions; a small model trained on
  sentences that never repeat learns neither, and an LLM-based recogniser leans on both.
- spellings: a sentence written in a sound or a mouth-shape script (the phonemes or the visemes of its
  words, one token per unit, from pronunciation lexicons of the training set's alignments, units dropped,
  doubled and swapped at random as a frame-rate reader would see them), then the instruction of that
  modality and the sentence in words. Real LLMs know how words sound and read phonetic spellings; that
  knowledge is what lets a frozen LLM turn an encoder's phone-like states into words. Without it, the mini
  model's frozen LLM learns to read its phoneme-level encoder far too slowly for this machine (measured:
  egs/mini_lrs3/avsr/RESULTS.md).

The LM never sees audio, video or any sentence of the test and validation sets.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from mome.atomic import replace_dir, staging_dir
from mome.models.llm import INSTRUCTIONS

log = logging.getLogger(__name__)

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# the scripts a sentence can be spelled in: modality -> prefix of its unit tokens ("<ph:D>", "<vi:PP>")
SCRIPT_PREFIXES = {"audio": "ph:", "video": "vi:"}

Lexicon = Mapping[str, tuple[list[tuple[str, ...]], np.ndarray]]  # word -> (pronunciations, probabilities)


@dataclass
class LMConfig:
    """Sizes of the stand-in LLM and its pretraining (defaults: the mini recipe's)."""

    vocab_size: int = 1024
    hidden_size: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 256
    block_size: int = 128  # tokens per training document (longer than the AVSR prompts it will read)
    repeat_p: float = 0.2  # share of a document's sentences that repeat an earlier one
    instruction_p: float = 0.5  # chance that a repeat follows a transcription instruction
    spelling_p: float = 0.5  # share of a document's sentences spelled in a script first (given lexicons)
    drop_p: float = 0.05  # a spelled unit left out
    double_p: float = 0.3  # a spelled unit written twice
    swap_p: float = 0.05  # a spelled unit replaced by a random one of its script
    batch_size: int = 32
    max_steps: int = 2400
    lr: float = 4e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    seed: int = 0


def read_sentences(paths: Iterable[str | Path]) -> set[str]:
    """The transcripts of Kaldi ``text`` files (``<utt> words...``), lower-cased: sentences to keep out."""
    sentences = set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                parts = line.split(maxsplit=1)
                if len(parts) == 2:
                    sentences.add(" ".join(parts[1].lower().split()))
    return sentences


def grammar_sentences(
    seed: int, exclude: Collection[str], max_words: int = 9, pool: Sequence[str] = ()
) -> Iterator[str]:
    """An endless stream of grammar sentences (lower-case words), none of them in ``exclude``; with ``pool``,
    sentences drawn from it instead (the small learning test's LM knows only its training sentences)."""
    from mome.data.synth.text import Grammar

    rng = np.random.default_rng([seed, 7])
    pool = [s for s in pool if s not in exclude]
    grammar = None if pool else Grammar(rng)
    while True:
        sentence = pool[rng.integers(len(pool))] if pool else grammar.sentence(max_words=max_words)
        if sentence not in exclude:
            yield sentence


def unit_token(modality: str, unit: str) -> str:
    return f"<{SCRIPT_PREFIXES[modality]}{unit}>"


def train_tokenizer(sentences: Iterable[str], out_dir: str | Path, vocab_size: int, unit_tokens: Iterable[str] = ()):
    """A SentencePiece BPE model trained on ``sentences`` and the instructions, with each of ``unit_tokens`` as a
    token of its own, written to ``out_dir`` as a transformers ``LlamaTokenizer`` (``save_pretrained``)."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "text.txt"
        corpus.write_text("\n".join([*sentences, *INSTRUCTIONS.values()]) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "tokenizer"),
            vocab_size=vocab_size,
            model_type="bpe",
            character_coverage=1.0,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            unk_piece=UNK,
            bos_piece=BOS,
            eos_piece=EOS,
            user_defined_symbols=list(unit_tokens),
            minloglevel=2,
            num_threads=1,
        )
        tokenizer = LlamaTokenizer.from_pretrained(tmp, local_files_only=True)  # converts tokenizer.model
    tokenizer.save_pretrained(out_dir)
    return tokenizer


class Speller:
    """Writes sentences in the script of one modality: each word's units (a pronunciation drawn from the
    lexicon) as unit tokens, with the noise of a frame-rate reader (drops, doubles, swaps)."""

    def __init__(self, tokenizer, modality: str, lexicon: Lexicon, config: LMConfig):
        self.lexicon, self.config = lexicon, config
        units = sorted({u for prons, _ in lexicon.values() for pron in prons for u in pron})
        self.ids = {u: tokenizer.convert_tokens_to_ids(unit_token(modality, u)) for u in units}
        self.all_ids = np.array(list(self.ids.values()))

    def spell(self, sentence: str, rng: np.random.Generator, noise: bool = True) -> list[int] | None:
        """Unit token ids of ``sentence``, or None when a word has no pronunciation."""
        c, out = self.config, []
        for word in sentence.split():
            if word not in self.lexicon:
                return None
            prons, probs = self.lexicon[word]
            for unit in prons[rng.choice(len(prons), p=probs)]:
                token = self.ids[unit]
                r = rng.random() if noise else 1.0
                if r < c.drop_p:
                    continue
                if r < c.drop_p + c.swap_p:
                    token = int(self.all_ids[rng.integers(len(self.all_ids))])
                out += [token, token] if rng.random() < (c.double_p if noise else 0) else [token]
        return out


class GrammarDocuments(torch.utils.data.IterableDataset):
    """Documents of ``block_size`` token ids: ``<s> s_1 </s> s_2 </s> ...`` with repeats and spellings (module
    docstring); ``lexicons`` (modality -> lexicon) gives the scripts, none: no spellings."""

    def __init__(
        self,
        tokenizer,
        config: LMConfig,
        exclude: Collection[str],
        seed: int,
        lexicons: Mapping[str, Lexicon] = {},
        pool: Sequence[str] = (),
    ):
        self.tokenizer, self.config, self.exclude, self.seed, self.pool = tokenizer, config, exclude, seed, pool
        self.instructions = {m: self.words(s) for m, s in INSTRUCTIONS.items()}
        self.spellers = {m: Speller(tokenizer, m, lex, config) for m, lex in lexicons.items()}
        # the spellings a document can hold: each script alone, and all of them (the AVSR prompt's order)
        self.script_sets = [(m,) for m in self.spellers] + ([tuple(self.spellers)] if len(self.spellers) > 1 else [])

    def words(self, text: str) -> list[int]:
        return self.tokenizer(" " + text, add_special_tokens=False)["input_ids"]

    def spelled(
        self, sentence: str, modalities: tuple[str, ...], rng: np.random.Generator, noise: bool = True
    ) -> list[int] | None:
        """The sentence's spellings in the scripts of ``modalities``, the instruction, then its words."""
        ids = []
        for modality in modalities:
            units = self.spellers[modality].spell(sentence, rng, noise)
            if units is None:
                return None
            ids += units
        return ids + self.instructions[modalities] + self.words(sentence)

    def __iter__(self):
        c, eos = self.config, self.tokenizer.eos_token_id
        rng = np.random.default_rng([self.seed, 11])
        sentences = grammar_sentences(self.seed, self.exclude, pool=self.pool)
        while True:
            ids, seen = [self.tokenizer.bos_token_id], []
            while len(ids) < c.block_size:
                r = rng.random()
                if self.script_sets and r < c.spelling_p:
                    modalities = self.script_sets[rng.integers(len(self.script_sets))]
                    piece = self.spelled(next(sentences), modalities, rng)
                    if piece is None:
                        continue
                elif seen and r < c.spelling_p + c.repeat_p:
                    instruction = self.instructions[("audio", "video")] if rng.random() < c.instruction_p else []
                    piece = instruction + self.words(seen[rng.integers(len(seen))])
                else:
                    seen.append(next(sentences))
                    piece = self.words(seen[-1])
                ids += [*piece, eos]
            ids = torch.tensor(ids[: c.block_size])
            yield {"input_ids": ids, "labels": ids}


def build_model(tokenizer, config: LMConfig):
    from transformers import LlamaForCausalLM

    from mome.models.tiny_llm import tiny_llm_config

    hf_config = tiny_llm_config(
        len(tokenizer),
        hidden_size=config.hidden_size,
        layers=config.layers,
        heads=config.heads,
        kv_heads=config.kv_heads,
        intermediate_size=config.intermediate_size,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(config.seed)
    return LlamaForCausalLM(hf_config)


@torch.no_grad()
def evaluate(model, documents: GrammarDocuments, sentences: list[str]) -> dict[str, float]:
    """On ``sentences``: per-word perplexity (each ``<s> sentence </s>``); ``copy``: the share of a sentence's
    tokens predicted right (greedy, teacher-forced) when it repeats after an instruction; ``read_<modalities>``:
    the same after its noise-free spelling in those scripts (sentences with an unknown word left out)."""
    model.eval()
    tok, eos = documents.tokenizer, documents.tokenizer.eos_token_id
    rng = np.random.default_rng(0)
    nll, words = 0.0, 0
    right: dict[str, list[int]] = {}

    def score(name: str, prefix: list[int], target: list[int]) -> None:
        doc = torch.tensor([[tok.bos_token_id, *prefix, *target]])
        predicted = model(doc).logits[0, -len(target) - 1 : -1].argmax(-1)
        counts = right.setdefault(name, [0, 0])
        counts[0] += int((predicted == doc[0, -len(target) :]).sum())
        counts[1] += len(target)

    for sentence in sentences:
        target = documents.words(sentence) + [eos]
        plain = torch.tensor([[tok.bos_token_id, *target]])
        nll += float(model(plain, labels=plain).loss) * len(target)
        words += len(sentence.split()) + 1  # the words and the end of the sentence
        score("copy", target + documents.instructions[("audio", "video")], target)
        for modalities in documents.script_sets:
            spelled = documents.spelled(sentence, modalities, rng, noise=False)
            if spelled is not None:
                n = len(documents.words(sentence))
                score("read_" + "_".join(modalities), spelled[:-n], target)
    return {"perplexity_per_word": math.exp(nll / words), **{k: a / max(b, 1) for k, (a, b) in right.items()}}


def evaluation_log(documents: GrammarDocuments, sentences: list[str], every: int):
    """A ``TrainerCallback`` that logs :func:`evaluate` every ``every`` steps (how copying and reading emerge)."""
    from transformers import TrainerCallback

    class EvaluationLog(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step % every == 0 and state.global_step < state.max_steps:
                figures = evaluate(model, documents, sentences)
                model.train()
                log.info("step %d: %s", state.global_step, ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))

    return EvaluationLog()


def pretrain_lm(
    out_dir: str | Path,
    exclude: Collection[str],
    config: LMConfig | None = None,
    eval_sentences: list[str] | None = None,
    lexicons: Mapping[str, Lexicon] = {},
    pool: Sequence[str] = (),
) -> dict[str, float]:
    """Train the tokenizer and the LM and write both to ``out_dir`` (``save_pretrained``), with
    ``pretraining.json`` (settings and figures); whole or not at all (a temporary directory renamed at the end).
    ``lexicons``: modality -> pronunciation lexicon (:func:`mome.data.synth.alignments.read_lexicon`) of the
    scripts to spell sentences in; ``pool``: sentences to train on instead of the grammar's. Returns the evaluation
    figures on ``eval_sentences``."""
    from transformers import Trainer, TrainingArguments

    config = config or LMConfig()
    unknown = set(lexicons) - set(SCRIPT_PREFIXES)
    if unknown:
        raise ValueError(f"lexicons of unknown modalities {sorted(unknown)}; known: {sorted(SCRIPT_PREFIXES)}")
    out_dir = Path(out_dir)
    work = staging_dir(out_dir)  # the directory appears whole at the end, or not at all
    try:
        stream = grammar_sentences(config.seed + 1, exclude, pool=pool)
        units = [
            unit_token(m, u)
            for m, lex in lexicons.items()
            for u in sorted({u for p, _ in lex.values() for q in p for u in q})
        ]
        tokenizer = train_tokenizer([next(stream) for _ in range(50000)], work, config.vocab_size, units)
        model = build_model(tokenizer, config)
        log.info(
            "stand-in LLM: %d parameters, vocabulary %d (%d script units)",
            model.num_parameters(),
            len(tokenizer),
            len(units),
        )
        documents = GrammarDocuments(tokenizer, config, exclude, config.seed, lexicons, pool)
        args = TrainingArguments(
            output_dir=str(work / "trainer"),
            max_steps=config.max_steps,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.lr,
            warmup_steps=config.warmup_steps,
            lr_scheduler_type="cosine",
            weight_decay=config.weight_decay,
            adam_beta2=0.98,
            logging_steps=max(config.max_steps // 20, 1),
            save_strategy="no",
            report_to="none",
            use_cpu=True,
            seed=config.seed,
            dataloader_num_workers=0,
            disable_tqdm=not os.isatty(2),
        )
        callbacks = (
            [evaluation_log(documents, eval_sentences[:50], max(config.max_steps // 6, 1))] if eval_sentences else []
        )
        Trainer(model=model, args=args, train_dataset=documents, callbacks=callbacks).train()
        shutil.rmtree(work / "trainer", ignore_errors=True)
        figures = evaluate(model, documents, eval_sentences) if eval_sentences else {}
        log.info("stand-in LLM: %s", ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
        model.save_pretrained(work)
        (work / "pretraining.json").write_text(json.dumps({**asdict(config), **figures}, indent=1) + "\n")
        replace_dir(work, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return figures
