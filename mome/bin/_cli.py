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

Options and their ``--config`` YAML: :class:`ConfigArgumentParser` checks a YAML value as argparse checks the
same value on the command line (its type, choices, one value or a list); :func:`unit_interval` is the type of a
weight in [0, 1].
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Mapping

from espnet2.utils.config_argparse import ArgumentParser as EspnetConfigParser

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


def unit_interval(text: str) -> float:
    """argparse type of a weight: a float in [0, 1], else ArgumentTypeError (argparse names the option)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


class ConfigArgumentParser(EspnetConfigParser):
    """ESPnet's parser with ``--config <yaml>``, whose values are checked as the command line's are.

    ESPnet sets a YAML's values as the options' defaults, unchecked, so ``beam_size:`` left empty or ``ctc_weight:
    [0.5]`` would reach the code as None or a list. Here each YAML value of an option with a ``type`` or
    ``choices`` goes through that type (as its text) and those choices; an option of one value refuses a list, a
    mapping, a bool, and null unless its default is None. A refused value is a usage error (exit status 2) naming
    the option."""

    def set_defaults(self, **kwargs) -> None:
        actions = {action.dest: action for action in self._actions}
        super().set_defaults(**{key: self._checked(actions.get(key), key, value) for key, value in kwargs.items()})

    def _checked(self, action: argparse.Action | None, key: str, value):
        if action is None or (action.type is None and action.choices is None):
            return value
        many = action.nargs not in (None, "?")
        if value is None and action.default is None:
            return None
        if isinstance(value, (dict, bool)) or value is None or isinstance(value, list) != many:
            self.error(f"--config: {key}: {value!r} is not {'a list of values' if many else 'one value'} of its type")
        return [self._one(action, key, v) for v in value] if many else self._one(action, key, value)

    def _one(self, action: argparse.Action, key: str, value):
        try:
            checked = (action.type or str)(str(value))
        except (argparse.ArgumentTypeError, TypeError, ValueError) as e:
            self.error(f"--config: {key}: {value!r}: {e}")
        if action.choices is not None and checked not in action.choices:
            self.error(f"--config: {key}: {value!r} is not one of {', '.join(map(str, action.choices))}")
        return checked


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
