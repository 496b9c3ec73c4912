"""Convert a pretrained part to a Hugging Face ``save_pretrained`` directory.

    mome-convert whisper-ct2 CT2_DIR OUT_DIR      # CTranslate2 Whisper (model.bin, tokenizer.json, config.json)
    mome-convert gguf FILE.gguf OUT_DIR           # GGUF causal LM (Llama family), de-quantised to float32
        [--overwrite]

The directory is written next to OUT_DIR under a temporary name and renamed when complete, so an interrupted
run leaves no half-written OUT_DIR. ``tools/get_pretrained.sh`` runs this for the registry packages.
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mome-convert", description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["whisper-ct2", "gguf"], help="format of SOURCE")
    p.add_argument("source", type=Path, help="CTranslate2 model directory, or a .gguf file")
    p.add_argument("out_dir", type=Path, help="save_pretrained directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUT_DIR if it exists")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[mome-convert] %(message)s")
    if a.out_dir.exists() and any(a.out_dir.iterdir()) and not a.overwrite:
        print(f"mome-convert: {a.out_dir} exists and is not empty (--overwrite to replace it)", file=sys.stderr)
        return 2
    partial = a.out_dir.with_name(f".{a.out_dir.name}.partial-{os.getpid()}")
    try:
        if a.kind == "whisper-ct2":
            from mome.models.convert.whisper import convert_ctranslate2_whisper

            convert_ctranslate2_whisper(a.source, partial)
        else:
            from mome.models.convert.gguf import convert_gguf_llm

            convert_gguf_llm(a.source, partial)
    except (FileNotFoundError, ValueError, ImportError) as e:
        shutil.rmtree(partial, ignore_errors=True)
        print(f"mome-convert: {e}", file=sys.stderr)
        return 1
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if a.out_dir.exists():
        shutil.rmtree(a.out_dir)
    partial.rename(a.out_dir)
    print(f"[mome-convert] {a.source} -> {a.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
