"""What every benchmark shares: the machine description, side-by-side timing, the default LLM, targets."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

# About 100M parameters (24.6M of them the tied embedding table): Llama-family, hidden 768, 12 layers of
# 12 query / 4 key-value heads, MLP 2048, vocabulary 32000. Random weights, built offline.
DEFAULT_LLM = dict(
    model_type="llama",
    vocab_size=32000,
    hidden_size=768,
    num_hidden_layers=12,
    num_attention_heads=12,
    num_key_value_heads=4,
    intermediate_size=2048,
    max_position_embeddings=4096,
    tie_word_embeddings=True,
    bos_token_id=0,
    eos_token_id=1,
)
TINY_LLM = dict(DEFAULT_LLM, vocab_size=400, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, intermediate_size=64)  # fmt: skip

# the papers' MoME and LoRA settings (MoME-23/4-MHSA, Llama-AVSR with reduction 32)
MOME_SETTING = dict(experts=23, top_k=4, shared_experts=1, bottleneck=12, location="mhsa")
LORA_SETTING = dict(reduction=32, alpha=4.0)  # LoRASpec: Llama-AVSR

SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "we decode every rate pair with one set of weights",
    "compressed audio and video tokens feed a frozen language model",
]


def machine(device: str) -> dict:
    """What the figures were measured on."""
    import transformers

    info = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": device,
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class Clock:
    """CPU time of this process on CPU with one thread (robust to other processes on the cores), else wall
    time, synchronising CUDA before reading it."""

    device: str

    @property
    def name(self) -> str:
        return "process CPU time" if self.cpu_time else "wall time"

    @property
    def cpu_time(self) -> bool:
        return not self.device.startswith("cuda") and torch.get_num_threads() == 1

    def __call__(self) -> float:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.process_time() if self.cpu_time else time.perf_counter()


def interleaved(
    cases: dict[str, Callable[[], object]], clock: Clock, repeats: int, warmup: int = 1
) -> dict[str, float]:
    """Median seconds of each case over ``repeats`` rounds after ``warmup`` rounds; in every round each case
    runs once, the order rotating from round to round."""
    names = list(cases)
    times: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(warmup + max(1, repeats)):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            cases[name]()
            elapsed = clock() - start
            if round_ >= warmup:
                times[name].append(elapsed)
    return {n: statistics.median(v) for n, v in times.items()}


def target(value: float, limit: float, what: str) -> dict:
    """A target: ``value <= limit``."""
    return {"value": round(value, 4), "limit": limit, "met": bool(value <= limit), "what": what}


def llm_config(path: str | None, tiny: bool):
    """The LLM config of a benchmark: ``--llm-config`` when given, else the default (or tiny) one."""
    from transformers import AutoConfig

    from mome.models.llm import load_llm_config

    if path is not None:
        return load_llm_config(path)
    values = dict(TINY_LLM if tiny else DEFAULT_LLM)
    return AutoConfig.for_model(values.pop("model_type"), **values)


def tokenizer():
    """A small byte-level BPE tokenizer (ids 0 and 1 are bos and eos, as in the default configs)."""
    from mome.models.tiny_llm import train_tiny_tokenizer

    return train_tiny_tokenizer(SENTENCES, vocab_size=300)


def frozen_llm(config, device: str = "cpu", seed: int = 0, dtype: torch.dtype | None = None):
    """A :class:`mome.models.llm.FrozenLLM` with random weights from ``config``."""
    from mome.models.llm import FrozenLLM, build_llm

    torch.manual_seed(seed)
    model = build_llm(config, dtype=dtype)
    return FrozenLLM(model, tokenizer()).to(device).eval()
