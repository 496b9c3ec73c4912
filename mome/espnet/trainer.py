"""ESPnet's trainer plus two checks of our own: skipped steps are counted, replicas are compared.

- ESPnet skips the optimiser step when the gradient norm is not finite (a NaN / inf loss gives one; our
  model makes sure of it) and logs each skip, but keeps no count. After every epoch we count the steps
  without a registered gradient norm and log ``skipped K of N optimiser steps``.
- Under DDP every rank must end with the same weights. After training, rank 0 gathers a fingerprint of
  every rank's trainable parameters and logs that they agree (or raises if they do not).
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from espnet2.train.trainer import Trainer

log = logging.getLogger(__name__)


def skipped_steps(reporter, accum_grad: int = 1) -> tuple[int, int]:
    """(skipped, total) optimiser steps of an epoch's training sub-reporter."""
    total = reporter.count // max(1, accum_grad)
    values = reporter.stats.get("grad_norm", [])
    taken = sum(1 for v in values if np.isfinite(float(v.value)))
    return total - taken, total


def parameter_fingerprint(model: torch.nn.Module) -> torch.Tensor:
    """Sum and position-weighted sum of every trainable parameter (float64): equal weights, equal prints."""
    total = torch.zeros(2, dtype=torch.float64)
    for p in model.parameters():
        if p.requires_grad:
            flat = p.detach().double().flatten().cpu()
            weights = torch.arange(1, flat.numel() + 1, dtype=torch.float64) / flat.numel()
            total += torch.stack([flat.sum(), (flat * weights).sum()])
    return total


class AVSRTrainer(Trainer):
    skipped_total = 0

    @classmethod
    def train_one_epoch(cls, model, iterator, optimizers, schedulers, scaler, reporter, summary_writer, options, distributed_option) -> bool:
        all_invalid = super().train_one_epoch(
            model=model,
            iterator=iterator,
            optimizers=optimizers,
            schedulers=schedulers,
            scaler=scaler,
            reporter=reporter,
            summary_writer=summary_writer,
            options=options,
            distributed_option=distributed_option,
        )
        skipped, total = skipped_steps(reporter, options.accum_grad)
        cls.skipped_total += skipped
        message = (
            f"epoch {reporter.epoch}: skipped {skipped} of {total} optimiser steps "
            f"(non-finite loss or gradient); {cls.skipped_total} skipped since this process started"
        )
        (log.warning if skipped else log.info)(message)
        return all_invalid

    @classmethod
    def run(cls, model, optimizers, schedulers, train_iter_factory, valid_iter_factory, plot_attention_iter_factory, trainer_options, distributed_option) -> None:
        super().run(
            model=model,
            optimizers=optimizers,
            schedulers=schedulers,
            train_iter_factory=train_iter_factory,
            valid_iter_factory=valid_iter_factory,
            plot_attention_iter_factory=plot_attention_iter_factory,
            trainer_options=trainer_options,
            distributed_option=distributed_option,
        )
        if distributed_option.distributed:
            cls.check_replicas(model, trainer_options.ngpu)

    @staticmethod
    def check_replicas(model: torch.nn.Module, ngpu: int) -> None:
        import torch.distributed as dist

        device = "cuda" if ngpu > 0 else "cpu"
        mine = parameter_fingerprint(model).to(device)
        prints = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
        dist.all_gather(prints, mine)
        prints = torch.stack(prints).cpu()
        spread = float((prints - prints[0]).abs().max())
        if spread > 1e-6 * max(1.0, float(prints[0].abs().max())):
            raise RuntimeError(f"DDP replicas diverged: parameter fingerprints per rank {prints.tolist()}")
        log.info("DDP: trainable parameters identical on all %d ranks (fingerprint %s)", len(prints), prints[0].tolist())
