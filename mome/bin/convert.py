"""Convert a pretrained part to a Hugging Face ``save_pretrained`` directory.

    mome-convert whisper-ct2 CT2_DIR OUTPUT_DIR   # CTranslate2 Whisper (model.bin, tokenizer.json, config.json)
    mome-convert gguf FILE.gguf OUTPUT_DIR        # GGUF causal LM (Llama family), de-quantised to float32
        [--overwrite]

The directory is written next to OUTPUT_DIR under a temporary name and renamed when complete, so an interrupted
run leaves no half-written OUTPUT_DIR. ``tools/get_pretrained.sh`` runs this for the registry packages.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path

from mome.bin._cli import entry_point

PROG = "mome-convert"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=["whisper-ct2", "gguf"], help="format of SOURCE")
    p.add_argument("source", type=Path, help="CTranslate2 model directory, or a .gguf file")
    p.add_argument("output_dir", type=Path, help="save_pretrained directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace OUTPUT_DIR if it exists")
    return p


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = get_parser()
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[mome-convert] %(message)s")
    if a.output_dir.exists() and any(a.output_dir.iterdir()) and not a.overwrite:
        p.error(f"{a.output_dir} exists and is not empty (--overwrite to replace it)")
    partial = a.output_dir.with_name(f".{a.output_dir.name}.partial-{os.getpid()}")
    try:
        if a.kind == "whisper-ct2":
            from mome.models.convert.whisper import convert_ctranslate2_whisper

            convert_ctranslate2_whisper(a.source, partial)
        else:
            from mome.models.convert.gguf import convert_gguf_llm

            convert_gguf_llm(a.source, partial)
    except BaseException:  # the error itself is reported by entry_point (or is a bug: its traceback)
        shutil.rmtree(partial, ignore_errors=True)
        raise
    if a.output_dir.exists():
        shutil.rmtree(a.output_dir)
    partial.rename(a.output_dir)
    print(f"[mome-convert] {a.source} -> {a.output_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
