"""Pack a trained model into one self-contained folder (:mod:`mome.packing`).

    python -m mome.bin.pack_model exp/mome OUT [--checkpoint valid.loss.ave.pth] [--copy_limit_mb 1024]

``OUT`` then loads anywhere with ``AVSR2Text.from_pretrained("OUT")`` or ``mome-transcribe --model_dir OUT``:
config, trained weights, tokenizer, the frozen parts the config names (copied when at most
``--copy_limit_mb``, else named by path or ``${MOME_PRETRAINED}/...`` in ``OUT/manifest.json``) and the
adaptive-rate calibration when there is one.
"""

from __future__ import annotations

import argparse
import sys

from mome.bin._cli import entry_point

PROG = "python -m mome.bin.pack_model"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("model_dir", help="training output directory (config.yaml + checkpoints)")
    p.add_argument("output_dir", help="the packed folder to write (new or empty)")
    p.add_argument("--checkpoint", default=None, help="checkpoint in model_dir (default: valid.loss.ave.pth)")
    p.add_argument("--copy_limit_mb", type=float, default=1024.0, help="frozen parts up to this size are copied")
    a = p.parse_args(argv)
    from mome.packing import check_packed, pack_model

    out = pack_model(a.model_dir, a.output_dir, a.checkpoint, a.copy_limit_mb)
    for problem in check_packed(out):
        print(f"{PROG}: warning: {problem}", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
