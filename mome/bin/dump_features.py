"""Encode a data directory once with the frozen encoders of a training config (see mome.espnet.features).

    python -m mome.bin.dump_features --config conf/train_mome.yaml --data_dir data/train \\
        --output_dir dump/features/train \\
        [--modalities audio video] [--batch_size 8] [--device cuda] [--dtype bfloat16] [--num_workers 2]

Writes <output_dir>/{audio,video}_feats.{ark,scp} (Kaldi, float32 (frames, dim) per utterance),
<output_dir>/{audio,video}_feats_shape (<utt> frames,dim) and <output_dir>/utt2dur. Train from them with
model_conf: {precomputed_features: true} and
--train_data_path_and_name_and_type <output_dir>/audio_feats.scp,audio_feats,kaldi_ark (video_feats likewise).

With --dump_dir instead of --output_dir, each modality (default: those the config's model_conf precomputed_features
names) goes to <dump_dir>/<modality>_<encoder>_<hash of its conf>/<data dir name>/, shared by every config
with the same frozen encoder and skipped when there; stdout gets one '<modality>_feats <scp>' line each
(what the recipe's training stage reads).
"""

from __future__ import annotations

import argparse
import logging
import sys

from mome.bin._cli import add_hidden_aliases, entry_point

PROG = "python -m mome.bin.dump_features"


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--config", required=True, help="training config (YAML) naming the frozen encoders")
    p.add_argument("--data_dir", required=True, help="data directory with wav.scp and/or roi.scp (and utt2dur)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--output_dir", help="output folder, e.g. dump/features/train")
    where.add_argument("--dump_dir", help="folder of features shared by configs, e.g. dump/features")
    p.add_argument(
        "--modalities", nargs="+", choices=("audio", "video"), default=None, help="default: every encoder of the config"
    )
    p.add_argument("--batch_size", type=int, default=8, help="utterances per encoder batch (length-sorted)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="float32",
        help="bfloat16: autocast (GPUs); stored as float32",
    )
    p.add_argument("--num_workers", type=int, default=0, help="data-loader worker processes")
    add_hidden_aliases(p, {"--out": "--output_dir", "--out_root": "--dump_dir"})
    a = p.parse_args(argv)
    if a.batch_size < 1:
        p.error("--batch_size must be positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    from mome.espnet.features import FEATS_NAMES, dump_features, dump_shared

    if a.output_dir is not None:
        dump_features(a.config, a.data_dir, a.output_dir, a.modalities, a.batch_size, a.device, a.dtype, a.num_workers)
    else:
        options = dict(batch_size=a.batch_size, device=a.device, dtype=a.dtype, num_workers=a.num_workers)
        for modality, scp in dump_shared(a.config, a.data_dir, a.dump_dir, a.modalities, **options).items():
            print(f"{FEATS_NAMES[modality]} {scp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
