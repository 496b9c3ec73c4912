"""mome.atomic and its users: an output appears whole or not at all, a failed or killed change leaves the old
state, leftovers of killed runs are cleared."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mome import atomic
from mome.data import kaldi

KILLED_WRITE = """
import sys
from mome import atomic
atomic.write_text(sys.argv[1], "new " * 1000)
"""


def test_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "sub" / "text"
    atomic.write_text(path, "a 1\n")
    atomic.write_text(path, "b 2\n")
    assert path.read_text() == "b 2\n" and os.listdir(path.parent) == ["text"]


def test_killed_in_the_middle_of_a_write_the_old_file_stays(tmp_path):
    path = tmp_path / "text"
    path.write_text("old\n")
    env = {**os.environ, atomic.KILL_IN_SAVE: "text"}
    run = subprocess.run(
        [sys.executable, "-c", KILLED_WRITE, str(path)],
        env=env,
        start_new_session=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == -9, run.stderr
    assert path.read_text() == "old\n"
    (half,) = [p for p in tmp_path.iterdir() if p.name != "text"]
    assert half.name.startswith(".text.tmp.") and half.stat().st_size == len("new " * 1000) // 2
    assert atomic.remove_leftovers(tmp_path) == 1 and os.listdir(tmp_path) == ["text"]


def test_replace_dir_and_symlink(tmp_path):
    target = tmp_path / "set"
    target.mkdir()
    (target / "old").write_text("x")
    staging = atomic.staging_dir(target)
    (staging / "new").write_text("y")
    atomic.replace_dir(staging, target)
    assert os.listdir(target) == ["new"] and os.listdir(tmp_path) == ["set"]
    atomic.symlink("new", tmp_path / "link")
    atomic.symlink("set", tmp_path / "link")
    assert os.readlink(tmp_path / "link") == "set"


def test_a_failed_rewrite_leaves_the_data_dir_as_it_was(tmp_path):
    data = tmp_path / "test"
    kaldi.write_data_dir(data, {"text": {"u1": "a", "u2": "b"}, "utt2spk": {"u1": "u", "u2": "u"}})
    before = {p.name: p.read_text() for p in data.iterdir()}
    with pytest.raises(RuntimeError, match="half way"):
        with kaldi.rewrite_data_dir(data) as new:
            kaldi.filter_data_dir(new, ["u1"])
            raise RuntimeError("half way")
    assert {p.name: p.read_text() for p in data.iterdir()} == before
    assert os.listdir(tmp_path) == ["test"]  # no staging copy left
    with kaldi.rewrite_data_dir(data) as new:
        kaldi.filter_data_dir(new, ["u1"])
    assert kaldi.read_table(data / "text") == {"u1": "a"} and os.listdir(tmp_path) == ["test"]
