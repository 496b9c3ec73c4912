"""Adapter and projector parameter counts of a MoME / LoRA / Llama-MTSK model, from an LLM config alone.

    mome-params --llm_config CONFIG.json --adapter {mome,lora,mtsk_ms,mtsk_ss,mtsk_mss}
        [--experts N --top_k K --shared_experts S --bottleneck W --location {mhsa,ffn,layer}
         | --lora_reduction R --lora_alpha A --lora_targets q,v] [--scales N] [--json]

Active adapter parameters are those one token uses (MoME: its top-k routed experts, the shared experts and
the router; MTSK-MSS: the shared LoRA and one scale's). Built on the meta device: no weights are read.
The adapter names are the training config's (``llm_adapter``); every default is the spec's or the
compressor's (:class:`~mome.models.mome.MoMESpec`, :class:`~mome.models.lora.LoRASpec`,
:class:`~mome.models.compressor.MatryoshkaCompressor`).
"""

from __future__ import annotations

import argparse
import json
import sys

from mome.bin._cli import add_hidden_aliases, entry_point
from mome.espnet.choices import llm_adapter_choices
from mome.models.accounting import adapter_params, projector_params
from mome.models.adapter import AdapterSpec
from mome.models.compressor import MatryoshkaCompressor
from mome.models.llm import load_llm_config
from mome.models.lora import LoRASpec
from mome.models.mome import LOCATIONS, MoMESpec

PROG = "mome-params"
TARGET_ALIASES = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj"}
MOME, LORA, COMPRESSOR = MoMESpec(), LoRASpec(), MatryoshkaCompressor()  # the defaults
DASHED_BEFORE = (
    "llm_config",
    "top_k",
    "shared_experts",
    "router_per_scale",
    "lora_reduction",
    "lora_alpha",
    "lora_targets",
    "audio_dim",
    "video_dim",
    "audio_rates",
    "video_rates",
    "projector_hidden",
)  # old spellings: --llm-config, ...


def int_list(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--llm_config", required=True, help="LLM config.json (or a save_pretrained directory)")
    names = list(llm_adapter_choices.classes)
    p.add_argument(
        "--adapter",
        required=True,
        type=lambda s: s.replace("-", "_"),
        choices=names,
        help="the adapter (mtsk-ms etc. are taken too)",
    )
    g = p.add_argument_group("MoME")
    g.add_argument("--experts", type=int, default=MOME.experts, help="routed experts per layer")
    g.add_argument("--top_k", type=int, default=MOME.top_k, help="routed experts per token")
    g.add_argument("--shared_experts", type=int, default=MOME.shared_experts)
    g.add_argument("--bottleneck", type=int, default=MOME.bottleneck, help="expert width w")
    g.add_argument("--location", choices=LOCATIONS, default=MOME.location)
    g.add_argument(
        "--router_per_scale", action="store_true", default=MOME.router_per_scale, help="one router per scale (ablation)"
    )
    g = p.add_argument_group("LoRA / Llama-MTSK")
    g.add_argument("--lora_reduction", type=int, default=LORA.reduction, help="rank = hidden size / reduction")
    g.add_argument("--lora_alpha", type=float, default=LORA.alpha)
    short = {v: k for k, v in TARGET_ALIASES.items()}
    g.add_argument(
        "--lora_targets",
        default=",".join(short.get(t, t) for t in LORA.targets),
        help="comma list of projections (q,k,v,o or full module names)",
    )
    g = p.add_argument_group("model")
    rates = COMPRESSOR.rates
    scales = len(rates["audio"]) * len(rates["video"])
    g.add_argument(
        "--scales",
        type=int,
        default=scales,
        help=f"number of Matryoshka scales (rate pairs); default {scales} = {rates['audio']}x{rates['video']}",
    )
    g.add_argument("--audio_dim", type=int, default=1024, help="audio encoder width (0: no audio); Whisper medium 1024")
    g.add_argument(
        "--video_dim", type=int, default=1024, help="video encoder width (0: no video); AV-HuBERT large 1024"
    )
    g.add_argument("--audio_rates", type=int_list, default=rates["audio"])
    g.add_argument("--video_rates", type=int_list, default=rates["video"])
    g.add_argument(
        "--projector_hidden", type=int, default=None, help="projector hidden width (default: LLM hidden size)"
    )
    g.add_argument("--pooling", choices=["avg", "stack"], default=COMPRESSOR.mode)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_hidden_aliases(p, {f"--{name.replace('_', '-')}": f"--{name}" for name in DASHED_BEFORE})
    a = p.parse_args(argv)
    if a.scales < 1:
        p.error(f"--scales must be >= 1, got {a.scales}")
    return a


def spec_from_args(a: argparse.Namespace) -> AdapterSpec:
    spec = llm_adapter_choices.get_class(a.adapter)
    if issubclass(spec, MoMESpec):
        return spec(a.experts, a.top_k, a.shared_experts, a.bottleneck, a.location, a.router_per_scale)
    if issubclass(spec, LoRASpec):
        targets = tuple(TARGET_ALIASES.get(t, t) for t in a.lora_targets.split(",") if t)
        return spec(reduction=a.lora_reduction, alpha=a.lora_alpha, targets=targets)
    return spec()  # an adapter without options on this command line: its defaults


def describe(spec: MoMESpec | LoRASpec, hidden: int) -> str:
    if isinstance(spec, MoMESpec):
        return (
            f"MoME: {spec.experts} routed experts (top-{spec.top_k}), {spec.shared_experts} shared, "
            f"width {spec.bottleneck}, {spec.location}, "
            f"{'per-scale routers' if spec.router_per_scale else 'one router'}"
        )
    return (
        f"{spec.kind}: LoRA on {','.join(spec.targets)}, rank {spec.rank(hidden)} (= {hidden} / {spec.reduction}), "
        f"alpha {spec.alpha:g}"
    )


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    config = load_llm_config(a.llm_config)
    spec = spec_from_args(a)
    total, active = adapter_params(config, spec, a.scales)
    sizes = {m: d for m, d in (("audio", a.audio_dim), ("video", a.video_dim)) if d > 0}
    rates = {"audio": a.audio_rates, "video": a.video_rates}
    projectors = projector_params(config.hidden_size, sizes, rates, a.projector_hidden, True, a.pooling == "stack")
    result = {"total_adapter_params": total, "active_adapter_params": active, "projector_params": projectors}
    if a.json:
        print(json.dumps(result))
        return 0
    print(f"LLM {a.llm_config}: {config.model_type}, {config.num_hidden_layers} layers, hidden {config.hidden_size}")
    print(f"adapter {describe(spec, config.hidden_size)}; {a.scales} scales")
    print(f"total adapter params  {total:>14,}  ({total / 1e6:.2f}M)")
    print(f"active adapter params {active:>14,}  ({active / 1e6:.2f}M per token)")
    projector_desc = ", ".join(f"{m} {sizes[m]}-d x rates {rates[m]}" for m in sizes)
    print(f"projector params      {projectors:>14,}  ({projectors / 1e6:.2f}M; {projector_desc})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
