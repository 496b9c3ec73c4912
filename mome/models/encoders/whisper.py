"""The Whisper encoder as an audio encoder: 16 kHz waveform -> 50 tokens per second.

It wraps ``transformers.WhisperEncoder`` (weights from a local Hugging Face directory, or built from a
``WhisperConfig``) and feeds it the real length of the audio. ``WhisperEncoder.forward`` refuses any
input other than exactly 2 x ``max_source_positions`` mel frames (30 s for the public models), so this
module runs the encoder's own sub-modules itself: the two convolutions, the first T/2 rows of the
sinusoidal position table, the layers and the final layer norm. The batch is padded to its longest item
(rounded to an even frame count), not to 30 s.

Padding: Whisper was trained on 30 s windows without an attention mask, attending to the silence after
the speech. With ``mask_padding=True`` (default) padded positions are masked out as attention keys, so
an item's features do not depend on how long the other items in its batch are (the valid part equals
running the item alone). With ``mask_padding=False`` the encoder attends to the padded silence as
Whisper did in training, and an item's features change slightly with the batch's longest item.
``pad_to_full=True`` restores Whisper's original 30 s input (slower; mask off for exact parity).
Outputs past ``feature_lengths`` are padding either way.

Audio longer than the window (30 s for the public models) is encoded in consecutive windows, each as
Whisper encodes one (as Whisper itself transcribes long audio), and the outputs are joined: a long clip
costs nothing but its own compute, never an error for its whole batch. (The log-mel floor is taken over
the whole clip, not per window.)
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from mome.models.encoders.base import Encoder, valid_mask
from mome.models.encoders.logmel import HOP_LENGTH, SAMPLE_RATE, WhisperLogMel

logger = logging.getLogger(__name__)

# Prefixes under which the encoder's weights sit in the layouts save_pretrained writes.
_PREFIXES = ("model.encoder.", "encoder.", "")  # ...ForConditionalGeneration, WhisperModel, WhisperEncoder


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a save_pretrained directory (safetensors, sharded or not, or pytorch_model.bin)."""
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = path / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(_read_weights_file(path / shard))
            return state
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (path / name).is_file():
            return _read_weights_file(path / name)
    raise FileNotFoundError(f"{path}: no model.safetensors or pytorch_model.bin (save_pretrained layout expected)")


def _read_weights_file(file: Path) -> dict[str, torch.Tensor]:
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    return torch.load(file, map_location="cpu", weights_only=True)


def encoder_state_dict(state: dict[str, torch.Tensor], source: str = "") -> dict[str, torch.Tensor]:
    """The encoder's tensors, keys relative to ``WhisperEncoder``, from any of the save_pretrained layouts."""
    for prefix in _PREFIXES:
        if f"{prefix}conv1.weight" in state:
            return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    raise KeyError(f"{source}: no Whisper encoder weights (looked for {[p + 'conv1.weight' for p in _PREFIXES]})")


def _random_encoder(config) -> nn.Module:
    """A randomly initialised ``WhisperEncoder`` from a ``WhisperConfig``, a dict of its fields or a JSON file of
    them."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if isinstance(config, (str, Path)):
        if not Path(config).is_file():
            raise FileNotFoundError(f"Whisper config {config}: no such JSON file")
        config = json.loads(Path(config).read_text())
    if isinstance(config, dict):
        config = WhisperConfig(**config)
    return WhisperEncoder(config)


def _load_encoder(path: Path) -> nn.Module:
    """The ``WhisperEncoder`` of a local save_pretrained directory, in float32."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if not path.is_dir():
        raise FileNotFoundError(f"Whisper model directory not found: {path}")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"Whisper directory {path}: no config.json (save_pretrained layout expected)")
    config = WhisperConfig.from_pretrained(str(path))
    state = encoder_state_dict(_read_state_dict(path), source=str(path))
    with torch.device("meta"):  # no random init of weights that are about to be replaced
        encoder = WhisperEncoder(config)
    encoder.load_state_dict(state, strict=True, assign=True)
    encoder.to(torch.float32)
    logger.info("Whisper encoder from %s: %d layers, d_model %d", path, config.encoder_layers, config.d_model)
    return encoder


class WhisperAudioEncoder(Encoder):
    """Whisper encoder on the real length of the audio.

    forward(waveform (B, S) float at 16 kHz, lengths (B,) samples) -> ((B, T', d_model), (B,)) with
    T' = ceil(frames / 2), frames = ceil(samples / 160); 50 tokens per second.
    """

    frame_rate = SAMPLE_RATE // HOP_LENGTH // 2  # 50

    def __init__(
        self,
        config: dict | str | None = None,
        *,
        path: str | None = None,
        frozen: bool = True,
        mask_padding: bool = True,
        pad_to_full: bool = False,
    ) -> None:
        """Exactly one of ``path`` (a local save_pretrained directory of a WhisperForConditionalGeneration,
        WhisperModel or WhisperEncoder: pretrained weights, only the encoder's read into memory) or ``config``
        (``WhisperConfig`` fields as a dict, a JSON file of them, or a ``WhisperConfig``: random weights)."""
        super().__init__()
        if (path is None) == (config is None):
            raise ValueError(
                "WhisperAudioEncoder needs exactly one of path= (a save_pretrained directory: pretrained weights) "
                "or config= (WhisperConfig fields: random weights)"
            )
        self.encoder = _load_encoder(Path(path)) if path is not None else _random_encoder(config)
        self.config = self.encoder.config
        self.log_mel = WhisperLogMel(self.config.num_mel_bins)
        self.output_size = self.config.d_model
        self.max_frames = 2 * self.config.max_source_positions
        self.mask_padding = mask_padding
        self.pad_to_full = pad_to_full
        self.set_frozen(frozen)

    @classmethod
    def from_pretrained(cls, path: str | Path, *, dtype: torch.dtype | None = None, **kwargs) -> "WhisperAudioEncoder":
        """``WhisperAudioEncoder(path=path, **kwargs)``, its weights cast to ``dtype`` when given."""
        encoder = cls(path=path, **kwargs)
        return encoder if dtype is None else encoder.to(dtype)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) 16 kHz waveform, (B,) lengths in samples -> ((B, T', d_model) features at 50 per second, (B,)
        lengths in features). Audio longer than the 30 s window is encoded window by window and joined."""
        with self.grad_context():
            window = self.max_frames
            min_frames = window if self.pad_to_full else 0
            # Two frames of silence past the padded length: the convolutions at the last positions then see
            # silence, as after speech in Whisper's 30 s windows, rather than their own zero padding; so no
            # position's value depends on how far the batch is padded.
            extra = 0 if self.pad_to_full else 2
            mel, frames = self.log_mel(
                x, lengths, pad_to_multiple=window if self.pad_to_full else 2, min_frames=min_frames, extra_frames=extra
            )
            feature_lengths = (frames + 1) // 2
            total = mel.shape[-1] - extra
            if total <= window:
                return self._encode(mel, feature_lengths, total // 2), feature_lengths
            return self._encode_windows(mel, frames, total, extra), feature_lengths

    def _encode_windows(self, mel: torch.Tensor, frames: torch.Tensor, total: int, extra: int) -> torch.Tensor:
        """Audio longer than the encoder's window (2 x max_source_positions frames: 30 s): consecutive windows,
        each encoded on its own as Whisper encodes its 30 s windows (positions restart, no attention across),
        outputs joined in time, so the tokens stay at 50 per second. The window is even, so joined outputs
        line up with ``feature_lengths``. Only the items that reach into a window are encoded in it."""
        window = self.max_frames
        long = [i for i, n in enumerate(frames.tolist()) if n > window]
        logger.info(
            "audio of %s s is longer than the Whisper window of %.2f s: encoded in %d windows",
            ", ".join(f"{frames[i] / 100:.2f}" for i in long),
            window / 100,
            -(-total // window),
        )
        pieces = []
        for start in range(0, total, window):
            stop = min(start + window, total)
            tokens = (stop - start) // 2
            in_window = (frames - start).clamp(0, stop - start)
            rows = torch.nonzero(in_window > 0).flatten()
            end = stop + extra if stop == total else stop  # the last window keeps the silence after it
            hidden = self._encode(mel[rows, :, start:end], (in_window[rows] + 1) // 2, tokens)
            piece = hidden.new_zeros(len(frames), tokens, hidden.shape[-1])
            piece[rows] = hidden
            pieces.append(piece)
        return torch.cat(pieces, dim=1)

    def _encode(self, mel: torch.Tensor, feature_lengths: torch.Tensor, num_tokens: int) -> torch.Tensor:
        enc = self.encoder
        mel = mel.to(enc.conv1.weight.dtype)
        hidden = nn.functional.gelu(enc.conv1(mel))
        hidden = nn.functional.gelu(enc.conv2(hidden)).transpose(1, 2)[:, :num_tokens]
        hidden = hidden + enc.embed_positions.weight[: hidden.shape[1]]
        hidden = nn.functional.dropout(hidden, p=enc.dropout, training=self.training)

        mask = None
        if self.mask_padding:
            keep = valid_mask(feature_lengths, hidden.shape[1])[:, None, None, :]
            mask = torch.zeros(keep.shape, dtype=hidden.dtype, device=hidden.device)
            mask = mask.masked_fill(~keep, torch.finfo(hidden.dtype).min)
        for layer in enc.layers:
            if self.training and enc.layerdrop > 0 and torch.rand([]) < enc.layerdrop:
                continue
            hidden = layer(hidden, mask)
        return enc.layer_norm(hidden)
