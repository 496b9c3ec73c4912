"""What every ``mome.bin`` entry point shares: ESPnet's option spellings with the old ones as hidden aliases,
and one error path.

Spellings: ``--data_dir``, ``--model_dir``, ``--output_dir`` (a folder written), ``--output`` (a file written),
``--dump_dir`` (a dump folder), ``--beam_size``, words joined by underscores. An option renamed to them keeps
its old spelling through :func:`add_hidden_aliases`: the old string reaches the same argparse action (so
``required``, mutually exclusive groups and ESPnet's ``--config`` keys behave as for the new one) and ``--help``
never shows it.

Errors: :func:`entry_point` wraps an entry point's ``main(argv) -> int`` so that a
:class:`mome.errors.MomeError` (and an ``OSError`` or ``ValueError`` with its message, what the standard
library and the checks not yet given a project class raise) prints ``prog: error: <message>`` on stderr and
returns exit status 1, as argparse prints its usage errors (which exit with 2).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Mapping

from mome.errors import MomeError

USER_ERRORS = (MomeError, OSError, ValueError)


def add_hidden_aliases(parser: argparse.ArgumentParser, aliases: Mapping[str, str]) -> None:
    """Accept each old spelling (key) as the option it was renamed to (value), hidden from ``--help``."""
    for old, new in aliases.items():
        action = parser._option_string_actions.get(new)
        if action is None:
            raise ValueError(f"hidden alias {old}: the parser has no option {new}")
        if old in parser._option_string_actions:
            raise ValueError(f"hidden alias {old}: already an option of the parser")
        parser._option_string_actions[old] = action  # parsed as `new`; help lists action.option_strings only


def report_error(prog: str, error: BaseException) -> int:
    """Print ``prog: error: <message>`` on stderr; the exit status of a failed run (1)."""
    print(f"{prog}: error: {error}", file=sys.stderr, flush=True)
    return 1


def entry_point(prog: str) -> Callable:
    """Decorate ``main(argv=None) -> int | None``: a user error becomes ``prog: error: ...`` and exit status 1."""

    def wrap(main: Callable) -> Callable:
        @functools.wraps(main)
        def run(argv: list[str] | None = None):
            try:
                return main(argv)
            except USER_ERRORS as e:
                logging.getLogger(main.__module__).debug("%s failed", prog, exc_info=True)  # the traceback, at DEBUG
                return report_error(prog, e)

        run.prog = prog
        return run

    return wrap
