"""Small encoders trained from scratch (the mini corpus, CPU runs): about 1M parameters each.

SmallAudioEncoder: Whisper-style log-mel (80 bins, 100 frames/s) -> two 1D convolutions (the second with
stride 2, as in Whisper; ``stride=4`` strides both) -> a small pre-LN Transformer. 50 tokens per second
by default, the Whisper encoder's rate, so the compression rates mean the same thing with either.

SmallVideoEncoder: mouth ROI frames (optionally average-pooled by ``input_pool`` first: a quarter of the
pixels at 2) -> a 3D convolution stem over (time, space) -> a small 2D CNN per frame, globally pooled -> a
small pre-LN Transformer over time. 25 tokens per second (one per frame).

Both normalise per item and per frame (GroupNorm / LayerNorm, no batch norm) and zero the padded steps
between their convolutions, so an item's features do not depend on the rest of its batch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mome.models.encoders.base import Encoder, check_lengths, loads_saved, valid_mask
from mome.models.encoders.logmel import WhisperLogMel


def sinusoids(length: int, dim: int, device=None) -> torch.Tensor:
    """(length, dim) sine/cosine position table, wavelengths 1 .. 10000 (as in Whisper)."""
    half = dim // 2
    inv = torch.exp(-math.log(10000.0) * torch.arange(half, device=device) / max(half - 1, 1))
    angles = torch.arange(length, device=device)[:, None] * inv[None, :]
    table = torch.cat([angles.sin(), angles.cos()], dim=1)
    return nn.functional.pad(table, (0, dim - 2 * half))


class SmallTransformer(nn.Module):
    """Sinusoidal positions + pre-LN Transformer layers with a key padding mask + final LayerNorm."""

    def __init__(self, dim: int, layers: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        layer = nn.TransformerEncoderLayer(
            dim, heads, ffn_dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, D) tokens, (B, T) bool mask of the valid ones -> (B, T, D), sinusoidal positions added."""
        x = self.dropout(x + sinusoids(x.shape[1], x.shape[2], x.device).to(x.dtype))
        return self.norm(self.layers(x, src_key_padding_mask=~valid))


class SmallAudioEncoder(Encoder):
    """forward(waveform (B, S) at 16 kHz, lengths in samples) -> ((B, T', dim), (B,)); 100/stride tokens/s.

    ``path``: a directory :meth:`save_pretrained` wrote (sizes and weights from there, frozen by default;
    see :func:`~mome.models.encoders.base.loads_saved`)."""

    @loads_saved
    def __init__(
        self,
        dim: int = 144,
        layers: int = 4,
        heads: int = 4,
        ffn_dim: int = 576,
        n_mels: int = 80,
        stride: int = 2,
        dropout: float = 0.1,
        frozen: bool | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__()
        if stride not in (2, 4):
            raise ValueError(f"stride must be 2 (50 tokens/s) or 4 (25 tokens/s), got {stride}")
        self.config = dict(
            dim=dim, layers=layers, heads=heads, ffn_dim=ffn_dim, n_mels=n_mels, stride=stride, dropout=dropout
        )
        self.log_mel = WhisperLogMel(n_mels)
        self.conv1 = nn.Conv1d(n_mels, dim, 3, stride=stride // 2, padding=1)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2, padding=1)
        self.transformer = SmallTransformer(dim, layers, heads, ffn_dim, dropout)
        self.output_size = dim
        self.frame_rate = 100 // stride
        self.set_frozen(frozen)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) 16 kHz waveform, (B,) lengths in samples -> ((B, T', dim) tokens at 100 / stride per second,
        (B,) lengths)."""
        with self.grad_context():
            mel, frames = self.log_mel(x, lengths)
            mel = mel.to(self.conv1.weight.dtype) * valid_mask(frames, mel.shape[-1])[:, None, :]
            hidden, lengths = self._conv(self.conv1, mel, frames)
            hidden, lengths = self._conv(self.conv2, hidden, lengths)
            valid = valid_mask(lengths, hidden.shape[-1])
            return self.transformer(hidden.transpose(1, 2), valid), lengths

    @staticmethod
    def _conv(conv: nn.Conv1d, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Convolve, then zero the steps past each item's new length (as its own zero padding would be)."""
        stride = conv.stride[0]
        lengths = (lengths + stride - 1) // stride  # kernel 3, padding 1: ceil(T / stride)
        out = nn.functional.gelu(conv(x))
        return out * valid_mask(lengths, out.shape[-1])[:, None, :], lengths


class SmallVideoEncoder(Encoder):
    """forward(frames (B, T, H, W) normalised mouth ROI, lengths in frames) -> ((B, T, dim), lengths); 25 tokens/s.

    ``path``: a directory :meth:`save_pretrained` wrote (as :class:`SmallAudioEncoder`)."""

    frame_rate = 25

    @loads_saved
    def __init__(
        self,
        dim: int = 144,
        layers: int = 3,
        heads: int = 4,
        ffn_dim: int = 576,
        channels: tuple[int, ...] = (16, 32, 64, 128),
        dropout: float = 0.1,
        input_pool: int = 1,
        stem_frames: int = 5,
        frozen: bool | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__()
        if input_pool < 1 or stem_frames < 1 or stem_frames % 2 == 0:
            raise ValueError(f"input_pool must be >= 1 and stem_frames odd, got {input_pool} and {stem_frames}")
        channels = tuple(int(c) for c in channels)
        self.config = dict(
            dim=dim,
            layers=layers,
            heads=heads,
            ffn_dim=ffn_dim,
            channels=list(channels),
            dropout=dropout,
            input_pool=input_pool,
            stem_frames=stem_frames,
        )
        self.input_pool = input_pool
        stem = channels[0]
        self.stem = nn.Conv3d(
            1, stem, kernel_size=(stem_frames, 5, 5), stride=(1, 2, 2), padding=(stem_frames // 2, 2, 2), bias=False
        )
        blocks: list[nn.Module] = [nn.GroupNorm(1, stem), nn.GELU(), nn.MaxPool2d(3, stride=2, padding=1)]
        for c_in, c_out in zip(channels[:-1], channels[1:]):
            blocks += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.GroupNorm(1, c_out), nn.GELU()]
        self.frame_cnn = nn.Sequential(*blocks)  # per frame, after the stem
        self.proj = nn.Linear(channels[-1], dim)
        self.transformer = SmallTransformer(dim, layers, heads, ffn_dim, dropout)
        self.output_size = dim
        self.set_frozen(frozen)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, H, W) mouth-ROI frames, (B,) lengths in frames -> ((B, T, dim) tokens at 25 per second, (B,)
        lengths). Raises ValueError for another rank."""
        if x.dim() != 4:
            raise ValueError(f"video must be (batch, frames, height, width), got shape {tuple(x.shape)}")
        lengths = check_lengths(x, lengths)
        with self.grad_context():
            batch, time = x.shape[:2]
            valid = valid_mask(lengths, time)
            frames = x.to(self.proj.weight.dtype) * valid[:, :, None, None]  # the stem mixes frames
            if self.input_pool > 1:
                frames = nn.functional.avg_pool2d(frames, self.input_pool)
            hidden = self.stem(frames.unsqueeze(1)).transpose(1, 2).flatten(0, 1)  # (B*T, C, H', W')
            hidden = self.frame_cnn(hidden).mean(dim=(2, 3)).view(batch, time, -1)
            return self.transformer(self.proj(hidden), valid), lengths
