"""The model as plain PyTorch: Matryoshka compressor, projectors, the frozen LLM, MoME and LoRA adapters,
the AVSR model and parameter/FLOP accounting.

Submodules are imported explicitly (``from mome.models.avsr import AVSRModel``); this file stays free of
heavy imports so that ``import mome.models.encoders`` does not pull in transformers.
"""
