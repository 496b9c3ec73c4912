"""GGUF causal LM -> Hugging Face ``save_pretrained`` directory (float32), through transformers' GGUF loader.

transformers reads a GGUF file with the ``gguf`` package (``from_pretrained(dir, gguf_file=name)``): it
de-quantises every tensor to float32 and builds the tokenizer from the file's own vocabulary. The loaded
model still carries the GGUF quantizer (``model.hf_quantizer``) and ``config.quantization_config``, and
``save_pretrained`` refuses to write a quantised model; the weights are already plain float32 tensors, so
dropping both markers gives an ordinary model whose saved directory reproduces the loaded model's logits.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from mome.errors import MissingPackageError, MomeError

logger = logging.getLogger(__name__)


class GGUFConversionError(MomeError, ValueError):
    """A GGUF file that does not give a usable causal LM directory."""


def convert_gguf_llm(gguf_file: str | Path, out_dir: str | Path | None = None, dtype: torch.dtype = torch.float32):
    """Load a GGUF causal LM and its tokenizer; ``save_pretrained`` both to ``out_dir`` if given.

    dtype: the dtype of the written weights (float32 keeps the de-quantised values exactly). Returns
    (model, tokenizer). Raises FileNotFoundError for a missing file, MissingPackageError (an ImportError) when the
    ``gguf`` package is absent, GGUFConversionError when the tokenizer has no eos token or the model is not quantised
    by GGUF.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    if not gguf_file.is_file():
        raise FileNotFoundError(f"GGUF file {gguf_file} does not exist")
    try:
        import gguf  # noqa: F401  (transformers needs it; say so plainly)
    except ImportError as e:
        raise MissingPackageError("reading GGUF files needs the 'gguf' package: pip install gguf") from e
    where, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name)
    if tokenizer.eos_token_id is None:
        raise GGUFConversionError(f"{gguf_file}: the tokenizer in the file defines no eos token")
    if getattr(model, "hf_quantizer", None) is None and getattr(model.config, "quantization_config", None) is None:
        raise GGUFConversionError(f"{gguf_file}: transformers did not load it as a GGUF-quantised model")
    model.hf_quantizer = None  # the markers save_pretrained refuses; the tensors are de-quantised already
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.to(dtype).eval()
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    }
    for key, value in ids.items():
        setattr(model.config, key, value)
        setattr(model.generation_config, key, value)
    if out_dir is not None:
        out_dir = Path(out_dir)
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
        logger.info(
            "%s (%s, %d layers, hidden %d) written to %s as %s",
            gguf_file.name,
            model.config.model_type,
            model.config.num_hidden_layers,
            model.config.hidden_size,
            out_dir,
            dtype,
        )
    return model, tokenizer
