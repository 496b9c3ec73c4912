"""Stage 2: 16 kHz wavs and 96x96 mouth ROIs for a data directory (see mome.data.extract).

    python -m mome.bin.extract --data_dir data/SET --dump_dir dump/SET [--job J --njobs N | --merge] \\
        [--landmarks detect]

--job J --njobs N extracts the J-th of N shards (1-based; resumable: finished utterances are kept);
--merge writes wav.scp / roi.scp, logs skipped utterances to data/SET/skipped.txt and filters the
data directory. Without either, both run in this process. --landmarks detect (give it to the jobs and the merge):
recordings without a landmark file in landmarks.scp (every one, without landmarks.scp) get one from MediaPipe's
face mesh, <dump_dir>/landmarks/<recording>.pkl (its environment: tools/install_face_mesh.sh).
"""

from __future__ import annotations

import argparse
import logging
import sys

from mome.bin._cli import add_hidden_aliases, entry_point
from mome.data.extract import merge, run_job

PROG = "python -m mome.bin.extract"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True, help="Kaldi data directory (video.scp, landmarks.scp, segments, ...)")
    p.add_argument(
        "--dump_dir", required=True, help="output folder: <dump_dir>/wav/<utt>.wav, <dump_dir>/roi/<utt>.mkv"
    )
    p.add_argument("--job", type=int, help="shard to extract, 1..--njobs")
    p.add_argument("--njobs", type=int, help="number of shards")
    p.add_argument("--merge", action="store_true", help="collect the shards: scp files, skipped.txt, filtering")
    p.add_argument(
        "--landmarks",
        choices=("scp", "detect"),
        default="scp",
        help="scp: the landmark files of landmarks.scp (stage 1); detect: MediaPipe's face mesh finds them "
        "for the recordings without one (tools/install_face_mesh.sh makes its environment)",
    )
    add_hidden_aliases(p, {"--data": "--data_dir", "--dump": "--dump_dir"})
    a = p.parse_args(argv)
    if (a.job is None) != (a.njobs is None):
        p.error("--job and --njobs go together")
    if a.merge and a.job is not None:
        p.error("--merge takes no --job/--njobs (run the jobs first, then --merge)")
    if a.njobs is not None and not 1 <= a.job <= a.njobs:
        p.error(f"--job must be in 1..{a.njobs}, got {a.job}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    detect = a.landmarks == "detect"
    if not a.merge:
        run_job(a.data_dir, a.dump_dir, a.job or 1, a.njobs or 1, detect=detect)
    if a.merge or a.job is None:
        merge(a.data_dir, a.dump_dir, detect)
    return 0


if __name__ == "__main__":
    sys.exit(main())
