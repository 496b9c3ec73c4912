"""Word alignment of a hypothesis against a reference, with sclite's costs and tie-breaking.

sclite (NIST SCTK) aligns by dynamic programming with integer word costs: correct 0, substitution 4,
insertion 3, deletion 3. Several alignments can share the minimum cost and split the errors
differently (for example three substitutions cost 12, as do one correct word, two deletions and two
insertions), so matching sclite's counts needs its tie-breaking too: each cell prefers the diagonal
step (correct or substitution) when it is no worse than both others, then a deletion when it is
strictly cheaper than an insertion, else an insertion; the trace-back starts at the end of both
sequences. Unit-cost Levenshtein (jiwer, Kaldi) can therefore report fewer errors than sclite.

Words are compared exactly; callers lower-case first (sclite's default is case-insensitive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

COST_SUB = 4
COST_INS = 3
COST_DEL = 3

# operation codes, also the letters of sclite's "Eval:" line ("C" is blank there)
CORRECT, SUBSTITUTION, DELETION, INSERTION = "C", "S", "D", "I"
_DIAG, _UP, _LEFT = 0, 1, 2  # back-pointers: diagonal, from the previous ref word, from the previous hyp word


@dataclass(frozen=True)
class ErrorCounts:
    """Word counts of one or many aligned utterances."""

    correct: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0

    @property
    def ref_words(self) -> int:
        return self.correct + self.substitutions + self.deletions

    @property
    def hyp_words(self) -> int:
        return self.correct + self.substitutions + self.insertions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Word error rate in percent (errors / reference words); 0 or inf when there is no reference word."""
        if self.ref_words == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return 100.0 * self.errors / self.ref_words

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.correct + other.correct,
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
        )


@dataclass(frozen=True)
class Alignment:
    """One aligned utterance: a list of (operation, ref word or None, hyp word or None)."""

    ops: list[tuple[str, str | None, str | None]] = field(default_factory=list)

    @property
    def counts(self) -> ErrorCounts:
        letters = [op for op, _, _ in self.ops]
        return ErrorCounts(
            letters.count(CORRECT), letters.count(SUBSTITUTION), letters.count(DELETION), letters.count(INSERTION)
        )


def _word_ids(ref: Sequence[str], hyp: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    vocab: dict[str, int] = {}
    ref_ids = np.array([vocab.setdefault(w, len(vocab)) for w in ref], dtype=np.int64)
    hyp_ids = np.array([vocab.setdefault(w, len(vocab)) for w in hyp], dtype=np.int64)
    return ref_ids, hyp_ids


def _back_pointers(ref: Sequence[str], hyp: Sequence[str]) -> np.ndarray:
    """Fill the cost table row by row (one row per reference word) and return the back-pointers.

    Within a row the insertion chain D[i, j] = min(c[j], D[i, j-1] + 3) is a running minimum:
    D[i, j] = 3 j + min_{k <= j} (c[k] - 3 k), which numpy computes without a Python loop."""
    n, m = len(ref), len(hyp)
    ref_ids, hyp_ids = _word_ids(ref, hyp)
    sub_cost = np.where(ref_ids[:, None] == hyp_ids[None, :], 0, COST_SUB)  # (n, m)
    steps = COST_INS * np.arange(m + 1)
    back = np.empty((n + 1, m + 1), dtype=np.int8)
    back[0, :] = _LEFT
    back[:, 0] = _UP
    prev = steps.copy()  # row 0: insertions only
    for i in range(1, n + 1):
        diag = prev[:-1] + sub_cost[i - 1]
        up = prev[1:] + COST_DEL
        best_above = np.empty(m + 1, dtype=np.int64)
        best_above[0] = prev[0] + COST_DEL
        best_above[1:] = np.minimum(diag, up)
        row = steps + np.minimum.accumulate(best_above - steps)
        left = row[:-1] + COST_INS
        back[i, 1:] = np.where((diag <= up) & (diag <= left), _DIAG, np.where(up < left, _UP, _LEFT))
        prev = row
    return back


def align_words(ref: Sequence[str], hyp: Sequence[str]) -> Alignment:
    """Align two word sequences as sclite does (see the module docstring); either may be empty."""
    if not ref or not hyp:  # nothing to choose: all insertions or all deletions
        return Alignment([(DELETION, r, None) for r in ref] + [(INSERTION, None, h) for h in hyp])
    back = _back_pointers(ref, hyp)
    ops: list[tuple[str, str | None, str | None]] = []
    i, j = len(ref), len(hyp)
    while i > 0 or j > 0:
        step = back[i, j]
        if step == _DIAG:
            r, h = ref[i - 1], hyp[j - 1]
            ops.append((CORRECT if r == h else SUBSTITUTION, r, h))
            i, j = i - 1, j - 1
        elif step == _UP:
            ops.append((DELETION, ref[i - 1], None))
            i -= 1
        else:
            ops.append((INSERTION, None, hyp[j - 1]))
            j -= 1
    ops.reverse()
    return Alignment(ops)
