"""Benchmarks: ``python -m mome.bench <name>`` prints one JSON object of figures and ratios.

    adapters    training step and prefill: frozen LLM alone, + LoRA (Q, V, reduction 32), + MoME-23/4
    dispatch    the MoME layer alone: our dispatch against a per-expert loop (the reference), outputs compared
    rates       prefill and greedy decoding of one 10 s utterance at each rate pair; decoding tokens/s
    train_step  one MoME step over all four rate pairs against four single-pair steps; pairs_per_forward
    data        stage-2 audio and mouth-ROI extraction: frames per CPU-second and peak memory by clip length
    decode      stage-4 decoding: utterances per CPU-second, beam 1 and 5, batch 1 and 8
    flops       on paper: training FLOPs of one epoch of LRS3 / LRS2 for the papers' configurations

Every timing is taken side by side in one process: the cases of a benchmark run in turns (round robin, the
order rotating each round), the first rounds are warm-up, and the figure is the median of the rest, so that a
shared, noisy machine slows every case alike and the ratios hold. On CPU with one thread the clock is the
process's CPU time (time spent waiting for a core does not count), otherwise wall time (CUDA synchronised).
Models have random weights (no downloads); the default LLM is a Llama-family configuration of about 100M
parameters (:data:`mome.bench.common.DEFAULT_LLM`), ``--llm-config`` takes any other. ``--tiny`` runs a
benchmark at a toy size in seconds (the tests do; its figures mean nothing). The output names the machine.
"""

BENCHMARKS = ("adapters", "dispatch", "rates", "train_step", "data", "decode", "flops")
