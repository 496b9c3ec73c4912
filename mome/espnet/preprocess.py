"""Per-utterance preprocessing in ESPnet's data loader: tokenisation and augmentation.

ESPnet calls ``preprocessor(utt_id, {"audio": ..., "video": ..., "text": ...})`` on every item before
batching. Ours:

- text: lower-cased transcript -> the LLM tokenizer's ids (:func:`mome.models.llm.tokenize_transcript`, as
  the model tokenises: a leading space, no bos / eos), int64;
- video: uint8 ``(T, 96, 96)`` mouth ROI -> float in [0, 1] -> random 88x88 crop (training; the centre crop
  otherwise) -> time masking (training) -> normalised with mean 0.421, std 0.165;
- audio: float waveform at 16 kHz -> (``speed_perturb``) resampled by a factor drawn from that range, as Kaldi's
  speed perturbation, so that voices sound lower or higher and slower or faster -> time masking, then babble
  noise at an SNR drawn uniformly from {-5, 0, 5, 10, 15, 20 dB, clean} (training only; no noise file, no noise);
- labels (frame labels of encoder pretraining, one per output frame): stretched with a speed-perturbed waveform.

Time masking (auto_avsr style): for every ``mask_stride`` seconds of signal one span of up to
``mask_window`` seconds is blanked (audio: zeros; video: the clip's mean frame). Randomness comes from
NumPy's global generator, which ESPnet seeds per epoch and per data-loader worker, so a resumed run draws
the same augmentations.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mome.data.noise import scale_to_snr
from mome.models.llm import tokenize_transcript

AUDIO, VIDEO, TEXT, LABELS = "audio", "video", "text", "labels"
AUDIO_FEATS, VIDEO_FEATS = "audio_feats", "video_feats"  # precomputed encoder outputs: passed through as they are
DEFAULT_SNRS = (-5, 0, 5, 10, 15, 20, "clean")


def crop(frames: np.ndarray, size: int, rng: np.random.RandomState | None) -> np.ndarray:
    """``size`` x ``size`` window of ``(T, H, W)`` frames: at a random place (``rng``) or the centre (None)."""
    height, width = frames.shape[1:3]
    if height < size or width < size:
        raise ValueError(f"ROI frames of {height}x{width} are smaller than the {size}x{size} crop")
    if rng is None:
        top, left = (height - size) // 2, (width - size) // 2
    else:
        top, left = rng.randint(0, height - size + 1), rng.randint(0, width - size + 1)
    return frames[:, top : top + size, left : left + size]


def time_mask(x: np.ndarray, window: int, stride: int, rng: np.random.RandomState, fill) -> np.ndarray:
    """Blank one span of ``0 .. window - 1`` steps per ``stride`` steps of ``x`` (axis 0), at random places."""
    length = len(x)
    if window <= 0 or stride <= 0 or length == 0:
        return x
    x = x.copy()
    for _ in range(max(1, round(length / stride))):
        width = min(rng.randint(0, window), length)
        if width == 0:
            continue
        start = rng.randint(0, length - width + 1)
        x[start : start + width] = fill
    return x


def speed(wave: np.ndarray, factor: float) -> np.ndarray:
    """The waveform played ``factor`` times faster (length / factor samples; pitch up by the same factor)."""
    from scipy.signal import resample_poly

    up = 100
    down = max(1, round(up * factor))
    return resample_poly(wave, up, down).astype(np.float32) if down != up else wave


def stretch(labels: np.ndarray, factor: float) -> np.ndarray:
    """Frame labels of a waveform played ``factor`` times faster: each new frame takes the label at its time."""
    n = max(1, round(len(labels) / factor))
    return labels[np.minimum((np.arange(n) * factor).astype(int), len(labels) - 1)]


def parse_snrs(snrs: Sequence) -> list[float | None]:
    """SNR choices in dB; "clean" (or null) means no noise."""
    parsed = []
    for snr in snrs:
        if snr is None or (isinstance(snr, str) and snr.lower() == "clean"):
            parsed.append(None)
        else:
            try:
                parsed.append(float(snr))
            except (TypeError, ValueError):
                raise ValueError(f"preprocessor_conf snrs: {snr!r} is neither a number (dB) nor 'clean'") from None
    if not parsed:
        raise ValueError("preprocessor_conf snrs: give at least one SNR (or 'clean')")
    return parsed


class AVSRPreprocessor:
    """The ESPnet preprocessor of the AVSR task (``preprocessor: avsr`` in a config)."""

    def __init__(
        self,
        train: bool,
        tokenizer,  # the LLM's tokenizer, given by the task (no default: not a config option)
        noise: str | None = None,
        snrs: Sequence = DEFAULT_SNRS,
        mask_window: float = 0.4,
        mask_stride: float = 1.0,
        crop_size: int = 88,
        mean: float = 0.421,
        std: float = 0.165,
        sample_rate: int = 16000,
        fps: float = 25.0,
        speed_perturb: Sequence[float] | None = None,
    ):
        self.train = train
        self.tokenizer = tokenizer
        self.noise_path = Path(noise) if noise else None
        if self.noise_path is not None and not self.noise_path.is_file():
            raise FileNotFoundError(f"preprocessor_conf noise: babble noise file {self.noise_path} does not exist")
        self.snrs = parse_snrs(snrs)
        self.audio_mask = (round(mask_window * sample_rate), round(mask_stride * sample_rate))
        self.video_mask = (round(mask_window * fps), round(mask_stride * fps))
        self.crop_size = crop_size
        self.mean, self.std = mean, std
        self.sample_rate = sample_rate
        if speed_perturb is not None and (len(speed_perturb) != 2 or not 0 < speed_perturb[0] <= speed_perturb[1]):
            raise ValueError(
                f"preprocessor_conf speed_perturb: give [lowest, highest] factor (e.g. [0.9, 1.1]), got {speed_perturb}"
            )
        self.speed_perturb = None if speed_perturb is None else tuple(float(f) for f in speed_perturb)
        self._noise: np.ndarray | None = None  # read on first use (in the data-loader worker)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(train={self.train}, noise={self.noise_path}, snrs={self.snrs}, "
            f"audio_mask={self.audio_mask}, video_mask={self.video_mask}, crop={self.crop_size}, "
            f"speed_perturb={self.speed_perturb})"
        )

    @property
    def noise(self) -> np.ndarray:
        if self._noise is None:
            from mome.data.media import read_wav

            self._noise = read_wav(self.noise_path, self.sample_rate)
        return self._noise

    def __call__(self, uid: str, data: dict) -> dict:
        data = dict(data)
        if TEXT in data:
            data[TEXT] = self.text(data[TEXT])
        if VIDEO in data:
            data[VIDEO] = self.video(data[VIDEO], uid)
        if AUDIO in data:
            if self.train and self.speed_perturb is not None:
                factor = float(np.random.uniform(*self.speed_perturb))
                data[AUDIO] = speed(np.asarray(data[AUDIO], dtype=np.float32), factor)
                if LABELS in data:
                    data[LABELS] = stretch(np.asarray(data[LABELS]), factor)
            data[AUDIO] = self.audio(data[AUDIO])
        return data

    def text(self, text) -> np.ndarray:
        if not isinstance(text, str):
            return np.asarray(text, dtype=np.int64)  # already token ids
        if self.tokenizer is None:
            raise ValueError("the preprocessor has no tokenizer to turn transcripts into LLM token ids")
        return np.asarray(tokenize_transcript(self.tokenizer, text), dtype=np.int64)

    def video(self, frames: np.ndarray, uid: str = "") -> np.ndarray:
        frames = np.asarray(frames)
        if frames.ndim != 3:
            raise ValueError(f"{uid}: ROI video must be (frames, height, width), got shape {frames.shape}")
        rng = np.random if self.train else None
        x = crop(frames, self.crop_size, rng).astype(np.float32)
        if frames.dtype == np.uint8:
            x /= 255.0
        if self.train:
            x = time_mask(x, *self.video_mask, np.random, x.mean(axis=0))
        return (x - self.mean) / self.std

    def audio(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"audio must be mono (samples,), got shape {wave.shape}")
        if not self.train:
            return wave
        wave = time_mask(wave, *self.audio_mask, np.random, 0.0)
        if self.noise_path is None:
            return wave
        snr = self.snrs[np.random.randint(len(self.snrs))]
        if snr is None or not np.any(wave):
            return wave
        noise = self.noise
        offset = np.random.randint(max(1, len(noise) - len(wave) + 1))
        segment = noise[(offset + np.arange(len(wave))) % len(noise)]
        try:
            speech, added = scale_to_snr(wave, segment, snr)
        except ValueError:  # a silent stretch of the noise file: leave this item clean
            return wave
        return (speech + added).astype(np.float32)
