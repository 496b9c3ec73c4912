"""The one transcript normalisation: stage 1's references, scoring (both back-ends) and the LLM's targets.

Transcripts come from corpus files (LRS2/LRS3: upper case, ``{LG}``-style markers), from users' own data
(typographic apostrophes, accented letters, any script) and from the model (lower case). Scoring compares
words exactly, so every path that makes or compares words uses :func:`normalize_text`:

1. apostrophe look-alikes (``’ ‘ ‛ ʼ ` ´ ′``) become ``'``;
2. Unicode NFKC (``e`` + combining acute becomes ``é``; full-width and ligature forms become plain letters),
   then lower case;
3. markers in braces, brackets or angle brackets (``{LG}``, ``{NS}``, ``[noise]``, ``<unk>``) are removed;
4. every character that is not a letter, a combining mark or a digit of any script (Unicode categories L*,
   M*, N*) nor ``'`` becomes a space: punctuation, hyphens (``well-known`` -> ``well known``), symbols;
5. apostrophes at the ends of a word are quotes and go (``'hello'`` -> ``hello``; ``don't`` stays).

The result is words separated by single spaces; normalising twice changes nothing.
"""

from __future__ import annotations

import re
import unicodedata

APOSTROPHES = "\u2019\u2018\u201b\u02bc\u0060\u00b4\u2032"  # ’ ‘ ‛ ʼ ` ´ ′ (NFKC already maps ＇ to ')
_TO_APOSTROPHE = str.maketrans({c: "'" for c in APOSTROPHES})
_MARKER = re.compile(r"\{[^}]*\}|\[[^\]]*\]|<[^>]*>")  # {LG}, {NS}, [noise], <unk>


def _word_char(c: str) -> bool:
    return c == "'" or unicodedata.category(c)[0] in "LMN"


def normalize_text(text: str) -> str:
    """Lower-cased words of ``text`` (see the module docstring), single spaces, no markers or punctuation.

    >>> normalize_text("WE MET AT THE CAF\\u00c9 IN S\\u00c3O PAULO")
    'we met at the café in são paulo'
    >>> normalize_text("IT\\u2019S WHAT WE DON\\u2019T SEE {LG}")
    "it's what we don't see"
    """
    text = text.translate(_TO_APOSTROPHE)  # first: NFKC turns ´ into a space and a combining accent
    text = unicodedata.normalize("NFKC", text).lower()
    text = unicodedata.normalize("NFC", text).translate(_TO_APOSTROPHE)  # lower() may decompose (İ)
    text = _MARKER.sub(" ", text)
    text = "".join(c if _word_char(c) else " " for c in text)
    words = (w.strip("'") for w in text.split())
    return " ".join(w for w in words if w)
