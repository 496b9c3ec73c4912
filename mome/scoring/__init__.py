"""WER scoring with sclite parity: word alignment, sclite-layout reports, RESULTS.md tables."""

from mome.scoring.align import Alignment, ErrorCounts, align_words
from mome.scoring.score import find_sclite, score

__all__ = ["Alignment", "ErrorCounts", "align_words", "find_sclite", "score"]
