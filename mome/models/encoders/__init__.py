"""Audio and video encoders: ``forward(x, lengths) -> (features (B, T', D), feature_lengths (B,))`` with
attributes ``output_size`` (D) and ``frame_rate`` (tokens per second).

- ``whisper``: the Whisper encoder (transformers), 16 kHz waveform -> 50 tokens/s.
- ``avhubert``: AV-HuBERT's video encoder in plain PyTorch, mouth ROI -> 25 tokens/s;
  ``avhubert_checkpoint`` reads the public fairseq checkpoints without fairseq.
- ``small``: ~1M-parameter encoders to train from scratch (audio 50 tokens/s, video 25 tokens/s).
- ``factory``: ``build_audio_encoder(kind, ...)`` / ``build_video_encoder(kind, ...)``.
"""
from mome.models.encoders.base import Encoder
from mome.models.encoders.factory import AUDIO_KINDS, VIDEO_KINDS, build_audio_encoder, build_video_encoder

__all__ = ["Encoder", "build_audio_encoder", "build_video_encoder", "AUDIO_KINDS", "VIDEO_KINDS"]
