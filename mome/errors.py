"""The base of the project's errors.

Every error the project raises for its user (a bad config, a malformed data directory, media it cannot read,
a converter input it does not understand, ...) derives from :class:`MomeError`, and its message names the file
or option at fault and what to do. Each class keeps the standard base callers catch it as (``ValueError`` for
bad input, ``RuntimeError`` for a failing tool or step), so ``except ValueError`` still works.

The ``mome.bin`` entry points turn a ``MomeError`` into ``prog: error: <message>`` and exit status 1, in one
place: :func:`mome.bin._cli.entry_point`.
"""

from __future__ import annotations


class MomeError(Exception):
    """An error for the user of the project: its message says what is wrong (the file, the option) and what to do."""


class MissingPackageError(MomeError, ImportError):
    """An optional package a feature needs is not installed; the message says how to install it."""
