"""Stage 5: collect scored decodings into an ESPnet-style RESULTS.md (see mome.scoring.results).

    python -m mome.bin.make_results EXP_DIR [--output RESULTS.md]

Reads EXP_DIR/<model>/decode_<test set>_ra<r_a>_rv<r_v>/score/result.txt (rate 0: modality not used).
"""

from __future__ import annotations

import argparse
import logging
import sys

from mome.bin._cli import add_hidden_aliases, entry_point
from mome.scoring.results import write_results_md

PROG = "python -m mome.bin.make_results"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("exp_dir", help="experiment directory holding <model>/decode_*/score/result.txt")
    p.add_argument("--output", default="RESULTS.md", help="file to write (default: %(default)s)")
    add_hidden_aliases(p, {"--out": "--output"})
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = write_results_md(a.exp_dir, a.output)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
