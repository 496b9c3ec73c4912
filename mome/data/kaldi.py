"""Kaldi-style data directories: reading, writing, validating and filtering them.

A data directory holds one table per file, one ``<key> <value>`` line per entry, sorted by key in C
(byte) order. Our tables (see DESIGN.md, section "Kaldi data directory"):

- per utterance: ``text``, ``utt2spk``, ``segments`` (``<utt> <recording> <start> <end>``), ``utt2dur``,
  ``wav.scp`` and ``roi.scp`` (stage 2 writes one file per utterance, so these are keyed by utterance);
- per recording (the clips that ``segments`` points into): ``video.scp``, ``landmarks.scp``;
- per speaker: ``spk2utt``, always derived from ``utt2spk``;
- ``skipped.txt``: a log of dropped items (``<id> <reason>``), appended to by every stage, never validated.

Every table is written under a temporary name and renamed (:mod:`mome.atomic`); a stage that changes several
tables of a directory does it in a copy (:func:`rewrite_data_dir`) swapped in at the end, so a killed stage
leaves the directory as it was before or as it is after, never half-changed.

Run as ``python -m mome.data.kaldi validate|fix DIR`` (what ``utils/validate_data_dir.sh`` and
``utils/fix_data_dir.sh`` call).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from mome import atomic
from mome.errors import MomeError

PER_UTT = ("text", "utt2spk", "segments", "utt2dur", "wav.scp", "roi.scp")
PER_RECORDING = ("video.scp", "landmarks.scp")
SKIPPED = "skipped.txt"
MAX_ERRORS = 20  # validation stops listing after this many problems


class DataDirError(MomeError, ValueError):
    """An invalid data directory; the message names the files and lines at fault."""


# ----------------------------------------------------------------------------------------- tables


def read_table(path: str | Path) -> dict[str, str]:
    """``<key> <value>`` lines as a dict (value: the rest of the line, stripped; may be empty).
    Raises DataDirError on a duplicate key or a blank line."""
    path = Path(path)
    table: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.strip().split(maxsplit=1)
            if not fields:
                raise DataDirError(f"{path}:{lineno}: blank line")
            key = fields[0]
            if key in table:
                raise DataDirError(f"{path}:{lineno}: duplicate id {key!r}")
            table[key] = fields[1].strip() if len(fields) > 1 else ""
    return table


def write_table(path: str | Path, table: Mapping[str, object]) -> None:
    """Write ``<key> <value>`` lines sorted by key in C order (Python sorts str by code point, which is
    the byte order of UTF-8, i.e. ``LC_ALL=C sort``). Atomic: the file appears whole or not at all."""
    lines = []
    for key in sorted(table):
        value = str(table[key])
        lines.append(f"{key} {value}\n" if value else f"{key}\n")
    atomic.write_text(path, "".join(lines))


def utt2spk_to_spk2utt(utt2spk: Mapping[str, str]) -> dict[str, str]:
    spk2utts: dict[str, list[str]] = {}
    for utt in sorted(utt2spk):
        spk2utts.setdefault(utt2spk[utt], []).append(utt)
    return {spk: " ".join(utts) for spk, utts in spk2utts.items()}


def spk2utt_to_utt2spk(spk2utt: Mapping[str, str]) -> dict[str, str]:
    return {utt: spk for spk, utts in spk2utt.items() for utt in utts.split()}


# ------------------------------------------------------------------------------ whole directories


def read_data_dir(data_dir: str | Path) -> dict[str, dict[str, str]]:
    """All known tables present in ``data_dir`` (``spk2utt`` excluded: it is derived), by file name."""
    data_dir = Path(data_dir)
    return {name: read_table(data_dir / name) for name in PER_UTT + PER_RECORDING if (data_dir / name).is_file()}


def write_data_dir(data_dir: str | Path, tables: Mapping[str, Mapping[str, object]]) -> None:
    """Write the given tables (file name -> {key: value}) sorted, and ``spk2utt`` from ``utt2spk``."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        if name == "spk2utt":
            continue
        write_table(data_dir / name, table)
    if "utt2spk" in tables:
        utt2spk = {k: str(v) for k, v in tables["utt2spk"].items()}
        write_table(data_dir / "spk2utt", utt2spk_to_spk2utt(utt2spk))


def append_skipped(data_dir: str | Path, entries: Iterable[tuple[str, str]]) -> int:
    """Append ``<id> <reason>`` lines to ``data_dir/skipped.txt``; returns how many were written."""
    lines = [f"{item} {' '.join(reason.split())}\n" for item, reason in entries]
    if lines:  # rewritten whole (the log is small): a kill never leaves half a line
        path = Path(data_dir) / SKIPPED
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        atomic.write_text(path, old + "".join(lines))
    return len(lines)


def read_skipped(data_dir: str | Path) -> list[tuple[str, str]]:
    path = Path(data_dir) / SKIPPED
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        item, _, reason = line.partition(" ")
        out.append((item, reason))
    return out


# ------------------------------------------------------------------------------------- validation


def _check_file(path: Path, errors: list[str], min_fields: int, max_fields: int | None) -> list[str]:
    """Keys of one table in file order; records format, order and duplicate problems."""
    keys: list[str] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.split()
            where = f"{path}:{lineno}"
            if not fields:
                errors.append(f"{where}: blank line")
                continue
            key = fields[0]
            if key in seen:
                errors.append(f"{where}: duplicate id {key!r}")
            elif keys and key < keys[-1]:
                errors.append(f"{where}: not sorted ({key!r} after {keys[-1]!r}; sort with LC_ALL=C)")
            if path.name == "text" and len(fields) == 1:
                errors.append(f"{where}: empty transcript for {key!r}")
            elif len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
                want = f"{min_fields}" if max_fields == min_fields else f"at least {min_fields}"
                errors.append(f"{where}: expected {want} fields, got {len(fields)}: {line.rstrip()!r}")
            seen.add(key)
            keys.append(key)
    return keys


_FIELDS = {  # file -> (min fields, max fields) per line
    "text": (2, None),
    "utt2spk": (2, 2),
    "spk2utt": (2, None),
    "segments": (4, 4),
    "utt2dur": (2, 2),
    "wav.scp": (2, None),
    "roi.scp": (2, None),
    "video.scp": (2, None),
    "landmarks.scp": (2, None),
}


def _numbers_ok(path: Path, table: dict[str, str], columns: slice, errors: list[str]) -> None:
    for key, value in table.items():
        try:
            numbers = [float(x) for x in value.split()[columns]]
        except ValueError:
            errors.append(f"{path}: {key}: not a number in {value!r}")
            continue
        if len(numbers) == 2 and not 0 <= numbers[0] < numbers[1]:
            errors.append(f"{path}: {key}: start/end must satisfy 0 <= start < end, got {value!r}")
        if len(numbers) == 1 and not numbers[0] > 0:
            errors.append(f"{path}: {key}: duration must be > 0, got {value!r}")


def _validate(data_dir: Path) -> list[str]:
    errors: list[str] = []
    if not data_dir.is_dir():
        return [f"{data_dir}: not a directory"]
    for name in ("utt2spk", "text"):
        if not (data_dir / name).is_file():
            errors.append(f"{data_dir / name}: required file missing")
    if errors:
        return errors
    present = [n for n in _FIELDS if (data_dir / n).is_file()]
    for name in present:
        _check_file(data_dir / name, errors, *_FIELDS[name])
    if errors:  # tables are unreadable or misordered: cross-checks would only repeat the news
        return errors
    tables = {name: read_table(data_dir / name) for name in present}

    utt2spk = tables["utt2spk"]
    utts = set(utt2spk)
    if not utts:
        errors.append(f"{data_dir / 'utt2spk'}: empty")
    for utt, spk in utt2spk.items():
        if not utt.startswith(spk):
            errors.append(f"{data_dir / 'utt2spk'}: utterance id {utt!r} does not start with its speaker id {spk!r}")
    if "spk2utt" in tables and spk2utt_to_utt2spk(tables["spk2utt"]) != utt2spk:
        errors.append(f"{data_dir / 'spk2utt'}: does not match utt2spk (regenerate it with utils/fix_data_dir.sh)")
    for name in PER_UTT:
        if name == "utt2spk" or name not in tables:
            continue
        keys = set(tables[name])
        for utt in sorted(utts - keys)[:3]:
            errors.append(f"{data_dir / name}: utterance {utt!r} (in utt2spk) is missing ({len(utts - keys)} in all)")
        for utt in sorted(keys - utts)[:3]:
            errors.append(f"{data_dir / name}: utterance {utt!r} is not in utt2spk ({len(keys - utts)} in all)")

    if "segments" in tables:
        _numbers_ok(data_dir / "segments", tables["segments"], slice(1, 3), errors)
        recordings = {v.split()[0] for v in tables["segments"].values()}
        for name in PER_RECORDING:
            if name not in tables:
                continue
            keys = set(tables[name])
            for rec in sorted(recordings - keys)[:3]:
                errors.append(f"{data_dir / name}: recording {rec!r} (used in segments) is missing")
            for rec in sorted(keys - recordings)[:3]:
                errors.append(f"{data_dir / name}: recording {rec!r} is used by no utterance in segments")
    if "utt2dur" in tables:
        _numbers_ok(data_dir / "utt2dur", tables["utt2dur"], slice(0, 1), errors)
    return errors


def validate_data_dir(data_dir: str | Path) -> None:
    """Raise DataDirError listing every problem found (file, line, id): unsorted or duplicate ids,
    wrong field counts, an utterance in one file but not another, an utterance id that does not start
    with its speaker id, an empty transcript, bad times, recordings missing or unused."""
    errors = _validate(Path(data_dir))
    if errors:
        shown = errors[:MAX_ERRORS]
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise DataDirError(f"invalid data directory {data_dir}:\n  " + "\n  ".join(shown) + more)


@contextlib.contextmanager
def rewrite_data_dir(data_dir: str | Path, keep_files: bool = True) -> Iterator[Path]:
    """Change a data directory as one step: yields a staging folder beside ``data_dir`` holding a copy of
    its contents (``keep_files``; else empty; ``data_dir`` need not exist), which replaces ``data_dir`` when
    the block ends without an error (and is removed when it raises)."""
    data_dir = Path(data_dir)
    staging = atomic.staging_dir(data_dir)
    try:
        if keep_files and data_dir.is_dir():
            for f in sorted(data_dir.iterdir()):
                if f.is_dir() and not f.is_symlink():
                    shutil.copytree(f, staging / f.name, symlinks=True)
                else:
                    shutil.copy2(f, staging / f.name, follow_symlinks=False)
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    atomic.replace_dir(staging, data_dir)


# -------------------------------------------------------------------------------------- filtering


def filter_data_dir(data_dir: str | Path, keep_utts: Iterable[str], reason: str | None = None) -> list[str]:
    """Keep only ``keep_utts`` in every per-utterance file (ids not in the directory are ignored),
    regenerate ``spk2utt``, and drop recordings no longer used by ``segments``. Returns the removed
    utterance ids, sorted; when ``reason`` is given they are also appended to ``skipped.txt``."""
    data_dir = Path(data_dir)
    tables = read_data_dir(data_dir)
    if "utt2spk" not in tables:
        raise DataDirError(f"{data_dir / 'utt2spk'}: required file missing")
    keep = set(keep_utts) & set(tables["utt2spk"])
    removed = sorted(set(tables["utt2spk"]) - keep)
    for name in PER_UTT:
        if name in tables:
            tables[name] = {k: v for k, v in tables[name].items() if k in keep}
    if "segments" in tables:
        used = {v.split()[0] for v in tables["segments"].values()}
        for name in PER_RECORDING:
            if name in tables:
                tables[name] = {k: v for k, v in tables[name].items() if k in used}
    write_data_dir(data_dir, tables)
    if reason:
        append_skipped(data_dir, ((utt, reason) for utt in removed))
    return removed


def fix_data_dir(data_dir: str | Path) -> list[str]:
    """Sort every table, keep the utterances present in every per-utterance file with a non-empty
    transcript (and, with ``segments``, a recording in every per-recording file), regenerate
    ``spk2utt``. Dropped utterances are logged to ``skipped.txt``; returns them."""
    data_dir = Path(data_dir)
    tables = read_data_dir(data_dir)
    if "utt2spk" not in tables:
        raise DataDirError(f"{data_dir / 'utt2spk'}: required file missing")
    reasons: dict[str, str] = {}
    for name in PER_UTT:
        if name in tables:
            for utt in set(tables["utt2spk"]) - set(tables[name]):
                reasons.setdefault(utt, f"fix_data_dir: missing from {name}")
    for utt, words in tables.get("text", {}).items():
        if not words.strip():
            reasons.setdefault(utt, "fix_data_dir: empty transcript")
    for utt, value in tables.get("segments", {}).items():
        recording = value.split()[0]
        for name in PER_RECORDING:
            if name in tables and recording not in tables[name]:
                reasons.setdefault(utt, f"fix_data_dir: recording {recording} missing from {name}")
    keep = set(tables["utt2spk"]) - set(reasons)  # ids missing from utt2spk go too (nothing to log them by)
    removed = filter_data_dir(data_dir, keep)
    append_skipped(data_dir, ((utt, reasons[utt]) for utt in removed if utt in reasons))
    return removed


# -------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mome.data.kaldi", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["validate", "fix"])
    parser.add_argument("data_dir", type=Path)
    args = parser.parse_args(argv)
    try:
        if args.command == "fix":
            with rewrite_data_dir(args.data_dir) as new:  # all tables change together, or none
                removed = fix_data_dir(new)
            print(f"fix_data_dir: {args.data_dir}: removed {len(removed)} utterances", file=sys.stderr)
        validate_data_dir(args.data_dir)
    except (DataDirError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n = len(read_table(args.data_dir / "utt2spk"))
    print(f"{args.data_dir}: valid data directory ({n} utterances)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
