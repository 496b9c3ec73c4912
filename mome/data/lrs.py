"""The LRS2 / LRS3 transcript format (the ``.txt`` beside every ``.mp4``) and cutting long clips at word
boundaries (transcripts are normalised by :func:`mome.text.normalize_text`).

A file looks like this (tables are optional; LRS2 ``main`` has none)::

    Text:  SO I WAS STANDING THERE
    Conf:  4
    Ref:  0af00UcTOSc

    FRAME 	X 	Y 	W 	H
    000071 	0.430 	0.289 	0.146 	0.263
    ...

    WORD START END ASDSCORE
    SO 0.17 0.28 4.8
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mome.errors import MomeError
from mome.text import normalize_text  # noqa: F401 - the one normalisation, re-exported for the corpus readers


class LRSFormatError(MomeError, ValueError):
    """A transcript file that cannot be read; the message names the file."""


@dataclass
class Word:
    word: str
    start: float  # seconds from the start of the clip
    end: float
    score: float = 0.0  # the ASDSCORE column (active-speaker confidence)


@dataclass
class Frame:
    frame: int  # frame index in the source video
    x: float  # face box, relative to the frame size
    y: float
    w: float
    h: float


@dataclass
class Transcript:
    text: str  # as written in the file: upper case, may hold markers such as {LG}
    conf: str = ""
    ref: str = ""
    frames: list[Frame] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)


def parse_lrs_txt(content: str, source: str = "<string>") -> Transcript:
    lines = content.splitlines()
    if not lines or not lines[0].startswith("Text:"):
        raise LRSFormatError(f"{source}: first line must start with 'Text:' (file empty or not an LRS transcript)")
    header: dict[str, str] = {}
    frames: list[Frame] = []
    words: list[Word] = []
    table = None
    for lineno, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            table = None
            continue
        if table is None and ":" in fields[0] and fields[0].endswith(":"):
            header[fields[0][:-1]] = line.split(":", 1)[1].strip()
        elif table is None and fields[0] == "FRAME":  # a header only after a blank line:
            table = "frame"  # the word "WORD" inside a table is a word
        elif table is None and fields[0] == "WORD":
            table = "word"
        else:
            try:
                if table == "frame":
                    frames.append(Frame(int(fields[0]), *map(float, fields[1:5])))
                elif table == "word":
                    score = float(fields[3]) if len(fields) > 3 else 0.0
                    words.append(Word(fields[0], float(fields[1]), float(fields[2]), score))
                else:
                    raise ValueError("line outside any table")
            except (ValueError, TypeError, IndexError) as e:
                raise LRSFormatError(f"{source}:{lineno}: cannot parse {line!r} ({e})") from None
    return Transcript(header.get("Text", ""), header.get("Conf", ""), header.get("Ref", ""), frames, words)


def read_lrs_txt(path: str | Path) -> Transcript:
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LRSFormatError(f"{path}: transcript file missing") from None
    except UnicodeDecodeError as e:
        raise LRSFormatError(f"{path}: not UTF-8 text ({e})") from None
    return parse_lrs_txt(content, str(path))


def format_lrs_txt(t: Transcript) -> str:
    out = [f"Text:  {t.text}", f"Conf:  {t.conf}", f"Ref:  {t.ref}"]
    if t.frames:
        out += ["", "FRAME \tX \tY \tW \tH "]
        out += [f"{f.frame:06d} \t{f.x:.3f} \t{f.y:.3f} \t{f.w:.3f} \t{f.h:.3f} \t" for f in t.frames]
    if t.words:
        out += ["", "WORD START END ASDSCORE"]
        out += [f"{w.word} {w.start:.2f} {w.end:.2f} {w.score:.1f}" for w in t.words]
    return "\n".join(out) + "\n"


def write_lrs_txt(path: str | Path, t: Transcript) -> None:
    Path(path).write_text(format_lrs_txt(t), encoding="utf-8")


def cut_at_word_boundaries(words: list[Word], max_seconds: float) -> list[list[Word]]:
    """Split a word sequence into consecutive segments no longer than ``max_seconds``, cutting only
    between words. A segment spans from its first word's start to its last word's end; a single
    word longer than the limit becomes a segment of its own."""
    segments: list[list[Word]] = []
    current: list[Word] = []
    for w in words:
        if current and w.end - current[0].start > max_seconds:
            segments.append(current)
            current = []
        current.append(w)
    if current:
        segments.append(current)
    return segments
