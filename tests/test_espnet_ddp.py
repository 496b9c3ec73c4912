"""Data-parallel training on ESPnet's trainer: two processes (torchrun, gloo back-end, CPU) split each batch,
train two steps with MoME's routed experts and end with identical weights."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from tests.helpers.espnet import data_options, make_data_dir, write_config

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_processes_train_under_ddp_and_agree(tmp_path):
    train_dir = make_data_dir(tmp_path / "train", 4)
    valid_dir = make_data_dir(tmp_path / "valid", 2, seed=1)
    # one batch of 4 per epoch, 2 utterances per rank; two epochs = two DDP steps on the same wrapped model
    # (a parameter without gradient in step 1 would make step 2 fail with unused_parameters false)
    config = write_config(
        tmp_path / "train.yaml",
        tmp_path / "tokenizer",
        train_dir / "text",
        batch_size=4,
        valid_batch_size=2,
        max_epoch=2,
        keep_nbest_models=2,
        unused_parameters=False,
    )
    out = tmp_path / "exp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "mome.bin.avsr_train",
        "--config",
        str(config),
        "--output_dir",
        str(out),
        *data_options(train_dir, valid_dir),
        "--ngpu",
        "0",
        "--dist_backend",
        "gloo",
        "--multiprocessing_distributed",
        "false",
    ]
    run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-4000:]
    assert "[train] mini-batch sizes summary: N-batch=1, mean=4.0" in log
    assert "DDP: trainable parameters identical on all 2 ranks" in log
    assert log.count("epoch 2: skipped 0 of 1 optimiser steps") == 1  # only rank 0 logs
    first, second = (torch.load(out / f"{e}epoch.pth", weights_only=True) for e in (1, 2))
    moved = [k for k in first if k.endswith("experts.up_weight") and not torch.equal(first[k], second[k])]
    assert moved, "the second DDP step must have updated the routed experts"
    # a rerun of the finished training (a recipe resumed after a kill that came after the last epoch) has nothing
    # to train: both ranks reach the end at once and must leave cleanly, every time
    for _ in range(3):
        command[command.index("--master_port") + 1] = str(free_port())
        again = subprocess.run(
            [*command, "--resume", "true"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        log = again.stdout + again.stderr
        assert again.returncode == 0, log[-4000:]
        assert "already reached at max_epoch" in log and "terminate called" not in log
