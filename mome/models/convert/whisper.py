"""CTranslate2 Whisper -> Hugging Face ``WhisperForConditionalGeneration`` (the reverse of CTranslate2's mapping).

CTranslate2's Whisper converter (``WhisperLoader`` in ``python/ctranslate2/converters/transformers.py``, spec
``WhisperSpec`` revision 3 in ``specs/whisper_spec.py``) stores a Hugging Face Whisper model like this:

- self-attention: q, k and v projections stacked row-wise in ``self_attention/linear_0`` (``[q; k; v]``, shape
  (3d, d)); k has no bias in Whisper, so its third of the stacked bias is zeros; ``linear_1`` is ``out_proj``;
- cross-attention (decoder): ``attention/linear_0`` is q, ``attention/linear_1`` stacks ``[k; v]`` (2d, d),
  ``attention/linear_2`` is ``out_proj``;
- layer norms ``gamma`` / ``beta`` = ``weight`` / ``bias``: ``self_attention/layer_norm`` = ``self_attn_layer_norm``,
  ``attention/layer_norm`` = ``encoder_attn_layer_norm``, ``ffn/layer_norm`` = ``final_layer_norm``;
  ``ffn/linear_0`` / ``linear_1`` = ``fc1`` / ``fc2``;
- ``position_encodings/encodings`` = ``embed_positions.weight`` (encoder: the sinusoid table, decoder: learnt);
- ``decoder/embeddings/weight`` = ``embed_tokens.weight``, with the output projection an alias of it (tied).

The tokenizer comes from the ``tokenizer.json`` that CTranslate2 exports copy beside ``model.bin``, the
generation settings (suppressed tokens, alignment heads, language ids) from its ``config.json``. English-only
models are recognised as Hugging Face does (``vocab_size < 51865``) and get no language or task tokens in their
generation config: ``generate`` then writes ``<|startoftranscript|><|notimestamps|>`` and the text.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import torch

from mome.errors import MomeError
from mome.models.convert.ctranslate2 import CTranslate2FormatError, CTranslate2Model, read_ctranslate2

logger = logging.getLogger(__name__)

MULTILINGUAL_VOCAB = 51865  # Hugging Face: Whisper models with a vocabulary this large are multilingual
GELU = 3  # CTranslate2's Activation enum (specs/common_spec.py): RELU 0, GELUTanh 1, SWISH 2, GELU 3
# Options of CTranslate2's decoder spec that must hold for a Whisper decoder: name -> expected value.
_DECODER_OPTIONS = {"activation": GELU, "pre_norm": 1, "scale_embeddings": 0, "alibi": 0}
_IGNORED_OPTIONS = ("num_heads", "alignment_layer", "alignment_heads", "start_from_zero_embedding")


class WhisperConversionError(MomeError, ValueError):
    """A CTranslate2 model that is not a Whisper model this converter can map."""


def _layer_count(model: CTranslate2Model, stack: str) -> int:
    found = {int(m.group(1)) for name in model.variables if (m := re.match(rf"{stack}/layer_(\d+)/", name))}
    if not found or found != set(range(max(found) + 1)):
        raise WhisperConversionError(f"{stack}: layers {sorted(found)} are not numbered 0..n-1")
    return max(found) + 1


class _Mapper:
    """Takes CTranslate2 variables by name, converts them to float32 tensors, and remembers what it took, so
    that variables nobody mapped are reported instead of silently dropped."""

    def __init__(self, model: CTranslate2Model, source: str):
        self.model, self.source, self.used = model, source, set(model.aliases)
        self.state: dict[str, torch.Tensor] = {}

    def get(self, name: str) -> np.ndarray:
        if name not in self.model.variables:
            raise WhisperConversionError(f"{self.source}: no variable {name} (not a CTranslate2 Whisper model?)")
        self.used.add(name)
        return self.model.variables[name]

    def put(self, key: str, array: np.ndarray) -> None:
        self.state[key] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))

    def linear(self, key: str, name: str) -> None:
        self.put(f"{key}.weight", self.get(f"{name}/weight"))
        self.put(f"{key}.bias", self.get(f"{name}/bias"))

    def norm(self, key: str, name: str) -> None:
        self.put(f"{key}.weight", self.get(f"{name}/gamma"))
        self.put(f"{key}.bias", self.get(f"{name}/beta"))

    def stacked(self, keys: list[str], name: str, d: int, no_bias: str) -> None:
        """Split a row-stacked projection ``name`` into ``keys`` (d rows each); ``no_bias`` names the one
        without a bias in Hugging Face's model (k_proj), whose bias slice must be zero."""
        weight, bias = self.get(f"{name}/weight"), self.get(f"{name}/bias")
        if weight.shape != (len(keys) * d, d) or bias.shape != (len(keys) * d,):
            raise WhisperConversionError(
                f"{self.source}: {name} has shape {weight.shape} / {bias.shape}, expected ({len(keys) * d}, {d})"
            )
        for i, key in enumerate(keys):
            self.put(f"{key}.weight", weight[i * d : (i + 1) * d])
            part = bias[i * d : (i + 1) * d]
            if key.endswith(no_bias):
                if np.any(part != 0):
                    raise WhisperConversionError(f"{self.source}: {name}: the {no_bias} bias slice is not zero")
            else:
                self.put(f"{key}.bias", part)

    def unused(self) -> list[str]:
        return sorted(set(self.model.variables) - self.used)


def whisper_config_values(model: CTranslate2Model, source: str = "model.bin") -> dict:
    """The ``WhisperConfig`` sizes read off the stored shapes and options (no token ids)."""
    if model.spec != "WhisperSpec":
        raise WhisperConversionError(f"{source}: spec {model.spec!r} is not WhisperSpec")
    v = model.variables
    for option, expected in _DECODER_OPTIONS.items():
        name = f"decoder/{option}"
        if name in v and int(model.scalar(name)) != expected:
            raise WhisperConversionError(f"{source}: {name} = {model.scalar(name)}, Whisper needs {expected}")
    if "decoder/projection/weight" in v and not np.array_equal(
        v["decoder/projection/weight"], v["decoder/embeddings/weight"]
    ):
        raise WhisperConversionError(f"{source}: the output projection is not tied to the token embeddings")
    try:
        conv1 = v["encoder/conv1/weight"]  # (d_model, n_mels, 3)
        return dict(
            vocab_size=int(v["decoder/embeddings/weight"].shape[0]),
            num_mel_bins=int(conv1.shape[1]),
            d_model=int(conv1.shape[0]),
            encoder_layers=_layer_count(model, "encoder"),
            decoder_layers=_layer_count(model, "decoder"),
            encoder_attention_heads=int(model.scalar("encoder/num_heads")),
            decoder_attention_heads=int(model.scalar("decoder/num_heads")),
            encoder_ffn_dim=int(v["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
            decoder_ffn_dim=int(v["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
            max_source_positions=int(v["encoder/position_encodings/encodings"].shape[0]),
            max_target_positions=int(v["decoder/position_encodings/encodings"].shape[0]),
        )
    except KeyError as missing:
        raise WhisperConversionError(f"{source}: no variable {missing} (not a CTranslate2 Whisper model?)") from None


def whisper_state_dict(model: CTranslate2Model, d_model: int, source: str = "model.bin") -> dict[str, torch.Tensor]:
    """float32 tensors under ``WhisperForConditionalGeneration``'s keys (``model.encoder...``,
    ``model.decoder...``, ``proj_out.weight``). Raises WhisperConversionError on a missing variable, a shape
    that does not split, a non-zero k bias, or variables left unmapped."""
    m = _Mapper(model, source)
    for stack in ("encoder", "decoder"):
        hf = f"model.{stack}"
        m.put(f"{hf}.embed_positions.weight", m.get(f"{stack}/position_encodings/encodings"))
        m.norm(f"{hf}.layer_norm", f"{stack}/layer_norm")
        for i in range(_layer_count(model, stack)):
            ct, layer = f"{stack}/layer_{i}", f"{hf}.layers.{i}"
            qkv = [f"{layer}.self_attn.{p}_proj" for p in "qkv"]
            m.stacked(qkv, f"{ct}/self_attention/linear_0", d_model, no_bias="k_proj")
            m.linear(f"{layer}.self_attn.out_proj", f"{ct}/self_attention/linear_1")
            m.norm(f"{layer}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
            if stack == "decoder":
                m.linear(f"{layer}.encoder_attn.q_proj", f"{ct}/attention/linear_0")
                kv = [f"{layer}.encoder_attn.{p}_proj" for p in "kv"]
                m.stacked(kv, f"{ct}/attention/linear_1", d_model, no_bias="k_proj")
                m.linear(f"{layer}.encoder_attn.out_proj", f"{ct}/attention/linear_2")
                m.norm(f"{layer}.encoder_attn_layer_norm", f"{ct}/attention/layer_norm")
            m.linear(f"{layer}.fc1", f"{ct}/ffn/linear_0")
            m.linear(f"{layer}.fc2", f"{ct}/ffn/linear_1")
            m.norm(f"{layer}.final_layer_norm", f"{ct}/ffn/layer_norm")
    for conv in ("conv1", "conv2"):
        m.linear(f"model.encoder.{conv}", f"encoder/{conv}")
    m.put("model.decoder.embed_tokens.weight", m.get("decoder/embeddings/weight"))
    m.state["proj_out.weight"] = m.state["model.decoder.embed_tokens.weight"]
    for option in (*_DECODER_OPTIONS, *_IGNORED_OPTIONS):
        m.used.update({f"decoder/{option}", f"encoder/{option}"})
    if m.unused():
        raise WhisperConversionError(f"{source}: variables this converter does not map: {', '.join(m.unused()[:8])}")
    return m.state


def _tokenizer(ct2_dir: Path):
    from transformers import WhisperTokenizer

    file = ct2_dir / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(f"{ct2_dir}: no tokenizer.json beside model.bin (CTranslate2 exports copy it there)")
    tokenizer = WhisperTokenizer(tokenizer_file=str(file))
    tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _special_id(tokenizer, token: str, source: Path) -> int:
    ids = tokenizer.convert_tokens_to_ids([token])
    if not ids or ids[0] is None or (ids[0] == tokenizer.unk_token_id and token != tokenizer.unk_token):
        raise WhisperConversionError(f"{source}/tokenizer.json has no {token} token")
    return int(ids[0])


def generation_settings(ct2_dir: Path, tokenizer, vocab_size: int, max_target_positions: int) -> dict:
    """Whisper's generation config values: token ids from the tokenizer, suppressed tokens, alignment heads and
    (multilingual models only) language ids from CTranslate2's ``config.json``."""
    options = {}
    if (ct2_dir / "config.json").is_file():
        options = json.loads((ct2_dir / "config.json").read_text())
    sot = _special_id(tokenizer, "<|startoftranscript|>", ct2_dir)
    settings = dict(
        decoder_start_token_id=sot,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.eos_token_id,
        max_length=max_target_positions,
        no_timestamps_token_id=_special_id(tokenizer, "<|notimestamps|>", ct2_dir),
        prev_sot_token_id=_special_id(tokenizer, "<|startofprev|>", ct2_dir),
        suppress_tokens=list(options.get("suppress_ids", [])),
        begin_suppress_tokens=list(options.get("suppress_ids_begin", [])),
        return_timestamps=False,
        max_initial_timestamp_index=50,
        is_multilingual=vocab_size >= MULTILINGUAL_VOCAB,
    )
    if options.get("alignment_heads"):
        settings["alignment_heads"] = [list(h) for h in options["alignment_heads"]]
    if settings["is_multilingual"]:
        lang_ids = options.get("lang_ids")
        if not lang_ids:
            raise WhisperConversionError(f"{ct2_dir}/config.json: a multilingual model needs 'lang_ids'")
        settings["lang_to_id"] = {tokenizer.convert_ids_to_tokens(int(i)): int(i) for i in lang_ids}
        settings["task_to_id"] = {t: _special_id(tokenizer, f"<|{t}|>", ct2_dir) for t in ("transcribe", "translate")}
    return settings


def convert_ctranslate2_whisper(ct2_dir: str | Path, out_dir: str | Path | None = None):
    """Build a ``WhisperForConditionalGeneration`` and ``WhisperProcessor`` from a CTranslate2 Whisper directory
    (``model.bin``, ``tokenizer.json``, ``config.json``), and ``save_pretrained`` both to ``out_dir`` if given.

    The weights load with ``strict=True`` (every Hugging Face parameter set, none left over) and are stored
    as float32. Returns (model, processor). Raises FileNotFoundError for a missing file, CTranslate2FormatError
    / WhisperConversionError for a file that is not a CTranslate2 Whisper model.
    """
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
    )

    ct2_dir = Path(ct2_dir)
    ct2 = read_ctranslate2(ct2_dir / "model.bin")
    sizes = whisper_config_values(ct2, str(ct2_dir / "model.bin"))
    tokenizer = _tokenizer(ct2_dir)
    settings = generation_settings(ct2_dir, tokenizer, sizes["vocab_size"], sizes["max_target_positions"])
    ids = {k: settings[k] for k in ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id")}
    config = WhisperConfig(**sizes, **ids, activation_function="gelu", scale_embedding=False, tie_word_embeddings=True)
    state = whisper_state_dict(ct2, sizes["d_model"], str(ct2_dir / "model.bin"))
    del ct2
    model = WhisperForConditionalGeneration(config)
    model.load_state_dict(state, strict=True)
    model.eval()
    model.generation_config = GenerationConfig(**settings)
    processor = WhisperProcessor(WhisperFeatureExtractor(feature_size=sizes["num_mel_bins"]), tokenizer)
    if out_dir is not None:
        out_dir = Path(out_dir)
        model.save_pretrained(out_dir)
        processor.save_pretrained(out_dir)
        logger.info(
            "Whisper (%d/%d layers, d_model %d, %s) written to %s",
            sizes["encoder_layers"],
            sizes["decoder_layers"],
            sizes["d_model"],
            "multilingual" if settings["is_multilingual"] else "English-only",
            out_dir,
        )
    return model, processor


__all__ = [
    "convert_ctranslate2_whisper",
    "whisper_state_dict",
    "whisper_config_values",
    "generation_settings",
    "WhisperConversionError",
    "CTranslate2FormatError",
]
