"""What the names in a training config build: the LLM, the compressor settings, encoders and adapters.

ESPnet's ``ClassChoices`` pairs a config name (``llm: tiny``) with a class whose keyword arguments are the
``<name>_conf`` mapping; ESPnet prints their defaults with ``--print_config``. The LLM and compressor
choices are the small spec classes below (each with a ``build``); the encoder choices are the encoder
classes themselves, built through :mod:`mome.models.encoders.factory`; the adapter choices are the
adapter specs of :mod:`mome.models` (``mome`` -> ``MoMESpec``, ``lora`` / ``mtsk_*`` -> ``LoRASpec``).

    llm: hf        llm_conf: {path: pretrained/Llama-3.2-1B}                       # local save_pretrained dir
    llm: tiny      llm_conf: {tokenizer_dir: exp/tiny_llm, texts: data/train/text, hidden_size: 64}
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from mome.errors import MomeError

log = logging.getLogger(__name__)


class ConfigError(MomeError, ValueError):
    """A config option with a value we cannot use; the message names the option."""


def make(cls, option: str, conf: dict | None, **fixed):
    """``cls(**fixed, **conf)`` with an error naming ``<option>_conf`` and the allowed keys on a bad key."""
    conf = dict(conf or {})
    try:
        return cls(**fixed, **conf)
    except TypeError as e:
        import inspect

        allowed = [n for n in inspect.signature(cls).parameters if n not in ("self", "args", "kwargs", *fixed)]
        raise ConfigError(f"{option}_conf: {e}; allowed keys for {cls.__name__}: {allowed}") from None


def expand_path(value: str | None, option: str) -> str | None:
    """A path option with ``$VAR`` / ``${VAR}`` expanded (configs write ``${MOME_PRETRAINED}/...``)."""
    if value is None:
        return None
    expanded = os.path.expandvars(str(value))
    if "$" in expanded:
        raise ConfigError(f"{option}: {value!r} names an environment variable that is not set (set it, e.g. in db.sh)")
    return expanded


# --------------------------------------------------------------------------------------------------
# The LLM
# --------------------------------------------------------------------------------------------------
@dataclass
class PretrainedLLM:
    """A Hugging Face decoder-only LM from a local ``save_pretrained`` directory (``path``), or randomly
    initialised from a config JSON (``config``, with the tokenizer of ``tokenizer``: smoke runs, accounting)."""

    path: str | None = None
    config: str | None = None
    tokenizer: str | None = None

    def __post_init__(self):
        self.path = expand_path(self.path, "llm_conf path")
        self.config = expand_path(self.config, "llm_conf config")
        self.tokenizer = expand_path(self.tokenizer, "llm_conf tokenizer")
        if (self.path is None) == (self.config is None):
            raise ConfigError("llm_conf: give exactly one of path (pretrained weights) or config (random weights)")
        if self.config is not None and self.tokenizer is None:
            raise ConfigError("llm_conf: config= needs tokenizer= (a directory holding the LLM's tokenizer)")
        for name in ("path", "tokenizer"):
            value = getattr(self, name)
            if value is not None and not Path(value).is_dir():
                raise ConfigError(f"llm_conf {name}: LLM directory {value} does not exist")
        if self.config is not None and not Path(self.config).exists():
            raise ConfigError(f"llm_conf config: LLM config {self.config} does not exist")

    @property
    def pretrained(self) -> bool:
        """Weights come from disk at build time (so checkpoints need not hold them)."""
        return self.path is not None

    def load_tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path or self.tokenizer, local_files_only=True)

    def build(self):
        from mome.models.llm import FrozenLLM, build_llm, load_llm_config

        if self.path is not None:
            return FrozenLLM.from_pretrained(self.path)
        return FrozenLLM(build_llm(load_llm_config(self.config)), self.load_tokenizer())


@dataclass
class TinyLLM:
    """A small random Llama-family LM built offline, with a byte-level BPE tokenizer trained on the
    transcripts of ``texts`` (a Kaldi ``text`` file) and kept in ``tokenizer_dir`` (trained there on first
    use, read from there afterwards, so that training and decoding share it)."""

    tokenizer_dir: str = "exp/tiny_llm"
    texts: str | None = None
    vocab_size: int = 320
    model_type: str = "llama"
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 128
    seed: int = 0

    pretrained = False  # random weights: checkpoints keep them

    def ensure_tokenizer(self) -> Path:
        target = Path(self.tokenizer_dir)
        if (target / "tokenizer.json").is_file():
            return target
        if self.texts is None or not Path(self.texts).is_file():
            raise ConfigError(
                f"llm_conf: tokenizer_dir {target} holds no tokenizer and texts ({self.texts}) is not a file "
                "to train one on"
            )
        from mome.models.tiny_llm import train_tiny_tokenizer

        with open(self.texts, encoding="utf-8") as f:
            transcripts = [line.split(maxsplit=1)[1] for line in f if len(line.split(maxsplit=1)) == 2]
        tokenizer = train_tiny_tokenizer(transcripts, self.vocab_size)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)  # atomic: parallel ranks may race here, one wins
            log.info("trained a %d-token tokenizer on %d transcripts of %s -> %s", len(tokenizer), len(transcripts), self.texts, target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not (target / "tokenizer.json").is_file():
                raise
        return target

    def load_tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.ensure_tokenizer(), local_files_only=True)

    def build(self):
        import torch

        from mome.models.llm import FrozenLLM, build_llm
        from mome.models.tiny_llm import tiny_llm_config

        tokenizer = self.load_tokenizer()
        config = tiny_llm_config(
            len(tokenizer),
            model_type=self.model_type,
            hidden_size=self.hidden_size,
            layers=self.layers,
            heads=self.heads,
            kv_heads=self.kv_heads,
            intermediate_size=self.intermediate_size,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            model = build_llm(config)
        return FrozenLLM(model, tokenizer)


LLM_CHOICES = {"hf": PretrainedLLM, "tiny": TinyLLM}


# --------------------------------------------------------------------------------------------------
# Matryoshka compression
# --------------------------------------------------------------------------------------------------
@dataclass
class MatryoshkaRates:
    """Compression rates per modality, trained jointly. ``rate_pairs`` (``[[4, 2], [16, 5]]``; 0 for an
    absent modality) restricts training to some pairs; default: every audio rate with every video rate."""

    audio_rates: Sequence[int] = (4, 16)
    video_rates: Sequence[int] = (2, 5)
    rate_pairs: Sequence[Sequence[int]] | None = None
    pooling: str = "avg"

    def pairs(self) -> list[tuple[int | None, int | None]] | None:
        if self.rate_pairs is None:
            return None
        pairs = []
        for pair in self.rate_pairs:
            if len(pair) != 2:
                raise ConfigError(f"compressor_conf rate_pairs: {pair} is not an (audio rate, video rate) pair")
            pairs.append(tuple(int(r) or None for r in pair))
        return pairs


COMPRESSOR_CHOICES = {"matryoshka": MatryoshkaRates}


# --------------------------------------------------------------------------------------------------
# Encoders and adapters
# --------------------------------------------------------------------------------------------------
def encoder_choices():
    from mome.models.encoders.avhubert import AVHubertVideoEncoder
    from mome.models.encoders.small import SmallAudioEncoder, SmallVideoEncoder
    from mome.models.encoders.whisper import WhisperAudioEncoder

    return {"whisper": WhisperAudioEncoder, "small": SmallAudioEncoder}, {"avhubert": AVHubertVideoEncoder, "small": SmallVideoEncoder}


def build_encoder(modality: str, kind: str, conf: dict | None):
    """An encoder through the factory; a Whisper ``config`` may be a JSON file."""
    from mome.models.encoders.factory import build_audio_encoder, build_video_encoder

    conf = dict(conf or {})
    if conf.get("path") is not None:
        conf["path"] = expand_path(conf["path"], f"{modality}_encoder_conf path")
    if kind == "whisper" and isinstance(conf.get("config"), str):
        import json

        with open(conf["config"]) as f:
            conf["config"] = json.load(f)
    build = build_audio_encoder if modality == "audio" else build_video_encoder
    try:
        return build(kind, **conf)
    except TypeError as e:
        raise ConfigError(f"{modality}_encoder_conf for {kind!r}: {e}") from None


ADAPTER_LORA_KINDS = {"lora": "lora", "mtsk_ms": "mtsk-ms", "mtsk_ss": "mtsk-ss", "mtsk_mss": "mtsk-mss"}


def adapter_choices():
    from mome.models.lora import LoRASpec
    from mome.models.mome import MoMESpec

    return {"mome": MoMESpec, **{name: LoRASpec for name in ADAPTER_LORA_KINDS}}


def build_adapter_spec(name: str | None, conf: dict | None):
    """The adapter spec of a config: None, a MoMESpec or a LoRASpec whose kind is the choice's name."""
    if name is None:
        if conf:
            raise ConfigError(f"llm_adapter_conf {conf} is given but llm_adapter is none")
        return None
    from mome.models.lora import LoRASpec
    from mome.models.mome import MoMESpec

    conf = dict(conf or {})
    if name == "mome":
        spec = make(MoMESpec, "llm_adapter", conf)
        if isinstance(spec.top_k, list):
            spec.top_k = [int(k) for k in spec.top_k]
        return spec
    if "kind" in conf:
        raise ConfigError(f"llm_adapter_conf: 'kind' is set by the adapter name ({name}); remove it")
    if name not in ADAPTER_LORA_KINDS:
        raise ConfigError(f"llm_adapter: unknown adapter {name!r}; choose one of mome, {', '.join(ADAPTER_LORA_KINDS)} or none")
    spec = make(LoRASpec, "llm_adapter", {**conf, "kind": ADAPTER_LORA_KINDS[name]})
    spec.targets = tuple(spec.targets)
    return spec


def dataclass_keys(cls) -> list[str]:
    return [f.name for f in fields(cls)]
