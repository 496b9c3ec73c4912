"""Progress bars for long work: live on a terminal, a line every 10 s in a log file."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable=None, **kwargs) -> tqdm:
    """``tqdm`` on stderr; when stderr is not a terminal (recipe logs), update rarely so that
    logs stay readable."""
    kwargs.setdefault("file", sys.stderr)
    if not kwargs["file"].isatty():
        kwargs["mininterval"] = max(kwargs.get("mininterval", 0.1), 10.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, **kwargs)
