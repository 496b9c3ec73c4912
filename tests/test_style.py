"""The tree passes ruff (pyproject.toml: format, and the E, F, I rules at 120 columns): CI's test command checks style.

Fix a failure with ``tools/venv/bin/ruff format . && tools/venv/bin/ruff check --fix .`` and wrap what remains.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    if importlib.util.find_spec("ruff") is None:
        pytest.fail(f"ruff is not installed in {sys.executable}: it is a dependency, run tools/install.sh")
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    "args", [("check", "--no-fix", "."), ("format", "--check", ".")], ids=["ruff check", "ruff format --check"]
)
def test_ruff(args):
    r = ruff(*args)
    if r.returncode != 0:
        pytest.fail(f"ruff {' '.join(args)} (exit {r.returncode}):\n{r.stdout}{r.stderr}", pytrace=False)
