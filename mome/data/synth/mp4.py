"""Writing a clip as LRS3 stores it: an mp4 with a 25 fps h264 video track and a 16 kHz mono AAC track.

x264 runs single-threaded (the generator already runs one clip per process), which also keeps its
output byte-identical from run to run; its "superfast" preset and FFmpeg's fast AAC coder keep the
encoding about as cheap as the drawing. The file is written under a temporary name and renamed, so
an interrupted run never leaves a truncated mp4 behind.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def write_mp4(
    path: str | Path,
    frames: np.ndarray,
    audio: np.ndarray,
    fps: int = 25,
    sample_rate: int = 16000,
    crf: int = 20,
    preset: str = "superfast",
) -> None:
    """``frames`` uint8 ``(T, H, W, 3)`` RGB, ``audio`` float mono in [-1, 1] (``T / fps`` seconds of it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    pcm = (np.clip(audio, -1, 1) * 32767).round().astype(np.int16)[None, :]
    with av.open(str(tmp), "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": preset, "crf": str(crf)})
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.codec_context.thread_count = 1
        video.time_base = Fraction(1, fps)
        sound = container.add_stream("aac", rate=sample_rate, layout="mono", options={"aac_coder": "fast"})
        sound.bit_rate = 64000
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(video.encode(frame))
        container.mux(video.encode())
        chunk = 1024  # one AAC frame per AudioFrame
        for start in range(0, pcm.shape[1], chunk):
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(pcm[:, start : start + chunk]), format="s16", layout="mono"
            )
            frame.sample_rate = sample_rate
            frame.pts = start
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
    os.replace(tmp, path)
