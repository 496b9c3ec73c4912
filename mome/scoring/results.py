"""An ESPnet-style RESULTS.md from scored decoding directories.

Layout read (stage 4 decodes, stage 5 scores)::

    <exp>/<model>/decode_<test set>_ra<r_a>_rv<r_v>/score/result.txt

``<test set>`` is ``test`` (clean) or ``test_babble_snr<N>`` (N may be negative); ``r_a`` and ``r_v`` are
the audio and video compression rates, ``0`` marking an absent modality (an audio-only model decodes
as ``ra4_rv0``, a video-only one as ``ra0_rv2``). The WER of a cell is the Err column of the Sum/Avg
line of ``result.txt``, as sclite prints it (either backend of mome.scoring.score writes it).

RESULTS.md: a header (date, versions, git commit), then per test condition the numbers of utterances
and words scored and a table with one row per model and one column per rate pair.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import logging
import platform
import re
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mome import atomic
from mome.scoring.report import Summary, parse_summary

log = logging.getLogger(__name__)

DECODE_DIR = re.compile(r"decode_(?P<test_set>.+)_ra(?P<ra>\d+)_rv(?P<rv>\d+)")
NOISY_SET = re.compile(r"(?P<base>.+)_babble_snr(?P<snr>-?\d+)")
PACKAGES = ("torch", "espnet", "transformers", "peft")


@dataclass(frozen=True)
class DecodeResult:
    model: str
    test_set: str
    rate_audio: int
    rate_video: int
    summary: Summary
    path: Path  # the result.txt read


def parse_decode_dir_name(name: str) -> tuple[str, int, int] | None:
    """``decode_test_babble_snr-5_ra4_rv2`` -> (``test_babble_snr-5``, 4, 2); None if it does not match."""
    m = DECODE_DIR.fullmatch(name)
    return (m["test_set"], int(m["ra"]), int(m["rv"])) if m else None


def collect_results(exp_dir: str | Path) -> list[DecodeResult]:
    """Every scored ``<exp>/<model>/decode_*_ra*_rv*/score/result.txt``; unscored decode dirs are logged."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise FileNotFoundError(f"experiment directory {exp_dir} does not exist")
    results = []
    for decode_dir in sorted(exp_dir.glob("*/decode_*")):
        parsed = parse_decode_dir_name(decode_dir.name)
        if parsed is None or not decode_dir.is_dir():
            continue
        result_txt = decode_dir / "score" / "result.txt"
        if not result_txt.is_file():
            log.warning("%s: not scored (no score/result.txt); left out", decode_dir)
            continue
        summary = parse_summary(result_txt.read_text(encoding="utf-8"))
        results.append(DecodeResult(decode_dir.parent.name, *parsed, summary, result_txt))
    return results


def condition_order(test_set: str) -> tuple[str, int, int]:
    """Clean sets first, then their noisy copies from the highest SNR to the lowest."""
    m = NOISY_SET.fullmatch(test_set)
    return (m["base"], 1, -int(m["snr"])) if m else (test_set, 0, 0)


def describe_test_set(test_set: str) -> str:
    m = NOISY_SET.fullmatch(test_set)
    return f"{test_set} (babble noise, SNR {m['snr']} dB)" if m else f"{test_set} (clean)"


def rate_label(rate_audio: int, rate_video: int) -> str:
    """``(4,2)``; an absent modality (rate 0) shows as ``-``."""
    return "({},{})".format(*(str(r) if r else "-" for r in (rate_audio, rate_video)))


def environment_info() -> dict[str, str]:
    """Date, Python and package versions, and the git commit of this checkout."""
    info = {
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
        "python": platform.python_version(),
    }
    for package in PACKAGES:
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = "not installed"
    info["git commit"] = _git_commit(Path(__file__).resolve().parents[2])
    return info


def _git_commit(repo: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return commit + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def format_results_md(
    results: Sequence[DecodeResult], exp_dir: str | Path, env: Mapping[str, str] | None = None
) -> str:
    """The RESULTS.md text (``env`` defaults to ``environment_info()``)."""
    env = environment_info() if env is None else env
    lines = ["# RESULTS", "", "## Environment", ""]
    lines += [f"- {key}: `{value}`" for key, value in env.items()]
    lines += [
        f"- experiments: `{exp_dir}`",
        "",
        "WER (%) is the Err column of sclite's Sum/Avg line in each `score/result.txt`. Columns are the",
        "compression rates (r_a, r_v) of audio and video; `-` marks a modality the model does not use.",
        "",
    ]
    if not results:
        return "\n".join(lines + ["No scored decoding directories found.", ""])
    for test_set in sorted({r.test_set for r in results}, key=condition_order):
        lines += _condition_section(test_set, [r for r in results if r.test_set == test_set])
    return "\n".join(lines)


def _condition_section(test_set: str, results: Sequence[DecodeResult]) -> list[str]:
    rates = sorted({(r.rate_audio, r.rate_video) for r in results})
    models = sorted({r.model for r in results})
    sizes = Counter((r.summary.sentences, r.summary.words) for r in results)
    (snt, wrd), _ = sizes.most_common(1)[0]
    lines = [f"## {describe_test_set(test_set)}", "", f"- utterances: {snt}, words: {wrd}"]
    odd = [r for r in results if (r.summary.sentences, r.summary.words) != (snt, wrd)]
    for r in odd:
        lines.append(
            f"- *: {r.model} {rate_label(r.rate_audio, r.rate_video)} scored "
            f"{r.summary.sentences} utterances, {r.summary.words} words"
        )
    cell = {
        (r.model, r.rate_audio, r.rate_video): f"{r.summary.errors:.1f}" + ("*" if r in odd else "") for r in results
    }
    lines += ["", "| model | " + " | ".join(rate_label(*rate) for rate in rates) + " |", "|---|" + "---:|" * len(rates)]
    for model in models:
        lines.append(f"| {model} | " + " | ".join(cell.get((model, *rate), "") for rate in rates) + " |")
    return lines + [""]


def write_results_md(exp_dir: str | Path, out: str | Path) -> Path:
    """Collect the scores under ``exp_dir`` and write RESULTS.md to ``out``."""
    results = collect_results(exp_dir)
    out = Path(out)
    atomic.remove_leftovers(out.parent, out.name)  # of a killed run
    atomic.write_text(out, format_results_md(results, exp_dir))
    log.info("%s: %d scored decodings", out, len(results))
    return out
