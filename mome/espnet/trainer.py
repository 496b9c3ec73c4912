"""ESPnet's trainer plus checks of our own: skipped steps are counted, replicas are compared, and saves are
whole.

- ESPnet writes ``checkpoint.pth``, ``<N>epoch.pth`` and the averaged models with ``torch.save`` straight
  onto their names, so a run killed during a save leaves a truncated checkpoint that the resumed run
  cannot load. While our trainer runs, every ``torch.save`` to a path writes a temporary file and renames
  it (:func:`mome.atomic.save_torch`); temporary files of a killed run are removed when the next one
  starts. A run killed between ESPnet's saves of one epoch (``checkpoint.pth`` written, ``<N>epoch.pth`` or
  the ``latest`` / ``*.best`` links not yet) is repaired on resume from the checkpoint, which holds the
  same weights, so the averaged model at the end is the one an uninterrupted run makes.
- ESPnet skips the optimiser step when the gradient norm is not finite (a NaN / inf loss gives one; our
  model makes sure of it) and logs each skip, but keeps no count. After every epoch we count the steps
  without a registered gradient norm and log ``skipped K of N optimiser steps``.
- Under DDP every rank must end with the same weights. After training, rank 0 gathers a fingerprint of
  every rank's trainable parameters and logs that they agree (or raises if they do not).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from espnet2.train.trainer import Trainer

from mome import atomic

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


@contextlib.contextmanager
def atomic_torch_saves():
    """Route ``torch.save(obj, <path>)`` through :func:`mome.atomic.save_torch` for the duration (ESPnet's
    trainer and ``average_nbest_models`` call ``torch.save`` by that name); saves to file objects pass."""
    original = torch.save

    def save(obj, f, *args, **kwargs):
        if isinstance(f, (str, os.PathLike)) and not args:
            return atomic.save_torch(obj, f, save=original, **kwargs)
        return original(obj, f, *args, **kwargs)

    torch.save = save
    try:
        yield
    finally:
        torch.save = original


def repair_epoch_outputs(output_dir: Path, checkpoint: Path, epoch: int, reporter, criteria) -> list[str]:
    """After resuming from ``checkpoint`` at ``epoch``: write the epoch's ``<epoch>epoch.pth`` from it if a kill
    came before ESPnet saved it, and point ``latest.pth`` and the ``<phase>.<key>.best.pth`` links where ESPnet
    would have. Returns what was repaired."""
    repaired = []
    if epoch < 1:
        return repaired
    epoch_file = output_dir / f"{epoch}epoch.pth"
    if not epoch_file.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)["model"]
        atomic.save_torch(state, epoch_file)
        repaired.append(epoch_file.name)
    links = {"latest.pth": epoch_file.name}
    for phase, key, mode in criteria or ():
        if reporter.has(phase, key):
            best = output_dir / f"{reporter.get_best_epoch(phase, key, mode)}epoch.pth"
            if best.is_file():
                links[f"{phase}.{key}.best.pth"] = best.name
    for name, target in links.items():
        link = output_dir / name
        if not (link.is_symlink() and os.readlink(link) == target):
            atomic.symlink(target, link)
            repaired.append(name)
    return repaired


class AVSRTrainer(Trainer):
    skipped_total = 0
    _criteria = ()  # best_model_criterion of the running job, for the repair on resume
    _writes = True  # this process writes the checkpoints (rank 0, or not distributed)

    @classmethod
    def resume(cls, checkpoint, model, reporter, optimizers, schedulers, scaler, ngpu: int = 0, strict: bool = True):
        Trainer.resume(
            checkpoint=checkpoint,
            model=model,
            reporter=reporter,
            optimizers=optimizers,
            schedulers=schedulers,
            scaler=scaler,
            ngpu=ngpu,
            strict=strict,
        )
        if cls._writes:
            checkpoint = Path(checkpoint)
            repaired = repair_epoch_outputs(
                checkpoint.parent, checkpoint, reporter.get_epoch(), reporter, cls._criteria
            )
            if repaired:
                log.warning(
                    "%s: the last run was killed while saving epoch %d; restored %s from %s",
                    checkpoint.parent,
                    reporter.get_epoch(),
                    ", ".join(repaired),
                    checkpoint.name,
                )

    @classmethod
    def train_one_epoch(
        cls, model, iterator, optimizers, schedulers, scaler, reporter, summary_writer, options, distributed_option
    ) -> bool:
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
    def run(
        cls,
        model,
        optimizers,
        schedulers,
        train_iter_factory,
        valid_iter_factory,
        plot_attention_iter_factory,
        trainer_options,
        distributed_option,
    ) -> None:
        cls._criteria = trainer_options.best_model_criterion
        cls._writes = not distributed_option.distributed or distributed_option.dist_rank == 0
        if cls._writes:
            removed = atomic.remove_leftovers(trainer_options.output_dir)
            if removed:
                log.info("%s: removed %d temporary files of a killed run", trainer_options.output_dir, removed)
        with atomic_torch_saves():
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
            # leave together and close the group (ESPnet does not): a rank that exits while the other is still in
            # the last collective, or with gloo's threads alive, aborts ("terminate called without an active
            # exception"), seen on a rerun of a finished training, where the ranks reach this point at once
            dist.barrier()
            dist.destroy_process_group()

    @staticmethod
    def check_replicas(model: torch.nn.Module, ngpu: int) -> None:
        device = "cuda" if ngpu > 0 else "cpu"
        mine = parameter_fingerprint(model).to(device)
        prints = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
        dist.all_gather(prints, mine)
        prints = torch.stack(prints).cpu()
        spread = float((prints - prints[0]).abs().max())
        if spread > 1e-6 * max(1.0, float(prints[0].abs().max())):
            raise RuntimeError(f"DDP replicas diverged: parameter fingerprints per rank {prints.tolist()}")
        log.info(
            "DDP: trainable parameters identical on all %d ranks (fingerprint %s)", len(prints), prints[0].tolist()
        )
