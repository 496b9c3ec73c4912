"""Pretrain the mini recipe's stand-in LLM (SentencePiece + small Llama) on the corpus grammar; see mome.pretrain.lm.

    python -m mome.bin.pretrain_lm --output_dir exp/pretrain_lm --exclude data/val/text data/test/text \\
        --lexicon audio=data/lang/phones.lexiconp.txt --lexicon video=data/lang/visemes.lexiconp.txt \\
        [--max_steps 1500] [--hidden_size 128] ...

Writes a Hugging Face directory (``save_pretrained``: config, weights, tokenizer) that a training config
loads with ``llm: hf`` / ``llm_conf: {path: exp/pretrain_lm}``, and ``pretraining.json`` (the settings, the
per-word perplexity on the excluded sentences, the share of their tokens copied right after an instruction and
read right after their spelling in each script).
Skipped when ``--output_dir`` already holds a finished model (the directory appears whole at the end).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import fields
from pathlib import Path

from mome.bin._cli import entry_point
from mome.data.synth.alignments import read_lexicon
from mome.pretrain.lm import SCRIPT_PREFIXES, LMConfig, pretrain_lm, read_sentences

PROG = "python -m mome.bin.pretrain_lm"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--output_dir", required=True, help="Hugging Face directory to write")
    p.add_argument("--exclude", nargs="+", default=[], help="Kaldi text files whose sentences the LM must never see")
    p.add_argument(
        "--sentences",
        nargs="+",
        default=[],
        help="Kaldi text files: train on their sentences instead of the corpus grammar's",
    )
    p.add_argument(
        "--lexicon",
        nargs="+",
        default=[],
        metavar="MODALITY=LEXICONP",
        help="scripts to spell sentences in: audio=phones.lexiconp.txt video=visemes.lexiconp.txt",
    )
    for f in fields(LMConfig):
        p.add_argument(f"--{f.name}", type=type(f.default), default=f.default, help=f"(default: {f.default})")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    out = Path(a.output_dir)
    if (out / "pretraining.json").is_file():
        print(f"{PROG}: {out} already holds a pretrained LM; remove it to train again", file=sys.stderr)
        return 0
    missing = [path for path in a.exclude + a.sentences if not Path(path).is_file()]
    if missing:
        raise FileNotFoundError(f"--exclude / --sentences file(s) {missing} do not exist")
    lexicons = {}
    for item in a.lexicon:
        modality, _, path = item.partition("=")
        if modality not in SCRIPT_PREFIXES or not Path(path).is_file():
            p.error(
                f"--lexicon {item}: give MODALITY=FILE with MODALITY in {sorted(SCRIPT_PREFIXES)} "
                "and an existing lexiconp.txt"
            )
        lexicons[modality] = read_lexicon(path)
    exclude = read_sentences(a.exclude)
    config = LMConfig(**{f.name: getattr(a, f.name) for f in fields(LMConfig)})
    figures = pretrain_lm(
        out,
        exclude,
        config,
        eval_sentences=sorted(exclude)[:200],
        lexicons=lexicons,
        pool=sorted(read_sentences(a.sentences)),
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
