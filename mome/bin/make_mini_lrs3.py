"""Generate the synthetic mini LRS3 corpus (LRS3 layout, landmarks, babble noise).

python -m mome.bin.make_mini_lrs3 --output_dir DIR [--size default|tiny] [--seed 0] [--nj N]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from mome.bin._cli import add_hidden_aliases, entry_point
from mome.data.synth.corpus import SIZES, generate

PROG = "python -m mome.bin.make_mini_lrs3"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True, help="output folder (gets lrs3/, landmarks/, noise/)")
    parser.add_argument(
        "--size",
        default="default",
        choices=sorted(SIZES),
        help="default: ~2,000 training + 200 test clips; tiny: 20 clips for tests",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nj", type=int, default=os.cpu_count() or 1, help="parallel jobs (default: all cores)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    add_hidden_aliases(parser, {"--out": "--output_dir", "--no-progress": "--no_progress"})
    args = parser.parse_args(argv)
    if args.nj < 1:
        parser.error(f"--nj must be at least 1, got {args.nj}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stats = generate(args.output_dir, size=args.size, seed=args.seed, nj=args.nj, progress=not args.no_progress)
    print(open(os.path.join(args.output_dir, "README.txt")).read(), end="", file=sys.stderr)
    return 0 if stats["utterances"] else 1


if __name__ == "__main__":
    sys.exit(main())
