"""Transcribe media files with a trained model (a thin user of :class:`mome.inference.AVSR2Text`).

    mome-transcribe FILE_OR_DIR [FILE_OR_DIR ...] --model_dir exp/mome [--rates 4,2 | --rates auto] \\
        [--landmarks FILE.pkl | --landmarks_dir DIR] [--output_format text|json] [--output FILE] \\
        [--checkpoint valid.loss.ave.pth] [--beam_size 4] [--max_new_tokens 32] [--ctc_weight 0.5] [--device cpu]

A folder stands for the media files under it (``.mp4 .mkv .mov .avi .webm``, and ``.wav .flac .ogg`` for an
audio-only model), sorted. Audio comes from each file's sound track (16 kHz). A model with a video encoder
needs the mouth region: ``--landmarks`` (one file) or ``--landmarks_dir`` (``<stem>.pkl`` / ``.npy`` /
``.npz`` per video) give 68-point landmarks per frame and the ROI is cut as in stage 2; without them the
video must already be a mouth ROI (at most 128x128) or a face-mesh detector must be installed. Recordings of
any length are cut at pauses into pieces the encoders take, and the texts joined.

Output, one line per file: the transcript alone for a single file; ``<file> <transcript>`` for several; with
``--output_format json`` a JSON object per line (file, text, rates, confidence, llm_input_tokens, llm_tflops,
seconds, tried, pieces). A file that fails is reported on stderr (and in JSON as ``{"file", "error"}``) and
the others go on; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from mome.bin._cli import USER_ERRORS, add_hidden_aliases, entry_point, report_error, unit_interval
from mome.inference import AUDIO_SUFFIXES, mouth_roi  # noqa: F401 - mouth_roi: the stage-2 ROI of one video

PROG = "mome-transcribe"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm")
LANDMARK_SUFFIXES = (".pkl", ".npy", ".npz")


def media_files(paths) -> list[Path]:
    """Files as given, and the media files under each folder (sorted); a clear error for a missing path."""
    files = []
    for given in map(Path, paths):
        if given.is_dir():
            found = sorted(
                p for p in given.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES + AUDIO_SUFFIXES
            )
            if not found:
                raise FileNotFoundError(
                    f"{given}: no media files ({' '.join(VIDEO_SUFFIXES + AUDIO_SUFFIXES)}) in this folder"
                )
            files += found
        elif given.is_file():
            files.append(given)
        else:
            raise FileNotFoundError(f"{given} does not exist")
    return files


def landmarks_for(video: Path, landmarks: str | None, landmarks_dir: str | None) -> str | None:
    if landmarks is not None:
        return landmarks
    if landmarks_dir is None:
        return None
    for suffix in LANDMARK_SUFFIXES:
        candidate = Path(landmarks_dir) / f"{video.stem}{suffix}"
        if candidate.is_file():
            return str(candidate)
    return None


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="media files or folders of them")
    p.add_argument("--model_dir", required=True, help="trained experiment directory or packed model")
    p.add_argument("--rates", default="4,2", help="rate pair A,V (0: modality absent), e.g. 4,2; or auto (adaptive)")
    p.add_argument(
        "--landmarks", default=None, help="68-point landmark file of the video (.pkl / .npy / .npz); one file only"
    )
    p.add_argument("--landmarks_dir", default=None, help="folder of <video stem>.pkl|.npy|.npz landmark files")
    p.add_argument("--output_format", choices=("text", "json"), default="text")
    p.add_argument("--output", default=None, help="write here instead of stdout")
    p.add_argument("--checkpoint", default=None, help="checkpoint in --model_dir (default: valid.loss.ave.pth)")
    p.add_argument("--beam_size", type=int, default=4, help="beam width (1: greedy; default 4)")
    p.add_argument("--max_new_tokens", type=int, default=32)
    p.add_argument(
        "--ctc_weight",
        type=unit_interval,
        default=0.0,
        help="joint CTC / LLM decoding, w in [0, 1]: (1 - w) * LLM + w * CTC prefix score (models trained with a "
        "CTC loss); 0 (the default): the LLM alone",
    )
    p.add_argument("--max_piece_seconds", type=float, default=10.0, help="longest piece of a long recording")
    p.add_argument("--device", default="cpu")
    add_hidden_aliases(p, {"--model": "--model_dir"})
    return p


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    a = get_parser().parse_intermixed_args(argv)  # files may follow options
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from mome.inference import AVSR2Text

    files = media_files(a.files)
    if a.landmarks is not None and len(files) > 1:
        raise ValueError("--landmarks names the landmarks of one video; for several give --landmarks_dir")
    # what libraries print while the model loads (ESPnet prints a Flash Attention notice) goes to stderr, so that
    # stdout holds the transcripts alone (JSON lines stay parseable)
    with contextlib.redirect_stdout(sys.stderr):
        avsr = AVSR2Text.from_pretrained(
            a.model_dir, a.device, a.beam_size, a.max_new_tokens, a.checkpoint, ctc_weight=a.ctc_weight
        )
    rates = avsr.check_rates(a.rates)
    out = open(a.output, "w", encoding="utf-8") if a.output else sys.stdout
    failed = 0
    try:
        for path in files:
            try:
                result = avsr.transcribe_file(
                    path, landmarks_for(path, a.landmarks, a.landmarks_dir), rates, a.max_piece_seconds
                )
            except USER_ERRORS as e:  # this file fails, the others go on
                failed += 1
                report_error(PROG, e)
                if a.output_format == "json":
                    print(json.dumps({"file": str(path), "error": str(e)}), file=out, flush=True)
                continue
            if a.output_format == "json":
                print(json.dumps({"file": str(path), **result.to_dict()}), file=out, flush=True)
            else:
                print(result.text if len(files) == 1 else f"{path} {result.text}".rstrip(), file=out, flush=True)
    finally:
        if a.output:
            out.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
