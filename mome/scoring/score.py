"""Score a Kaldi hypothesis ``text`` against a reference ``text`` into a scoring directory.

Two backends write the same files into ``outdir``:

- ``ref.trn``, ``hyp.trn``   the normalised transcripts in sclite's format;
- ``result.txt``             "SYSTEM SUMMARY PERCENTAGES by SPEAKER" (sclite's ``.sys`` report);
- ``result_raw.txt``         the same table with counts (sclite's ``.raw``);
- ``alignment.txt``          per-utterance alignments (sclite's ``.pra``, or our look-alike);
- ``wer``                    one line, Kaldi style: ``%WER 12.34 [ 45 / 365, 3 ins, 10 del, 32 sub ]``.

The directory is written beside its place and swapped in, so a killed scoring run leaves the old reports
or the new ones, never a mix. Both transcripts go through :func:`mome.text.normalize_text` first.

``sclite`` runs NIST's tool (``/usr/lib/sctk/bin/sclite``, ``sclite`` on PATH, ``sctk sclite``, or the
``SCLITE`` environment variable); ``python`` uses our own alignment (mome.scoring.align), whose counts
and summary table equal sclite's; ``auto`` picks sclite when it is installed.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from mome import atomic
from mome.errors import MomeError
from mome.scoring.align import ErrorCounts, align_words
from mome.scoring.report import (
    ScoredUtterance,
    counts_from_raw,
    format_alignments,
    format_summary,
    format_wer_line,
)
from mome.scoring.texts import Utterance, format_trn, load_utterances

log = logging.getLogger(__name__)

BACKENDS = ("auto", "sclite", "python")
SCLITE_PATHS = ("/usr/lib/sctk/bin/sclite",)
TITLE = "hyp.trn"  # the hypothesis file name, which sclite prints as the table title


class ScliteError(MomeError, RuntimeError):
    """sclite is missing or failed; the message holds its command line and output."""


def find_sclite() -> list[str] | None:
    """The command that runs sclite here, or None. ``$SCLITE``, when set, is the only place looked at
    (set it to a non-existent path to pretend SCTK is absent)."""
    env = os.environ.get("SCLITE")
    if env:
        found = shutil.which(env)
        if found is None:
            log.warning("SCLITE=%s is not an executable: sclite taken as absent", env)
        return [found] if found else None
    found = shutil.which("sclite") or next((p for p in SCLITE_PATHS if os.access(p, os.X_OK)), None)
    if found:
        return [found]
    sctk = shutil.which("sctk")
    return [sctk, "sclite"] if sctk else None


def score_python(utterances: list[Utterance], outdir: Path) -> ErrorCounts:
    """Our backend: align every utterance and write the reports."""
    scored = [ScoredUtterance(u, align_words(u.ref, u.hyp)) for u in utterances]
    (outdir / "result.txt").write_text(format_summary(scored, TITLE), encoding="utf-8")
    (outdir / "result_raw.txt").write_text(format_summary(scored, TITLE, raw=True), encoding="utf-8")
    (outdir / "alignment.txt").write_text(format_alignments(scored, TITLE), encoding="utf-8")
    return sum((s.counts for s in scored), ErrorCounts())


def score_sclite(outdir: Path, command: list[str] | None = None) -> ErrorCounts:
    """Run sclite on ``outdir/ref.trn`` and ``outdir/hyp.trn`` and rename its reports."""
    command = command or find_sclite()
    if command is None:
        raise ScliteError(
            "sclite not found: install SCTK (Debian package 'sctk'), set SCLITE=/path/to/sclite, "
            "or use --backend python"
        )
    args = [*command, "-r", "ref.trn", "trn", "-h", TITLE, "trn", "-i", "rm", "-o", "all"]
    proc = subprocess.run(args, cwd=outdir, capture_output=True, text=True)
    reports = {f"{TITLE}.sys": "result.txt", f"{TITLE}.raw": "result_raw.txt", f"{TITLE}.pra": "alignment.txt"}
    if proc.returncode != 0 or not all((outdir / name).is_file() for name in reports):
        raise ScliteError(
            f"sclite failed (exit {proc.returncode}) in {outdir}: {' '.join(args)}\n"
            f"{(proc.stdout + proc.stderr)[-2000:]}"
        )
    for name, new in reports.items():
        (outdir / name).replace(outdir / new)
    return counts_from_raw((outdir / "result_raw.txt").read_text(encoding="utf-8"))


def score(
    ref_text: str | Path,
    hyp_text: str | Path,
    outdir: str | Path,
    backend: str = "auto",
    utt2spk: str | Path | None = None,
) -> ErrorCounts:
    """Score ``hyp_text`` against ``ref_text`` (Kaldi ``text`` files) into ``outdir``; return the totals."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    sclite = find_sclite() if backend in ("auto", "sclite") else None
    if backend == "auto":
        backend = "sclite" if sclite else "python"
    outdir = Path(outdir)
    utterances = load_utterances(ref_text, hyp_text, utt2spk)
    work = atomic.staging_dir(outdir)  # the reports appear together, whole, or not at all
    try:
        (work / "ref.trn").write_text(format_trn(utterances, "ref"), encoding="utf-8")
        (work / TITLE).write_text(format_trn(utterances, "hyp"), encoding="utf-8")
        counts = score_sclite(work, sclite) if backend == "sclite" else score_python(utterances, work)
        (work / "wer").write_text(format_wer_line(counts) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    atomic.replace_dir(work, outdir)
    return counts
