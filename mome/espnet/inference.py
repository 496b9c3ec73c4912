"""Elastic decoding of data directories (stage 5): one trained model, any of its trained (audio rate, video
rate) pairs, through :class:`mome.inference.AVSR2Text`.

The data come through ESPnet's dataset with the task's evaluation preprocessing (centre crop, no
augmentation), batched; each batch is encoded once and decoded at every pair (batched beam search with
Hugging Face ``generate``: greedy for beam 1, KV cache, never sampling). The hypotheses go to a Kaldi
``text``, their confidences (:func:`mome.cascade.confidence`) to ``confidence`` beside it. An utterance that
cannot be read or decoded is recorded in ``skipped.txt`` beside ``text`` and costs no other utterance its
output (scoring counts it as an empty hypothesis). Audio longer than the Whisper window is encoded window by
window (:class:`mome.models.encoders.whisper.WhisperAudioEncoder`).

Rates are written ``A,V``; 0 stands for an absent modality (``4,0``: an audio-only model at rate 4).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from mome import atomic
from mome.espnet.model import pair_name
from mome.espnet.readers import length_sorted_batches, media_dataset
from mome.inference import AVSR2Text, clean_hypothesis, format_pair, parse_rates  # noqa: F401 - re-exported
from mome.progress import progress

log = logging.getLogger(__name__)


def decode_dir_name(data_dir: str | Path, pair) -> str:
    """``decode_<test set>_ra<a>_rv<v>``, the layout scoring reads."""
    return f"decode_{Path(data_dir).name}_{pair_name(pair)}"


class Hypotheses(dict):
    """``{pair: {utt: text}}`` of a data directory; ``results``: ``{pair: {utt: Transcription}}`` (token
    log-probabilities, confidence, cost); ``skipped``: ``[(utt, reason)]`` of the utterances that could not be
    read or decoded (they have no hypothesis at any pair)."""

    def __init__(self, pairs):
        super().__init__({p: {} for p in pairs})
        self.results = {p: {} for p in pairs}
        self.skipped: list[tuple[str, str]] = []


class _Guarded(torch.utils.data.Dataset):
    """A dataset whose unreadable items come back as ``(utt, reason)`` instead of stopping the loader."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        try:
            return self.dataset[key]
        except Exception as e:  # noqa: BLE001 - any unreadable item is recorded, not fatal
            return key, f"unreadable-input: {type(e).__name__}: {e}"


def _collate(items):
    """(utts, batch or None, [(utt, reason)] of unreadable items)."""
    from espnet2.train.collate_fn import CommonCollateFn

    good = [item for item in items if isinstance(item[1], dict)]
    bad = [item for item in items if not isinstance(item[1], dict)]
    utts, batch = CommonCollateFn()(good) if good else ([], None)
    return list(utts), batch, bad


def decode_data_dir(
    avsr: AVSR2Text,
    data_dir: str | Path,
    pairs,
    batch_size: int = 8,
    num_workers: int = 0,
) -> Hypotheses:
    """Hypotheses ``{pair: {utt: text}}`` for every utterance of ``data_dir`` at each rate pair (each batch is
    read and encoded once, then decoded at every pair: :meth:`AVSR2Text.decode_batch`).

    One utterance never costs the others their output: an unreadable item is recorded in ``.skipped`` and
    left out of its batch; a batch that fails to decode is decoded again one utterance at a time, and an
    utterance that still fails is recorded (``decode-failed: <error>``). Raises RuntimeError when no
    utterance at all could be decoded (then the fault is not one utterance's)."""
    from torch.utils.data import DataLoader

    data_dir = Path(data_dir)
    pairs = [avsr.check_rates(p) for p in pairs]
    dataset = _Guarded(media_dataset(data_dir, avsr.modalities, avsr.preprocess))
    batches = length_sorted_batches(dataset.dataset, data_dir, batch_size)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=_collate, num_workers=num_workers)
    hyps = Hypotheses(pairs)

    def decode(utts, batch) -> None:
        results = avsr.decode_batch(batch, pairs)
        for pair in pairs:
            hyps.results[pair].update(zip(utts, results[pair]))
            hyps[pair].update((u, r.text) for u, r in zip(utts, results[pair]))

    with torch.no_grad():
        for utts, batch, bad in progress(loader, total=len(batches), desc=f"decoding {data_dir.name}", unit="batch"):
            hyps.skipped += bad
            if not utts:
                continue
            try:
                decode(utts, batch)
            except Exception as e:  # noqa: BLE001 - find the utterance at fault, decode the others
                log.warning(
                    "%s: a batch of %d failed to decode (%s: %s); decoding its utterances one by one",
                    data_dir,
                    len(utts),
                    type(e).__name__,
                    e,
                )
                for utt in utts:
                    one, single, unread = _collate([dataset[utt]])
                    hyps.skipped += unread
                    try:
                        if one:
                            decode(one, single)
                    except Exception as e:  # noqa: BLE001
                        log.exception("%s: %s cannot be decoded", data_dir, utt)
                        hyps.skipped.append((utt, f"decode-failed: {type(e).__name__}: {e}"))
    for utt, reason in hyps.skipped:
        log.warning("%s: %s skipped: %s", data_dir, utt, reason)
    if hyps.skipped and not any(hyps.values()):
        raise RuntimeError(
            f"{data_dir}: none of its {len(hyps.skipped)} utterances could be decoded, e.g. "
            f"{hyps.skipped[0][0]}: {hyps.skipped[0][1]}"
        )
    return hyps


def write_text(path: str | Path, hyps: dict[str, str], skipped=()) -> Path:
    """Kaldi ``text`` (``<utt> <words>``, sorted by utterance id; an empty hypothesis is the bare id), each
    hypothesis through :func:`clean_hypothesis` (a half-trained model can emit stray byte tokens), written
    whole or not at all; ``skipped`` (``[(utt, reason)]``) goes to ``skipped.txt`` beside it (removed when
    there is none, so a rerun leaves no stale one)."""
    path = Path(path)
    lines = []
    for utt in sorted(hyps):
        words = clean_hypothesis(hyps[utt])
        lines.append(f"{utt} {words}\n" if words else f"{utt}\n")
    atomic.remove_leftovers(path.parent, path.name)  # temporary files of a killed run (one writer per folder)
    log_path = path.with_name("skipped.txt")
    if skipped:
        atomic.write_text(log_path, "".join(f"{utt} {' '.join(reason.split())}\n" for utt, reason in sorted(skipped)))
    else:
        log_path.unlink(missing_ok=True)
    atomic.write_text(path, "".join(lines))
    return path


def write_confidence(path: str | Path, results: dict) -> Path:
    """Kaldi-style ``<utt> <confidence> <llm input tokens>`` per decoded utterance (sorted), whole or not at all."""
    lines = [f"{u} {r.confidence:.6f} {r.llm_input_tokens}\n" for u, r in sorted(results.items())]
    return atomic.write_text(Path(path), "".join(lines))
