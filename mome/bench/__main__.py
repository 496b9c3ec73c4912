"""python -m mome.bench <name> [options]: run one benchmark, print one JSON object (see mome.bench)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import sys
import time

from mome.bench import BENCHMARKS


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m mome.bench", description=(__doc__ or "").split(":")[0])
    sub = p.add_subparsers(dest="name", required=True, metavar="NAME", help=", ".join(BENCHMARKS))
    for name in BENCHMARKS:
        module = importlib.import_module(f"mome.bench.{name}")
        one = sub.add_parser(name, help=(module.__doc__ or "").split("\n")[0], description=module.__doc__,
                             formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        one.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
        one.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: CPU-time clock)")
        one.add_argument(
            "--llm-config", default=None, help="LLM config.json or save_pretrained directory (default: ~100M Llama)"
        )
        one.add_argument("--repeats", type=int, default=5, help="timed rounds (the median is reported)")
        one.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
        one.add_argument("--seed", type=int, default=0)
        one.add_argument(
            "--tiny", action="store_true", help="toy sizes, one round: checks that it runs, figures mean nothing"
        )
        one.add_argument("--out", default=None, help="also write the JSON to this file")
        module.add_arguments(one)
    return p


def main(argv: list[str] | None = None) -> int:
    a = get_parser().parse_args(argv)
    import torch

    from mome.bench.common import Clock, machine

    torch.set_num_threads(a.threads)
    if a.tiny:
        a.repeats, a.warmup = 1, 0
    began = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):  # stdout holds the JSON alone (ESPnet prints on import)
        result = importlib.import_module(f"mome.bench.{a.name}").run(a)
    report = {
        "benchmark": a.name,
        "command": "python -m mome.bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(a.device),
        "clock": Clock(a.device).name,
        "repeats": a.repeats,
        "warmup": a.warmup,
        **result,
        "run_wall_seconds": round(time.perf_counter() - began, 1),
    }
    text = json.dumps(report, indent=1)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
