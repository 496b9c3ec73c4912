"""Pretrain a small encoder on frame labels with ESPnet's trainer, then save it for the AVSR configs.

    python -m mome.bin.pretrain_encoder --config conf/pretrain_audio.yaml --output_dir exp/pretrain_audio \\
        --token_list data/lang/phones.txt \\
        --train_data_path_and_name_and_type data/train/wav.scp,audio,sound \\
        --train_data_path_and_name_and_type data/train/phones,labels,text_int \\
        --valid_data_path_and_name_and_type data/val/wav.scp,audio,sound \\
        --valid_data_path_and_name_and_type data/val/phones,labels,text_int

Training is ESPnet's (``--resume true``, ``--print_config``, DDP as for the AVSR task); shape files are
written from the data directories' utt2dur as for ``mome.bin.avsr_train``. At the end, the average of the
best checkpoints (``valid.acc.ave.pth``, ESPnet's model averaging) gives ``<output_dir>/encoder/``
(``Encoder.save_pretrained``), which an AVSR config loads with ``audio_encoder_conf: {path: ...}``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import torch

from mome.bin._cli import entry_point
from mome.espnet.pretrain_task import EncoderPretrainTask
from mome.espnet.shapes import prepare_inputs

PROG = "python -m mome.bin.pretrain_encoder"
log = logging.getLogger(__name__)

ENCODER_DIR = "encoder"


def export_encoder(args, checkpoint: Path, out: Path) -> Path:
    """Load ``checkpoint`` into the task's model and save its encoder to ``out``."""
    model = EncoderPretrainTask.build_model(args)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return model.encoder.save_pretrained(out)


def best_checkpoint(output_dir: Path) -> Path:
    for name in ("valid.acc.ave.pth", "valid.acc.best.pth", "valid.loss.best.pth", "latest.pth"):
        if (output_dir / name).is_file():
            return (output_dir / name).resolve()
    raise FileNotFoundError(f"{output_dir}: no checkpoint to export (training did not finish?)")


@entry_point(PROG)
def main(argv: list[str] | None = None) -> None:
    parser = EncoderPretrainTask.get_parser()
    args = parser.parse_args(argv)
    if args.print_config or args.output_dir is None:
        EncoderPretrainTask.main(args=args)
        return
    prepare_inputs(args)
    EncoderPretrainTask.main(args=args)
    output_dir = Path(args.output_dir)
    if int(getattr(args, "local_rank", 0) or 0) == 0 and getattr(args, "dist_rank", 0) in (0, None):
        checkpoint = best_checkpoint(output_dir)
        saved = export_encoder(args, checkpoint, output_dir / ENCODER_DIR)
        log.info("saved the pretrained encoder of %s to %s", checkpoint.name, saved)


if __name__ == "__main__":
    sys.exit(main())
