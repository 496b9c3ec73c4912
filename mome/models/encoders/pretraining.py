"""Frame-label pretraining of an encoder: a linear classifier on every output frame, cross-entropy.

The mini recipe pretrains its small encoders this way (phonemes for audio at 50 frames/s, visemes for video at
25 frames/s; :mod:`mome.data.synth.alignments`), then freezes them for the AVSR model, as AV-HuBERT is
pretrained on frame-level units before it serves LLM-based recognisers.

With ``context_weight`` > 0 two more linear classifiers name, at every frame, the label of the previous and of the
next segment (a segment: a run of frames with one label). A frame's features then carry its neighbours in order,
as a contextual encoder's do (Whisper's frames see the whole clip), so that averaging many frames into one token
(compression rate 16: 320 ms, about four phonemes) keeps which sound came first.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mome.models.encoders.base import Encoder, valid_mask

IGNORE_LABEL = -1  # padding of the label sequences (ESPnet's int padding)


@dataclass
class FrameOutput:
    loss: torch.Tensor  # mean cross-entropy over the labelled frames (plus the context classifiers' share)
    accuracy: torch.Tensor  # share of labelled frames whose arg-max is the label
    frames: torch.Tensor  # number of labelled frames
    context_accuracy: torch.Tensor | None = None  # the same for the previous / next segment's label (mean of both)


def neighbour_labels(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) frame labels (IGNORE_LABEL padding) -> the label of the previous and of the next segment at every
    frame, each (B, T); IGNORE_LABEL where there is none (first / last segment, padding).

    E.g. [5, 5, 7, 7, 7, 2, -1] -> previous [-1, -1, 5, 5, 5, 7, -1], next [7, 7, 2, 2, 2, -1, -1]."""
    unlabelled = labels == IGNORE_LABEL
    previous = _previous_segment_label(labels).masked_fill(unlabelled, IGNORE_LABEL)
    following = _previous_segment_label(labels.flip(1)).flip(1).masked_fill(unlabelled, IGNORE_LABEL)
    return previous, following


def _previous_segment_label(labels: torch.Tensor) -> torch.Tensor:
    """(B, T) -> the label just before each frame's segment (IGNORE_LABEL for the first segment); the next
    segment's label is this on the reversed sequence."""
    batch, time = labels.shape
    starts = torch.ones_like(labels, dtype=torch.bool)
    starts[:, 1:] = labels[:, 1:] != labels[:, :-1]
    index = torch.arange(time, device=labels.device).expand(batch, time)
    start = torch.where(starts, index, 0).cummax(1).values  # first frame of each frame's segment
    return labels.gather(1, (start - 1).clamp_min(0)).masked_fill(start == 0, IGNORE_LABEL)


class FrameClassifier(nn.Module):
    """``encoder`` + ``Linear(output_size, num_labels)`` (+ two for the neighbouring segments' labels, weighted
    by ``context_weight``; none at 0).

    forward(x, lengths, labels (B, N) with IGNORE_LABEL padding) -> FrameOutput. The encoder's output frames and
    the labels are paired from the start; where their counts differ (rounding of the clip length), the shorter
    one decides."""

    def __init__(self, encoder: Encoder, num_labels: int, context_weight: float = 0.0):
        super().__init__()
        if num_labels < 2:
            raise ValueError(f"frame-label pretraining needs at least 2 labels, got {num_labels}")
        if context_weight < 0:
            raise ValueError(f"context_weight must be >= 0, got {context_weight}")
        self.encoder = encoder
        self.head = nn.Linear(encoder.output_size, num_labels)
        self.context_weight = context_weight
        if context_weight:
            self.previous_head = nn.Linear(encoder.output_size, num_labels)
            self.next_head = nn.Linear(encoder.output_size, num_labels)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> FrameOutput:
        """(B, ...) encoder input with (B,) lengths, (B, T) frame labels (-1: none) -> :class:`FrameOutput`
        (mean cross-entropy over the labelled frames, their accuracy, their count)."""
        features, feature_lengths = self.encoder(x, lengths)
        frames = min(features.shape[1], labels.shape[1])
        features = features[:, :frames]
        labels = labels[:, :frames].masked_fill(~valid_mask(feature_lengths, frames), IGNORE_LABEL)
        loss, accuracy, count = self._score(self.head(features), labels)
        if not self.context_weight:
            return FrameOutput(loss, accuracy, count)
        previous, following = neighbour_labels(labels)
        previous_loss, previous_accuracy, _ = self._score(self.previous_head(features), previous)
        next_loss, next_accuracy, _ = self._score(self.next_head(features), following)
        loss = loss + self.context_weight * (previous_loss + next_loss)
        return FrameOutput(loss, accuracy, count, (previous_accuracy + next_accuracy) / 2)

    @staticmethod
    def _score(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, C) logits, (B, T) labels -> mean cross-entropy over the labelled frames, accuracy, count."""
        labelled = labels != IGNORE_LABEL
        count = labelled.sum()
        if not count:  # e.g. a batch of one-segment clips has no neighbours: no loss rather than NaN
            return logits.sum() * 0.0, count.float(), count
        loss = nn.functional.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE_LABEL)
        accuracy = ((logits.argmax(-1) == labels) & labelled).sum() / count
        return loss, accuracy, count
