"""Precomputed frozen-encoder features: encode a data directory once, train from the stored features.

A frozen encoder computes the same features every epoch; training can read them from disk instead (the
issue's "extraction stage"). :func:`dump_features` builds the encoders a training config names, runs them
over a data directory with the task's evaluation preprocessing (centre crop, no masking, no noise) and
writes, per modality, Kaldi ``<modality>_feats.ark`` / ``.scp`` (float32 ``(T', D)`` per utterance, cut to
the encoder's output length) and ``<modality>_feats_shape`` (``<utt> T',D``), plus the data directory's
``utt2dur`` for the batch samplers' shape files:

    python -m mome.bin.dump_features --config conf/train_mome.yaml --data_dir data/train \\
        --output_dir dump/features/train

Training then takes ``--train_data_path_and_name_and_type dump/features/train/audio_feats.scp,audio_feats,kaldi_ark``
(likewise ``video_feats``) with ``model_conf: {precomputed_features: true}``. Augmentation of a modality
read from features is off (features are the clean ones); encode online where augmentation matters.
Only frozen pretrained encoders (``path:`` in their conf) can be dumped: a trainable one changes under
training, and a randomly initialised one would get other weights when the training run builds it.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from mome.data.kaldi import read_table, write_table
from mome.espnet.choices import ConfigError, build, build_encoder, preprocessor_choices
from mome.espnet.preprocess import AUDIO, VIDEO
from mome.espnet.readers import length_sorted_batches, media_dataset
from mome.progress import progress

log = logging.getLogger(__name__)

FEATS_NAMES = {AUDIO: "audio_feats", VIDEO: "video_feats"}


def load_config(path: str | Path) -> argparse.Namespace:
    """A training config (YAML) parsed as the task parses it, so that defaults and checks are the same."""
    from mome.espnet.task import AVSRTask

    if not Path(path).is_file():
        raise FileNotFoundError(f"training config {path} does not exist")
    return AVSRTask.get_parser().parse_args(["--config", str(path)])


def check_dumpable(modality: str, encoder: torch.nn.Module, conf: dict) -> None:
    """Features of this encoder are the same at dump time and at training time: it is frozen and its
    weights come from a file; else a ConfigError naming the option."""
    if any(p.requires_grad for p in encoder.parameters()):
        raise ConfigError(
            f"{modality}_encoder_conf: the {modality} encoder is trainable (frozen: false); its features change "
            "under training and cannot be computed once"
        )
    if conf.get("path") is None:
        raise ConfigError(
            f"{modality}_encoder_conf: the {modality} encoder has random weights (no path=); a training run would "
            "build other ones: precomputed features need a pretrained encoder"
        )


def frozen_encoders(args: argparse.Namespace, modalities=None) -> dict[str, torch.nn.Module]:
    """The config's frozen encoders (of ``modalities``, default: every modality with an encoder); an error
    names a missing or trainable one."""
    present = [m for m in (AUDIO, VIDEO) if getattr(args, f"{m}_encoder", None) is not None]
    modalities = list(present if modalities is None else modalities)
    encoders = {}
    for modality in modalities:
        if modality not in present:
            raise ConfigError(f"{modality}_encoder: the config has no {modality} encoder to dump features with")
        conf = getattr(args, f"{modality}_encoder_conf", None) or {}
        encoder = build_encoder(modality, args)
        check_dumpable(modality, encoder, conf)
        encoders[modality] = encoder.eval()
    if not encoders:
        raise ConfigError("no encoder to dump features with")
    return encoders


def _dataset(args: argparse.Namespace, data_dir: Path, modalities):
    conf = {
        k: v for k, v in (getattr(args, "preprocessor_conf", None) or {}).items() if k != "noise"
    }  # no noise at eval
    name = getattr(args, "preprocessor", "avsr") or "avsr"
    return media_dataset(data_dir, modalities, build(preprocessor_choices, name, conf, train=False, tokenizer=None))


def dump_features(
    config: str | Path,
    data_dir: str | Path,
    out_dir: str | Path,
    modalities=None,
    batch_size: int = 8,
    device: str = "cpu",
    dtype: str = "float32",
    num_workers: int = 0,
) -> dict[str, Path]:
    """Encode every utterance of ``data_dir`` with the frozen encoders of ``config``; returns the scp per
    modality. The scp files appear only once complete (a killed run leaves none half-written)."""
    from espnet2.train.collate_fn import CommonCollateFn
    from torch.utils.data import DataLoader

    data_dir, out_dir = Path(data_dir), Path(out_dir).absolute()
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    args = load_config(config)
    encoders = {m: e.to(device) for m, e in frozen_encoders(args, modalities).items()}
    dataset = _dataset(args, data_dir, list(encoders))
    batches = length_sorted_batches(dataset, data_dir, batch_size)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=CommonCollateFn(), num_workers=num_workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    scps = {m: out_dir / f"{FEATS_NAMES[m]}.scp" for m in encoders}
    tmp = {m: out_dir / f".{FEATS_NAMES[m]}.scp.{os.getpid()}" for m in encoders}
    for scp in scps.values():  # an old scp must not point into the ark being rewritten
        scp.unlink(missing_ok=True)
    try:
        progress_bar = progress(loader, total=len(batches), desc=f"features of {data_dir.name}", unit="batch")
        shapes = _encode_into(progress_bar, encoders, out_dir, tmp, device, dtype)
        for modality, scp in scps.items():
            write_table(tmp[modality], read_table(tmp[modality]))  # sorted, as Kaldi scps are
            shape_lines = "".join(f"{line}\n" for line in sorted(shapes[modality]))
            (out_dir / f"{FEATS_NAMES[modality]}_shape").write_text(shape_lines, encoding="utf-8")
            os.replace(tmp[modality], scp)
            log.info("%s: %d utterances of %s features -> %s", data_dir, len(shapes[modality]), modality, scp)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    _copy_utt2dur(data_dir, out_dir, {line.split()[0] for line in next(iter(shapes.values()))})
    return scps


def weights_digest(path: str | Path) -> str:
    """:func:`mome.packing.path_digest` of an encoder's weights (``$VAR`` expanded); "missing" for a path that does
    not exist (the encoder's loader names it)."""
    from mome.packing import path_digest

    path = Path(os.path.expandvars(str(path)))
    return path_digest(path) if path.exists() else "missing"


def feature_key(args: argparse.Namespace, modality: str) -> str:
    """A name for the features of one modality's frozen encoder under a config's evaluation preprocessing:
    configs that share the encoder (kind, conf, the bytes of its weights) and the preprocessing share the dumped
    features; an encoder trained again (stage 3 rerun) gets features of its own rather than the old ones."""
    import hashlib
    import json

    preprocess = {
        k: v for k, v in (getattr(args, "preprocessor_conf", None) or {}).items() if k not in ("noise", "snrs")
    }
    conf = dict(getattr(args, f"{modality}_encoder_conf", None) or {})
    if conf.get("path") is not None:
        conf["weights"] = weights_digest(conf["path"])
    spec = [getattr(args, f"{modality}_encoder"), conf, preprocess]
    digest = hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{modality}_{spec[0]}_{digest}"


def dump_shared(
    config: str | Path, data_dir: str | Path, out_root: str | Path, modalities=None, **kwargs
) -> dict[str, Path]:
    """The features of ``data_dir`` for each of ``modalities`` (default: those the config's ``model_conf
    precomputed_features`` names) under ``<out_root>/<feature_key>/<data dir name>/``, dumped unless there already;
    returns the scp per modality."""
    from mome.espnet.task import precomputed_modalities

    args = load_config(config)
    modalities = list(precomputed_modalities(args) if modalities is None else modalities)
    scps = {}
    for modality in modalities:
        out = Path(out_root) / feature_key(args, modality) / Path(data_dir).name
        scp = out / f"{FEATS_NAMES[modality]}.scp"
        if not scp.is_file():
            dump_features(config, data_dir, out, [modality], **kwargs)
        else:
            log.info("%s features of %s: %s is there", modality, data_dir, scp)
        scps[modality] = scp
    return scps


def _encode_into(
    batches, encoders, out_dir: Path, scps: dict[str, Path], device: str, dtype: str
) -> dict[str, list[str]]:
    """Run the encoders over the batches; write ``<out_dir>/<modality>_feats.ark`` with the scp at
    ``scps[modality]``; returns the ``<utt> frames,dim`` lines per modality."""
    from kaldiio import WriteHelper

    autocast = (
        torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
        if dtype == "bfloat16"
        else contextlib.nullcontext()
    )
    shapes = {m: [] for m in encoders}
    with contextlib.ExitStack() as stack, torch.no_grad(), autocast:
        writers = {
            m: stack.enter_context(WriteHelper(f"ark,scp:{out_dir / FEATS_NAMES[m]}.ark,{scps[m]}")) for m in encoders
        }
        for utts, batch in batches:
            for modality, encoder in encoders.items():
                feats, lengths = encoder(batch[modality].to(device), batch[f"{modality}_lengths"].to(device))
                for utt, row, n in zip(utts, feats.float().cpu().numpy(), lengths.tolist()):
                    writers[modality](utt, np.ascontiguousarray(row[:n], dtype=np.float32))
                    shapes[modality].append(f"{utt} {n},{row.shape[-1]}")
    return shapes


def _copy_utt2dur(data_dir: Path, out_dir: Path, utts: set[str]) -> None:
    """The durations of the dumped utterances beside their features (shape files for the batch samplers are
    written from the first data file's directory)."""
    source = data_dir / "utt2dur"
    if source.is_file():
        with open(source, encoding="utf-8") as f:
            lines = [line for line in f if line.split(maxsplit=1)[:1] and line.split()[0] in utts]
        (out_dir / "utt2dur").write_text("".join(lines), encoding="utf-8")
