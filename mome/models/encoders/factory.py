"""Build an encoder by kind name (what configs and command lines say).

    build_audio_encoder("whisper", path="exp/whisper-medium")          # local save_pretrained directory
    build_audio_encoder("whisper", config={...WhisperConfig fields...})  # random weights (tests, mini recipe)
    build_audio_encoder("small", dim=144, layers=4)
    build_audio_encoder("small", path="exp/pretrain_audio/encoder")    # saved with Encoder.save_pretrained
    build_video_encoder("avhubert", path="large_vox_iter5.pt")         # public fairseq checkpoint
    build_video_encoder("avhubert", config="tiny")                      # a preset name or a dict
    build_video_encoder("small")

``frozen`` defaults to True for weights loaded from ``path`` and False for the small encoders built from sizes.
"""
from __future__ import annotations

from pathlib import Path

from mome.models.encoders.base import Encoder

AUDIO_KINDS = ("whisper", "small")
VIDEO_KINDS = ("avhubert", "small")


def _exactly_one_source(kind: str, path, config) -> None:
    if (path is None) == (config is None):
        raise ValueError(f"encoder kind {kind!r} needs exactly one of path= (pretrained weights) or config=")


def _small(cls: type[Encoder], path, config, frozen: bool | None, kwargs: dict) -> Encoder:
    """A small encoder: from its sizes (trainable), or saved weights at ``path`` (frozen unless said otherwise)."""
    if config is not None:
        raise ValueError(f"{cls.__name__} takes its sizes as keyword arguments or path= (saved weights), not config=")
    if path is None:
        return cls(frozen=bool(frozen), **kwargs)
    if not Path(path).is_dir():
        raise FileNotFoundError(f"saved {cls.__name__} directory not found: {path}")
    return cls.from_pretrained(path, frozen=True if frozen is None else frozen, **kwargs)


def build_audio_encoder(
    kind: str, *, path: str | Path | None = None, config=None, frozen: bool | None = None, **kwargs
) -> Encoder:
    if kind == "whisper":
        from mome.models.encoders.whisper import WhisperAudioEncoder

        _exactly_one_source(kind, path, config)
        frozen = True if frozen is None else frozen
        if path is not None:
            if not Path(path).is_dir():
                raise FileNotFoundError(f"Whisper model directory not found: {path}")
            return WhisperAudioEncoder.from_pretrained(path, frozen=frozen, **kwargs)
        return WhisperAudioEncoder(config, frozen=frozen, **kwargs)
    if kind == "small":
        from mome.models.encoders.small import SmallAudioEncoder

        return _small(SmallAudioEncoder, path, config, frozen, kwargs)
    raise ValueError(f"unknown audio encoder kind {kind!r}; choose one of {list(AUDIO_KINDS)}")


def build_video_encoder(
    kind: str, *, path: str | Path | None = None, config=None, frozen: bool | None = None, **kwargs
) -> Encoder:
    if kind == "avhubert":
        from mome.models.encoders.avhubert import AVHubertVideoEncoder
        from mome.models.encoders.avhubert_checkpoint import load_avhubert

        _exactly_one_source(kind, path, config)
        frozen = True if frozen is None else frozen
        if path is not None:
            if not Path(path).is_file():
                raise FileNotFoundError(f"AV-HuBERT checkpoint file not found: {path}")
            return load_avhubert(path, frozen=frozen, **kwargs)
        return AVHubertVideoEncoder(config, frozen=frozen)
    if kind == "small":
        from mome.models.encoders.small import SmallVideoEncoder

        return _small(SmallVideoEncoder, path, config, frozen, kwargs)
    raise ValueError(f"unknown video encoder kind {kind!r}; choose one of {list(VIDEO_KINDS)}")
