"""Shared pytest set-up."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """One intra-op thread: several threads on a busy 2-core machine run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_terminal_summary(terminalreporter):
    """One line on the tests that need the real pretrained parts: how many ran, how many were skipped and why."""
    from tests.helpers.real_parts import GET, pretrained_root

    def real(reports):
        return [r for r in reports if getattr(r, "when", "call") in ("setup", "call") and "real" in r.keywords]

    skipped = real(terminalreporter.stats.get("skipped", []))
    ran = [
        r
        for r in real(terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []))
        if r.when == "call"
    ]
    if skipped:
        terminalreporter.write_line(
            f"real pretrained parts: {len(skipped)} tests skipped, {len(ran)} ran; the parts go in {pretrained_root()} "
            f"(MOME_PRETRAINED): get them with `{GET}`",
            yellow=True,
        )
    elif ran:
        terminalreporter.write_line(f"real pretrained parts: {len(ran)} tests ran on {pretrained_root()}", green=True)
