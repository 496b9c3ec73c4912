"""Shape files for ESPnet's batch samplers, written from a data directory's ``utt2dur``.

ESPnet's samplers read ``<utt> <length>[,<dim>...]`` lines (``--train_shape_file``): ``sorted`` / ``folded``
/ ``length`` / ``numel`` bucket utterances by the first number. Ours is the length in video frames at 25 fps
(the unit of the papers' dynamic batches: ``batch_type: length`` with ``batch_bins`` = padded frames per
batch), from ``utt2dur`` or, without one, from the wav headers. Only utterances present in every listed
data file are written, so the sampler never asks the dataset for a missing key.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from mome.espnet.readers import check_sample_rate

log = logging.getLogger(__name__)

FRAMES_PER_SECOND = 25


def _keys(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.split(maxsplit=1)[0] for line in f if line.strip()]


def durations(data_dir: Path, wav_scp: Path | None = None) -> dict[str, float]:
    """Seconds per utterance: ``utt2dur`` of the data directory, else the headers of ``wav_scp``."""
    utt2dur = data_dir / "utt2dur"
    if utt2dur.is_file():
        with open(utt2dur, encoding="utf-8") as f:
            return {utt: float(dur) for utt, dur in (line.split()[:2] for line in f if line.strip())}
    if wav_scp is not None and wav_scp.is_file():
        import soundfile

        with open(wav_scp, encoding="utf-8") as f:
            pairs = [line.split(maxsplit=1) for line in f if line.strip()]
        return {utt: soundfile.info(path.strip()).duration for utt, path in pairs}
    raise FileNotFoundError(f"{utt2dur} does not exist (nor a wav.scp to measure): cannot write a shape file")


def write_shape_file(out: str | Path, data_files: Sequence[str | Path]) -> Path:
    """Write ``<utt> <frames at 25 fps>`` for the utterances of ``data_files`` (scp / text files of one
    data directory; durations from its utt2dur). Atomic, so parallel ranks may all write it."""
    files = [Path(p) for p in data_files]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"data file {path} does not exist")
    wav = next((p for p in files if p.name == "wav.scp"), None)
    seconds = durations(files[0].parent, wav)
    keys = [k for k in _keys(files[0]) if k in seconds]
    for path in files[1:]:
        present = set(_keys(path))
        keys = [k for k in keys if k in present]
    if not keys:
        raise ValueError(f"no utterance is in all of {[str(p) for p in files]} and utt2dur")
    dropped = len(_keys(files[0])) - len(keys)
    if dropped:
        log.warning(
            "shape file %s: %d utterance(s) of %s missing from another data file or utt2dur, left out",
            out,
            dropped,
            files[0],
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for key in keys:
            f.write(f"{key} {max(1, round(seconds[key] * FRAMES_PER_SECOND))}\n")
    os.replace(tmp, out)
    return out


def shape_files_for(data_path_and_name_and_type: Iterable[Sequence[str]], out: str | Path) -> Path:
    """The shape file of one ``--*_data_path_and_name_and_type`` list."""
    return write_shape_file(out, [entry[0] for entry in data_path_and_name_and_type])


def prepare_inputs(args) -> None:
    """Before an ESPnet task's main: check every wav.scp's sample rate and write the shape files that are
    not given (``<output_dir>/shape/<mode>.shape``) of the train and valid inputs in ``args``."""
    for mode in ("train", "valid"):
        data = getattr(args, f"{mode}_data_path_and_name_and_type")
        for path, _, kind in data:
            if kind == "sound":
                check_sample_rate(path)
        if data and not getattr(args, f"{mode}_shape_file"):
            out = shape_files_for(data, Path(args.output_dir) / "shape" / f"{mode}.shape")
            setattr(args, f"{mode}_shape_file", [str(out)])
