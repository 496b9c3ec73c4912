"""Packed models: one self-contained folder that :meth:`mome.inference.AVSR2Text.from_pretrained` loads anywhere.

    OUT/config.yaml      the training config, its path options rewritten (relative to OUT, or named by path)
    OUT/model.pth        the trained weights (the checkpoint; frozen pretrained weights stay out of it)
    OUT/tokenizer/       the LLM tokenizer (save_pretrained)
    OUT/frozen/<name>/   each frozen part the config names, copied when at most ``copy_limit_mb``
    OUT/manifest.json    what is where: per frozen part the config option, the original path, whether it was
                         copied (and its size and SHA-256 of its files), else the path it is read from
                         (``${MOME_PRETRAINED}/...`` when it lies under $MOME_PRETRAINED)
    OUT/cascade.json     the adaptive-rate calibration, when the model has one

A part too large to copy is named by path: the machine that loads the pack needs it there (or under its
own ``$MOME_PRETRAINED``); :func:`check_packed` names what is missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import yaml

from mome import atomic
from mome.cascade import CALIBRATION_FILE
from mome.inference import PACK_MANIFEST, PATH_OPTIONS, read_config, resolve_checkpoint

FORMAT = "mome-packed-model"
VERSION = 1
CHECKPOINT = "model.pth"
TRAINING_ONLY = (("llm_conf", "texts"),)  # read only to train a tokenizer that the pack already holds


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def path_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, or of every file under a directory (relative names and bytes, sorted)."""
    h = hashlib.sha256()
    for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _named(path: Path) -> str:
    """An absolute path, as ``${MOME_PRETRAINED}/...`` when it lies under that variable's folder."""
    root = os.environ.get("MOME_PRETRAINED")
    path = path.absolute()
    if root:
        try:
            return "${MOME_PRETRAINED}/" + str(path.relative_to(Path(root).absolute()))
        except ValueError:
            pass
    return str(path)


def pack_model(
    model_dir: str | Path, out_dir: str | Path, checkpoint: str | Path | None = None, copy_limit_mb: float = 1024.0
) -> Path:
    """Write the packed folder of ``model_dir`` (a training output directory) to ``out_dir`` (created; must
    not exist or be empty). Returns ``out_dir``."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty: give a new folder")
    with (
        open(model_dir / "config.yaml", encoding="utf-8")
        if (model_dir / "config.yaml").is_file()
        else _missing(model_dir) as f
    ):
        raw = yaml.safe_load(f)
    resolved = vars(read_config(model_dir))
    checkpoint = resolve_checkpoint(model_dir, checkpoint)
    work = atomic.staging_dir(out_dir)
    try:
        shutil.copyfile(checkpoint, work / CHECKPOINT)
        parts = []
        for section, key in PATH_OPTIONS:
            conf = raw.get(section)
            if not isinstance(conf, dict) or not isinstance(conf.get(key), str):
                continue
            if (section, key) in TRAINING_ONLY:
                del conf[key]
                continue
            source = Path(resolved[section][key])
            if not source.exists():
                raise FileNotFoundError(
                    f"{section} {key}: {conf[key]} (resolved: {source}) does not exist; cannot pack {model_dir}"
                )
            size = _size(source)
            entry = {"option": f"{section}.{key}", "original": conf[key], "bytes": size}
            if size <= copy_limit_mb * 2**20:
                part = section.removesuffix("_conf") + (
                    "" if key == "path" else f"_{key}"
                )  # frozen/llm, frozen/audio_encoder, ...
                name = "tokenizer" if key in ("tokenizer", "tokenizer_dir") else f"frozen/{part}"
                target = work / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, target, dirs_exist_ok=True)
                else:
                    shutil.copyfile(source, target)
                conf[key] = name
                entry.update(copied=True, path=name, sha256=path_digest(target))
            else:
                conf[key] = conf[key] if "MOME_PRETRAINED" in conf[key] else _named(source)
                entry.update(copied=False, path=conf[key])
            parts.append(entry)
        if not (work / "tokenizer").exists():
            from mome.espnet.task import AVSRTask

            AVSRTask.llm_spec(__import__("argparse").Namespace(**resolved)).load_tokenizer().save_pretrained(
                work / "tokenizer"
            )
        if isinstance(raw.get("preprocessor_conf"), dict):
            raw["preprocessor_conf"].pop("noise", None)  # training-only: decoding adds no noise
        (work / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        if (model_dir / CALIBRATION_FILE).is_file():
            shutil.copyfile(model_dir / CALIBRATION_FILE, work / CALIBRATION_FILE)
        digest = path_digest(work / CHECKPOINT)
        manifest = {"format": FORMAT, "version": VERSION, "source": str(model_dir.absolute()), "checkpoint": CHECKPOINT,
                    "checkpoint_source": str(checkpoint.absolute()), "checkpoint_sha256": digest,
                    "tokenizer": "tokenizer", "frozen": parts}  # fmt: skip
        (work / PACK_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    atomic.replace_dir(work, out_dir)
    return out_dir


def _missing(model_dir: Path):
    raise FileNotFoundError(
        f"training config {model_dir / 'config.yaml'} does not exist (is {model_dir} a training output directory?)"
    )


def check_packed(pack_dir: str | Path) -> list[str]:
    """Problems of a packed folder (an empty list when it is whole): a missing manifest or checkpoint, a copied
    part whose files changed, a part named by path that is not there."""
    pack_dir = Path(pack_dir)
    manifest = pack_dir / PACK_MANIFEST
    if not manifest.is_file():
        return [f"{manifest} does not exist: not a packed model (make one with python -m mome.bin.pack_model)"]
    body = json.loads(manifest.read_text(encoding="utf-8"))
    problems = [] if (pack_dir / body["checkpoint"]).is_file() else [f"{pack_dir / body['checkpoint']} is missing"]
    for part in body["frozen"]:
        if part["copied"]:
            path = pack_dir / part["path"]
            if not path.exists() or path_digest(path) != part["sha256"]:
                problems.append(f"{part['option']}: {path} is missing or changed since packing")
        else:
            path = Path(os.path.expandvars(part["path"]))
            if not path.exists():
                problems.append(
                    f"{part['option']}: {part['path']} (not copied into the pack: {part['bytes'] / 2**20:.0f} MB) "
                    "does not exist on this machine; put it there or set $MOME_PRETRAINED"
                )
    return problems
