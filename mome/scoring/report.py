"""Reports in sclite's layouts, written from our own alignments.

- ``format_summary``: the "SYSTEM SUMMARY PERCENTAGES by SPEAKER" table (sclite's ``.sys``; with
  ``raw=True`` its ``.raw`` twin with counts), with sclite's numbers: percentages rounded half away from
  zero to one decimal, speakers without reference words shown as counts (``*``) and left out of the
  Mean / S.D. / Median of the word columns (``+``), sample standard deviation, and the table sized and
  centred the way sclite's report generator does it. Matched against sclite 2.10 by tests/test_scoring.py.
- ``format_alignments``: per-utterance alignments in the manner of sclite's ``.pra`` file.
- ``format_wer_line``: Kaldi's one-line summary ``%WER 12.34 [ 45 / 365, 3 ins, 10 del, 32 sub ]``.
- ``parse_summary``: the Sum/Avg (or raw Sum) line of such a table, from either backend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mome.scoring.align import CORRECT, Alignment, ErrorCounts
from mome.scoring.texts import Utterance, trn_id

PAGE_WIDTH = 80
HEADER = [" SPKR", " # Snt", "# Wrd", "Corr", " Sub", " Del", " Ins", " Err", "S.Err"]
# separators after each column of the 9-column rows ("l|cc|cccccc"): '|' or ' '
_SEPARATORS = ["|", " ", "|", " ", " ", " ", " ", " "]


@dataclass(frozen=True)
class ScoredUtterance:
    utt: Utterance
    alignment: Alignment

    @property
    def counts(self) -> ErrorCounts:
        return self.alignment.counts


@dataclass(frozen=True)
class SpeakerTotals:
    name: str
    sentences: int
    sentence_errors: int
    counts: ErrorCounts


def speaker_totals(scored: Sequence[ScoredUtterance]) -> list[SpeakerTotals]:
    """Per-speaker sums, speakers in order of first appearance (as sclite lists them)."""
    order: dict[str, list[ScoredUtterance]] = {}
    for s in scored:
        order.setdefault(s.utt.speaker, []).append(s)
    totals = []
    for name, items in order.items():
        counts = sum((s.counts for s in items), ErrorCounts())
        totals.append(SpeakerTotals(name, len(items), sum(s.counts.errors > 0 for s in items), counts))
    return totals


# --------------------------------------------------------------------------------- sclite arithmetic


def _f_round(x: float, decimals: int) -> float:
    """sclite's rounding: half away from zero at ``decimals``, through a C int and a float32."""
    scale = 10.0**decimals
    k = int(x * scale + (0.5 if x > 0.0 else -0.5))
    return float(np.float32(k)) / scale


def _pct(num: float, den: float) -> float:
    return 0.0 if den == 0 else num / den * 100.0


def _fmt(fmt: str, x: float, decimals: int) -> str:
    return fmt % _f_round(x, decimals)


def _mean_sd_median(values: Sequence[float]) -> tuple[float, float, float]:
    """Mean, sample standard deviation (0 when all values are equal) and median, summed in order."""
    n = len(values)
    if n == 0:
        return 0.0, 0.0, 0.0
    total = 0.0
    for v in values:
        total += v
    mean = total / n
    ordered = sorted(values)
    median = (ordered[n // 2] + ordered[n // 2 - 1]) / 2 if n % 2 == 0 else float(ordered[n // 2])
    squares = 0.0
    for v in values:
        squares += (v - mean) * (v - mean)
    sd = math.sqrt(squares / (n - 1)) if squares != 0.0 else 0.0
    return mean, sd, median


# ------------------------------------------------------------------------------------ the summary


def _summary_rows(speakers: Sequence[SpeakerTotals], raw: bool) -> tuple[list[tuple[str, list[str]]], int]:
    """Rows of the table as (kind, 9 cells); kind: 'speaker', 'sum' or 'stat'. Also the number of
    speakers without reference words."""
    cell_fmt, dec = ("%5.0f ", 0) if raw else ("%5.1f ", 1)
    rows: list[tuple[str, list[str]]] = []
    columns: list[list[float]] = [[], [], [], [], []]  # corr, sub, del, ins, err per speaker
    serr_col: list[float] = []
    zero = 0
    for spk in speakers:
        c = spk.counts
        values = [c.correct, c.substitutions, c.deletions, c.insertions, c.errors]
        if not raw and c.ref_words > 0:
            values = [_pct(v, c.ref_words) for v in values]
        for col, v in zip(columns, values):
            col.append(float(v))
        serr_col.append(float(spk.sentence_errors) if raw else _pct(spk.sentence_errors, spk.sentences))
        if raw or c.ref_words > 0:
            cells = [_fmt(cell_fmt, v, dec) for v in values]
        else:
            cells = [_fmt("%5.0f*", v, 0) for v in values]
            zero += 1
        rows.append(
            (
                "speaker",
                [
                    f" {spk.name} ",
                    "%5d" % spk.sentences,
                    "%5d" % c.ref_words,
                    *cells,
                    _fmt(cell_fmt, serr_col[-1], dec),
                ],
            )
        )

    total = sum((s.counts for s in speakers), ErrorCounts())
    sents = sum(s.sentences for s in speakers)
    sent_errors = sum(s.sentence_errors for s in speakers)
    sums = [total.correct, total.substitutions, total.deletions, total.insertions, total.errors]
    if raw:
        sum_cells = [_fmt("%5.0f ", v, 0) for v in (*sums, sent_errors)]
    else:
        sum_cells = [_fmt("%5.1f ", _pct(v, total.ref_words), 1) for v in sums]
        sum_cells.append(_fmt("%5.1f ", _pct(sent_errors, sents), 1))
    rows.append(("sum", [" Sum" if raw else " Sum/Avg", "%5d" % sents, "%5d" % total.ref_words, *sum_cells]))

    if zero:  # sclite drops word-less speakers from these columns by shifting the arrays up in place
        word_counts = [s.counts.ref_words for s in speakers]
        n = len(speakers)
        for i in range(n):
            if word_counts[i] == 0:
                for col in columns:
                    col[i : n - 1] = col[i + 1 : n]
                    col[n - 1] = -1000.0
        columns = [col[: n - zero] for col in columns]
    stats = [
        _mean_sd_median([float(s.sentences) for s in speakers]),
        _mean_sd_median([float(s.counts.ref_words) for s in speakers]),
        *(_mean_sd_median(col) for col in columns),
        _mean_sd_median(serr_col),
    ]
    word_fmt = "%5.1f+" if zero else "%5.1f "
    for k, label in enumerate([" Mean ", " S.D. ", "Median"]):
        cells = [_fmt("%5.1f ", stats[0][k], 1), _fmt("%5.1f ", stats[1][k], 1)]
        cells += [_fmt(word_fmt, st[k], 1) for st in stats[2:7]]
        cells.append(_fmt("%5.1f ", stats[7][k], 1))
        rows.append(("stat", [label, *cells]))
    return rows, zero


def _center(text: str, width: int) -> str:
    left = (width - len(text)) // 2
    return " " * left + text + " " * (width - len(text) - left)


def _column_adjustments(underage: int, num_cols: int) -> list[int]:
    """How sclite's report generator spreads spare width over a row's columns."""
    adds, done = [], 0
    for c in range(num_cols - 1):
        add = int(_f_round(underage / num_cols * (c + 1), 0)) - done
        done += add
        adds.append(add)
    adds.append(underage - done)
    return adds


def _render_table(title: str, rows: list[tuple[str, list[str]]], separators_before: list[str]) -> list[str]:
    sizes = [max(len(cells[c]) for cells in [HEADER, *(cells for _, cells in rows)]) for c in range(9)]
    width9 = 2 + sum(sizes) + 8
    width = max(width9, 2 + len(title))
    pad = " " * ((PAGE_WIDTH - width) // 2) if width < PAGE_WIDTH else ""
    adds9 = _column_adjustments(width - width9, 9)
    col_widths = [s + a for s, a in zip(sizes, adds9)]

    def content_line(cells: list[str], first_left: bool) -> str:
        parts = []
        for c, (cell, size, cw) in enumerate(zip(cells, sizes, col_widths)):
            left = (cw - size) // 2
            text = cell.ljust(size) if (c == 0 and first_left) else _center(cell, size)
            parts.append(" " * left + text + " " * (cw - size - left))
            if c < 8:
                parts.append(_SEPARATORS[c])
        return pad + "|" + "".join(parts) + "|"

    def rule_line(ch: str) -> str:  # a '-' rule crosses the column bars with '+'
        parts = []
        for c, cw in enumerate(col_widths):
            parts.append(ch * cw)
            if c < 8:
                parts.append("+" if ch == "-" and _SEPARATORS[c] == "|" else ch)
        return pad + "|" + "".join(parts) + "|"

    title_extra = width - (2 + len(title))
    lines = [pad + "," + "-" * (width - 2) + "."]
    lines.append(pad + "|" + " " * (title_extra // 2) + title + " " * (title_extra - title_extra // 2) + "|")
    lines.append(pad + "|" + "-" * (width - 2) + "|")  # after the one-column title: no crossings
    lines.append(content_line(HEADER, True))
    for (kind, cells), sep in zip(rows, separators_before):
        if sep:
            lines.append(rule_line(sep))
        lines.append(content_line(cells, kind != "stat"))
    lines.append(pad + "`" + "-" * (width - 2) + "'")
    return lines


def format_summary(scored: Sequence[ScoredUtterance], title: str = "hyp.trn", raw: bool = False) -> str:
    """sclite's "SYSTEM SUMMARY PERCENTAGES by SPEAKER" report (``.sys``; ``.raw`` with ``raw=True``)."""
    speakers = speaker_totals(scored)
    rows, zero = _summary_rows(speakers, raw)
    seps = ["-"] * len(speakers) + ["=", "=", "", ""]
    text = "\n\n\n" + _center("SYSTEM SUMMARY PERCENTAGES by SPEAKER", PAGE_WIDTH) + "\n\n"
    text += "\n".join(_render_table(title, rows, seps)) + "\n"
    if zero and not raw:
        text += (
            "\n* No Reference words for this/these speaker(s).  Word counts supplied\n"
            "  rather than percents.\n"
            "# No Reference words for this/these speaker(s).  NCE not computable.\n"
            "+ Speaker(s) with no reference data is ignored\n"
        )
    return text


# ------------------------------------------------------------------------------ other outputs


def format_alignments(scored: Sequence[ScoredUtterance], title: str = "hyp.trn") -> str:
    """Per-utterance alignments: correct words in lower case, errors in upper case, ``*`` for gaps."""
    by_speaker: dict[str, list[ScoredUtterance]] = {}
    for s in scored:
        by_speaker.setdefault(s.utt.speaker, []).append(s)
    out = ["\n\n\t\tDUMP OF SYSTEM ALIGNMENT STRUCTURE\n", f"System name:   {title}\n", "Speakers: "]
    out += [f"   {i:2d}:  {name}" for i, name in enumerate(by_speaker)]
    out.append("")
    for i, (name, items) in enumerate(by_speaker.items()):
        out.append(f"Speaker sentences{i:4d}:  {name}   #utts: {len(items)}")
        for s in items:
            c = s.counts
            out.append(f"id: ({trn_id(s.utt)})")
            out.append(f"Scores: (#C #S #D #I) {c.correct} {c.substitutions} {c.deletions} {c.insertions}")
            out += _alignment_lines(s.alignment)
            out.append("")
    return "\n".join(out) + "\n\n"


def _alignment_lines(alignment: Alignment) -> list[str]:
    ref, hyp, ev = ["REF: "], ["HYP: "], ["Eval:"]
    for op, r, h in alignment.ops:
        w = max(len(r or ""), len(h or ""))
        shown_r = "*" * w if r is None else (r if op == CORRECT else r.upper())
        shown_h = "*" * w if h is None else (h if op == CORRECT else h.upper())
        ref.append(shown_r.ljust(w))
        hyp.append(shown_h.ljust(w))
        ev.append(("" if op == CORRECT else op).ljust(w))
    return [" ".join(ref) + " ", " ".join(hyp) + " ", " ".join(ev) + " "]


def format_wer_line(counts: ErrorCounts) -> str:
    """Kaldi's summary: ``%WER 12.34 [ 45 / 365, 3 ins, 10 del, 32 sub ]``."""
    return (
        f"%WER {counts.wer:.2f} [ {counts.errors} / {counts.ref_words}, {counts.insertions} ins, "
        f"{counts.deletions} del, {counts.substitutions} sub ]"
    )


@dataclass(frozen=True)
class Summary:
    """The numbers of a Sum/Avg line (percentages) or of a raw Sum line (counts)."""

    sentences: int
    words: int
    correct: float
    substitutions: float
    deletions: float
    insertions: float
    errors: float  # the WER, in a Sum/Avg line
    sentence_errors: float


_SUM_LINE = re.compile(r"^\s*\|\s*(Sum/Avg|Sum)\s*\|(.*)\|\s*$", re.MULTILINE)


def parse_summary(report: str) -> Summary:
    """Read the Sum/Avg line of a ``.sys`` report (or the Sum line of a ``.raw`` one)."""
    m = _SUM_LINE.search(report)
    if m is None:
        raise ValueError("no 'Sum/Avg' or 'Sum' line found: not an sclite summary report")
    fields = m.group(2).replace("|", " ").split()
    if len(fields) != 8:
        raise ValueError(f"the Sum line has {len(fields)} numbers, expected 8: {m.group(0).strip()!r}")
    n = [float(f.rstrip("*+")) for f in fields]
    return Summary(int(n[0]), int(n[1]), *n[2:])


def counts_from_raw(report: str) -> ErrorCounts:
    """Error counts from the Sum line of a raw (``.raw``) report."""
    s = parse_summary(report)
    return ErrorCounts(int(s.correct), int(s.substitutions), int(s.deletions), int(s.insertions))


__all__ = [
    "ScoredUtterance",
    "SpeakerTotals",
    "Summary",
    "counts_from_raw",
    "format_alignments",
    "format_summary",
    "format_wer_line",
    "parse_summary",
    "speaker_totals",
]
