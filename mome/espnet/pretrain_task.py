"""Frame-label pretraining of one encoder as an ESPnet task (the mini recipe's stand-in encoders).

The same encoder choices, data types and preprocessing (babble noise, time masking, ROI crop and
normalisation) as the AVSR task; the model is the encoder plus a linear classifier over its output frames
(:class:`mome.models.encoders.pretraining.FrameClassifier`), trained on ESPnet's trainer::

    python -m mome.bin.pretrain_encoder --config conf/pretrain_audio.yaml --output_dir exp/pretrain_audio \\
        --token_list data/lang/phones.txt \\
        --train_data_path_and_name_and_type data/train/wav.scp,audio,sound \\
        --train_data_path_and_name_and_type data/train/phones,labels,text_int  (valid likewise)

A config sets exactly one of ``audio_encoder`` / ``video_encoder``; ``--token_list`` lists the labels, one per
line (line number = id). ``labels`` holds one id per output frame of the encoder (``text_int``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from espnet2.tasks.abs_task import AbsTask
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel
from espnet2.train.collate_fn import CommonCollateFn
from typeguard import typechecked

from mome.espnet.choices import (
    ConfigError,
    audio_encoder_choices,
    build,
    build_encoder,
    preprocessor_choices,
    video_encoder_choices,
)
from mome.espnet.preprocess import AUDIO, VIDEO
from mome.espnet.readers import register_data_types
from mome.espnet.trainer import AVSRTrainer
from mome.models.encoders.pretraining import IGNORE_LABEL, FrameClassifier

LABELS = "labels"

register_data_types()  # the ``roi`` data type


class FrameClassifierESPnetModel(AbsESPnetModel):
    """ESPnet's view of a :class:`FrameClassifier`: ``labels`` and one modality's input in, (loss, stats, weight)
    out. ``modality`` names the input (``audio`` / ``video``)."""

    def __init__(self, classifier: FrameClassifier, modality: str):
        super().__init__()
        self.classifier, self.modality = classifier, modality

    @property
    def encoder(self):
        return self.classifier.encoder

    def forward(self, labels: torch.Tensor, labels_lengths: torch.Tensor, utt_id=None, **batch):
        """``labels`` (B, T) frame classes (phonemes or visemes, -1 for none) with (B,) lengths, and the
        modality's input in ``batch`` (``audio`` (B, S) samples or ``video`` (B, T, H, W) frames, with lengths)
        -> ESPnet's ``(loss, stats, weight)``; stats hold the loss and the frame accuracy."""
        x, lengths = batch.get(self.modality), batch.get(f"{self.modality}_lengths")
        if x is None:
            raise ValueError(f"the batch holds no {self.modality!r} input (data names: {sorted(batch)})")
        out = self.classifier(x, lengths, labels)
        stats = {"loss": out.loss.detach(), "acc": out.accuracy.detach()}
        if out.context_accuracy is not None:
            stats["context_acc"] = out.context_accuracy.detach()
        return force_gatherable((out.loss, stats, labels.shape[0]), out.loss.device)

    def collect_feats(self, **batch) -> dict[str, torch.Tensor]:
        return {}


def read_token_list(path: str | Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        tokens = [line.strip() for line in f if line.strip()]
    if len(tokens) < 2:
        raise ConfigError(f"--token_list {path}: needs at least 2 labels, got {len(tokens)}")
    return tokens


class EncoderPretrainTask(AbsTask):
    num_optimizers = 1
    trainer = AVSRTrainer
    class_choices_list = [audio_encoder_choices, video_encoder_choices, preprocessor_choices]

    @classmethod
    def get_parser(cls):
        parser = super().get_parser()
        parser.set_defaults(num_att_plot=0, use_tensorboard=False)
        return parser

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="Encoder pretraining related")
        group.add_argument("--token_list", type=str, default=None, help="the labels, one per line (line number = id)")
        group.add_argument(
            "--context_weight",
            type=float,
            default=0.0,
            help="weight of two more classifiers naming the previous and the next segment's label at every frame "
            "(0: none); the encoder's frames then carry their neighbours, which survives average pooling",
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    @typechecked
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=IGNORE_LABEL)

    @classmethod
    @typechecked
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Callable | None:
        name = getattr(args, "preprocessor", "avsr") or "avsr"
        return build(preprocessor_choices, name, getattr(args, "preprocessor_conf", None), train=train, tokenizer=None)

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> tuple[str, ...]:
        return (LABELS,)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> tuple[str, ...]:
        return (AUDIO, VIDEO)

    @staticmethod
    def modality(args: argparse.Namespace) -> str:
        present = [m for m in (AUDIO, VIDEO) if getattr(args, f"{m}_encoder", None) is not None]
        if len(present) != 1:
            raise ConfigError(
                f"encoder pretraining needs exactly one of audio_encoder / video_encoder, got {present or 'none'}"
            )
        return present[0]

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> FrameClassifierESPnetModel:
        if args.token_list is None:
            raise ConfigError("--token_list: give the label list (one label per line)")
        modality = cls.modality(args)
        encoder = build_encoder(modality, args)
        classifier = FrameClassifier(
            encoder, len(read_token_list(args.token_list)), getattr(args, "context_weight", 0.0)
        )
        return FrameClassifierESPnetModel(classifier, modality)
