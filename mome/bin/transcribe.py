"""Transcribe one video file with a trained model at a chosen rate pair.

    python -m mome.bin.transcribe FILE.mp4 --model exp/mome --rates 4,2 [--landmarks FILE.pkl] \\
        [--checkpoint valid.loss.ave.pth] [--beam_size 15] [--max_new_tokens 32] [--device cpu]

Audio comes from the file's sound track (16 kHz). A model with a video encoder needs the mouth region:
give ``--landmarks`` (68-point landmarks per frame, any of the mome.data.landmarks layouts) and the ROI is
cut as in stage 2 (frames turned upright by the file's display rotation and resampled to 25 fps by
timestamp); without landmarks the video must already be a mouth ROI (at least 88x88, at most 128x128).
Audio longer than the audio encoder's window (Whisper: 30 s) is encoded window by window.
Prints the transcript.
"""
from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

MAX_ROI_SIDE = 128  # a frame this small is taken for a ready-made mouth ROI


def mouth_roi(video_path: str, landmarks_path: str | None) -> np.ndarray:
    """uint8 ``(T, 96, 96)`` mouth ROI of a video as stage 2 cuts it: frames upright and at 25 fps
    (:func:`mome.data.media.decode_video`), the landmarks of the decoded frames cleaned
    (:func:`mome.data.roi.prepare_landmarks`) and taken at the frames kept; without landmarks, the frames
    themselves (a ready-made ROI)."""
    from mome.data.extract import match_landmarks
    from mome.data.landmarks import read_landmarks
    from mome.data.media import decode_video
    from mome.data.roi import crop_mouths, prepare_landmarks

    video = decode_video(video_path, gray=True)
    if landmarks_path is not None:
        points = match_landmarks(read_landmarks(landmarks_path), video.decoded, landmarks_path)
        return crop_mouths(video.frames, prepare_landmarks(points)[video.source_index])
    height, width = video.frames.shape[1:3]
    if max(height, width) > MAX_ROI_SIDE:
        raise ValueError(
            f"{video_path}: {width}x{height} frames are not a mouth ROI; give --landmarks (68-point landmarks "
            "per frame) so that the mouth region can be cut out"
        )
    return video.frames


def transcribe(model, args, video_path: str, pair, landmarks: str | None = None, beam_size: int = 15, max_new_tokens: int = 32) -> str:
    """The transcript of one file (``model, args`` from :func:`mome.espnet.inference.load_model`)."""
    import torch
    from espnet2.train.collate_fn import CommonCollateFn

    from mome.data.media import read_audio
    from mome.espnet.inference import check_pair, generate
    from mome.espnet.task import AVSRTask

    pair = check_pair(model, pair)
    data = {}
    if "audio" in model.avsr.modalities:
        data["audio"] = read_audio(video_path)
    if "video" in model.avsr.modalities:
        data["video"] = mouth_roi(video_path, landmarks)
    data = AVSRTask.build_preprocess_fn(args, train=False)("file", data)
    _, batch = CommonCollateFn()([("file", {k: np.asarray(v, dtype=np.float32) for k, v in data.items()})])
    device = next(model.parameters()).device
    with torch.no_grad():
        features = model.avsr.encode(**{k: v.to(device) for k, v in batch.items()})
        return generate(model, features, pair, beam_size, max_new_tokens)[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mome-transcribe", description=__doc__.split("\n\n")[0])
    p.add_argument("file", help="video file (mp4 with sound)")
    p.add_argument("--model", required=True, help="trained experiment directory (config.yaml + checkpoints)")
    p.add_argument("--rates", required=True, help="rate pair A,V (0: modality absent), e.g. 4,2")
    p.add_argument("--landmarks", default=None, help="68-point landmark file of the video (.pkl / .npy)")
    p.add_argument("--checkpoint", default=None, help="checkpoint in --model (default: valid.loss.ave.pth)")
    p.add_argument("--beam_size", type=int, default=15)
    p.add_argument("--max_new_tokens", type=int, default=32)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from mome.data.landmarks import LandmarkError
    from mome.data.media import MediaError
    from mome.data.roi import RoiError
    from mome.espnet.inference import load_model, parse_rates

    try:
        pair = parse_rates(a.rates)
        model, args = load_model(a.model, a.checkpoint, a.device)
        print(transcribe(model, args, a.file, pair, a.landmarks, a.beam_size, a.max_new_tokens))
    except (FileNotFoundError, ValueError, MediaError, LandmarkError, RoiError) as e:
        print(f"mome-transcribe: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
