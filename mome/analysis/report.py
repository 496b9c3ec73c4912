"""Stage 7's figures and tables: WER against the LLM's compute, and MoME's routing.

- :func:`compute_points`: for each model and rate pair decoded on the clean test set, the WER (from the scored
  ``result.txt``) and the LLM's forward TFLOPs per utterance, from the project's accounting
  (:func:`mome.models.accounting.prompt_tokens`: 2 x the parameters a token passes through x the prompt's
  tokens, averaged over the test utterances' durations and transcript lengths).
- :func:`plot_wer_vs_compute`: one line per model (PNG).
- :func:`plot_usage`: per layer, a heatmap of expert usage by rate pair and token type (PNG).
- :func:`markdown_section`: the tables for RESULTS.md.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mome.analysis.routing import RoutingStats, consistency, rate_comparisons
from mome.models.accounting import llm_forward_params, meta_llm, prompt_tokens

COMPUTE_TYPES = ("audio", "video", "text")


@dataclass
class ComputePoint:
    model: str
    pair: tuple[int | None, int | None]
    wer: float
    tflops: float  # LLM forward TFLOPs per utterance (prefill of the prompt with its transcript)
    tokens: float  # mean LLM input tokens per utterance


def llm_config_of(args: argparse.Namespace):
    """The Hugging Face config of a training config's LLM (``llm: hf``: its directory; ``tiny``: built)."""
    from mome.espnet.task import AVSRTask

    spec = AVSRTask.llm_spec(args)
    if getattr(spec, "path", None):
        from mome.models.llm import load_llm_config

        return load_llm_config(spec.path)
    return spec.build().hf.config


def compute_points(model_dirs: Sequence[Path], data_dir: Path, test_set: str | None = None) -> list[ComputePoint]:
    """WER and LLM TFLOPs per utterance of every scored decoding of ``test_set`` (default: ``data_dir``'s name)."""
    import yaml

    from mome.data.kaldi import read_table
    from mome.scoring.report import parse_summary
    from mome.scoring.results import parse_decode_dir_name

    test_set = test_set or data_dir.name
    seconds = [float(v) for v in read_table(data_dir / "utt2dur").values()]
    texts = list(read_table(data_dir / "text").values())
    points = []
    for model_dir in model_dirs:
        with open(model_dir / "config.yaml", encoding="utf-8") as f:
            args = argparse.Namespace(**yaml.safe_load(f))
        if (getattr(args, "model_conf", None) or {}).get("ctc_weight") == 1.0:
            continue  # trained by CTC alone: it transcribes without the LLM, no LLM compute to plot
        config = llm_config_of(args)
        per_token = llm_forward_params(meta_llm(config))
        from mome.espnet.task import AVSRTask

        tokenizer = AVSRTask.llm_spec(args).load_tokenizer()
        text_tokens = float(
            np.mean([len(tokenizer(" " + t, add_special_tokens=False)["input_ids"]) + 1 for t in texts])
        )
        for decode_dir in sorted(model_dir.glob(f"decode_{test_set}_ra*_rv*")):
            parsed = parse_decode_dir_name(decode_dir.name)
            result = decode_dir / "score" / "result.txt"
            if parsed is None or parsed[0] != test_set or not result.is_file():
                continue
            pair = (parsed[1] or None, parsed[2] or None)
            tokens = float(
                np.mean([prompt_tokens(s, pair[0], pair[1], 50.0, 25.0, round(text_tokens)) for s in seconds])
            )
            points.append(
                ComputePoint(
                    model_dir.name,
                    pair,
                    parse_summary(result.read_text()).errors,
                    2 * per_token * tokens / 1e12,
                    tokens,
                )
            )
    return points


def _flops_unit(values: Sequence[float]) -> tuple[float, str]:
    top = max(values) if values else 1.0
    for scale, unit in ((1.0, "TFLOPs"), (1e-3, "GFLOPs"), (1e-6, "MFLOPs"), (1e-9, "kFLOPs")):
        if top >= scale:
            return scale, unit
    return 1e-9, "kFLOPs"


def pair_label(pair) -> str:
    return f"({pair[0] or '-'},{pair[1] or '-'})"


def plot_wer_vs_compute(points: Sequence[ComputePoint], out: Path, title: str) -> Path:
    """One line per model through its rate pairs (cheapest first); each rate pair is labelled once, above its
    highest point (a pair costs the same compute in every model, so the models' points of a pair stack up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, unit = _flops_unit([p.tflops for p in points])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for model in dict.fromkeys(p.model for p in points):
        mine = sorted((p for p in points if p.model == model), key=lambda p: p.tflops)
        x, y = [p.tflops / scale for p in mine], [p.wer for p in mine]
        ax.plot(x, y, marker="o", label=model)
    tops: dict[tuple, ComputePoint] = {}
    for p in points:
        key = (p.pair, round(p.tflops / scale, 6))
        if key not in tops or p.wer > tops[key].wer:
            tops[key] = p
    for p in tops.values():
        ax.annotate(
            pair_label(p.pair), (p.tflops / scale, p.wer), textcoords="offset points", xytext=(4, 4), fontsize=7
        )
    ax.set_xlabel(f"LLM forward {unit} per utterance (prompt + transcript)")
    ax.set_ylabel("WER (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_usage(stats: RoutingStats, out: Path, title: str) -> Path:
    """Per layer, a heatmap: rows = (rate pair, token type), columns = experts, colour = share of the tokens whose
    top-k holds the expert."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, labels = [], []
    for pair in stats.pairs:
        for token_type in COMPUTE_TYPES:
            present = token_type != "audio" or pair[0] is not None
            present = present and (token_type != "video" or pair[1] is not None)
            if present:
                rows.append(stats.usage(pair, token_type))
                labels.append(f"{pair_label(pair)} {token_type}")
    usage = np.stack(rows, 1)  # (layers, rows, experts)
    cols = min(stats.layers, 4)
    lines = math.ceil(stats.layers / cols)
    fig, axes = plt.subplots(lines, cols, figsize=(3.2 * cols, 0.28 * len(rows) * lines + 1.2), squeeze=False)
    for layer in range(lines * cols):
        ax = axes[layer // cols][layer % cols]
        if layer >= stats.layers:
            ax.axis("off")
            continue
        image = ax.imshow(usage[layer], aspect="auto", cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"layer {layer}", fontsize=9)
        ax.set_xticks(range(stats.experts))
        ax.set_xticklabels(range(stats.experts), fontsize=6)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels if layer % cols == 0 else [], fontsize=7)
        ax.set_xlabel("expert", fontsize=7)
    fig.colorbar(image, ax=axes, shrink=0.8, label="share of tokens routed to the expert")
    fig.suptitle(title, fontsize=10)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def compute_table(points: Sequence[ComputePoint]) -> list[str]:
    scale, unit = _flops_unit([p.tflops for p in points])
    lines = [
        f"| model | rate pair | LLM tokens per utterance | LLM {unit} per utterance | WER % |",
        "|---|---|---|---|---|",
    ]
    for p in sorted(points, key=lambda p: (p.model, -p.tflops)):
        lines.append(f"| {p.model} | {pair_label(p.pair)} | {p.tokens:.1f} | {p.tflops / scale:.3f} | {p.wer:.2f} |")
    return lines


def consistency_table(stats: RoutingStats) -> list[str]:
    """Per kind of rate change (audio rate, video rate, any change for the transcript's tokens) and per layer:
    the share of matched tokens whose top-k set stays the same, and in brackets the same with the tokens
    shuffled (chance for the experts' usage), pooled over the pairs of that kind (percent)."""
    groups: dict[tuple, list[dict]] = {}
    for token_type, a, b in rate_comparisons(stats.pairs):
        if token_type == "text":
            key = ("text", "every two rate pairs")
        else:
            i = ("audio", "video").index(token_type)
            key = (token_type, f"{token_type} rate {a[i]} vs {b[i]}")
        groups.setdefault(key, []).append(consistency(stats, a, b, token_type))
    header = " | ".join(f"layer {layer}" for layer in range(stats.layers))
    lines = [
        f"| tokens | rates compared | {header} | mean top-k overlap (Jaccard) | tokens |",
        "|---|---|" + "---|" * stats.layers + "---|---|",
    ]
    for (token_type, what), results in groups.items():
        weights = np.array([r["tokens"][0] for r in results], float)
        mean = {
            k: (np.stack([r[k] for r in results]) * weights[:, None]).sum(0) / weights.sum()
            for k in ("identical", "identical_shuffled", "jaccard", "jaccard_shuffled")
        }
        cells = " | ".join(
            f"{100 * mean['identical'][layer]:.0f} ({100 * mean['identical_shuffled'][layer]:.0f})"
            for layer in range(stats.layers)
        )
        lines.append(
            f"| {token_type} | {what} | {cells} | {100 * np.nanmean(mean['jaccard']):.0f} "
            f"({100 * np.nanmean(mean['jaccard_shuffled']):.0f}) | {int(weights.sum())} |"
        )
    return lines
