"""Write the frame labels that pretrain the mini recipe's stand-in encoders (see mome.data.synth.alignments).

    python -m mome.bin.frame_labels --alignments downloads/mini_lrs3/alignments --lang_dir data/lang \\
        data/train data/val

Writes ``phones`` (50 per second) and ``visemes`` (25 per second) into each data directory (ESPnet
``text_int`` tables), and ``<lang_dir>/{phones,visemes}.txt`` (the label lists; phones from the first
directory, the training set).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mome.bin._cli import entry_point
from mome.data.synth.alignments import write_labels

PROG = "python -m mome.bin.frame_labels"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("data_dirs", nargs="+", help="data directories (segments); the first one gives the phone list")
    p.add_argument("--alignments", required=True, help="root of <split>/<speaker>/<clip>.phn (mini_lrs3's alignments/)")
    p.add_argument("--lang_dir", required=True, help="where phones.txt and visemes.txt go")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    for path in [a.alignments, *a.data_dirs]:
        if not Path(path).is_dir():
            raise NotADirectoryError(f"{path} is not a directory")
    counts = write_labels(a.data_dirs, a.alignments, a.lang_dir)
    for data_dir, n in counts.items():
        print(f"{data_dir}: frame labels of {n} utterances")
    return 0 if all(counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
