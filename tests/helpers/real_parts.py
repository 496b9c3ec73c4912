"""Where the tests find the real pretrained parts (tools/get_pretrained.sh), and what happens when they are absent:
a skip that names the part and the command to get it, or a failure when MOME_REQUIRE_REAL=1 (CI sets it, so that
a CI run cannot pass without having run the real-part tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # tests/helpers/ -> the repository
GET = "tools/get_pretrained.sh"


def pretrained_root() -> Path:
    return Path(os.environ.get("MOME_PRETRAINED") or ROOT / "tools" / "pretrained")


def real_part(name: str, needs: str = "config.json") -> Path:
    """``$MOME_PRETRAINED/<name>`` if it holds ``needs``; otherwise skip (or fail under MOME_REQUIRE_REAL=1)."""
    path = pretrained_root() / name
    if (path / needs).is_file():
        return path
    reason = f"real part {name} is not in {pretrained_root()} (MOME_PRETRAINED): get it with `{GET}`"
    if os.environ.get("MOME_REQUIRE_REAL") == "1":
        pytest.fail(reason + " (MOME_REQUIRE_REAL=1)", pytrace=False)
    pytest.skip(reason)
