"""Synthesise extra speech from many voices for pretraining the mini recipe's audio stand-in (see
mome.data.synth.speech_set).

    python -m mome.bin.make_speech_set --data_dir data/speech_set --dump_dir dump/speech_set \\
        --phone_list data/lang/phones.txt --exclude data/val/text data/test/text \\
        --corpus_stats downloads/mini_lrs3/stats.json [--utterances 6000] [--utterances_per_voice 10] [--seed 0]

Writes a Kaldi data directory with ``wav.scp`` and ``phones`` (frame labels); skipped when ``--data_dir``
already holds a finished set.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from mome.bin._cli import entry_point
from mome.data.synth.speech_set import make_speech_set
from mome.pretrain.lm import read_sentences

PROG = "python -m mome.bin.make_speech_set"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--data_dir", required=True, help="Kaldi data directory to write")
    p.add_argument("--dump_dir", required=True, help="where the wavs go (<dump_dir>/wav/)")
    p.add_argument("--phone_list", required=True, help="the frame labels' phone list (data/lang/phones.txt)")
    p.add_argument("--exclude", nargs="+", default=[], help="Kaldi text files whose sentences are never spoken")
    p.add_argument(
        "--corpus_stats", default=None, help="the corpus' stats.json: the voices of its test speakers are never drawn"
    )
    p.add_argument("--utterances", type=int, default=6000, help="(default: 6000)")
    p.add_argument("--utterances_per_voice", type=int, default=10, help="a new voice every N utterances (default: 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_progress", action="store_true", help="no progress bar")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    if a.utterances < 1 or a.utterances_per_voice < 1:
        p.error("--utterances and --utterances_per_voice must be positive")
    if (Path(a.data_dir) / "phones").is_file():
        print(f"{PROG}: {a.data_dir} already holds a speech set; remove it to make it again", file=sys.stderr)
        return 0
    missing = [
        f for f in [a.phone_list, *a.exclude, *([a.corpus_stats] if a.corpus_stats else [])] if not Path(f).is_file()
    ]
    if missing:
        raise FileNotFoundError(f"file(s) {missing} do not exist")
    voices = set()
    if a.corpus_stats:
        stats = json.loads(Path(a.corpus_stats).read_text())
        voices = {s["voice"] for s in stats.get("speakers_detail", []) if "test" in s.get("splits", [])}
    hours = make_speech_set(
        a.data_dir,
        a.dump_dir,
        a.phone_list,
        a.utterances,
        a.utterances_per_voice,
        read_sentences(a.exclude),
        voices,
        a.seed,
        progress=not a.no_progress,
    )
    print(f"{a.data_dir}: {a.utterances} utterances, {hours:.2f} h; {len(voices)} test voices never drawn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
