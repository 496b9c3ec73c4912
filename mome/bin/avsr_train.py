"""Stage 3: train an AVSR model on ESPnet's trainer (ESPnet's ``AbsTask.main`` with our task).

    python -m mome.bin.avsr_train --config conf/train_mome.yaml --output_dir exp/mome \\
        --train_data_path_and_name_and_type data/train/wav.scp,audio,sound \\
        --train_data_path_and_name_and_type data/train/roi.scp,video,roi \\
        --train_data_path_and_name_and_type data/train/text,text,text \\
        --valid_data_path_and_name_and_type data/val/wav.scp,audio,sound  (... roi, text likewise) \\
        --ngpu 1 --resume true

Every ESPnet training option works (``--print_config`` lists them). The config picks the data: raw
inputs of a modality the config has no encoder for (roi.scp for an audio-only model) are left out, and so
are the raw inputs of a modality that ``model_conf precomputed_features`` takes from dumped features
(``dump/features/<set>/audio_feats.scp,audio_feats,kaldi_ark``, written by ``python -m mome.bin.dump_features``),
or those features when the config encodes online; so one command line serves every config.
Without ``--train_shape_file`` / ``--valid_shape_file`` the shape files are written from the data
directories' utt2dur into ``<output_dir>/shape/{train,valid}.shape`` (video frames, ``batch_type: length``).
Multi-GPU: ``--ngpu N --multiprocessing_distributed true``; CPU data-parallel: ``torchrun --nproc_per_node N
-m mome.bin.avsr_train ... --ngpu 0 --dist_backend gloo --multiprocessing_distributed false``.
"""

from __future__ import annotations

import logging
import sys

from mome.bin._cli import entry_point
from mome.espnet.shapes import prepare_inputs
from mome.espnet.task import AVSRTask, precomputed_modalities

PROG = "python -m mome.bin.avsr_train"
log = logging.getLogger(__name__)


def select_data(args) -> None:
    """Keep the inputs the config uses: for each modality with an encoder, its raw data (``audio`` /
    ``video``) when encoded online, its dumped features (``audio_feats`` / ``video_feats``) when
    ``model_conf precomputed_features`` names it; nothing of a modality without an encoder. The recipe may
    pass all of them to every model."""
    precomputed = set(precomputed_modalities(args))
    wanted = set()
    for modality in ("audio", "video"):
        if getattr(args, f"{modality}_encoder", None) is not None:
            wanted.add(f"{modality}_feats" if modality in precomputed else modality)
    inputs = {"audio", "video", "audio_feats", "video_feats"}
    for mode in ("train", "valid"):
        key = f"{mode}_data_path_and_name_and_type"
        entries = getattr(args, key)
        kept = [e for e in entries if e[1] not in inputs or e[1] in wanted]
        if len(kept) != len(entries):
            log.info("%s: leaving out %s (not an input of this config)", key, [e[0] for e in entries if e not in kept])
            setattr(args, key, kept)
        missing = sorted(wanted - {e[1] for e in kept})
        if entries and missing:
            hint = (
                " (write them with python -m mome.bin.dump_features)"
                if any(m.endswith("_feats") for m in missing)
                else ""
            )
            raise SystemExit(f"{PROG}: error: the config needs the input(s) {missing} but no --{key} names them{hint}")


@entry_point(PROG)
def main(argv: list[str] | None = None) -> None:
    parser = AVSRTask.get_parser()
    args = parser.parse_args(argv)
    if not args.print_config and args.output_dir is not None:
        select_data(args)
        prepare_inputs(args)
    AVSRTask.main(args=args)


if __name__ == "__main__":
    sys.exit(main())
