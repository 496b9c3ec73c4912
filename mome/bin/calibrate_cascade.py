"""Calibrate the adaptive rate (``rates="auto"``) on a validation set, and report it on a test set.

    python -m mome.bin.calibrate_cascade --model_dir exp/mome --valid_dir data/val [--test_dir data/test] \\
        [--ladder 16,5 4,2] [--beam_size 4] [--max_cost_share 0.6] [--output_dir plots] [--save_to DIR]

Decodes the validation set at every pair of the ladder (each batch encoded once), picks the confidence
threshold of the lowest validation WER whose mean LLM cost is at most ``--max_cost_share`` x the finest pair's
(:func:`mome.cascade.calibrate`), and stores ladder and threshold in ``<save_to>/cascade.json`` (default: the
model directory), where ``AVSR2Text.from_pretrained`` reads them. With ``--test_dir`` every trained pair is
decoded on the test set too, and ``<output_dir>/adaptive_rate.png`` (WER against mean LLM TFLOPs per
utterance: each fixed pair, the cascade at every threshold of the grid) and ``adaptive_rate.md`` (the table)
are written; the hypotheses of every pair are kept in ``<output_dir>/decodes_<set>.json`` and reused by a rerun
with the same settings. WER by the project's scoring (:mod:`mome.scoring`; the chosen cascade's and the fixed
pairs' hypotheses are also scored with sclite when it is installed, and must agree).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from mome.bin._cli import entry_point

PROG = "python -m mome.bin.calibrate_cascade"


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--model_dir", required=True, help="training output directory or packed model")
    p.add_argument("--valid_dir", required=True, help="validation data directory (wav.scp / roi.scp, text)")
    p.add_argument("--test_dir", default=None, help="test data directory to report on (figure and table)")
    p.add_argument(
        "--ladder", nargs="+", default=None, help="rate pairs A,V cheapest first (default: cheapest, finest)"
    )
    p.add_argument("--beam_size", type=int, default=4)
    p.add_argument("--max_new_tokens", type=int, default=32)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_cost_share", type=float, default=0.6, help="cost cap of the calibration, x the finest pair's")
    p.add_argument("--output_dir", default=None, help="figure, table and decodes (default: <model_dir>/cascade)")
    p.add_argument("--save_to", default=None, help="where cascade.json goes (default: --model_dir)")
    p.add_argument("--device", default="cpu")
    return p


def decode_set(avsr, data_dir: Path, pairs, cache: Path, batch_size: int) -> dict:
    """``{"utts": [...], "refs": [...], pair_name: [{"text", "confidence", "tflops", "tokens", "prompt"}]}``."""
    from mome.data.kaldi import read_table
    from mome.espnet.inference import decode_data_dir
    from mome.inference import format_pair

    # a model retrained in place has a new checkpoint file: its size and time are part of the key
    weights = Path(avsr.checkpoint).absolute()
    key = {"checkpoint": [str(weights), weights.stat().st_size, weights.stat().st_mtime_ns],
           "beam_size": avsr.beam_size, "max_new_tokens": avsr.max_new_tokens,
           "data_dir": str(data_dir.absolute())}  # fmt: skip
    if cache.is_file():
        body = json.loads(cache.read_text(encoding="utf-8"))
        if body.get("key") == key and all(format_pair(p) in body for p in pairs):
            logging.info("%s: reusing %s", data_dir, cache)
            return body
    hyps = decode_data_dir(avsr, data_dir, pairs, batch_size)
    refs = read_table(data_dir / "text")
    utts = sorted(u for u in refs if all(u in hyps.results[p] for p in pairs))
    body = {"key": key, "utts": utts, "refs": [refs[u] for u in utts]}
    for pair in pairs:
        body[format_pair(pair)] = [
            {"text": r.text, "confidence": r.confidence, "tflops": r.llm_tflops, "tokens": r.llm_input_tokens,
             "prompt": r.llm_input_tokens - len(r.token_log_probs)}
            for r in (hyps.results[pair][u] for u in utts)
        ]  # fmt: skip
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(body), encoding="utf-8")
    return body


def as_decoded(body: dict, pairs) -> dict:
    from mome.cascade import Decoded
    from mome.inference import format_pair

    return {
        p: [Decoded(d["text"], d["confidence"], d["tflops"], d["tokens"], d["prompt"]) for d in body[format_pair(p)]]
        for p in pairs
    }


def sclite_wer(body: dict, texts: list[str], out: Path) -> float:
    """WER of hypotheses through :func:`mome.scoring.score.score` (sclite when installed)."""
    from mome.scoring.score import score

    out.mkdir(parents=True, exist_ok=True)
    (out / "ref").write_text("".join(f"{u} {r}\n" for u, r in zip(body["utts"], body["refs"])), encoding="utf-8")
    (out / "hyp").write_text("".join(f"{u} {h}\n" for u, h in zip(body["utts"], texts)), encoding="utf-8")
    return score(out / "ref", out / "hyp", out / "score").wer


def plot(fixed, points, threshold, out: Path, title: str, capped=()) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for p in fixed:
        ax.plot(p.mean_cost * 1e6, p.wer, "s", color="tab:blue")
        ax.annotate(
            f"({p.pair[0] or '-'},{p.pair[1] or '-'})",
            (p.mean_cost * 1e6, p.wer),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    ax.plot([], [], "s", color="tab:blue", label="fixed rate pair")
    line = [p for p in points if p.threshold < 1]  # t = 1 is the finest pair itself (a blue square)
    ax.plot(
        [p.mean_cost * 1e6 for p in line],
        [p.wer for p in line],
        "o-",
        color="tab:orange",
        label="cascade (auto), thresholds",
    )
    if capped:
        ax.plot(
            [p.mean_cost * 1e6 for p in capped if p.threshold < 1],
            [p.wer for p in capped if p.threshold < 1],
            "x--",
            color="tab:green",
            label='cascade, budget="finest"',
        )
    for p in line:
        ax.annotate(
            f"{p.threshold:g}",
            (p.mean_cost * 1e6, p.wer),
            textcoords="offset points",
            xytext=(3, -10),
            fontsize=7,
            color="tab:orange",
        )
    chosen = [p for p in points if p.threshold == threshold]
    if chosen:
        ax.plot(
            chosen[0].mean_cost * 1e6,
            chosen[0].wer,
            "*",
            ms=14,
            color="tab:red",
            label=f"calibrated on validation (t={threshold:g})",
        )
    ax.set_xlabel("mean LLM forward MFLOPs per utterance (prompt + hypothesis, every pair decoded)")
    ax.set_ylabel("WER (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    a = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    from mome import cascade
    from mome.inference import AVSR2Text, format_pair

    avsr = AVSR2Text.from_pretrained(a.model_dir, a.device, a.beam_size, a.max_new_tokens)
    ladder = cascade.default_ladder(avsr.trained_pairs) if a.ladder is None else [avsr.check_pair(p) for p in a.ladder]
    out = Path(a.output_dir or Path(a.model_dir) / "cascade")
    for d in (a.valid_dir, a.test_dir):
        if d is not None and not Path(d).is_dir():
            raise FileNotFoundError(f"data directory {d} does not exist")
    valid = decode_set(avsr, Path(a.valid_dir), ladder, out / f"decodes_{Path(a.valid_dir).name}.json", a.batch_size)
    threshold, valid_points = cascade.calibrate(as_decoded(valid, ladder), valid["refs"], ladder, a.max_cost_share)
    finest_valid = cascade.fixed_point(as_decoded(valid, ladder), valid["refs"], ladder[-1])
    chosen = next(p for p in valid_points if p.threshold == threshold)
    path = cascade.save_calibration(
        a.save_to or a.model_dir, ladder, threshold, calibrated_on=str(a.valid_dir), beam_size=a.beam_size,
        max_cost_share=a.max_cost_share, valid_wer=round(chosen.wer, 2),
        valid_cost_share=round(chosen.mean_cost / finest_valid.mean_cost, 3),
    )  # fmt: skip
    logging.info(
        "threshold %.2f (validation WER %.2f %% at %.0f %% of %s's cost) -> %s",
        threshold,
        chosen.wer,
        100 * chosen.mean_cost / finest_valid.mean_cost,
        format_pair(ladder[-1]),
        path,
    )
    if a.test_dir is None:
        return 0
    test_dir = Path(a.test_dir)
    pairs = list(dict.fromkeys([*avsr.trained_pairs, *ladder]))
    test = decode_set(avsr, test_dir, pairs, out / f"decodes_{test_dir.name}.json", a.batch_size)
    decoded = as_decoded(test, pairs)
    fixed = sorted((cascade.fixed_point(decoded, test["refs"], p) for p in pairs), key=lambda p: p.mean_cost)
    grid = [p.threshold for p in valid_points]  # the thresholds calibration tried
    points = [cascade.evaluate(decoded, test["refs"], ladder, t) for t in grid]
    capped = [cascade.evaluate(decoded, test["refs"], ladder, t, "finest") for t in grid]
    finest = next(p for p in fixed if p.pair == ladder[-1])
    # the project's scoring (sclite when installed) on the fixed pairs and the calibrated cascade
    checks = {
        format_pair(p.pair): sclite_wer(
            test, [d.text for d in decoded[p.pair]], out / "score" / f"ra{p.pair[0] or 0}_rv{p.pair[1] or 0}"
        )
        for p in fixed
    }
    kept = cascade.select(decoded, ladder, threshold)
    checks["auto"] = sclite_wer(
        test, [decoded[pair][i].text for i, (pair, _, _) in enumerate(kept)], out / "score" / "auto"
    )
    mine = {format_pair(p.pair): p.wer for p in fixed} | {
        "auto": next(p.wer for p in points if p.threshold == threshold)
    }
    for name, wer in checks.items():
        if abs(wer - mine[name]) > 1e-6:
            raise RuntimeError(f"{name}: WER {mine[name]:.4f} by the cascade's alignment, {wer:.4f} by mome.scoring")
    title = (
        f"{Path(a.model_dir).name} on {test_dir.name} ({len(test['utts'])} utterances, beam {a.beam_size}); ladder "
        + " -> ".join(format_pair(p) for p in ladder)
    )
    png = plot(fixed, points, threshold, out / "adaptive_rate.png", title, capped)
    lines = [
        f"Test set `{test_dir}` ({len(test['utts'])} utterances), beam {a.beam_size}; "
        f"ladder {' -> '.join(format_pair(p) for p in ladder)}; "
        f"threshold calibrated on `{a.valid_dir}`: **{threshold:g}** (validation WER {chosen.wer:.2f} % at "
        f"{100 * chosen.mean_cost / finest_valid.mean_cost:.0f} % of {format_pair(ladder[-1])}'s cost, "
        f"cap {100 * a.max_cost_share:.0f} %).",
        "Cost: mean LLM forward TFLOPs per utterance "
        "(prompt + hypothesis + <eos> at every pair decoded, 2 x parameters per token).",
        "",
        f"| decoding | threshold | WER % | mean LLM TFLOPs / utt | x {format_pair(ladder[-1])} cost | fell back "
        "| capped at finest: WER % | x cost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in fixed:
        lines.append(
            f"| fixed {format_pair(p.pair)} | - | {p.wer:.2f} | {p.mean_cost:.3e} "
            f"| {p.mean_cost / finest.mean_cost:.2f} | - | - | - |"
        )
    for p, c in zip(points, capped):
        star = " (calibrated)" if p.threshold == threshold else ""
        lines.append(f"| auto{star} | {p.threshold:g} | {p.wer:.2f} | {p.mean_cost:.3e} "
                     f"| {p.mean_cost / finest.mean_cost:.2f} | {100 * p.fallback_share:.0f} % "
                     f"| {c.wer:.2f} | {c.mean_cost / finest.mean_cost:.2f} |")  # fmt: skip
    (out / "adaptive_rate.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "adaptive_rate.json").write_text(json.dumps({
        "threshold": threshold, "ladder": [format_pair(p) for p in ladder], "sclite_or_python_wer": checks,
        "fixed": [{"pair": format_pair(p.pair), "wer": p.wer, "mean_tflops": p.mean_cost} for p in fixed],
        "cascade": [vars(p) | {"pair": None} for p in points],
        "cascade_capped": [vars(p) | {"pair": None} for p in capped],
    }, indent=1), encoding="utf-8")  # fmt: skip
    print("\n".join(lines))
    logging.info("figure %s, table %s", png, out / "adaptive_rate.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
