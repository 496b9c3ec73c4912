"""Noisy copies of a data directory: babble noise at several SNRs (see mome.data.noise).

    python -m mome.bin.make_noisy --data_dir data/SET --noise WAV --snrs -5,0,5,10,15,20 --dump_dir dump

Writes data/SET_babble_snr<N> (wav.scp -> <dump_dir>/SET_babble_snr<N>/wav/<utt>.wav; the other files,
roi.scp included, copied). Resumable: wavs already written are kept.
"""

from __future__ import annotations

import argparse
import logging
import sys

from mome.bin._cli import add_hidden_aliases, entry_point
from mome.data.noise import DEFAULT_SNRS, make_noisy_copies


def parse_snrs(text: str) -> list[float]:
    try:
        snrs = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--snrs must be comma-separated numbers (dB), got {text!r}") from None
    if not snrs:
        raise argparse.ArgumentTypeError("--snrs is empty")
    return snrs


PROG = "python -m mome.bin.make_noisy"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True, help="data directory with wav.scp (after stage 2 extraction)")
    p.add_argument("--noise", required=True, help="noise wav (babble), resampled to 16 kHz if needed")
    p.add_argument("--snrs", type=parse_snrs, default=list(DEFAULT_SNRS), help="comma-separated SNRs in dB")
    p.add_argument("--dump_dir", required=True, help="dump root: wavs go to <dump_dir>/<set>_babble_snr<N>/wav/")
    argv = list(sys.argv[1:] if argv is None else argv)
    for i, arg in enumerate(argv[:-1]):  # "--snrs -5,0" would read as an option: glue it as "--snrs=-5,0"
        if arg == "--snrs":
            argv[i : i + 2] = [f"--snrs={argv[i + 1]}"]
            break
    add_hidden_aliases(p, {"--data": "--data_dir", "--dump": "--dump_dir"})
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for out in make_noisy_copies(a.data_dir, a.noise, a.dump_dir, a.snrs):
        print(out, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
