"""Helpers of the ESPnet tests: tiny data directories, a tiny training config, stand-in pretrained models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from mome.data.roi import write_roi

WORDS = "the cat sat on a mat with blue hat and red bag".split()

TINY_CONFIG = {
    "audio_encoder": "small",
    "audio_encoder_conf": {"dim": 32, "layers": 1, "heads": 2, "ffn_dim": 64},
    "video_encoder": "small",
    "video_encoder_conf": {"dim": 32, "layers": 1, "heads": 2, "ffn_dim": 64, "channels": [4, 8, 8, 16]},
    "llm": "tiny",
    "llm_conf": {"vocab_size": 300, "hidden_size": 32, "layers": 2, "heads": 4, "kv_heads": 2, "intermediate_size": 64},
    "llm_adapter": "mome",
    "llm_adapter_conf": {"experts": 4, "top_k": 2, "shared_experts": 1, "bottleneck": 8},
    "compressor": "matryoshka",
    "compressor_conf": {"audio_rates": [4, 16], "video_rates": [2, 5]},
    "preprocessor": "avsr",
    "optim": "adamw",
    "optim_conf": {"lr": 0.01, "betas": [0.9, 0.98], "weight_decay": 0.1},
    "batch_type": "unsorted",
    "batch_size": 2,
    "max_epoch": 1,
    "num_workers": 0,
    "grad_clip": 10,
    "keep_nbest_models": 1,
    "best_model_criterion": [["valid", "loss", "min"]],
    "use_matplotlib": False,
    "seed": 0,
}


def tiny_batch() -> dict[str, torch.Tensor]:
    """A collated batch of two utterances as ESPnet's collate gives it: token ids (-1 padded), 0.5 / 0.375 s of
    16 kHz audio, 12 / 9 frames of 88x88 mouth ROI."""
    return {
        "text": torch.tensor([[5, 6, 7], [8, 9, -1]]),
        "text_lengths": torch.tensor([3, 2]),
        "audio": torch.randn(2, 8000),
        "audio_lengths": torch.tensor([8000, 6000]),
        "video": torch.randn(2, 12, 88, 88),
        "video_lengths": torch.tensor([12, 9]),
    }


def make_data_dir(
    path: Path, n: int, seed: int = 0, roi_size: int = 96, nan_utts: tuple[int, ...] = (), prefix: str = "spk"
) -> Path:
    """A data directory of ``n`` short utterances: wav.scp (16 kHz), roi.scp (.npz, uint8), text, utt2dur.
    Utterances in ``nan_utts`` get a float wav full of NaN (a loss that cannot be finite)."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    tables = {"wav.scp": [], "roi.scp": [], "text": [], "utt2dur": []}
    for i in range(n):
        utt = f"{prefix}{i % 2}_{i:04d}"
        seconds = 0.4 + 0.08 * (i % 4)
        t = np.arange(round(seconds * 16000)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * (180 + 40 * i) * t) + 0.02 * rng.standard_normal(len(t))
        if i in nan_utts:
            sf.write(path / f"{utt}.wav", np.full(len(t), np.nan, np.float32), 16000, subtype="FLOAT")
        else:
            sf.write(path / f"{utt}.wav", wave, 16000, subtype="PCM_16")
        write_roi(path / f"{utt}.npz", rng.integers(0, 256, (round(seconds * 25), roi_size, roi_size), dtype=np.uint8))
        tables["wav.scp"].append(f"{utt} {path / (utt + '.wav')}")
        tables["roi.scp"].append(f"{utt} {path / (utt + '.npz')}")
        tables["text"].append(f"{utt} {' '.join(rng.choice(WORDS, 2 + i % 3))}")
        tables["utt2dur"].append(f"{utt} {seconds:.2f}")
    for name, lines in tables.items():
        (path / name).write_text("\n".join(sorted(lines)) + "\n")
    return path


def data_options(train: Path, valid: Path, modalities=("audio", "video")) -> list[str]:
    files = {"audio": ("wav.scp", "sound"), "video": ("roi.scp", "roi")}
    argv = []
    for mode, data in (("train", train), ("valid", valid)):
        for modality in modalities:
            name, kind = files[modality]
            argv += [f"--{mode}_data_path_and_name_and_type", f"{data / name},{modality},{kind}"]
        argv += [f"--{mode}_data_path_and_name_and_type", f"{data / 'text'},text,text"]
    return argv


def write_config(path: Path, tokenizer_dir: Path, texts: Path, **overrides) -> Path:
    config = {key: (dict(value) if isinstance(value, dict) else value) for key, value in TINY_CONFIG.items()}
    config["llm_conf"].update(tokenizer_dir=str(tokenizer_dir), texts=str(texts))
    for key, value in overrides.items():
        if value is None:
            config.pop(key, None)
        elif isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    path.write_text(yaml.safe_dump(config))
    return path


def tiny_whisper_config(max_source_positions: int = 1500):
    """A Whisper of width 32, one encoder and one decoder layer; ``max_source_positions``: its window in
    encoder frames (50 / s after the convolutions; 1500: Whisper's 30 s)."""
    from transformers import WhisperConfig

    return WhisperConfig(
        d_model=32,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        num_mel_bins=80,
        max_source_positions=max_source_positions,
        vocab_size=100,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )


def train_tiny_model(root: Path, test_clips: int) -> tuple[Path, Path]:
    """(exp dir, test data dir): the tiny config trained on 4 clips (validation 2) by ``avsr_train``, and a data
    directory of ``test_clips`` unseen clips (``tst`` speakers)."""
    from mome.bin import avsr_train

    train_dir, valid_dir = make_data_dir(root / "train", 4), make_data_dir(root / "valid", 2, seed=1)
    test_dir = make_data_dir(root / "test", test_clips, seed=2, prefix="tst")
    config = write_config(root / "train.yaml", root / "tokenizer", train_dir / "text")
    exp = root / "exp" / "mome"
    avsr_train.main(["--config", str(config), "--output_dir", str(exp), *data_options(train_dir, valid_dir)])
    return exp, test_dir


def make_pretrained(root: Path) -> Path:
    """Tiny stand-ins for $MOME_PRETRAINED: whisper-medium/, large_vox_iter5.pt, Llama-3.2-1B/."""
    import torch
    from transformers import WhisperModel

    from mome.models.encoders.avhubert import AVHubertVideoEncoder
    from mome.models.encoders.avhubert_checkpoint import fairseq_style_checkpoint
    from mome.models.tiny_llm import make_tiny_llm

    root.mkdir(parents=True, exist_ok=True)
    WhisperModel(tiny_whisper_config()).save_pretrained(root / "whisper-medium")
    torch.save(fairseq_style_checkpoint(AVHubertVideoEncoder("tiny")), root / "large_vox_iter5.pt")
    make_tiny_llm(
        ["the cat sat on the mat", "a dog ran home"],
        root / "Llama-3.2-1B",
        hidden_size=64,
        heads=4,
        kv_heads=2,
        layers=2,
    )
    return root
