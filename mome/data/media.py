"""Media I/O: the corpus videos (mp4, a 25 fps h264 video track and an AAC audio track) and wav files.

PyAV does the decoding, so no system ffmpeg is needed. Four facts shape this module:

- Frames come out upright. Phones store video sideways and put the turn in the stream's display matrix;
  players (ffmpeg's autorotate, OpenCV) apply it, and so do landmark tools, so landmark files are in the
  upright picture's pixels. Every decoded frame is turned (and mirrored) by its display matrix before
  anything else sees it (multiples of 90 degrees; other angles are refused with the angle named).
- Frames come out at ``VIDEO_FPS`` (25) frames per second, the rate every model and ROI of the recipes
  assumes. A clip at another rate, or with a variable frame rate, is resampled by timestamp: output frame
  ``k`` is the decoded frame on screen at ``(k + 0.5) / 25`` s (frames are repeated or dropped, never
  blended), decided as the frames are decoded (:class:`FrameStream`, which also says which decoded frame
  each output frame is, so that per-frame data such as landmarks follows). The audio is not touched. A clip
  at a regular 25 fps comes out frame for frame.
- The video track sets the length of an utterance. Decoded AAC audio carries a few hundred samples of
  encoder padding at the end, and real clips may have audio slightly longer or shorter than the video,
  so ``read_audio`` returns exactly ``round(video seconds * sample_rate)`` samples (cut, or padded with
  zeros when the audio track ends a little early).
- Times are in seconds from the start of the clip. A frame ``i`` (at 25 fps) covers ``[i / 25, (i + 1) / 25)``;
  ``start`` / ``end`` select frames ``round(start * 25) .. round(end * 25) - 1`` and the audio samples
  of the same span, so audio and video of a segment stay aligned.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from mome.errors import MomeError

VIDEO_FPS = 25  # the frame rate frames are handed on at (ROIs, video encoders)


class MediaError(MomeError, RuntimeError):
    """A media file that cannot be read (missing, corrupt, no stream of the wanted kind); names the file."""


class UnsupportedMediaError(MediaError):
    """A readable file in a form we do not handle (a display rotation that is not a multiple of 90 degrees)."""


@dataclass(frozen=True)
class MediaInfo:
    path: str
    duration: float  # seconds of video: num_frames / fps
    fps: float  # the stream's average frame rate (as stored: before resampling to VIDEO_FPS)
    num_frames: int  # as stored
    width: int  # as stored (before the display rotation)
    height: int
    has_audio: bool
    audio_duration: float  # seconds of the audio track (0.0 without one)


def _open(path: str | Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path}: media file missing")
    try:
        return av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise MediaError(f"{path}: cannot open ({type(e).__name__}: {e})") from None


def _video_stream(container, path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise MediaError(f"{path}: no video stream")
    return container.streams.video[0]


def _stream_seconds(stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return 0.0


def probe(path: str | Path) -> MediaInfo:
    """Read the header (and, where the header lacks a frame count, the video packets; never decodes)."""
    with _open(path) as container:
        video = _video_stream(container, path)
        fps = float(video.average_rate or video.guessed_rate or 0)
        if fps <= 0:
            raise MediaError(f"{path}: video stream has no frame rate")
        num_frames = video.frames
        if num_frames <= 0:
            try:
                num_frames = sum(1 for p in container.demux(video) if p.size)
            except av.FFmpegError as e:
                raise MediaError(f"{path}: cannot read video packets ({e})") from None
        audio = container.streams.audio[0] if container.streams.audio else None
        return MediaInfo(
            path=str(path),
            duration=num_frames / fps,
            fps=fps,
            num_frames=num_frames,
            width=video.codec_context.width,
            height=video.codec_context.height,
            has_audio=audio is not None,
            audio_duration=_stream_seconds(audio) if audio is not None else 0.0,
        )


def output_frames(info: MediaInfo) -> int:
    """About how many frames the readers hand on for the whole clip at ``VIDEO_FPS`` (exact for 25 fps and
    constant rates; :class:`FrameStream` counts the frames it gave)."""
    if abs(info.fps - VIDEO_FPS) < 0.01:
        return info.num_frames
    return max(1, round(info.duration * VIDEO_FPS))


def _frame_span(start: float, end: float | None, fps: float, num_frames: int) -> tuple[int, int]:
    first = max(0, round(start * fps))
    last = num_frames if end is None else min(num_frames, round(end * fps))
    if last <= first:
        raise ValueError(f"empty time span: start={start} end={end} (video has {num_frames} frames at {fps} fps)")
    return first, last


_PLANAR_YUV = {"yuv420p", "yuv422p", "yuv444p", "yuvj420p", "yuvj422p", "yuvj444p"}
_LIMITED_TO_FULL = np.clip(np.rint((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def _luma(frame: av.VideoFrame) -> np.ndarray:
    """The gray image of a frame. For planar YUV, the Y plane is read directly and limited-range
    ("MPEG", 16-235) values are stretched to 0-255, which is what a conversion to gray through
    swscale gives, at about 2.5x the speed; other formats go through swscale."""
    name = frame.format.name
    if name not in _PLANAR_YUV:
        return frame.to_ndarray(format="gray")
    plane = frame.planes[0]
    y = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : frame.width]
    full_range = name.startswith("yuvj") or frame.color_range == 2  # AVCOL_RANGE_JPEG
    return y.copy() if full_range else _LIMITED_TO_FULL[y]


def _rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24")


# ------------------------------------------------------------------------------- display rotation

Orientation = tuple[bool, bool, bool]  # (swap rows and columns, then flip rows, then flip columns)
UPRIGHT: Orientation = (False, False, False)


def orientation_from_matrix(matrix, source: str = "") -> Orientation:
    """How to turn a stored picture upright, from its display matrix: FFmpeg's 9 int32 values
    ``a b u / c d v / x y w`` (``a .. d`` in 16.16 fixed point), which map a stored pixel ``(x, y)`` (y down)
    to ``(a x + c y, b x + d y)`` on screen. Only quarter turns and mirrors are exact on a pixel grid: any
    other angle raises :class:`UnsupportedMediaError`."""
    a, b, c, d = (float(matrix[i]) / 65536 for i in (0, 1, 3, 4))
    scale = max(abs(a), abs(b), abs(c), abs(d))
    if scale == 0:  # a degenerate matrix: nothing to apply
        return UPRIGHT
    small = lambda v: abs(v) < 1e-3 * scale  # noqa: E731
    if small(b) and small(c):
        return (False, d < 0, a < 0)
    if small(a) and small(d):  # screen x comes from stored y, screen y from stored x
        return (True, b < 0, c < 0)
    angle = np.degrees(np.arctan2(b, a))
    raise UnsupportedMediaError(
        f"{source}: display matrix turns the picture by {-angle:.1f} degrees; only "
        "multiples of 90 degrees are supported (rotate the file first)"
    )


def frame_orientation(frame: av.VideoFrame, source: str = "") -> Orientation:
    """The orientation of a decoded frame from its DISPLAYMATRIX side data (upright when it has none)."""
    side_data = getattr(frame, "side_data", None)
    if side_data is None:
        return UPRIGHT
    matrix = side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
    if matrix is None:
        return UPRIGHT
    return orientation_from_matrix(np.frombuffer(bytes(matrix), dtype=np.int32), source)


def turn_upright(image: np.ndarray, orientation: Orientation) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` image as shown on screen."""
    swap, flip_rows, flip_cols = orientation
    if swap:
        image = np.swapaxes(image, 0, 1)
    if flip_rows:
        image = image[::-1]
    if flip_cols:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def upright_frames(container, path, gray: bool = True) -> Iterator[tuple[np.ndarray, float | None]]:
    """Decoded frames of the first video stream as ``(image, seconds)``: upright (display matrix applied),
    gray ``(H, W)`` or RGB ``(H, W, 3)`` uint8; ``seconds`` is the presentation time (None when unknown)."""
    convert = _luma if gray else _rgb
    for frame in container.decode(video=0):
        yield turn_upright(convert(frame), frame_orientation(frame, str(path))), frame.time


# ------------------------------------------------------------------------------- frame rate


def resample(frames, fps_in: float, fps: float = VIDEO_FPS) -> Iterator[tuple[int, object]]:
    """``(index, item)`` of the input frames on screen at the centres ``(k + 0.5) / fps`` of the output frames,
    from ``(item, seconds)`` pairs in presentation order (``seconds`` None: taken as regular at ``fps_in``),
    as they come. A frame shows from its time to the next one's (the last for ``1 / fps_in``); items are
    repeated or dropped, never blended. A regular clip at ``fps`` maps frame for frame."""
    k, previous, start, last = 0, None, None, 0.0
    for i, (item, seconds) in enumerate(frames):
        t = i / fps_in if seconds is None else float(seconds)
        start = t if start is None else start
        t = max(t - start, last)  # a decode-order glitch must not turn time back
        if previous is not None:
            while (k + 0.5) / fps + 1e-9 < t:  # output centres the previous frame is on screen for
                yield previous
                k += 1
        previous, last = (i, item), t
    if previous is not None:
        while (k + 0.5) / fps + 1e-9 < last + 1 / fps_in:
            yield previous
            k += 1


def resample_index(times, fps_in: float, fps: float = VIDEO_FPS) -> np.ndarray:
    """The input frame (int64 index) each output frame at ``fps`` shows, for frames at presentation times
    ``times`` (s): :func:`resample` on the times alone."""
    return np.array([i for i, _ in resample(((None, t) for t in times), fps_in, fps)], dtype=np.int64)


class FrameStream:
    """The video track of ``path`` frame by frame: upright and at ``VIDEO_FPS``, as ``(source index, image)``
    with ``source index`` the decoded frame the image is (so per-frame data made on the decoded frames, such
    as landmarks, follows). ``decoded`` counts the frames decoded so far, ``resampled`` says whether any frame
    was repeated or dropped. A clip is never held in memory whole."""

    def __init__(self, path: str | Path, gray: bool = True, fps: float = VIDEO_FPS):
        self.path, self.gray, self.fps = path, gray, fps
        self.info = probe(path)
        self.source_fps = self.info.fps
        self.decoded, self.emitted, self.resampled = 0, 0, False

    def _decoded(self, container):
        for item in upright_frames(container, self.path, self.gray):
            self.decoded += 1
            yield item

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        with _open(self.path) as container:
            try:
                for index, image in resample(self._decoded(container), self.source_fps, self.fps):
                    self.resampled |= index != self.emitted
                    self.emitted += 1
                    yield index, image
            except av.FFmpegError as e:
                raise MediaError(f"{self.path}: video decoding failed at frame {self.decoded} ({e})") from None
        self.resampled |= self.emitted != self.decoded
        if not self.emitted:
            raise MediaError(f"{self.path}: no video frames decoded")


def iter_video(
    path: str | Path, start: float = 0.0, end: float | None = None, gray: bool = True
) -> Iterator[np.ndarray]:
    """Frames ``[start, end)`` one at a time as they are decoded, uint8 ``(H, W)`` (gray) or ``(H, W, 3)``
    (RGB), upright and at ``VIDEO_FPS`` (:class:`FrameStream`): a long clip is never held in memory whole."""
    first = max(0, round(start * VIDEO_FPS))
    last = None if end is None else round(end * VIDEO_FPS)
    if last is not None and last <= first:
        raise ValueError(f"empty time span: start={start} end={end}")
    count = 0
    for k, (_, image) in enumerate(FrameStream(path, gray)):
        if last is not None and k >= last:
            break
        if k >= first:
            count += 1
            yield image
    if not count:
        raise MediaError(f"{path}: no video frames in {start}-{end} s")


def read_video(path: str | Path, start: float = 0.0, end: float | None = None, gray: bool = True) -> np.ndarray:
    """Frames ``[start, end)`` as uint8 ``(T, H, W)`` (gray) or ``(T, H, W, 3)`` (RGB), upright and at 25 fps."""
    return np.stack(list(iter_video(path, start, end, gray)))


@dataclass(frozen=True)
class Video:
    """A whole decoded video track, upright and at ``fps``: ``frames`` uint8 ``(T, H, W)`` (gray) or
    ``(T, H, W, 3)``; ``source_index`` int ``(T,)``, the decoded frame each frame is; ``decoded``: how many
    frames the file gave; ``resampled``: whether any was repeated or dropped."""

    frames: np.ndarray
    fps: float
    source_index: np.ndarray
    source_fps: float
    decoded: int
    resampled: bool


def decode_video(path: str | Path, gray: bool = True, fps: float = VIDEO_FPS) -> Video:
    """The whole video track of ``path`` in memory (:class:`FrameStream`; for single files, not stage 2)."""
    stream = FrameStream(path, gray, fps)
    indices, images = zip(*stream)
    return Video(np.stack(images), fps, np.array(indices), stream.source_fps, stream.decoded, stream.resampled)


def iter_audio(path: str | Path, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """The whole audio track from its first sample, mono float32 in [-1, 1] at ``sample_rate``, in chunks
    as they are decoded (not cut to the video: see :func:`read_audio`)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError(f"{path}: no audio stream")
        try:
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    yield out.to_ndarray().reshape(-1)
            for out in resampler.resample(None):
                yield out.to_ndarray().reshape(-1)
        except av.FFmpegError as e:
            raise MediaError(f"{path}: audio decoding failed ({e})") from None


def read_audio(path: str | Path, sample_rate: int = 16000, start: float = 0.0, end: float | None = None) -> np.ndarray:
    """Mono float32 audio in [-1, 1] of the span ``[start, end)`` (on the 25 fps frame grid of
    :func:`read_video`), resampled to ``sample_rate`` and cut (or zero-padded) to the video's length."""
    info = probe(path)
    if not info.has_audio:
        raise MediaError(f"{path}: no audio stream")
    first, last = _frame_span(start, end, VIDEO_FPS, output_frames(info))
    begin = round(first / VIDEO_FPS * sample_rate)
    stop = round(min(info.duration, last / VIDEO_FPS) * sample_rate)
    chunks, have = [], 0
    for chunk in iter_audio(path, sample_rate):
        chunks.append(chunk)
        have += len(chunk)
        if have >= stop:
            break
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    audio = audio[begin:stop]
    if len(audio) < stop - begin:
        audio = np.pad(audio, (0, stop - begin - len(audio)))
    return audio.astype(np.float32, copy=False)


def write_mp4(
    path: str | Path,
    frames: np.ndarray,
    fps: int = 25,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    crf: int = 18,
) -> None:
    """Write uint8 frames ``(T, H, W)`` or ``(T, H, W, 3)`` as h264 (yuv420p, even sizes) and, when
    given, mono float audio as AAC: the layout of the LRS videos. Used by the synthetic corpus and tests."""
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim == 3:
        frames = np.repeat(frames[..., None], 3, axis=-1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height = frames.shape[2], frames.shape[1]
        video.pix_fmt = "yuv420p"
        video.options = {"crf": str(crf), "preset": "ultrafast"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
        for image in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode())
        if sound is not None:
            samples = np.asarray(audio, dtype=np.float32).reshape(-1)
            for s in range(0, len(samples), 1024):
                frame = av.AudioFrame.from_ndarray(samples[None, s : s + 1024], format="flt", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, s
                container.mux(sound.encode(frame))
            container.mux(sound.encode())


def read_wav(path: str | Path, sample_rate: int | None = None) -> np.ndarray:
    """Mono float32 samples of a wav; resampled when ``sample_rate`` is given and differs."""
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise MediaError(f"{path}: cannot read audio ({e})") from None
    samples = samples.mean(axis=1)
    if sample_rate is not None and rate != sample_rate:
        g = np.gcd(rate, sample_rate)
        samples = resample_poly(samples, sample_rate // g, rate // g).astype(np.float32)
    return samples


class WavWriter:
    """A 16-bit PCM mono wav written piece by piece (``write(samples)``, float in [-1, 1]) under a temporary
    name, renamed to ``path`` on a clean exit of the ``with`` block (so a wav that exists is complete);
    :meth:`discard` (or an exception) leaves nothing behind."""

    def __init__(self, path: str | Path, sample_rate: int = 16000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.file = sf.SoundFile(str(self.tmp), "w", samplerate=sample_rate, channels=1, format="WAV", subtype="PCM_16")
        self.samples = 0

    def write(self, samples: np.ndarray) -> None:
        pcm = np.clip(np.rint(np.asarray(samples, dtype=np.float64) * 32768), -32768, 32767).astype(np.int16)
        self.file.write(pcm)
        self.samples += len(pcm)

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None or not self.tmp.exists():
            self.discard()
            return
        self.file.close()
        os.replace(self.tmp, self.path)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = 16000) -> None:
    """Write float samples in [-1, 1] as 16-bit PCM, through a temporary file renamed at the end
    (so a wav that exists is complete)."""
    with WavWriter(path, sample_rate) as wav:
        wav.write(samples)
