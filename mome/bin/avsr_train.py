"""Stage 3: train an AVSR model on ESPnet's trainer (ESPnet's ``AbsTask.main`` with our task).

    python -m mome.bin.avsr_train --config conf/train_mome.yaml --output_dir exp/mome \\
        --train_data_path_and_name_and_type data/train/wav.scp,audio,sound \\
        --train_data_path_and_name_and_type data/train/roi.scp,video,roi \\
        --train_data_path_and_name_and_type data/train/text,text,text \\
        --valid_data_path_and_name_and_type data/val/wav.scp,audio,sound  (... roi, text likewise) \\
        --ngpu 1 --resume true

Every ESPnet training option works (``--print_config`` lists them). Data of a modality the config has
no encoder for (roi.scp for an audio-only model) is left out, so one command line serves every config.
Without ``--train_shape_file`` / ``--valid_shape_file`` the shape files are written from the data
directories' utt2dur into ``<output_dir>/shape/{train,valid}.shape`` (video frames, ``batch_type: length``).
Multi-GPU: ``--ngpu N --multiprocessing_distributed true``; CPU data-parallel:
``torchrun --nproc_per_node N -m mome.bin.avsr_train ... --ngpu 0 --dist_backend gloo --multiprocessing_distributed false``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from mome.espnet.readers import check_sample_rate
from mome.espnet.shapes import shape_files_for
from mome.espnet.task import AVSRTask


def drop_unused_modalities(args) -> None:
    """Leave out audio / video data the config has no encoder for (the recipe passes both to every model)."""
    unused = {m for m in ("audio", "video") if getattr(args, f"{m}_encoder", None) is None}
    for mode in ("train", "valid"):
        key = f"{mode}_data_path_and_name_and_type"
        entries = getattr(args, key)
        kept = [e for e in entries if e[1] not in unused]
        if len(kept) != len(entries):
            logging.getLogger(__name__).info("%s: leaving out %s (no encoder for it)", key, [e[0] for e in entries if e[1] in unused])
            setattr(args, key, kept)


def main(argv: list[str] | None = None) -> None:
    parser = AVSRTask.get_parser()
    args = parser.parse_args(argv)
    if not args.print_config and args.output_dir is not None:
        drop_unused_modalities(args)
        for mode in ("train", "valid"):
            data = getattr(args, f"{mode}_data_path_and_name_and_type")
            for path, _, kind in data:
                if kind == "sound":
                    check_sample_rate(path)
            if data and not getattr(args, f"{mode}_shape_file"):
                out = shape_files_for(data, Path(args.output_dir) / "shape" / f"{mode}.shape")
                setattr(args, f"{mode}_shape_file", [str(out)])
    AVSRTask.main(args=args)


if __name__ == "__main__":
    main(sys.argv[1:])
