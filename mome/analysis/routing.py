"""What MoME's routers do: expert usage by layer, rate pair and token type, and how stable expert choice is
across compression rates (the MoME paper's claim that one router shared by all scales keeps it consistent).

:func:`collect_routing` runs a trained MoME model teacher-forced over a data directory at each of its rate
pairs and keeps, per layer and prompt position, the top-k experts each token chose, with the position's type
(:data:`mome.models.llm.TOKEN_TYPES`: audio, video, instruction, text).

:func:`consistency` compares two rate pairs of the same utterances. Tokens are matched across the pairs by
what they cover: a transcript or instruction token is the same token at every rate; an audio (or video)
token at the finer rate is matched with the token of the coarser rate whose window holds its first frame
(rate 4 token j with rate 16 token 4j // 16). For matched tokens it gives, per layer, the share whose top-k
set is identical and the mean overlap (Jaccard index) of the two sets, beside the same figures with the
coarser tokens shuffled among the utterances' tokens of that type (what expert usage alone would give).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import torch

from mome.models.llm import TOKEN_TYPES

RatePair = tuple[int | None, int | None]


@dataclass
class UtteranceRouting:
    """One utterance at one rate pair: per layer, the chosen experts of every prompt position."""

    types: np.ndarray  # (L,) index into TOKEN_TYPES
    chosen: list[np.ndarray]  # per layer, (L, k) expert ids (-1: an empty slot)


@dataclass
class RoutingStats:
    experts: int
    layers: int
    pairs: list[RatePair]
    utterances: dict[RatePair, list[UtteranceRouting]] = field(default_factory=dict)

    def usage(self, pair: RatePair, token_type: str) -> np.ndarray:
        """(layers, experts) share of the ``token_type`` tokens at ``pair`` whose top-k holds each expert."""
        t = TOKEN_TYPES.index(token_type)
        counts, tokens = np.zeros((self.layers, self.experts)), 0
        for u in self.utterances[pair]:
            keep = u.types == t
            tokens += int(keep.sum())
            for layer, chosen in enumerate(u.chosen):
                ids = chosen[keep].ravel()
                counts[layer] += np.bincount(ids[ids >= 0], minlength=self.experts)
        return counts / max(tokens, 1)


@torch.no_grad()
def collect_routing(model, batches, pairs: Sequence[RatePair]) -> RoutingStats:
    """Run ``model`` (an ``AVSRESPnetModel`` with a MoME adapter, in eval mode) over ``batches`` (``(utts, batch)``
    as ESPnet's collate gives them, with ``text`` token ids) at every pair; collect the routers' choices."""
    avsr = model.avsr
    adapter = avsr.adapter
    if adapter is None or not hasattr(adapter, "start_recording") or not hasattr(adapter, "layers"):
        raise ValueError("routing analysis needs a MoME model (llm_adapter: mome)")
    stats = RoutingStats(adapter.spec.experts, len(adapter.layers), list(pairs), {p: [] for p in pairs})
    device = next(model.parameters()).device
    for _, batch in batches:
        features = avsr.encode(**{k: v.to(device) for k, v in batch.items() if not k.startswith("text")})
        targets = [row[: int(n)] for row, n in zip(batch["text"], batch["text_lengths"])]
        for pair in pairs:
            prompt = avsr.prompt(features, pair, targets, "right")
            avsr._set_scale([avsr.scale_index(pair)], len(targets))
            adapter.start_recording()
            avsr.llm(prompt)
            records, adapter.state.records, adapter.state.recording = adapter.state.records, [], False
            for i in range(len(targets)):
                real = prompt.attention_mask[i].bool()
                stats.utterances[pair].append(
                    UtteranceRouting(
                        prompt.token_types[i][real].cpu().numpy(), [r.chosen[i][real].cpu().numpy() for r in records]
                    )
                )
    return stats


def _matches(
    fine: UtteranceRouting, coarse: UtteranceRouting, token_type: str, ratio: float
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of matched tokens of ``token_type`` in the two prompts (fine index j -> coarse floor(j / ratio))."""
    t = TOKEN_TYPES.index(token_type)
    fine_pos, coarse_pos = np.nonzero(fine.types == t)[0], np.nonzero(coarse.types == t)[0]
    if not len(fine_pos) or not len(coarse_pos):
        return np.zeros(0, int), np.zeros(0, int)
    index = np.minimum((np.arange(len(fine_pos)) / ratio).astype(int), len(coarse_pos) - 1)
    return fine_pos, coarse_pos[index]


def _overlap(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise (identical set, Jaccard index) of two (N, k) expert-id arrays."""
    same, jaccard = [], []
    for x, y in zip(a, b):
        x, y = set(x[x >= 0].tolist()), set(y[y >= 0].tolist())
        same.append(x == y)
        jaccard.append(len(x & y) / max(len(x | y), 1))
    return np.array(same, float), np.array(jaccard, float)


def consistency(
    stats: RoutingStats, fine: RatePair, coarse: RatePair, token_type: str, seed: int = 0
) -> dict[str, np.ndarray]:
    """Per layer (arrays of ``stats.layers``): ``identical`` and ``jaccard`` of matched tokens' top-k sets, and
    ``identical_shuffled`` / ``jaccard_shuffled`` with the coarse tokens shuffled; ``tokens``: how many matched."""
    modality_index = {"audio": 0, "video": 1}.get(token_type)
    ratio = 1.0
    if modality_index is not None:
        if fine[modality_index] is None or coarse[modality_index] is None:
            raise ValueError(f"{token_type} tokens need both pairs to have a {token_type} rate: {fine}, {coarse}")
        ratio = coarse[modality_index] / fine[modality_index]
    rng = np.random.default_rng(seed)
    per_layer = {
        k: [[] for _ in range(stats.layers)] for k in ("identical", "jaccard", "identical_shuffled", "jaccard_shuffled")
    }
    for u_fine, u_coarse in zip(stats.utterances[fine], stats.utterances[coarse]):
        fine_pos, coarse_pos = _matches(u_fine, u_coarse, token_type, ratio)
        if not len(fine_pos):
            continue
        shuffled = rng.permutation(coarse_pos)
        for layer in range(stats.layers):
            a = u_fine.chosen[layer][fine_pos]
            for suffix, positions in (("", coarse_pos), ("_shuffled", shuffled)):
                same, jaccard = _overlap(a, u_coarse.chosen[layer][positions])
                per_layer["identical" + suffix][layer].append(same)
                per_layer["jaccard" + suffix][layer].append(jaccard)
    out = {k: np.array([np.concatenate(v).mean() if v else np.nan for v in layers]) for k, layers in per_layer.items()}
    out["tokens"] = np.array([sum(len(x) for x in per_layer["identical"][0])])
    return out


def rate_comparisons(pairs: Sequence[RatePair]) -> list[tuple[str, RatePair, RatePair]]:
    """The comparisons to report: for each modality, pairs that differ only in its rate (finer first); text
    tokens between every two pairs that differ in any rate."""
    out = []
    for a, b in combinations(pairs, 2):
        differs = [i for i in (0, 1) if a[i] != b[i]]
        if len(differs) == 1 and a[differs[0]] is not None:
            fine, coarse = (a, b) if a[differs[0]] < b[differs[0]] else (b, a)
            out.append((("audio", "video")[differs[0]], fine, coarse))
        out.append(("text", a, b))
    return out
