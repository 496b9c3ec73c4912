"""The registry: what each name in a training config builds (ESPnet's ``ClassChoices``, one per slot).

A slot's config name picks a class and ``<slot>_conf`` holds that class's keyword arguments, as in
``espnet2/tasks/asr.py``: ``<slot>_choices.get_class(args.<slot>)(**args.<slot>_conf)`` (:func:`build`);
ESPnet's ``--print_config`` shows the defaults of the classes' signatures. Adding an encoder, an adapter or a
compressor is one class and one entry here:

    audio_encoder / video_encoder   an :class:`~mome.models.encoders.base.Encoder`; pretrained weights come
                                    through the class's own ``path=`` (``${VAR}`` in it is expanded)
    llm                             a spec with ``build()`` / ``load_tokenizer()`` (below)
    llm_adapter                     an :class:`~mome.models.adapter.AdapterSpec` (``build(llm, n_scales)``)
    compressor                      a :class:`~mome.models.compressor.Compressor`
    preprocessor                    the data preprocessing (:class:`~mome.espnet.preprocess.AVSRPreprocessor`)

    llm: hf        llm_conf: {path: pretrained/Llama-3.2-1B}                       # local save_pretrained dir
    llm: tiny      llm_conf: {tokenizer_dir: exp/tiny_llm, texts: data/train/text, hidden_size: 64}
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from espnet2.train.class_choices import ClassChoices

from mome.errors import MomeError
from mome.espnet.preprocess import AVSRPreprocessor
from mome.models.adapter import AdapterSpec
from mome.models.compressor import Compressor, MatryoshkaCompressor
from mome.models.encoders.avhubert import AVHubertVideoEncoder
from mome.models.encoders.base import Encoder
from mome.models.encoders.small import SmallAudioEncoder, SmallVideoEncoder
from mome.models.encoders.whisper import WhisperAudioEncoder
from mome.models.lora import LoRASpec, MTSKPerScaleSpec, MTSKSharedAndPerScaleSpec, MTSKSharedSpec
from mome.models.mome import MoMESpec

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
            log.info(
                "trained a %d-token tokenizer on %d transcripts of %s -> %s",
                len(tokenizer),
                len(transcripts),
                self.texts,
                target,
            )
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


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------
audio_encoder_choices = ClassChoices(
    "audio_encoder",
    classes={"whisper": WhisperAudioEncoder, "small": SmallAudioEncoder},
    type_check=Encoder,
    optional=True,
)
video_encoder_choices = ClassChoices(
    "video_encoder",
    classes={"avhubert": AVHubertVideoEncoder, "small": SmallVideoEncoder},
    type_check=Encoder,
    optional=True,
)
llm_choices = ClassChoices("llm", classes={"hf": PretrainedLLM, "tiny": TinyLLM}, optional=True)
llm_adapter_choices = ClassChoices(
    "llm_adapter",
    classes={
        "mome": MoMESpec,
        "lora": LoRASpec,
        "mtsk_ms": MTSKSharedSpec,
        "mtsk_ss": MTSKPerScaleSpec,
        "mtsk_mss": MTSKSharedAndPerScaleSpec,
    },
    type_check=AdapterSpec,
    optional=True,
)
compressor_choices = ClassChoices(
    "compressor", classes={"matryoshka": MatryoshkaCompressor}, type_check=Compressor, default="matryoshka"
)
preprocessor_choices = ClassChoices("preprocessor", classes={"avsr": AVSRPreprocessor}, default="avsr")
ENCODER_CHOICES = {"audio": audio_encoder_choices, "video": video_encoder_choices}


def build(choices: ClassChoices, name: str | None, conf: dict | None, **fixed):
    """``choices.get_class(name)(**fixed, **conf)`` (None for no name), every error naming the option.

    A ``path`` in ``conf`` may name environment variables (``${MOME_PRETRAINED}/...``): they are expanded."""
    if name is None:
        if conf:
            raise ConfigError(f"{choices.name}_conf {conf} is given but {choices.name} is none")
        return None
    try:
        cls = choices.get_class(name)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    conf = dict(conf or {})
    if conf.get("path") is not None:
        conf["path"] = expand_path(conf["path"], f"{choices.name}_conf path")
    return make(cls, choices.name, conf, **fixed)


def build_encoder(modality: str, args) -> Encoder | None:
    """The ``<modality>_encoder`` of a config (None when it names none)."""
    choices = ENCODER_CHOICES[modality]
    return build(choices, getattr(args, choices.name, None), getattr(args, f"{choices.name}_conf", None))
