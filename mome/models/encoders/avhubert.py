"""AV-HuBERT's encoder for video-only input (lip reading), in plain PyTorch: 25 tokens per second.

Mouth ROI frames (B, T, 88, 88) -> ResNet-18 video front-end (a 5x7x7 3D convolution stem, then a 2D
ResNet-18 on every frame, 512 values per frame) -> linear projection to the transformer width ->
modality fusion -> Transformer encoder with a convolutional relative position embedding (as in
wav2vec 2.0 / HuBERT). There is no temporal subsampling: one token per video frame.

Video-only fusion, as the public code does for lip reading (``extract_finetune`` with no audio): the
audio features are zeros of the transformer width, concatenated before the video features
(``modality_fuse="concat"``: LayerNorm over 2 x width, then ``post_extract_proj`` back to the width), or
added (``"add"``: LayerNorm over the width, no projection). The audio branch itself is absent.

Padding: input frames past an item's length are zeroed (so the 3D stem sees what it would see at the
end of that item alone), padded features are zeroed before the position convolution, and padded
positions are masked as attention keys. In eval mode an item's features therefore do not depend on the
rest of its batch. Weights from the public fairseq checkpoints: see ``avhubert_checkpoint``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from mome.models.encoders.base import Encoder, check_lengths, valid_mask


@dataclass
class AVHubertConfig:
    """The architecture (names follow the public config where one exists)."""

    encoder_embed_dim: int = 768
    encoder_layers: int = 12
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    layer_norm_first: bool = True  # pre-LN layers, final LayerNorm (every public AV-HuBERT config)
    conv_pos: int = 128  # kernel of the convolutional position embedding
    conv_pos_groups: int = 16
    modality_fuse: str = "concat"  # "concat" | "add"
    resnet_relu_type: str = "prelu"  # "prelu" | "relu"
    resnet_width: int = 64  # channels of the stem and the first stage (64 in the public model)
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.0
    dropout_input: float = 0.1
    encoder_layerdrop: float = 0.05  # training only

    def __post_init__(self) -> None:
        if self.modality_fuse not in ("concat", "add"):
            raise ValueError(f"modality_fuse must be 'concat' or 'add', got {self.modality_fuse!r}")
        if self.resnet_relu_type not in ("prelu", "relu"):
            raise ValueError(f"resnet_relu_type must be 'prelu' or 'relu', got {self.resnet_relu_type!r}")
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ValueError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_attention_heads {self.encoder_attention_heads}"
            )
        if self.encoder_embed_dim % self.conv_pos_groups:
            raise ValueError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by conv_pos_groups {self.conv_pos_groups}"
            )

    @classmethod
    def from_dict(cls, values: dict) -> "AVHubertConfig":
        """Keep the known fields of a (public or our) config dict, ignore the rest."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, dict] = {
    "base": dict(encoder_embed_dim=768, encoder_layers=12, encoder_ffn_embed_dim=3072, encoder_attention_heads=12),
    "large": dict(encoder_embed_dim=1024, encoder_layers=24, encoder_ffn_embed_dim=4096, encoder_attention_heads=16),
    # For tests: the same architecture, narrow and shallow.
    "tiny": dict(
        encoder_embed_dim=32,
        encoder_layers=2,
        encoder_ffn_embed_dim=64,
        encoder_attention_heads=4,
        conv_pos=8,
        conv_pos_groups=4,
        resnet_width=4,
    ),
}


def avhubert_config(preset: str = "base", **overrides) -> AVHubertConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown AV-HuBERT preset {preset!r}; choose one of {sorted(PRESETS)}")
    return AVHubertConfig(**{**PRESETS[preset], **overrides})


# ---------------------------------------------------------------- video front-end (ResNet-18)


def _activation(kind: str, channels: int) -> nn.Module:
    return nn.PReLU(num_parameters=channels) if kind == "prelu" else nn.ReLU()


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm, identity or 1x1 shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int, relu_type: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu1 = _activation(relu_type, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu2 = _activation(relu_type, channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C', H / stride, W / stride)."""
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu2(out + shortcut)


class ResNet18Trunk(nn.Module):
    """Four stages of two basic blocks (widths w, 2w, 4w, 8w), global average pool."""

    def __init__(self, width: int, relu_type: str) -> None:
        super().__init__()
        channels = width
        for stage in range(4):
            out_channels = width * 2**stage
            stride = 1 if stage == 0 else 2
            blocks = nn.Sequential(
                BasicBlock(channels, out_channels, stride, relu_type),
                BasicBlock(out_channels, out_channels, 1, relu_type),
            )
            self.add_module(f"layer{stage + 1}", blocks)
            channels = out_channels
        self.output_size = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, w, H, W) stem output -> (N, 8w), pooled over space."""
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return x.mean(dim=(2, 3))


class VideoResNet(nn.Module):
    """(B, T, H, W) gray frames -> (B, T, 8 x width): 3D stem over time and space, then a 2D ResNet-18 per frame."""

    def __init__(self, width: int = 64, relu_type: str = "prelu") -> None:
        super().__init__()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, width, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            _activation(relu_type, width),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.trunk = ResNet18Trunk(width, relu_type)
        self.output_size = self.trunk.output_size

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, H, W) gray frames -> (B, T, 8 x width)."""
        batch, time = frames.shape[:2]
        x = self.frontend3D(frames.unsqueeze(1))  # (B, C, T, H', W')
        x = x.transpose(1, 2).flatten(0, 1)  # (B*T, C, H', W')
        return self.trunk(x).view(batch, time, -1)


# ---------------------------------------------------------------- transformer encoder


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d whose weight is ``weight_g * weight_v / ||weight_v||``, the norm taken over all axes
    but the kernel axis (fairseq's ``weight_norm(conv, dim=2)``; same parameter names as its checkpoints)."""

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self.padding = kernel_size // 2
        weight = torch.empty(channels, channels // groups, kernel_size)
        nn.init.normal_(weight, mean=0.0, std=math.sqrt(4.0 / (kernel_size * channels)))
        self.weight_v = nn.Parameter(weight)
        self.weight_g = nn.Parameter(weight.norm(dim=(0, 1), keepdim=True))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T + 1 if the kernel is even else T)."""
        weight = self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))
        return nn.functional.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class ConvPositionEmbedding(nn.Module):
    """Relative position information from a wide grouped convolution over time, then GELU."""

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.conv = WeightNormConv1d(channels, kernel_size, groups)
        self.trim = 1 if kernel_size % 2 == 0 else 0  # an even kernel yields one extra step

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, T, D)
        """(B, T, D) -> (B, T, D) position information, added by the caller."""
        out = self.conv(x.transpose(1, 2))
        if self.trim:
            out = out[..., : -self.trim]
        return nn.functional.gelu(out).transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """(B, T, D) states, (B, T) bool mask of the keys to attend to -> (B, T, D)."""
        batch, time, dim = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, time, self.heads, dim // self.heads).transpose(1, 2)

        out = nn.functional.scaled_dot_product_attention(
            split(self.q_proj(x)),
            split(self.k_proj(x)),
            split(self.v_proj(x)),
            attn_mask=key_valid[:, None, None, :],
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out_proj(out.transpose(1, 2).reshape(batch, time, dim))


class TransformerLayer(nn.Module):
    """Self-attention and GELU feed-forward, each with a residual; LayerNorm before (pre-LN) or after (post-LN)."""

    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.layer_norm_first = cfg.layer_norm_first
        self.self_attn = SelfAttention(dim, cfg.encoder_attention_heads, cfg.attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, cfg.encoder_ffn_embed_dim)
        self.fc2 = nn.Linear(cfg.encoder_ffn_embed_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(cfg.dropout)
        self.activation_dropout = nn.Dropout(cfg.activation_dropout)

    def _attention(self, x: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.self_attn(x, key_valid))

    def _feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc2(self.activation_dropout(nn.functional.gelu(self.fc1(x)))))

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor) -> torch.Tensor:
        """(B, T, D) states, (B, T) bool mask of the valid keys -> (B, T, D)."""
        if self.layer_norm_first:
            x = x + self._attention(self.self_attn_layer_norm(x), key_valid)
            return x + self._feed_forward(self.final_layer_norm(x))
        x = self.self_attn_layer_norm(x + self._attention(x, key_valid))
        return self.final_layer_norm(x + self._feed_forward(x))


class TransformerEncoder(nn.Module):
    def __init__(self, cfg: AVHubertConfig) -> None:
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.layer_norm_first = cfg.layer_norm_first
        self.layerdrop = cfg.encoder_layerdrop
        self.pos_conv = ConvPositionEmbedding(dim, cfg.conv_pos, cfg.conv_pos_groups)
        self.layer_norm = nn.LayerNorm(dim)  # final norm if pre-LN, input norm if post-LN
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(TransformerLayer(cfg) for _ in range(cfg.encoder_layers))

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, T, D) frame features, (B, T) bool mask of the valid frames -> (B, T, D) hidden states."""
        x = x * valid[..., None]  # padded steps must not leak into the position convolution
        x = x + self.pos_conv(x)
        if not self.layer_norm_first:
            x = self.layer_norm(x)
        x = self.dropout(x)
        for layer in self.layers:
            if self.training and self.layerdrop > 0 and torch.rand([]) < self.layerdrop:
                continue
            x = layer(x, valid)
        if self.layer_norm_first:
            x = self.layer_norm(x)
        return x


# ---------------------------------------------------------------- the encoder


class AVHubertVideoEncoder(Encoder):
    """AV-HuBERT on video alone.

    forward(frames (B, T, H, W) float normalised mouth ROI, lengths (B,) frames) -> ((B, T, D), lengths).
    """

    frame_rate = 25

    def __init__(
        self,
        config: AVHubertConfig | str | dict | None = None,
        *,
        path: str | None = None,
        frozen: bool = True,
        strict: bool = True,
    ) -> None:
        """``config``: a preset name (``tiny``, ``base``, ``large``), a dict or an ``AVHubertConfig`` (random
        weights); or ``path``: a public fairseq checkpoint (pre-trained or fine-tuned, read without fairseq; the
        architecture comes from it, ``config`` may then be a dict of options that keep the weights' shapes,
        such as dropout; ``strict``: a weight missing from the checkpoint is an error)."""
        super().__init__()
        weights = None
        if path is not None:
            from mome.models.encoders.avhubert_checkpoint import read_avhubert

            if config is not None and not isinstance(config, dict):
                raise ValueError("AVHubertVideoEncoder(path=...): config may only be a dict of non-shape options")
            config, weights, outside = read_avhubert(path, config)
        elif config is None:
            raise ValueError(
                "AVHubertVideoEncoder needs exactly one of path= (a fairseq checkpoint) or config= (a preset or a dict)"
            )
        if isinstance(config, str):
            config = avhubert_config(config)
        elif isinstance(config, dict):
            config = AVHubertConfig.from_dict(config)
        self.config = config
        dim = config.encoder_embed_dim
        self.frontend = VideoResNet(config.resnet_width, config.resnet_relu_type)
        self.video_proj = nn.Linear(self.frontend.output_size, dim)
        fused = 2 * dim if config.modality_fuse == "concat" else dim
        self.fusion_norm = nn.LayerNorm(fused)
        self.fusion_proj = nn.Linear(fused, dim) if fused != dim else None
        self.dropout_input = nn.Dropout(config.dropout_input)
        self.encoder = TransformerEncoder(config)
        self.output_size = dim
        self.load_report: dict | None = None  # filled when the weights come from a checkpoint (path=)
        if weights is not None:
            from mome.models.encoders.avhubert_checkpoint import load_avhubert_weights

            load_avhubert_weights(self, weights, outside, str(path), strict)
        self.set_frozen(frozen)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, H, W) mouth-ROI frames (88x88 in AV-HuBERT's setting), (B,) lengths in frames ->
        ((B, T, encoder_embed_dim) features at 25 per second, (B,) lengths). Raises ValueError for another rank."""
        if x.dim() != 4:
            raise ValueError(f"video must be (batch, frames, height, width), got shape {tuple(x.shape)}")
        lengths = check_lengths(x, lengths)
        with self.grad_context():
            valid = valid_mask(lengths, x.shape[1])
            frames = x.to(self.video_proj.weight.dtype) * valid[:, :, None, None]
            video = self.video_proj(self.frontend(frames))
            audio = torch.zeros_like(video)  # no audio: AV-HuBERT's video-only input
            fused = torch.cat([audio, video], dim=-1) if self.fusion_proj is not None else audio + video
            features = self.fusion_norm(fused)
            if self.fusion_proj is not None:
                features = self.fusion_proj(features)
            features = self.encoder(self.dropout_input(features), valid)
        return features, lengths
