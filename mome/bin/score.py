"""Stage 5: score a Kaldi hypothesis text against the reference text (see mome.scoring.score).

    python -m mome.bin.score REF_TEXT HYP_TEXT OUTPUT_DIR [--backend auto|sclite|python] [--utt2spk FILE]

Writes OUTPUT_DIR/{ref.trn,hyp.trn,result.txt,result_raw.txt,alignment.txt,wer} and prints the wer line.
Both texts are normalised first (lower case, no {LG}-style markers or punctuation). Speakers come from
--utt2spk, else a utt2spk beside REF_TEXT, else the utterance id up to its last "_".
"""

from __future__ import annotations

import argparse
import logging
import sys

from mome.bin._cli import entry_point
from mome.scoring.report import format_wer_line
from mome.scoring.score import BACKENDS, score

PROG = "python -m mome.bin.score"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("ref", help="reference Kaldi text (<utt> <words...>)")
    p.add_argument("hyp", help="hypothesis Kaldi text")
    p.add_argument("output_dir", help="scoring directory to write")
    p.add_argument(
        "--backend",
        choices=BACKENDS,
        default="auto",
        help="sclite (NIST SCTK), python (our aligner, same numbers), auto: sclite if installed",
    )
    p.add_argument("--utt2spk", help="utterance-to-speaker table (default: utt2spk beside REF, if any)")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    counts = score(a.ref, a.hyp, a.output_dir, a.backend, a.utt2spk)
    print(format_wer_line(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
