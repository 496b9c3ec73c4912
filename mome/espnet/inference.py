"""Elastic decoding: one trained model, any of its trained (audio rate, video rate) pairs.

ESPnet's own ``asr_inference`` builds its ASR task; this module builds ours: the model from an experiment
directory's ``config.yaml`` and a checkpoint, the data through ESPnet's dataset with the task's evaluation
preprocessing (centre crop, no augmentation), batched beam search with Hugging Face ``generate`` (greedy
for beam 1, KV cache, never sampling), and a Kaldi ``text`` of hypotheses. An utterance that cannot be
read or decoded is recorded in ``skipped.txt`` beside ``text`` and costs no other utterance its output
(scoring counts it as an empty hypothesis). Audio longer than the Whisper window is encoded window by
window (:class:`mome.models.encoders.whisper.WhisperAudioEncoder`).

Rates are written ``A,V``; 0 stands for an absent modality (``4,0``: an audio-only model at rate 4).
"""
from __future__ import annotations

import argparse
import contextlib
import logging
from pathlib import Path

import torch
import yaml

from mome import atomic
from mome.espnet.model import AVSRESPnetModel, pair_name
from mome.espnet.readers import length_sorted_batches, media_dataset
from mome.espnet.task import AVSRTask
from mome.progress import progress

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "valid.loss.ave.pth"


def resolve_checkpoint(exp_dir: Path, checkpoint: str | Path | None) -> Path:
    """A checkpoint path as given, or relative to the experiment directory; a clear error if neither exists."""
    checkpoint = Path(checkpoint or DEFAULT_CHECKPOINT)
    for candidate in (checkpoint, exp_dir / checkpoint):
        if candidate.is_file():
            return candidate
    found = sorted(p.name for p in exp_dir.glob("*.pth")) if exp_dir.is_dir() else []
    raise FileNotFoundError(
        f"checkpoint {exp_dir / checkpoint} does not exist"
        + (f"; checkpoints in {exp_dir}: {', '.join(found)}" if found else f" (no *.pth in {exp_dir}: was the model trained?)")
    )


def load_model(exp_dir: str | Path, checkpoint: str | Path | None = None, device: str = "cpu") -> tuple[AVSRESPnetModel, argparse.Namespace]:
    """The model of ``exp_dir/config.yaml`` with the weights of ``checkpoint`` (default: the averaged
    best ``valid.loss.ave.pth``), in eval mode."""
    exp_dir = Path(exp_dir)
    config = exp_dir / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"training config {config} does not exist (is {exp_dir} a training output directory?)")
    checkpoint = resolve_checkpoint(exp_dir, checkpoint)
    with open(config, encoding="utf-8") as f:
        args = argparse.Namespace(**yaml.safe_load(f))
    model = AVSRTask.build_model(args)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{checkpoint} does not fit the model of {config}: {e}") from None
    log.info("loaded %s with %s", config, checkpoint)
    return model.to(device).eval(), args


def parse_rates(text: str) -> tuple[int | None, int | None]:
    """``"4,2"`` -> (4, 2); ``"4,0"`` -> (4, None)."""
    try:
        audio, video = (int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"rates must be 'A,V' (audio rate, video rate; 0 for an absent modality), got {text!r}") from None
    if audio < 0 or video < 0:
        raise ValueError(f"rates must not be negative, got {text!r}")
    return audio or None, video or None


def format_pair(pair) -> str:
    return f"{pair[0] or 0},{pair[1] or 0}"


def check_pair(model: AVSRESPnetModel, pair) -> tuple[int | None, int | None]:
    """The pair if the model was trained at it; else an error naming the trained pairs."""
    trained = model.avsr.rate_pairs
    if tuple(pair) not in trained:
        raise ValueError(
            f"rate pair {format_pair(pair)} was not trained into this model; trained pairs (audio,video): "
            + " ".join(format_pair(p) for p in trained)
        )
    return tuple(pair)


def decode_dir_name(data_dir: str | Path, pair) -> str:
    """``decode_<test set>_ra<a>_rv<v>``, the layout scoring reads."""
    return f"decode_{Path(data_dir).name}_{pair_name(pair)}"


class Hypotheses(dict):
    """``{pair: {utt: text}}`` of a data directory, and ``skipped``: ``[(utt, reason)]`` of the utterances that
    could not be read or decoded (they have no hypothesis at any pair)."""

    def __init__(self, pairs):
        super().__init__({p: {} for p in pairs})
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
    model: AVSRESPnetModel,
    args: argparse.Namespace,
    data_dir: str | Path,
    pairs,
    beam_size: int = 1,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    num_workers: int = 0,
    dtype: str = "float32",
) -> Hypotheses:
    """Hypotheses ``{pair: {utt: text}}`` for every utterance of ``data_dir`` at each rate pair
    (each batch is read and encoded once, then decoded at every pair).

    One utterance never costs the others their output: an unreadable item is recorded in ``.skipped`` and
    left out of its batch; a batch that fails to decode is decoded again one utterance at a time, and an
    utterance that still fails is recorded (``decode-failed: <error>``). Raises RuntimeError when no
    utterance at all could be decoded (then the fault is not one utterance's)."""
    from torch.utils.data import DataLoader

    data_dir = Path(data_dir)
    pairs = [check_pair(model, p) for p in pairs]
    dataset = _Guarded(media_dataset(data_dir, model.avsr.modalities, AVSRTask.build_preprocess_fn(args, train=False)))
    batches = length_sorted_batches(dataset.dataset, data_dir, batch_size)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=_collate, num_workers=num_workers)
    device = next(model.parameters()).device
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if dtype == "bfloat16" else contextlib.nullcontext()
    hyps = Hypotheses(pairs)

    def decode(utts, batch) -> None:
        features = model.avsr.encode(**{k: v.to(device) for k, v in batch.items()})
        texts = {pair: model.avsr.decode_from_features(features, pair, beam_size, max_new_tokens) for pair in pairs}
        for pair in pairs:
            hyps[pair].update(zip(utts, texts[pair]))

    with torch.no_grad(), autocast:
        for utts, batch, bad in progress(loader, total=len(batches), desc=f"decoding {data_dir.name}", unit="batch"):
            hyps.skipped += bad
            if not utts:
                continue
            try:
                decode(utts, batch)
            except Exception as e:  # noqa: BLE001 - find the utterance at fault, decode the others
                log.warning("%s: a batch of %d failed to decode (%s: %s); decoding its utterances one by one",
                            data_dir, len(utts), type(e).__name__, e)
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
        raise RuntimeError(f"{data_dir}: none of its {len(hyps.skipped)} utterances could be decoded, e.g. "
                           f"{hyps.skipped[0][0]}: {hyps.skipped[0][1]}")
    return hyps


def generate(model: AVSRESPnetModel, features, pair, beam_size: int, max_new_tokens: int) -> list[str]:
    """Hypotheses at one pair from ``model.avsr.encode``'s features (:meth:`AVSRModel.decode_from_features`)."""
    return model.avsr.decode_from_features(features, pair, beam_size, max_new_tokens)


def clean_hypothesis(text: str) -> str:
    """One line of words: control characters dropped, whitespace runs made single spaces."""
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


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
