"""Whisper's log-mel spectrogram, batched and in torch.

The numbers equal ``transformers.WhisperFeatureExtractor`` (default 30 s zero padding) on the frames that
an utterance covers: 25 ms Hann windows every 10 ms (n_fft 400, hop 160 at 16 kHz), power spectrum, the
extractor's own Slaney mel filter bank, log10 floored at 1e-10, clamped to (utterance max - 8), then
(x + 4) / 4. The batch is padded only to its longest item: each item is zeroed past its length and the
STFT gets enough trailing zeros that no frame touching speech sees the reflect padding, so an item's
features do not depend on the rest of the batch. Padded frames hold the value of silence, as in the
extractor.
"""

from __future__ import annotations

import torch
from torch import nn

from mome.models.encoders.base import check_lengths, valid_mask

SAMPLE_RATE = 16000
HOP_LENGTH = 160  # 10 ms: 100 frames per second
N_FFT = 400  # 25 ms


def num_frames(num_samples: torch.Tensor) -> torch.Tensor:
    """Frames whose window centre lies inside the audio: ceil(samples / 160) (the extractor's mask)."""
    return (num_samples + HOP_LENGTH - 1) // HOP_LENGTH


class WhisperLogMel(nn.Module):
    """(B, S) waveform at 16 kHz, lengths in samples -> ((B, n_mels, T) features, (B,) frame counts).

    T is the longest item's frame count (at least ``min_frames``) rounded up to ``pad_to_multiple``, plus
    ``extra_frames`` more frames of silence. Computed in float32 whatever the module's dtype.
    """

    def __init__(self, n_mels: int = 80) -> None:
        super().__init__()
        from transformers import WhisperFeatureExtractor

        # The extractor is used only for its filter bank, so the filters match it exactly.
        filters = WhisperFeatureExtractor(feature_size=n_mels).mel_filters  # (n_freq, n_mels)
        self.n_mels = n_mels
        # A plain attribute, not a buffer: module.to(bfloat16) must not round the filters.
        self._mel_filters = torch.from_numpy(filters.T.copy()).float()

    def forward(
        self,
        waveform: torch.Tensor,
        lengths: torch.Tensor,
        pad_to_multiple: int = 1,
        min_frames: int = 0,
        extra_frames: int = 0,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) 16 kHz waveform, (B,) lengths in samples -> ((B, n_mels, F) log-mel frames at 100 per second,
        Whisper's normalisation, (B,) lengths in frames). F is the longest length rounded up to
        ``pad_to_multiple``, at least ``min_frames``, plus ``extra_frames`` of silence. Raises ValueError for
        another rank."""
        if waveform.dim() != 2:
            raise ValueError(f"waveform must be (batch, samples), got shape {tuple(waveform.shape)}")
        lengths = check_lengths(waveform, lengths)
        frames = num_frames(lengths)
        max_frames = max(int(frames.max()), min_frames)
        max_frames = -(-max_frames // pad_to_multiple) * pad_to_multiple

        # Frames up to index max_frames + 1 can touch speech; a further N_FFT zeros keep the STFT's
        # right-hand reflect padding inside silence.
        total = (max_frames + extra_frames) * HOP_LENGTH + N_FFT
        audio = waveform.float()[:, :total] * valid_mask(lengths, min(waveform.shape[1], total))
        audio = nn.functional.pad(audio, (0, total - audio.shape[1]))

        window = torch.hann_window(N_FFT, device=audio.device)
        stft = torch.stft(audio, N_FFT, HOP_LENGTH, window=window, return_complex=True)
        power = stft[..., :-1].abs() ** 2  # the extractor drops the last frame
        mel = self._mel_filters.to(audio.device) @ power
        log_mel = torch.clamp(mel, min=1e-10).log10()
        utterance_max = log_mel.amax(dim=(1, 2), keepdim=True)
        log_mel = torch.maximum(log_mel, utterance_max - 8.0)
        log_mel = (log_mel + 4.0) / 4.0
        return log_mel[..., : max_frames + extra_frames], frames
