"""LLM input length and forward compute per utterance at each (audio rate, video rate) pair.

    mome-flops --llm_config CONFIG.json --seconds S --rates 4,2 16,5 ... [--audio_hz 50 --video_hz 25]
        [--text_tokens T] [--json]

Tokens = <bos> + per present modality (2 markers + ceil(S * hz / rate)) + T text tokens (instruction and
transcript; default 0). TFLOPs = 2 x tokens x the LLM parameters a token passes through (all but the input
embedding table; the output head counted even when tied). Attention scores, adapters and encoders are not
counted. A rate of 0 drops that modality (ASR: 4,0; VSR: 0,2).
"""

from __future__ import annotations

import argparse
import json
import sys

from mome.bin._cli import add_hidden_aliases, entry_point
from mome.models.accounting import rate_costs
from mome.models.llm import load_llm_config

PROG = "mome-flops"


def rate_pair(text: str) -> tuple[int | None, int | None]:
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        pair = tuple(None if p.strip() in ("-", "0") else int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"rate pair {text!r} is not AUDIO,VIDEO (integers, 0 for an absent modality)")
    if pair == (None, None) or any(r is not None and r < 0 for r in pair):
        raise argparse.ArgumentTypeError(
            f"rate pair {text!r}: rates must be positive (0: modality absent), one modality at least"
        )
    return pair


def show_rate(rate: int | None) -> str:
    return "-" if rate is None else str(rate)


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--llm_config", required=True, help="LLM config.json (or a save_pretrained directory)")
    p.add_argument("--seconds", type=float, required=True, help="utterance duration")
    p.add_argument(
        "--rates", type=rate_pair, nargs="+", required=True, help="AUDIO,VIDEO compression rates, e.g. 4,2 16,5"
    )
    p.add_argument("--audio_hz", type=float, default=50.0, help="audio encoder tokens per second (Whisper: 50)")
    p.add_argument("--video_hz", type=float, default=25.0, help="video encoder tokens per second (AV-HuBERT: 25)")
    p.add_argument("--text_tokens", type=int, default=0, help="instruction + transcript tokens added to every prompt")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_hidden_aliases(
        p,
        {
            "--llm-config": "--llm_config",
            "--audio-hz": "--audio_hz",
            "--video-hz": "--video_hz",
            "--text-tokens": "--text_tokens",
        },
    )
    a = p.parse_args(argv)
    if a.seconds <= 0 or a.text_tokens < 0:
        p.error("--seconds must be > 0 and --text_tokens >= 0")
    config = load_llm_config(a.llm_config)
    per_token, costs = rate_costs(config, a.seconds, a.rates, a.audio_hz, a.video_hz, a.text_tokens)
    if a.json:
        print(json.dumps({"rates": [vars(c) for c in costs]}))
        return 0
    print(
        f"LLM {a.llm_config}: {per_token:,} parameters per token "
        "(all but the input embedding table; a tied output head counted), "
        f"{2 * per_token / 1e12:.3e} TFLOPs per token; {a.seconds:g} s, {a.text_tokens} text tokens"
    )
    print(f"{'audio_rate':>10} {'video_rate':>10} {'tokens':>8} {'tflops':>10}")
    for c in costs:
        print(f"{show_rate(c.audio_rate):>10} {show_rate(c.video_rate):>10} {c.tokens:>8} {c.tflops:>10.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
