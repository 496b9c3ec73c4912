"""Stage 1: Kaldi data directories (train, val, test) from an LRS3 / mini_lrs3 or LRS2 tree.

python -m mome.bin.prepare_lrs --corpus lrs3|lrs2 --root DIR --output_dir data [--landmarks DIR]
    [--max_seconds 16] [--val_count 1200] [--seed 0] [--val_list FILE] [--nj 1]
"""

from __future__ import annotations

import argparse
import sys

from mome.bin._cli import add_hidden_aliases, entry_point
from mome.data.prepare import MAX_SECONDS, prepare_lrs2, prepare_lrs3

PROG = "python -m mome.bin.prepare_lrs"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", choices=["lrs3", "lrs2"], required=True, help="corpus layout (mini_lrs3 is lrs3)")
    p.add_argument(
        "--root", required=True, help="LRS3 root (pretrain/ trainval/ test/) or LRS2 root (mvlrs_v1/, lists)"
    )
    p.add_argument("--output_dir", required=True, help="where data/train, data/val, data/test are written")
    p.add_argument("--landmarks", help="landmarks root (<split>/<speaker>/<clip>.pkl); writes landmarks.scp")
    p.add_argument(
        "--max_seconds", type=float, default=MAX_SECONDS, help="cut longer pretrain clips at word boundaries"
    )
    p.add_argument("--val_count", type=int, default=1200, help="LRS3: trainval clips held out for validation")
    p.add_argument("--seed", type=int, default=0, help="LRS3: seed of the validation draw")
    p.add_argument("--val_list", help="LRS3: explicit validation list (<speaker>/<clip> per line) instead of a draw")
    p.add_argument("--nj", type=int, default=1, help="parallel processes reading the media headers")
    add_hidden_aliases(
        p,
        {
            "--out": "--output_dir",
            "--max-seconds": "--max_seconds",
            "--val-count": "--val_count",
            "--val-list": "--val_list",
        },
    )
    a = p.parse_args(argv)
    if a.max_seconds <= 0 or a.val_count < 0 or a.nj < 1:
        p.error("--max_seconds must be > 0, --val_count >= 0, --nj >= 1")
    if a.corpus == "lrs3":
        prepare_lrs3(a.root, a.output_dir, a.landmarks, a.max_seconds, a.val_count, a.seed, a.val_list, a.nj)
    else:
        prepare_lrs2(a.root, a.output_dir, a.landmarks, a.max_seconds, a.nj)
    return 0


if __name__ == "__main__":
    sys.exit(main())
