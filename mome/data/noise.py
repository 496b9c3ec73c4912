"""Babble noise at a chosen signal-to-noise ratio, and the noisy copies of a data directory.

SNR = 10 log10(P_speech / P_noise), both powers taken as the mean square over the utterance. The
noise segment is picked from the noise file at an offset drawn from a generator seeded by the
utterance id, so every run (and every SNR of one utterance) uses the same segment; a noise file
shorter than the utterance is looped. If the mixture would clip, speech and noise are scaled down
together, which keeps the SNR.

A noisy copy of ``data/<set>`` is ``data/<set>_babble_snr<N>``: the same files (roi.scp and all)
except wav.scp, which points at ``<dump>/<set>_babble_snr<N>/wav/<utt>.wav``; utterances with silent
(all-zero) audio have no SNR and are left out, logged in its ``skipped.txt``.
"""

from __future__ import annotations

import logging
import shutil
import zlib
from pathlib import Path

import numpy as np

from mome.data.kaldi import append_skipped, filter_data_dir, read_table, rewrite_data_dir, write_table
from mome.data.media import MediaError, read_wav, write_wav
from mome.progress import progress

log = logging.getLogger(__name__)

DEFAULT_SNRS = (-5, 0, 5, 10, 15, 20)
PEAK = 32767 / 32768  # the largest value an int16 wav holds


def power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    return 10 * np.log10(power(speech) / power(noise))


def noise_segment(noise: np.ndarray, length: int, key: str) -> np.ndarray:
    """``length`` samples of ``noise`` from an offset seeded by ``key`` (looped when short)."""
    if len(noise) == 0:
        raise ValueError("noise signal is empty")
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    span = len(noise) - length + 1 if len(noise) >= length else len(noise)
    offset = int(rng.integers(span))
    return noise[(offset + np.arange(length)) % len(noise)]


def scale_to_snr(speech: np.ndarray, noise: np.ndarray, snr: float, peak: float = PEAK):
    """Speech and noise components (float64) whose sum has the given SNR and stays within ``peak``."""
    speech = np.asarray(speech, dtype=np.float64)
    noise = np.asarray(noise, dtype=np.float64)
    p_speech, p_noise = power(speech), power(noise)
    if p_speech == 0 or p_noise == 0:
        raise ValueError(f"cannot set an SNR with silent {'speech' if p_speech == 0 else 'noise'}")
    noise = noise * np.sqrt(p_speech / (p_noise * 10 ** (snr / 10)))
    top = np.max(np.abs(speech + noise))
    if top > peak:
        speech, noise = speech * (peak / top), noise * (peak / top)
    return speech, noise


def mix(speech: np.ndarray, noise: np.ndarray, snr: float, key: str) -> np.ndarray:
    """``speech`` with a segment of ``noise`` (picked by ``key``) added at ``snr`` dB, float32."""
    clean, added = scale_to_snr(speech, noise_segment(noise, len(speech), key), snr)
    return (clean + added).astype(np.float32)


# --------------------------------------------------------------------------------------------------
# Noisy copies of a data directory
# --------------------------------------------------------------------------------------------------
def noisy_set_name(set_name: str, snr: float) -> str:
    return f"{set_name}_babble_snr{snr:g}"


def make_noisy_copies(
    data_dir: str | Path,
    noise_path: str | Path,
    dump_root: str | Path,
    snrs=DEFAULT_SNRS,
    sample_rate: int = 16000,
) -> list[Path]:
    """Write ``data/<set>_babble_snr<N>`` for every SNR; wavs already written are kept (resume).

    An utterance whose audio is silent (all samples zero: no SNR can be set) or unreadable gets no noisy
    copy: it is left out of the noisy sets and logged to their ``skipped.txt`` (``silent-audio: ...``,
    ``unreadable-audio: ...``); every other utterance gets its copies. Each noisy directory appears whole
    (built beside its place and swapped in). A silent or unreadable noise file is an error (ValueError /
    MediaError naming it) before anything is written."""
    data_dir, dump_root = Path(data_dir), Path(dump_root)
    wav_scp = data_dir / "wav.scp"
    if not wav_scp.is_file():
        raise FileNotFoundError(f"{wav_scp} missing: run the extraction (stage 2) on {data_dir} first")
    if not Path(noise_path).is_file():
        raise FileNotFoundError(f"{noise_path}: noise file missing")
    noise = read_wav(noise_path, sample_rate)
    if len(noise) == 0 or power(noise) == 0:
        raise ValueError(f"{noise_path}: the noise recording is silent (all samples zero): no SNR can be set with it")
    utts = list(read_table(wav_scp).items())
    set_name = data_dir.name
    out_dirs, done, kept = [], 0, 0
    bad: dict[str, str] = {}  # utt -> reason, found once for all SNRs
    for snr in snrs:
        name = noisy_set_name(set_name, snr)
        out_dir, wav_dir = data_dir.parent / name, dump_root / name / "wav"
        wavs = {}
        for utt, path in progress(utts, desc=name, unit="utt"):
            target = (wav_dir / f"{utt}.wav").resolve()
            if utt not in bad and not target.is_file():
                try:
                    speech = read_wav(path, sample_rate)
                except MediaError as e:
                    bad[utt] = f"unreadable-audio: {e}"
                    continue
                if power(speech) == 0:
                    bad[utt] = f"silent-audio: {path}: all samples are zero, no SNR can be set"
                    continue
                write_wav(target, mix(speech, noise, snr, utt), sample_rate)
                done += 1
            elif utt not in bad:
                kept += 1
            if utt not in bad:
                wavs[utt] = target
        skipped = [(utt, reason) for utt, reason in bad.items()]
        for utt, reason in skipped:
            log.warning("%s: %s: no noisy copy (%s)", name, utt, reason)
        if not wavs:
            log.warning("%s: no utterance of %s could be mixed with noise: no %s written", name, data_dir, out_dir)
            continue
        with rewrite_data_dir(out_dir, keep_files=False) as new:
            copy_data_dir(data_dir, new, skip={"wav.scp"})
            write_table(new / "wav.scp", wavs)
            if skipped:
                filter_data_dir(new, wavs)
                append_skipped(new, sorted(skipped))
        out_dirs.append(out_dir)
    log.info(
        "noisy copies of %s at SNR %s: %d wavs written, %d kept from an earlier run, %d of %d utterances "
        "without copies",
        data_dir,
        list(snrs),
        done,
        kept,
        len(bad),
        len(utts),
    )
    return out_dirs


def copy_data_dir(src: Path, dst: Path, skip=frozenset()) -> None:
    """Copy the plain files of a Kaldi data directory (not sub-directories)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.is_file() and f.name not in skip:
            shutil.copyfile(f, dst / f.name)
