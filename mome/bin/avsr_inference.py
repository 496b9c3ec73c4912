"""Stage 5: decode data directories with a trained model at one or more rate pairs (elastic inference).

    python -m mome.bin.avsr_inference --config conf/decode.yaml --model_dir exp/mome \\
        --data_dir data/test data/test_babble_snr0 [--rates 4,2 16,5] [--checkpoint valid.loss.ave.pth] \\
        [--beam_size 15] [--max_new_tokens 32] [--ctc_weight 0.5] [--device cuda]

Writes ``<output_dir>/text`` (Kaldi: ``<utt> <hypothesis>``) and ``<output_dir>/confidence`` (``<utt>
<confidence> <LLM input tokens>``) per data directory and pair; the default
output directory is ``<model_dir>/decode_<data set>_ra<A>_rv<V>`` (rate 0: modality absent), the layout
scoring reads. Without ``--rates`` every pair the model was trained at is decoded; each batch is encoded
once for all pairs, and the model is loaded once for all data directories. ``--output_dir`` names the
directory explicitly (one data directory and one pair only). Beam 1 decodes greedily; nothing is ever
sampled. ``--ctc_weight`` w > 0 decodes jointly with the model's CTC head (ESPnet's hybrid CTC/attention
decoding, :mod:`mome.models.ctc_prefix`; a model trained with a CTC loss). ``--config`` takes a YAML of these
options (ESPnet style; unknown keys and values argparse would refuse on the command line are refused).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from mome.bin._cli import ConfigArgumentParser, entry_point, unit_interval

PROG = "python -m mome.bin.avsr_inference"


def get_parser() -> argparse.ArgumentParser:
    p = ConfigArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--model_dir", help="training output directory (holds config.yaml and checkpoints)")
    p.add_argument(
        "--checkpoint",
        default=None,
        help="checkpoint file, absolute or inside --model_dir (default: valid.loss.ave.pth)",
    )
    p.add_argument("--data_dir", nargs="+", help="data directories with wav.scp and/or roi.scp")
    p.add_argument(
        "--rates",
        nargs="+",
        default=None,
        help="rate pairs A,V (0: modality absent), e.g. 4,2 16,5 (default: all trained)",
    )
    p.add_argument(
        "--output_dir",
        default=None,
        help="where to write text (one data dir and pair; default: <model_dir>/decode_<set>_ra<A>_rv<V>)",
    )
    p.add_argument("--beam_size", type=int, default=15, help="beam width (1: greedy; default 15)")
    p.add_argument("--max_new_tokens", type=int, default=32, help="longest hypothesis in LLM tokens")
    p.add_argument(
        "--ctc_weight",
        type=unit_interval,
        default=0.0,
        help="joint CTC / LLM decoding, w in [0, 1]: each of the LLM's 1.5 x beam_size best next tokens is scored "
        "(1 - w) * LLM + w * CTC prefix score; 0 (the default): the LLM alone; > 0 needs a model trained with a "
        "CTC loss (model_conf ctc_weight in (0, 1))",
    )
    p.add_argument("--batch_size", type=int, default=8, help="utterances per batch (length-sorted)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32", help="bfloat16: autocast (GPUs)")
    p.add_argument("--num_workers", type=int, default=0, help="data-loader worker processes")
    p.add_argument("--log_level", default="INFO")
    return p


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    a = get_parser().parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(), format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    from mome.espnet.inference import decode_data_dir, decode_dir_name, write_confidence, write_text
    from mome.inference import AVSR2Text, format_pair, parse_rates

    if a.model_dir is None or a.data_dir is None:
        get_parser().error("--model_dir and --data_dir are required (on the command line or in --config)")
    pairs = (
        None if a.rates is None else [parse_rates(r if isinstance(r, str) else ",".join(map(str, r))) for r in a.rates]
    )
    data_dirs = [a.data_dir] if isinstance(a.data_dir, str) else list(a.data_dir)
    if a.output_dir is not None and (pairs is None or len(pairs) > 1 or len(data_dirs) > 1):
        raise ValueError(
            "--output_dir names one directory: give one --data_dir and one --rates pair with it (or leave it out)"
        )
    if a.beam_size < 1 or a.max_new_tokens < 1 or a.batch_size < 1:
        raise ValueError("--beam_size, --max_new_tokens and --batch_size must be positive")
    for data_dir in data_dirs:
        if not Path(data_dir).is_dir():
            raise FileNotFoundError(f"data directory {data_dir} does not exist")
    avsr = AVSR2Text.from_pretrained(
        a.model_dir, a.device, a.beam_size, a.max_new_tokens, a.checkpoint, a.dtype, a.ctc_weight
    )
    pairs = avsr.trained_pairs if pairs is None else [avsr.check_pair(p) for p in pairs]
    for data_dir in data_dirs:
        hyps = decode_data_dir(avsr, data_dir, pairs, a.batch_size, a.num_workers)
        for pair in pairs:
            out_dir = Path(a.output_dir) if a.output_dir else Path(a.model_dir) / decode_dir_name(data_dir, pair)
            path = write_text(out_dir / "text", hyps[pair], hyps.skipped)
            write_confidence(out_dir / "confidence", hyps.results[pair])
            logging.info(
                "%s at rates %s: %d hypotheses -> %s%s",
                data_dir,
                format_pair(pair),
                len(hyps[pair]),
                path,
                f" ({len(hyps.skipped)} utterances skipped: {path.parent / 'skipped.txt'})" if hyps.skipped else "",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
