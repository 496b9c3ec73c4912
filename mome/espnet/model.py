"""The AVSR model as an ESPnet model: batch keys in, ``(loss, stats, weight)`` out.

ESPnet's trainer calls ``model(**batch)`` with the padded tensors its collate function makes
(``audio``/``audio_lengths`` samples, ``video``/``video_lengths`` frames, ``text``/``text_lengths`` LLM token
ids, or ``audio_feats``/``video_feats`` (B, T', D) precomputed encoder outputs instead of raw inputs) and
``utt_id``. The wrapper hands them to :class:`mome.models.avsr.AVSRModel`, which encodes once and
trains every rate pair of the batch, and reports the loss of each pair.

Non-finite losses: the step is turned into one whose every trainable gradient is NaN, so ESPnet's trainer
(which skips a step whose gradient norm is not finite) skips it on every rank alike (DDP averages the NaN
into all ranks' gradients); the trainer of our task counts and logs the skipped steps.

Checkpoints: weights that come from pretrained files when the model is built (the frozen LLM of
``llm: hf``, a frozen encoder loaded from ``path``) are left out of ``state_dict`` - ESPnet would otherwise
write the whole LLM into every epoch's checkpoint - and ``load_state_dict`` does not expect them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from espnet2.torch_utils.device_funcs import force_gatherable
from espnet2.train.abs_espnet_model import AbsESPnetModel

from mome.models.avsr import AVSRModel

log = logging.getLogger(__name__)


def pair_name(pair) -> str:
    """``(4, None)`` -> ``ra4_rv0`` (0: modality absent), the naming of stats and decode directories."""
    return f"ra{pair[0] or 0}_rv{pair[1] or 0}"


class AVSRESPnetModel(AbsESPnetModel):
    def __init__(self, avsr: AVSRModel, external_prefixes: Iterable[str] = ()):
        """external_prefixes: sub-module names of ``avsr`` whose frozen weights are loaded from pretrained
        files at build time (e.g. ``llm.model``, ``encoders.audio``); they stay out of checkpoints."""
        super().__init__()
        self.avsr = avsr
        self._freeze_unreachable_projectors()
        self.external_keys = self._external_keys(tuple(external_prefixes))

    # -- parameters and checkpoints -------------------------------------------------------------------
    def _freeze_unreachable_projectors(self) -> None:
        """A projector whose rate is in no trained pair never gets a gradient: freeze it (DDP would wait for it)."""
        for index, modality in enumerate(("audio", "video")):
            if modality not in self.avsr.projectors:
                continue
            used = {pair[index] for pair in self.avsr.rate_pairs}
            for rate, projector in self.avsr.projectors[modality].projectors.items():
                if int(rate) not in used:
                    projector.requires_grad_(False)

    def _external_keys(self, prefixes: tuple[str, ...]) -> frozenset[str]:
        if not prefixes:
            return frozenset()
        trainable = {name for name, p in self.named_parameters(remove_duplicate=False) if p.requires_grad}
        full = super().state_dict(keep_vars=True)
        starts = tuple(f"avsr.{p}." for p in prefixes)
        return frozenset(k for k in full if k.startswith(starts) and k not in trainable)

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        if not self.external_keys:
            return state
        prefix = kwargs.get("prefix", args[1] if len(args) > 1 else "")
        for key in [k for k in state if k[len(prefix) :] in self.external_keys]:
            del state[key]
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        result = super().load_state_dict(state_dict, strict=False, assign=assign)
        missing = [k for k in result.missing_keys if k not in self.external_keys]
        if strict and (missing or result.unexpected_keys):
            raise RuntimeError(
                f"checkpoint does not fit the model: {len(missing)} missing key(s) {missing[:5]}, "
                f"{len(result.unexpected_keys)} unexpected key(s) {result.unexpected_keys[:5]}"
            )
        return result

    # -- ESPnet interface -------------------------------------------------------------------------------
    def forward(
        self,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        audio: torch.Tensor | None = None,
        audio_lengths: torch.Tensor | None = None,
        video: torch.Tensor | None = None,
        video_lengths: torch.Tensor | None = None,
        audio_feats: torch.Tensor | None = None,
        audio_feats_lengths: torch.Tensor | None = None,
        video_feats: torch.Tensor | None = None,
        video_feats_lengths: torch.Tensor | None = None,
        utt_id=None,
        **kwargs,
    ):
        """ESPnet's training step on one collated batch: ``text`` (B, L) LLM token ids padded with -1,
        ``text_lengths`` (B,); ``audio`` (B, S) 16 kHz samples and ``video`` (B, T, 96, 96) uint8 mouth ROIs with
        their (B,) lengths, or their frozen encoders' features ``audio_feats`` / ``video_feats`` (B, T', D); returns
        ESPnet's ``(loss, stats, weight)``, the loss the mean over the trained rate pairs."""
        targets = [row[: int(n)] for row, n in zip(text, text_lengths)]
        features = {"audio": (audio_feats, audio_feats_lengths), "video": (video_feats, video_feats_lengths)}
        out = self.avsr(
            targets,
            audio=audio,
            audio_lengths=audio_lengths,
            video=video,
            video_lengths=video_lengths,
            features=features,
        )
        loss = out.loss
        batch = text.shape[0]
        stats = {"loss": loss.detach()}
        if out.ce_loss is not None:  # None when CTC alone trains the projectors (ctc_weight 1)
            stats["loss_ce"] = out.ce_loss.detach()
        if out.balance_loss is not None:  # MoME only (ESPnet's validation would log a None as nan)
            stats["loss_balance"] = out.balance_loss.detach()
        if out.ctc_loss is not None:
            stats["loss_ctc"] = out.ctc_loss.detach()
        stats.update({f"loss_{pair_name(pair)}": value.detach() for pair, value in out.pair_losses.items()})
        if self.training and not torch.isfinite(loss):
            log.warning(
                "non-finite loss (%s) on utterances %s: this step will be skipped",
                float(loss.detach()),
                list(utt_id or [])[:4],
            )
            loss = self._nan_everywhere(loss)
        return force_gatherable((loss, stats, batch), loss.device)

    def _nan_everywhere(self, loss: torch.Tensor) -> torch.Tensor:
        """A NaN loss whose gradient is NaN for every trainable parameter (so the step is surely skipped)."""
        touch = sum(p.sum() for p in self.parameters() if p.requires_grad)
        return loss.detach() * 0 + touch * float("nan")

    def collect_feats(self, **batch) -> dict[str, torch.Tensor]:
        return {}
