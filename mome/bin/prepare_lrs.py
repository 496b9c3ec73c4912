"""Stage 1: Kaldi data directories (train, val, test) from an LRS3 / mini_lrs3 or LRS2 tree.

    python -m mome.bin.prepare_lrs --corpus lrs3|lrs2 --root DIR --out data [--landmarks DIR]
        [--max-seconds 16] [--val-count 1200] [--seed 0] [--val-list FILE] [--nj 1]
"""
from __future__ import annotations

import argparse
import sys

from mome.data.prepare import MAX_SECONDS, PrepareError, prepare_lrs2, prepare_lrs3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mome.bin.prepare_lrs", description=__doc__.split("\n\n")[0])
    p.add_argument("--corpus", choices=["lrs3", "lrs2"], required=True, help="corpus layout (mini_lrs3 is lrs3)")
    p.add_argument("--root", required=True, help="LRS3 root (pretrain/ trainval/ test/) or LRS2 root (mvlrs_v1/, lists)")
    p.add_argument("--out", required=True, help="where data/train, data/val, data/test are written")
    p.add_argument("--landmarks", help="landmarks root (<split>/<speaker>/<clip>.pkl); writes landmarks.scp")
    p.add_argument("--max-seconds", type=float, default=MAX_SECONDS, help="cut longer pretrain clips at word boundaries")
    p.add_argument("--val-count", type=int, default=1200, help="LRS3: trainval clips held out for validation")
    p.add_argument("--seed", type=int, default=0, help="LRS3: seed of the validation draw")
    p.add_argument("--val-list", help="LRS3: explicit validation list (<speaker>/<clip> per line) instead of a draw")
    p.add_argument("--nj", type=int, default=1, help="parallel processes reading the media headers")
    a = p.parse_args(argv)
    if a.max_seconds <= 0 or a.val_count < 0 or a.nj < 1:
        p.error("--max-seconds must be > 0, --val-count >= 0, --nj >= 1")
    try:
        if a.corpus == "lrs3":
            prepare_lrs3(a.root, a.out, a.landmarks, a.max_seconds, a.val_count, a.seed, a.val_list, a.nj)
        else:
            prepare_lrs2(a.root, a.out, a.landmarks, a.max_seconds, a.nj)
    except PrepareError as e:
        print(f"prepare_lrs: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
