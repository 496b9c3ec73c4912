"""Frame-label pretraining of an encoder: a linear classifier on every output frame, cross-entropy.

The mini recipe pretrains its small encoders this way (phonemes for audio at 50 frames/s, visemes for video at
25 frames/s; :mod:`mome.data.synth.alignments`), then freezes them for the AVSR model, as AV-HuBERT is
pretrained on frame-level units before it serves LLM-based recognisers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mome.models.encoders.base import Encoder, valid_mask

IGNORE_LABEL = -1  # padding of the label sequences (ESPnet's int padding)


@dataclass
class FrameOutput:
    loss: torch.Tensor  # mean cross-entropy over the labelled frames
    accuracy: torch.Tensor  # share of labelled frames whose arg-max is the label
    frames: torch.Tensor  # number of labelled frames


class FrameClassifier(nn.Module):
    """``encoder`` + ``Linear(output_size, num_labels)``.

    forward(x, lengths, labels (B, N) with IGNORE_LABEL padding) -> FrameOutput. The encoder's output frames and
    the labels are paired from the start; where their counts differ (rounding of the clip length), the shorter
    one decides."""

    def __init__(self, encoder: Encoder, num_labels: int):
        super().__init__()
        if num_labels < 2:
            raise ValueError(f"frame-label pretraining needs at least 2 labels, got {num_labels}")
        self.encoder = encoder
        self.head = nn.Linear(encoder.output_size, num_labels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> FrameOutput:
        """(B, ...) encoder input with (B,) lengths, (B, T) frame labels (-1: none) -> :class:`FrameOutput`
        (mean cross-entropy over the labelled frames, their accuracy, their count)."""
        features, feature_lengths = self.encoder(x, lengths)
        frames = min(features.shape[1], labels.shape[1])
        logits = self.head(features[:, :frames])
        labels = labels[:, :frames].masked_fill(~valid_mask(feature_lengths, frames), IGNORE_LABEL)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_LABEL)
        labelled = labels != IGNORE_LABEL
        count = labelled.sum()
        accuracy = ((logits.argmax(-1) == labels) & labelled).sum() / count.clamp_min(1)
        return FrameOutput(loss, accuracy, count)
