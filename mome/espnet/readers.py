"""Mouth-ROI videos as an ESPnet data type.

ESPnet's datasets look a data type up by name in ``espnet2.train.dataset.DATA_TYPES``; that table has no
plugin hook, so :func:`register_data_types` adds ours when our task module is imported:

    --train_data_path_and_name_and_type data/train/roi.scp,video,roi

``roi.scp`` lines are ``<utt> <path>`` with a file :func:`mome.data.roi.read_roi` reads (FFV1 ``.mkv``,
``.npz``, ``.npy``); each item is a uint8 ``(T, H, W)`` array. The task's preprocessor turns it into the
normalised float crop the video encoder takes (ESPnet's dataset refuses uint8 past preprocessing).
Audio needs nothing of ours: ESPnet's ``sound`` type reads ``wav.scp``.
"""

from __future__ import annotations

import collections.abc
from pathlib import Path

import numpy as np

from mome.data.roi import read_roi

ROI_TYPE = "roi"
SAMPLE_RATE = 16000
DATA_FILES = {
    "audio": ("wav.scp", "sound"),
    "video": ("roi.scp", ROI_TYPE),
}  # per modality: file in a data dir, data type


def check_sample_rate(wav_scp: str | Path, expected: int = SAMPLE_RATE) -> None:
    """ESPnet's ``sound`` type drops the sampling rate: check the first file of a wav.scp before training
    or decoding on it (stage 2 writes 16 kHz throughout)."""
    import soundfile

    with open(wav_scp, encoding="utf-8") as f:
        first = next((line.split(maxsplit=1) for line in f if line.strip()), None)
    if first is None or len(first) < 2:
        raise ValueError(f"{wav_scp}: no '<utt> <wav path>' line")
    rate = soundfile.info(first[1].strip()).samplerate
    if rate != expected:
        raise ValueError(
            f"{wav_scp}: {first[1].strip()} is sampled at {rate} Hz; the encoders take {expected} Hz audio"
        )


class RoiScpReader(collections.abc.Mapping):
    """``roi.scp`` as a read-only mapping ``utt -> uint8 (T, H, W)``; files are read on access."""

    def __init__(self, path: str | Path, keys_to_load=None):
        from espnet2.fileio.read_text import read_2columns_text

        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"ROI list {self.path} does not exist")
        self.paths = read_2columns_text(self.path, keys_to_load)

    def __getitem__(self, key: str) -> np.ndarray:
        return read_roi(self.paths[key])

    def __iter__(self):
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __contains__(self, key) -> bool:
        return key in self.paths


def register_data_types() -> None:
    """Add the ``roi`` type to ESPnet's dataset types (idempotent)."""
    from espnet2.train.dataset import DATA_TYPES

    if ROI_TYPE in DATA_TYPES:
        return
    # DATA_TYPES is matched with re.match(name, type) in insertion order: no earlier name may match "roi"
    DATA_TYPES[ROI_TYPE] = dict(
        func=RoiScpReader,
        kwargs=["keys_to_load"],
        help="Mouth-ROI videos (uint8 frames, read by mome.data.roi.read_roi: .mkv FFV1, .npz, .npy)."
        "\n\n"
        "   utterance_id_a /some/where/a.mkv\n"
        "   utterance_id_b /some/where/b.mkv\n"
        "   ...",
    )


def media_dataset(data_dir: str | Path, modalities, preprocess, text: bool = False):
    """An ESPnet dataset over a data dir's ``wav.scp`` / ``roi.scp`` for the given modalities (decoding and
    feature dumping read media the same way), and its ``text`` when asked; a missing file is named."""
    from espnet2.train.dataset import ESPnetDataset

    entries = [(str(Path(data_dir) / "text"), "text", "text")] if text else []
    if text and not Path(entries[0][0]).is_file():
        raise FileNotFoundError(f"{entries[0][0]} does not exist")
    for modality in modalities:
        name, kind = DATA_FILES[modality]
        path = Path(data_dir) / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist: the {modality} encoder needs it")
        if kind == "sound":
            check_sample_rate(path)
        entries.append((str(path), modality, kind))
    return ESPnetDataset(entries, preprocess=preprocess)


def length_sorted_batches(keys, data_dir: str | Path, batch_size: int) -> list[list[str]]:
    """Batches of utterances sorted longest first by ``utt2dur`` (when present): similar lengths in a
    batch, little padding to compute."""
    keys = list(keys)
    utt2dur = Path(data_dir) / "utt2dur"
    if utt2dur.is_file():
        with open(utt2dur, encoding="utf-8") as f:
            seconds = {u: float(d) for u, d in (line.split()[:2] for line in f if line.strip())}
        keys.sort(key=lambda k: -seconds.get(k, 0.0))
    return [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]
