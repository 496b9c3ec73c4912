"""Outputs that appear whole or not at all: write under a temporary name, then rename.

A stage killed at any moment (SIGKILL, a lost node, a full disk) must not leave a half-written file that a
rerun takes for finished work. Every stage output goes through one of these:

- :func:`write_text` / :func:`write_bytes`: a file, written to ``.<name>.tmp.<pid>`` in the same folder and
  renamed over the target (``os.replace`` is atomic within one file system);
- :func:`replace_dir`: a folder built under a temporary name, swapped in for the old one;
- :func:`save_torch`: ``torch.save`` to a path, the same way (the trainer's checkpoints).

Temporary names start with a dot, so no glob of the recipes (``data/<set>_babble_snr*``, ``*.pth``) sees
them; :func:`remove_leftovers` clears those a killed run left behind.

Fault injection (for the recipe's kill test only): with ``MOME_KILL_IN_SAVE=<file name>`` in the
environment, the first save of a file of that name is cut to half its bytes before the rename and the
whole process group is SIGKILLed, as if the machine died in the middle of the save.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

KILL_IN_SAVE = "MOME_KILL_IN_SAVE"


def temporary_path(path: str | Path) -> Path:
    """``.<name>.tmp.<pid>`` beside ``path``: same file system (so the rename is atomic), hidden from globs,
    unique per process (parallel ranks may write the same output)."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp.{os.getpid()}")


def _maybe_die(path: Path, tmp: Path) -> None:
    """The fault injection: ``tmp`` (fully written) is cut to half its size, then the process group dies."""
    if os.environ.get(KILL_IN_SAVE) == path.name:
        del os.environ[KILL_IN_SAVE]
        with open(tmp, "r+b") as f:
            f.truncate(os.fstat(f.fileno()).st_size // 2)
            os.fsync(f.fileno())
        os.killpg(os.getpgrp(), signal.SIGKILL)


def _write_atomically(path: Path, write) -> Path:
    """``write(tmp)`` to a temporary name beside ``path``, then rename it to ``path``; nothing is left on failure."""
    tmp = temporary_path(path)
    try:
        write(tmp)
        _maybe_die(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parents created); returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_atomically(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (parents created); returns ``path``."""
    return write_bytes(path, text.encode(encoding))


def save_torch(obj, path: str | Path, save=None, **kwargs) -> Path:
    """``torch.save(obj, path)`` atomically: a checkpoint file that exists is complete. ``save``: the function
    that writes (default ``torch.save``; the trainer passes the original while it routes ``torch.save`` here)."""
    if save is None:
        import torch

        save = torch.save
    return _write_atomically(Path(path), lambda tmp: save(obj, tmp, **kwargs))


def symlink(target: str, link: str | Path) -> Path:
    """Point ``link`` at ``target`` (a name relative to the link's folder), replacing any old link in one
    rename: there is never a moment without the link."""
    link = Path(link)
    tmp = temporary_path(link)
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link


def replace_dir(tmp: str | Path, target: str | Path) -> Path:
    """Put the finished folder ``tmp`` in the place of ``target`` (which may exist). A kill between the two
    renames leaves no ``target`` (never a half-made one); the old folder, renamed aside, is then removed."""
    tmp, target = Path(tmp), Path(target)
    old = target.with_name(f".{target.name}.old.{os.getpid()}")
    if target.exists():
        os.rename(target, old)
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def staging_dir(target: str | Path) -> Path:
    """An empty folder beside ``target`` to build it in (then :func:`replace_dir`); the staging folders of
    ``target`` that killed runs left are removed first (one process builds a given folder at a time)."""
    target = Path(target)
    remove_leftovers(target.parent, target.name)
    tmp = target.with_name(f".{target.name}.tmp.{os.getpid()}")
    tmp.mkdir(parents=True)
    return tmp


def remove_leftovers(folder: str | Path, name: str | None = None) -> int:
    """Remove the temporary files and folders (of ``name``, or of everything) that killed runs left in
    ``folder``; returns how many. Only call it where no other process is writing."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    pattern = f".{name}." if name else "."
    removed = 0
    for p in folder.iterdir():
        if p.name.startswith(pattern) and (".tmp." in p.name or ".old." in p.name):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink(missing_ok=True)
            removed += 1
    return removed
