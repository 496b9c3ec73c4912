"""Adaptive rate: decode at the cheapest trained pair, fall back to finer pairs only where the hypothesis looks
unreliable.

Confidence of a hypothesis: the geometric mean of its token probabilities, ``exp(mean log p)`` over the
transcript tokens and the final <eos> (in (0, 1]; 0 for an empty one). A ``ladder`` lists the pairs from
cheapest to finest (default: the trained pairs by LLM cost per second, cheapest first, ending at the finest).

Threshold ``t`` in [0, 1]: a hypothesis at a pair short of the ladder's last is kept when its confidence
is ``>= t``; otherwise the utterance is decoded again at the next pair; the last pair's hypothesis is always
kept. ``t = 0`` keeps every hypothesis of the cheapest pair (the fixed cheapest pair, at its cost);
``t = 1`` keeps none short of certainty, so the cascade goes straight to the finest pair (the fixed finest
pair, at its cost: no cheap pass is paid for). An utterance that falls back costs every pair it went through.

``budget="finest"`` caps the LLM input tokens of a set of utterances decoded together at what the finest
pair would cost them: fallbacks are granted least confident first while the cap allows (:func:`select`).

:func:`calibrate` picks ``t`` on a validation set from hypotheses decoded at every pair of the ladder (the
cascade is a function of them, :func:`select`), and :func:`save_calibration` stores it beside the model
(``cascade.json``), where :meth:`mome.inference.AVSR2Text.from_pretrained` finds it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CALIBRATION_FILE = "cascade.json"
RatePair = tuple[int | None, int | None]


def confidence(log_probs: Sequence[float]) -> float:
    """``exp(mean(log_probs))``: the geometric-mean token probability, in [0, 1] (0 for no tokens)."""
    log_probs = list(log_probs)
    return math.exp(sum(log_probs) / len(log_probs)) if log_probs else 0.0


def pair_cost_per_second(pair: RatePair, audio_hz: float = 50.0, video_hz: float = 25.0) -> float:
    """Modality tokens per second of input at a pair (what orders pairs by LLM cost)."""
    return sum(hz / rate for rate, hz in zip(pair, (audio_hz, video_hz)) if rate)


def default_ladder(pairs: Sequence[RatePair]) -> list[RatePair]:
    """The cheapest pair, then the finest one (the pair of most tokens per second)."""
    ranked = sorted(pairs, key=pair_cost_per_second)
    return [ranked[0], ranked[-1]] if len(ranked) > 1 else list(ranked)


def check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold <= 1.0 or math.isnan(threshold):
        raise ValueError(
            f"cascade threshold must be in [0, 1] (a confidence: geometric-mean token probability), got {threshold}"
        )
    return threshold


def active_ladder(ladder: Sequence[RatePair], threshold: float) -> list[RatePair]:
    """The pairs a cascade at ``threshold`` may decode: all of them, or (``t = 1``) the finest alone."""
    return list(ladder[-1:]) if check_threshold(threshold) >= 1.0 else list(ladder)


def fallbacks(
    confidences: Sequence[float],
    threshold: float,
    next_costs: Sequence[float] | None = None,
    allowance: float | None = None,
) -> list[int]:
    """Indices that go on to the next pair: confidence below ``threshold`` (``t = 0``: none). With an
    ``allowance`` (cost units left under a budget) and each index's cost at the next pair, the least
    confident go first while the allowance lasts."""
    if threshold <= 0.0:
        return []
    low = sorted((c, i) for i, c in enumerate(confidences) if c < threshold)
    if allowance is None:
        return sorted(i for _, i in low)
    chosen = []
    for _, i in low:
        if next_costs[i] <= allowance:
            chosen.append(i)
            allowance -= next_costs[i]
    return sorted(chosen)


@dataclass
class Decoded:
    """One utterance's hypothesis at one pair, as the cascade needs it."""

    text: str
    confidence: float
    cost: float  # what is reported and averaged (LLM TFLOPs, or tokens)
    tokens: int = 0  # LLM input tokens of this decode: prompt + hypothesis + <eos> (what budgets count)
    prompt_tokens: int = 0  # the prompt's part, known before decoding


def budget_allowance(finest_prompts: Sequence[int], spent_tokens: float) -> float:
    """Tokens a budget of "the finest pair's cost" still allows: every utterance not (yet) sent to the finest
    pair would cost there at least its prompt and one token (<eos>); minus what was spent."""
    return sum(p + 1 for p in finest_prompts) - spent_tokens


def move_cost(prompt_tokens: int, finest: bool, max_new_tokens: int) -> int:
    """What sending one utterance on to a pair takes from the allowance: to the finest pair, its lower bound
    there (prompt + 1; the allowance counted it, and the finest pair's own hypothesis is paid on both sides);
    to a pair between, the most it can cost (prompt + ``max_new_tokens`` + 1)."""
    return prompt_tokens + 1 if finest else prompt_tokens + max_new_tokens + 1


def select(
    decoded: dict[RatePair, Sequence[Decoded]],
    ladder: Sequence[RatePair],
    threshold: float,
    budget: str | None = None,
    max_new_tokens: int = 32,
) -> list[tuple[RatePair, list[RatePair], float]]:
    """The cascade on hypotheses decoded at every pair of the ladder for the same utterances: per utterance
    ``(pair kept, pairs decoded, cost)``. The live cascade (:class:`mome.inference.AVSR2Text`) decodes only
    what this chooses and gives the same.

    ``budget="finest"``: fallbacks (least confident first) only while the tokens spent stay within the finest
    pair's for the same utterances (:func:`budget_allowance`, :func:`move_cost`): the cascade then never
    costs more than the finest pair, unless its first pass alone does (a cheap pass whose hypotheses run much
    longer than the finest pair's)."""
    if budget not in (None, "finest"):
        raise ValueError(f"budget must be None or 'finest', got {budget!r}")
    pairs = active_ladder(ladder, threshold)
    n = len(decoded[pairs[0]])
    pending, tried, spent, tokens, kept = list(range(n)), [[] for _ in range(n)], [0.0] * n, [0] * n, [None] * n
    finest_prompts = [d.prompt_tokens for d in decoded[ladder[-1]]]
    for step, pair in enumerate(pairs):
        for i in pending:
            tried[i].append(pair)
            spent[i] += decoded[pair][i].cost
            tokens[i] += decoded[pair][i].tokens
        if step == len(pairs) - 1:
            for i in pending:
                kept[i] = pair
            break
        following = pairs[step + 1]
        costs = [
            move_cost(decoded[following][i].prompt_tokens, following == ladder[-1], max_new_tokens) for i in pending
        ]
        allowance = budget_allowance(finest_prompts, sum(tokens)) if budget else None
        go = fallbacks([decoded[pair][i].confidence for i in pending], threshold, costs, allowance)
        moving = {pending[j] for j in go}
        for i in pending:
            if i not in moving:
                kept[i] = pair
        pending = sorted(moving)
        if not pending:
            break
    return [(kept[i], tried[i], spent[i]) for i in range(n)]


# --------------------------------------------------------------------------------------------------
# Calibration on a validation set
# --------------------------------------------------------------------------------------------------
def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(errors, reference words) of one utterance, by the project's scoring alignment (sclite-equal)."""
    from mome.scoring.align import align_words

    counts = align_words(ref.split(), hyp.split()).counts
    return counts.errors, counts.ref_words


@dataclass
class CascadePoint:
    threshold: float | None  # None: a fixed pair
    pair: RatePair | None
    wer: float  # %
    mean_cost: float
    fallback_share: float  # share of utterances decoded at more than one pair


def evaluate(
    decoded: dict[RatePair, Sequence[Decoded]], refs: Sequence[str], ladder, threshold: float, budget=None
) -> CascadePoint:
    from mome.text import normalize_text

    chosen = select(decoded, ladder, threshold, budget)
    errors = words = 0
    for i, (pair, _, _) in enumerate(chosen):
        e, w = word_errors(normalize_text(refs[i]), normalize_text(decoded[pair][i].text))
        errors, words = errors + e, words + w
    return CascadePoint(threshold, None, 100.0 * errors / max(words, 1), sum(c for _, _, c in chosen) / len(chosen),
                        sum(len(t) > 1 for _, t, _ in chosen) / len(chosen))  # fmt: skip


def fixed_point(decoded: dict[RatePair, Sequence[Decoded]], refs: Sequence[str], pair: RatePair) -> CascadePoint:
    from mome.text import normalize_text

    errors = words = 0
    for d, ref in zip(decoded[pair], refs):
        e, w = word_errors(normalize_text(ref), normalize_text(d.text))
        errors, words = errors + e, words + w
    return CascadePoint(None, pair, 100.0 * errors / max(words, 1), sum(d.cost for d in decoded[pair]) / len(refs), 0.0)


DEFAULT_GRID = (0.0, 0.3, 0.4, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.0)


def quantile_grid(
    confidences: Sequence[float], shares: Sequence[float] = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7)
) -> list[float]:
    """Thresholds at which about ``shares`` of the utterances fall back from the first pair (its hypotheses'
    ``confidences``), with 0 and 1, sorted and rounded to 4 decimals (a grid that follows the model's own
    confidence scale rather than fixed steps)."""
    ranked = sorted(confidences)
    picks = {0.0, 1.0}
    for share in shares:
        k = min(len(ranked) - 1, max(0, round(share * len(ranked))))
        if ranked:
            picks.add(min(1.0, round(ranked[k], 4)))
    return sorted(picks)


def calibrate(
    decoded: dict[RatePair, Sequence[Decoded]],
    refs: Sequence[str],
    ladder: Sequence[RatePair],
    max_cost_share: float = 0.6,
    grid: Sequence[float] | None = None,
    budget: str | None = None,
) -> tuple[float, list[CascadePoint]]:
    """The threshold of the lowest WER whose mean cost is at most ``max_cost_share`` x the finest pair's (ties:
    the cheaper); none within the cost: the cheapest point. ``grid``: the thresholds tried (default:
    :func:`quantile_grid` of the first pair's confidences and :data:`DEFAULT_GRID`). Returns (threshold, the
    points of the grid)."""
    if grid is None:
        grid = sorted(set(DEFAULT_GRID) | set(quantile_grid([d.confidence for d in decoded[ladder[0]]])))
    finest = fixed_point(decoded, refs, ladder[-1])
    points = [evaluate(decoded, refs, ladder, t, budget) for t in grid]
    within = [p for p in points if p.mean_cost <= max_cost_share * finest.mean_cost + 1e-12]
    best = min(within or points, key=lambda p: (p.wer, p.mean_cost) if within else (p.mean_cost, p.wer))
    return float(best.threshold), points


def save_calibration(model_dir: str | Path, ladder, threshold: float, **info) -> Path:
    """``<model_dir>/cascade.json``: the ladder (``[[a, v], ...]``, 0 for an absent modality) and the threshold."""
    from mome import atomic

    path = Path(model_dir) / CALIBRATION_FILE
    body = {"ladder": [[a or 0, v or 0] for a, v in ladder], "threshold": check_threshold(threshold),
            "confidence": "exp(mean token log-probability), transcript tokens and <eos>", **info}  # fmt: skip
    atomic.write_text(path, json.dumps(body, indent=2) + "\n")
    return path


def load_calibration(model_dir: str | Path) -> tuple[list[RatePair], float] | None:
    """(ladder, threshold) from ``<model_dir>/cascade.json``, or None when the model has none."""
    path = Path(model_dir) / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        ladder = [(int(a) or None, int(v) or None) for a, v in body["ladder"]]
        return ladder, check_threshold(body["threshold"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(
            f"{path}: not a cascade calibration ({type(e).__name__}: {e}); rerun mome.bin.calibrate_cascade"
        ) from None
