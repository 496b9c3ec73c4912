"""Audio and video encoders: ``forward(x, lengths) -> (features (B, T', D), feature_lengths (B,))`` with
attributes ``output_size`` (D) and ``frame_rate`` (tokens per second).

- ``whisper``: the Whisper encoder (transformers), 16 kHz waveform -> 50 tokens/s.
- ``avhubert``: AV-HuBERT's video encoder in plain PyTorch, mouth ROI -> 25 tokens/s;
  ``avhubert_checkpoint`` reads the public fairseq checkpoints without fairseq.
- ``small``: ~1M-parameter encoders to train from scratch (audio 50 tokens/s, video 25 tokens/s).

Each takes its pretrained weights through its own constructor (``path=``); the config names that pick them
are ESPnet's ``ClassChoices`` in :mod:`mome.espnet.choices`.
"""

from mome.models.encoders.base import Encoder

__all__ = ["Encoder"]
