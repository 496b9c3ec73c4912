"""Frame-label pretraining of an encoder: linear classifiers on every output frame, cross-entropy.

The mini recipe pretrains its small encoders this way (phonemes for audio at 50 frames/s, visemes for video at
25 frames/s; :mod:`mome.data.synth.alignments`: each frame's own unit and the units of its word), then
freezes them for the AVSR model, as AV-HuBERT is pretrained on frame-level units before it serves LLM-based
recognisers.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mome.models.encoders.base import Encoder, valid_mask

IGNORE_LABEL = -1  # padding of the label sequences (ESPnet's int padding)


@dataclass
class FrameOutput:
    loss: torch.Tensor  # mean cross-entropy over the labelled frames and label columns
    accuracy: torch.Tensor  # share of labelled frames whose own unit (column 0) is predicted right
    context_accuracy: torch.Tensor  # share of labelled frames whose every other column is predicted right
    frames: torch.Tensor  # number of labelled frames


class FrameClassifier(nn.Module):
    """``encoder`` + ``Linear(output_size, labels_per_frame * num_labels)``: ``labels_per_frame`` classifiers over
    the same ``num_labels`` labels on every output frame.

    forward(x, lengths, labels (B, N * labels_per_frame), frame after frame, IGNORE_LABEL padding) -> FrameOutput.
    The encoder's output frames and the labels are paired from the start; where their counts differ (rounding
    of the clip length), the shorter one decides."""

    def __init__(self, encoder: Encoder, num_labels: int, labels_per_frame: int = 1):
        super().__init__()
        if num_labels < 2 or labels_per_frame < 1:
            raise ValueError(f"frame-label pretraining needs >= 2 labels and >= 1 per frame, got {num_labels}, {labels_per_frame}")
        self.encoder = encoder
        self.num_labels, self.labels_per_frame = num_labels, labels_per_frame
        self.head = nn.Linear(encoder.output_size, labels_per_frame * num_labels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> FrameOutput:
        if labels.shape[1] % self.labels_per_frame:
            raise ValueError(f"label rows of {labels.shape[1]} ids are not {self.labels_per_frame} ids per frame")
        labels = labels.view(labels.shape[0], -1, self.labels_per_frame)  # (B, N, columns)
        features, feature_lengths = self.encoder(x, lengths)
        frames = min(features.shape[1], labels.shape[1])
        logits = self.head(features[:, :frames]).view(labels.shape[0], frames, self.labels_per_frame, self.num_labels)
        valid = valid_mask(feature_lengths, frames) & (labels[:, :frames, 0] != IGNORE_LABEL)
        labels = labels[:, :frames].masked_fill(~valid[..., None], IGNORE_LABEL)
        loss = nn.functional.cross_entropy(logits.flatten(0, 2).float(), labels.flatten(), ignore_index=IGNORE_LABEL)
        right = logits.argmax(-1) == labels
        count = valid.sum()
        accuracy = (right[..., 0] & valid).sum() / count.clamp_min(1)
        context = right[..., 1:].all(-1) & valid
        return FrameOutput(loss, accuracy, context.sum() / count.clamp_min(1), count)
