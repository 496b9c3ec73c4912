"""The scorer's inputs: Kaldi ``text`` files, speakers, and sclite's ``trn`` transcript format.

A ``trn`` line is ``words (<speaker>-<utterance id>)``. sclite takes the speaker from the id up to its
first ``-`` or ``_`` and lower-cases ids, while LRS3 speakers are case-sensitive YouTube ids that may
hold ``-`` and ``_``. Each speaker therefore gets a label that sclite reads back unchanged: lower case,
letters and digits only, made unique with a suffix where two speakers would collide. Both backends
report speakers by these labels, so their reports agree line for line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mome.errors import MomeError
from mome.text import normalize_text

log = logging.getLogger(__name__)


class ScoringInputError(MomeError, ValueError):
    """Unusable scoring input; the message names the file and the offending ids."""


@dataclass(frozen=True)
class Utterance:
    """One scored utterance: its id, the sclite speaker label, and normalised words."""

    utt_id: str
    speaker: str
    ref: list[str]
    hyp: list[str]


def read_text(path: str | Path) -> dict[str, str]:
    """A Kaldi ``text`` file (``<utt> <words...>``; words may be absent) as an ordered dict.
    Blank lines are skipped; a repeated utterance id is an error."""
    path = Path(path)
    table: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            fields = line.strip().split(maxsplit=1)
            if not fields:
                continue
            if fields[0] in table:
                raise ScoringInputError(f"{path}:{lineno}: utterance id {fields[0]!r} appears twice")
            table[fields[0]] = fields[1] if len(fields) > 1 else ""
    return table


def speaker_from_utt_id(utt_id: str) -> str:
    """Everything before the last ``_`` (LRS3 ``<speaker>_<clip>``, LRS2 ``<show>_<clip>``)."""
    return utt_id.rsplit("_", 1)[0]


def sclite_speaker_labels(speakers: Iterable[str]) -> dict[str, str]:
    """Map speakers (in order of first appearance) to unique labels sclite reads back unchanged."""
    labels: dict[str, str] = {}
    used: set[str] = set()
    for spk in speakers:
        if spk in labels:
            continue
        base = re.sub(r"[^a-z0-9]", "", spk.lower()) or "spk"
        label, k = base, 2
        while label in used:
            label, k = f"{base}x{k}", k + 1
        labels[spk] = label
        used.add(label)
    return labels


def load_utterances(ref_text: str | Path, hyp_text: str | Path, utt2spk: str | Path | None = None) -> list[Utterance]:
    """Pair references and hypotheses in reference order, normalise both (:func:`mome.text.normalize_text`:
    lower case, letters of any script kept, apostrophe variants as ``'``, no ``{LG}``-style markers or
    punctuation), and attach speaker labels.

    Speakers come from ``utt2spk`` if given, else from a ``utt2spk`` beside ``ref_text``, else from the
    utterance ids. A reference without hypothesis is scored as an empty hypothesis (with a warning); a
    hypothesis without reference is an error."""
    refs, hyps = read_text(ref_text), read_text(hyp_text)
    if not refs:
        raise ScoringInputError(f"{ref_text}: no utterances")
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise ScoringInputError(
            f"{hyp_text}: {len(extra)} utterance(s) not in the reference {ref_text}, e.g. {extra[:3]}"
        )
    missing = [u for u in refs if u not in hyps]
    if missing:
        log.warning(
            "%s: %d of %d reference utterances have no hypothesis (scored as empty), e.g. %s",
            hyp_text,
            len(missing),
            len(refs),
            missing[:3],
        )
    spk_of = _speakers(refs, Path(ref_text), utt2spk)
    labels = sclite_speaker_labels(spk_of[u] for u in refs)
    return [
        Utterance(u, labels[spk_of[u]], normalize_text(refs[u]).split(), normalize_text(hyps.get(u, "")).split())
        for u in refs
    ]


def _speakers(refs: Mapping[str, str], ref_text: Path, utt2spk: str | Path | None) -> dict[str, str]:
    path = Path(utt2spk) if utt2spk is not None else ref_text.parent / "utt2spk"
    if utt2spk is None and not path.is_file():
        return {u: speaker_from_utt_id(u) for u in refs}
    table = read_text(path)
    lacking = [u for u in refs if not table.get(u)]
    if lacking:
        raise ScoringInputError(f"{path}: no speaker for {len(lacking)} utterance(s) of {ref_text}, e.g. {lacking[:3]}")
    return {u: table[u].split()[0] for u in refs}


def format_trn(utterances: Iterable[Utterance], side: str) -> str:
    """sclite ``trn`` text of the references (``side="ref"``) or hypotheses (``side="hyp"``)."""
    if side not in ("ref", "hyp"):
        raise ValueError(f"side must be 'ref' or 'hyp', not {side!r}")
    lines = []
    for u in utterances:
        words = " ".join(u.ref if side == "ref" else u.hyp)
        lines.append(f"{words} ({trn_id(u)})\n")
    return "".join(lines)


def trn_id(u: Utterance) -> str:
    return f"{u.speaker}-{u.utt_id}"
