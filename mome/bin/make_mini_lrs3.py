"""Generate the synthetic mini LRS3 corpus (LRS3 layout, landmarks, babble noise).

    python -m mome.bin.make_mini_lrs3 --out DIR [--size default|tiny] [--seed 0] [--nj N]
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from mome.data.synth.corpus import SIZES, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder (gets lrs3/, landmarks/, noise/)")
    parser.add_argument("--size", default="default", choices=sorted(SIZES),
                        help="default: ~2,000 training + 200 test clips; tiny: 20 clips for tests")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=os.cpu_count() or 1, help="parallel jobs (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be at least 1, got {args.nj}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stats = generate(args.out, size=args.size, seed=args.seed, nj=args.nj, progress=not args.no_progress)
    print(open(os.path.join(args.out, "README.txt")).read(), end="", file=sys.stderr)
    return 0 if stats["utterances"] else 1


if __name__ == "__main__":
    sys.exit(main())
