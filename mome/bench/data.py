"""Stage 2 throughput and memory: audio and mouth-ROI extraction on a mini_lrs3-sized and a 5-minute clip.

The clips are made here: 224x224 25 fps h264 with 16 kHz AAC (LRS3's format), a moving textured face with a
mouth that opens and closes, and its 68-point landmarks. Each measurement runs in a fresh process, so that
its peak resident memory is its own: ``audio`` (decode the track, write the 16 kHz wav), ``roi`` (decode the
frames, crop 96x96 mouths, write FFV1), ``stage2`` (``extract_recording``: both, as stage 2 runs them) and,
for comparison, ``frames_in_memory`` (the whole clip decoded into one array, as stage 2 held it before it
streamed). Throughput is frames (25 per second of media) per CPU-second of the process, all its threads
counted: per core. Memory is the peak resident size during the work minus the size before it began.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

FPS, SAMPLE_RATE, SIZE = 25, 16000, 224
KINDS = ("audio", "roi", "stage2", "frames_in_memory")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clips", type=float, nargs="+", default=[2.6, 300.0],
                   help="clip lengths in seconds (mini_lrs3's mean utterance is 2.6 s)")  # fmt: skip
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))


def make_clip(video: Path, landmarks: Path, seconds: float, seed: int = 0) -> int:
    """Write the clip and its landmarks, frame by frame (a long clip is never held whole); returns its frames."""
    import av

    from mome.data.landmarks import write_landmarks
    from mome.data.roi import MEAN_FACE

    rng = np.random.default_rng(seed)
    frames = round(seconds * FPS)
    yy, xx = np.mgrid[0 : SIZE + 32, 0 : SIZE + 32].astype(np.float32)
    texture = 140 + 40 * np.sin(xx / 17.0) * np.cos(yy / 23.0) + rng.normal(0, 6, xx.shape)
    face = (MEAN_FACE - 128) * (SIZE / 256) + SIZE / 2  # the mean face filling the frame
    mouth = face[48:68].mean(0)
    points = np.empty((frames, 68, 2), np.float32)
    audio = (0.1 * rng.standard_normal(round(seconds * SAMPLE_RATE))).astype(np.float32)
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        for t in range(frames):
            dx, dy = 16 + 12 * np.sin(t / 40), 16 + 8 * np.cos(t / 55)
            image = texture[int(dy) : int(dy) + SIZE, int(dx) : int(dx) + SIZE].copy()
            opening = 4 + 6 * abs(np.sin(t / 3))
            cy, cx = mouth[1] - (int(dy) - 16), mouth[0] - (int(dx) - 16)
            inside = ((xx[:SIZE, :SIZE] - cx) / 28) ** 2 + ((yy[:SIZE, :SIZE] - cy) / opening) ** 2 <= 1
            image[inside] = 25
            points[t] = face - [int(dx) - 16, int(dy) - 16]
            gray = np.clip(image, 0, 255).astype(np.uint8)
            rgb = np.repeat(gray[..., None], 3, axis=-1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
        for s in range(0, len(audio), 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, s : s + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, s
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
    write_landmarks(landmarks, points)
    return frames


def _status_mb(field: str) -> float:
    """VmRSS (resident now) or VmHWM (peak resident) of this process, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _reset_peak() -> None:
    """Start VmHWM afresh (Linux >= 4.0); where refused, the peak also covers the imports before the work."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def measure(kind: str, video: str, landmarks: str, out_dir: str) -> dict:
    """One measurement in this process (run it in a fresh one): CPU and wall seconds, peak memory growth."""
    import time

    from mome.data.extract import Utterance, extract_recording, stream_rois, stream_wavs
    from mome.data.landmarks import read_landmarks
    from mome.data.media import WavWriter, probe, read_video
    from mome.data.roi import RoiWriter, prepare_landmarks

    info = probe(video)
    out = Path(out_dir)
    base = _status_mb("VmRSS")
    _reset_peak()
    cpu, wall = time.process_time(), time.perf_counter()
    spans = {"clip": (0, info.num_frames)}
    if kind == "audio":
        with WavWriter(out / "clip.wav") as wav:
            stream_wavs(video, info.fps, spans, {"clip": wav})
    elif kind == "roi":
        points = prepare_landmarks(read_landmarks(landmarks))
        with RoiWriter(out / "clip.mkv", fps=round(info.fps)) as roi:
            stream_rois(video, points, spans, {"clip": roi}, {})
    elif kind == "stage2":
        result = extract_recording([Utterance("clip", "clip", 0.0, None)], video, landmarks, out)
        if result.extracted != ["clip"]:
            raise RuntimeError(f"stage 2 did not extract the clip: {result.skipped}")
    elif kind == "frames_in_memory":
        read_video(video)
    else:
        raise ValueError(kind)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    peak = _status_mb("VmHWM")
    return {"frames": info.num_frames, "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
            "peak_memory_mb": round(max(0.0, peak - base), 1)}  # fmt: skip


def run(a: argparse.Namespace) -> dict:
    clips = [0.4, 2.0] if a.tiny else a.clips
    rows = []
    with tempfile.TemporaryDirectory(prefix="mome-bench-data.") as tmp:
        root = Path(tmp)
        for seconds in clips:
            video, marks = root / f"clip{seconds:g}.mp4", root / f"clip{seconds:g}.pkl"
            make_clip(video, marks, seconds, a.seed)
            for kind in a.kinds:
                out = root / f"out_{seconds:g}_{kind}"
                out.mkdir()
                code = ("import json, sys; from mome.bench.data import measure; "
                        "print(json.dumps(measure(*sys.argv[1:])))")  # fmt: skip
                done = subprocess.run([sys.executable, "-c", code, kind, str(video), str(marks), str(out)],
                                      capture_output=True, text=True, check=True)  # fmt: skip
                m = json.loads(done.stdout.strip().splitlines()[-1])
                cpu_s = max(m["cpu_s"], 1e-9)
                rows.append({"clip_seconds": seconds, "kind": kind, **m,
                             "frames_per_cpu_s": round(m["frames"] / cpu_s, 1),
                             "media_seconds_per_cpu_s": round(m["frames"] / FPS / cpu_s, 2)})  # fmt: skip
            roi = root / f"out_{seconds:g}_roi" / "clip.mkv"
            if roi.exists():
                from mome.data.roi import read_roi

                rows[-len(a.kinds) + list(a.kinds).index("roi")]["roi_frames_written"] = len(read_roi(roi))
    peak = {k: {r["clip_seconds"]: r["peak_memory_mb"] for r in rows if r["kind"] == k} for k in a.kinds}
    return {
        "clip": f"{SIZE}x{SIZE} h264 {FPS} fps + {SAMPLE_RATE} Hz AAC, 68-point landmarks",
        "rows": rows,
        "peak_memory_mb": peak,
        "all_roi_frames_written": all(
            r.get("roi_frames_written", r["frames"]) == r["frames"] for r in rows if r["kind"] == "roi"
        ),
    }
