"""Stage 2: 16 kHz audio and 96x96 mouth ROIs for every utterance of a data directory.

Inputs (written by stage 1): ``video.scp`` and ``landmarks.scp`` (per recording), ``segments``
(``<utt> <recording> <start> <end>``; without it every recording is one whole-clip utterance).
Outputs: ``<dump>/wav/<utt>.wav`` (16 kHz mono int16, as long as the video span) and
``<dump>/roi/<utt>.mkv`` (see ``mome.data.roi``), then ``wav.scp`` / ``roi.scp`` in the data
directory, which is filtered down to the utterances that have both.

Work is done per recording, so a long pretrain clip is decoded once for all its segments (and
landmarks are interpolated and smoothed over the whole clip before being cut). The recording is streamed:
video frames are cropped in chunks of ``CHUNK_FRAMES`` as they are decoded and each segment's ROI and wav
are written as they go, so memory stays flat in the clip's length (a 5-minute 224x224 clip held whole would
be 375 MB of frames). Landmarks are prepared for the frame count of the container header; a decode that
gives more than ``MAX_FRAME_MISMATCH`` frames fewer or more skips the recording. Shards: job J of N
takes every N-th recording (``--job J --njobs N``); a finished utterance (its two files exist:
they are written under a temporary name and renamed) is not redone, so jobs resume. Each job logs
the utterances it had to skip, with the reason, to ``<dump>/log/skipped.<J>of<N>.txt`` (a recording that
fails in an unforeseen way is logged too, with its traceback in the job log: the job goes on); the merge
appends those of utterances still without output to ``data/<set>/skipped.txt``, changing the data
directory in one step (a copy swapped in).

Without landmark files (``detect=True``, ``mome.bin.extract --landmarks detect``): a recording that has no entry
in ``landmarks.scp`` (or every one, when there is no ``landmarks.scp``) is given one by MediaPipe's face mesh
(:mod:`mome.data.face_mesh`, one worker per job) before it is extracted, written to
``<dump>/landmarks/<recording>.pkl`` in the published layout (kept: a rerun does not detect again); the merge
lists them in ``landmarks.scp``.

Frames come from :class:`mome.data.media.FrameStream`: upright (display rotation applied) and at 25 fps
(other and variable rates resampled by timestamp); segments are cut on those 25 fps frames, and the
landmarks, made on the decoded frames, are taken at the decoded frame each output frame is.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mome import atomic
from mome.data import kaldi
from mome.data.face_mesh import (
    FaceMesh,
    FaceMeshError,
    FaceMeshUnavailable,
    face_mesh_python,
    write_detected_landmarks,
)
from mome.data.landmarks import LandmarkError, read_landmarks
from mome.data.media import (
    VIDEO_FPS,
    FrameStream,
    MediaError,
    MediaInfo,
    UnsupportedMediaError,
    WavWriter,
    iter_audio,
    output_frames,
    probe,
)
from mome.data.roi import ROI_EXT, RoiError, RoiWriter, crop_mouths, prepare_landmarks
from mome.errors import MomeError
from mome.progress import progress

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MAX_AV_MISMATCH = 0.5  # seconds the audio and video tracks may differ by before a clip is skipped
MAX_FRAME_MISMATCH = 2  # landmark / decoded frames a clip may differ by (edges are then held)
CHUNK_FRAMES = 64  # video frames decoded and cropped at a time


class ExtractError(MomeError, RuntimeError):
    """A data directory that stage 2 cannot work on at all (missing inputs); names the file."""


class Skip(Exception):
    """An utterance (or a whole recording) that cannot be extracted: ``key`` groups the counts."""

    def __init__(self, key: str, detail: str = ""):
        super().__init__(f"{key}: {detail}" if detail else key)
        self.key = key


@dataclass(frozen=True)
class Utterance:
    utt: str
    recording: str
    start: float
    end: float | None  # None: to the end of the recording


@dataclass
class Outcome:
    extracted: list[str]
    already_done: list[str]
    skipped: list[tuple[str, str]]  # (utt, "<key>: <detail>")
    seconds: float = 0.0  # wall time spent on the extracted utterances
    resampled: list[str] = field(default_factory=list)  # videos not at a regular 25 fps, resampled by timestamp


def wav_path(dump: Path, utt: str) -> Path:
    return dump / "wav" / f"{utt}.wav"


def roi_path(dump: Path, utt: str) -> Path:
    return dump / "roi" / f"{utt}{ROI_EXT}"


def detected_landmarks_path(dump: Path, recording: str) -> Path:
    return dump / "landmarks" / f"{recording}.pkl"


def is_done(dump: Path, utt: str) -> bool:
    return wav_path(dump, utt).is_file() and roi_path(dump, utt).is_file()


# ------------------------------------------------------------------------------------------ inputs


def read_inputs(
    data_dir: Path, detect: bool = False
) -> tuple[dict[str, list[Utterance]], dict[str, str], dict[str, str]]:
    """Utterances grouped by recording (sorted), video paths and landmark paths by recording (``detect``: a
    missing ``landmarks.scp`` is an empty one)."""
    video_scp, landmarks_scp = data_dir / "video.scp", data_dir / "landmarks.scp"
    if not video_scp.is_file():
        raise ExtractError(f"{video_scp} missing: run stage 1 (data preparation) first")
    if not landmarks_scp.is_file() and not detect:
        raise ExtractError(
            f"{landmarks_scp} missing: mouth ROIs need per-video 68-point landmarks; run stage 1 with the "
            "landmarks root (prepare_lrs --landmarks DIR; in the recipes, LRS3_LANDMARKS / LRS2_LANDMARKS in db.sh), "
            "or detect them with MediaPipe's face mesh (mome.bin.extract --landmarks detect; in the recipe, "
            "./run.sh --landmarks detect)"
        )
    videos = kaldi.read_table(video_scp)
    landmarks = kaldi.read_table(landmarks_scp) if landmarks_scp.is_file() else {}
    if (data_dir / "segments").is_file():
        utts = []
        for utt, value in kaldi.read_table(data_dir / "segments").items():
            fields = value.split()
            if len(fields) != 3:
                raise ExtractError(
                    f"{data_dir / 'segments'}: {utt}: expected '<recording> <start> <end>', got {value!r}"
                )
            utts.append(Utterance(utt, fields[0], float(fields[1]), float(fields[2])))
    else:
        utts = [Utterance(rec, rec, 0.0, None) for rec in videos]
    by_recording: dict[str, list[Utterance]] = {}
    for u in sorted(utts, key=lambda u: u.utt):
        by_recording.setdefault(u.recording, []).append(u)
    return dict(sorted(by_recording.items())), videos, landmarks


# --------------------------------------------------------------------------------------- one clip


def _open_clip(video: str, landmarks: str | None) -> tuple[MediaInfo, np.ndarray]:
    """Header checks and the clean landmarks (one row per frame of the header's count) of one recording, or Skip."""
    try:
        info = probe(video)
    except MediaError as e:
        raise Skip("corrupt-video", str(e)) from None
    if not info.has_audio:
        raise Skip("no-audio", f"{video}: no audio track")
    gap = info.audio_duration - info.duration
    if gap > MAX_AV_MISMATCH:
        raise Skip("video-shorter-than-audio", f"video {info.duration:.2f} s, audio {info.audio_duration:.2f} s")
    if -gap > MAX_AV_MISMATCH:
        raise Skip("audio-shorter-than-video", f"video {info.duration:.2f} s, audio {info.audio_duration:.2f} s")
    if landmarks is None:
        raise Skip("no-landmarks-file", "recording not in landmarks.scp")
    if not Path(landmarks).is_file():
        raise Skip("no-landmarks-file", f"{landmarks}: missing")
    try:
        points = read_landmarks(landmarks)
    except LandmarkError as e:
        raise Skip("bad-landmarks-file", str(e)) from None
    try:
        points = match_landmarks(points, info.num_frames, landmarks)
    except ValueError as e:
        raise Skip("landmark-frame-mismatch", str(e)) from None
    try:
        clean = prepare_landmarks(points)
    except RoiError as e:
        raise Skip("no-landmarks", f"{landmarks}: {e}") from None
    return info, clean


def match_landmarks(points: np.ndarray, frames: int, source: str = "") -> np.ndarray:
    """Landmarks made on a video's decoded frames, one row per frame of ``frames``: a frame or two of
    difference is cut, or padded with missing frames (the interpolation then holds the edge); past
    ``MAX_FRAME_MISMATCH`` a ValueError naming ``source``."""
    if abs(len(points) - frames) > MAX_FRAME_MISMATCH:
        raise ValueError(f"{source}: {len(points)} landmark frames, {frames} video frames")
    points = points[:frames]
    return np.concatenate([points, np.full((frames - len(points), *points.shape[1:]), np.nan, points.dtype)])


def _chunks(frames: Iterator[tuple[int, np.ndarray]], size: int) -> Iterator[tuple[int, tuple[np.ndarray, np.ndarray]]]:
    """(index of the first frame, (source indices, stacked frames)) of ``size`` frames at a time, from
    ``(source index, frame)`` pairs."""
    start, block = 0, []
    for item in frames:
        block.append(item)
        if len(block) == size:
            yield start, (np.array([i for i, _ in block]), np.stack([f for _, f in block]))
            start, block = start + size, []
    if block:
        yield start, (np.array([i for i, _ in block]), np.stack([f for _, f in block]))


def extract_recording(utts: list[Utterance], video: str, landmarks: str | None, dump: Path) -> Outcome:
    """Extract the unfinished utterances of one recording, streaming it (module docstring)."""
    todo = [u for u in utts if not is_done(dump, u.utt)]
    out = Outcome([], [u.utt for u in utts if u not in todo], [])
    if not todo:
        return out
    began = time.perf_counter()
    try:
        info, points = _open_clip(video, landmarks)
    except Skip as e:
        out.skipped = [(u.utt, str(e)) for u in todo]
        return out
    fps, total = VIDEO_FPS, output_frames(info)  # segments are cut on the 25 fps frames the reader gives
    spans = {}  # utt -> [first, last) frames
    for u in todo:
        first = max(0, round(u.start * fps))
        last = total if u.end is None else min(total, round(u.end * fps))
        if last <= first:
            out.skipped.append((u.utt, f"empty-segment: {u.start}-{u.end} s of a {total / fps:.2f} s video"))
        else:
            spans[u.utt] = (first, last)
    failed: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        rois = {utt: stack.enter_context(RoiWriter(roi_path(dump, utt), fps=fps)) for utt in spans}
        wavs = {utt: stack.enter_context(WavWriter(wav_path(dump, utt), SAMPLE_RATE)) for utt in spans}
        try:
            stream = FrameStream(video, gray=True)
            emitted = stream_rois(stream, points, spans, rois, failed, landmarks)
            if abs(stream.decoded - info.num_frames) > MAX_FRAME_MISMATCH:
                raise Skip("corrupt-video", f"decoded {stream.decoded} of {info.num_frames} frames")
            if stream.resampled:
                log.info(
                    "%s: frames resampled to %d fps by timestamp (the file: %g fps on average)",
                    video,
                    VIDEO_FPS,
                    stream.source_fps,
                )
                out.resampled.append(video)
            decoded = emitted
            spans = {utt: (first, min(last, decoded)) for utt, (first, last) in spans.items() if utt not in failed}
            for utt, (first, last) in list(spans.items()):
                if last <= first:
                    failed[utt] = f"empty-segment: frames {first}-{last} of {decoded} decoded"
                    del spans[utt]
            stream_wavs(video, VIDEO_FPS, spans, wavs)
        except Skip as e:
            failed.update({utt: str(e) for utt in rois})
        for utt in failed:  # the writers of the others are closed (renamed into place) on leaving the block
            rois[utt].discard()
            wavs[utt].discard()
    out.skipped += [(u.utt, failed[u.utt]) for u in todo if u.utt in failed]
    out.extracted = [u.utt for u in todo if u.utt in spans and u.utt not in failed]
    out.seconds = time.perf_counter() - began
    return out


def stream_rois(
    stream: FrameStream | str, points: np.ndarray, spans: dict, rois: dict, failed: dict, landmarks=None
) -> int:
    """Decode ``stream`` (a :class:`mome.data.media.FrameStream`, or a video path: upright frames at 25 fps with
    the decoded frame each one is) and crop each chunk of frames into the ROI writers (``rois``: utt -> RoiWriter) of
    the segments (``spans``: utt -> [first, last) frames at 25 fps) it overlaps, with the clean ``points`` of the
    decoded frames (T, 68, 2); returns the number of 25 fps frames. A segment whose crop fails (e.g. all
    stable points on one spot) lands in ``failed`` (utt -> reason, naming ``landmarks``); a decoding error
    raises Skip."""
    decoded = 0
    try:
        if not isinstance(stream, FrameStream):
            stream = FrameStream(stream, gray=True)
        for start, (sources, frames) in _chunks(stream, CHUNK_FRAMES):
            decoded = start + len(frames)
            marks = points[np.minimum(sources, len(points) - 1)]  # a frame or two past the landmarks: held
            for utt, (first, last) in spans.items():
                low, high = max(first, start), min(last, decoded)
                if utt in failed or low >= high:
                    continue
                try:
                    rois[utt].write(crop_mouths(frames[low - start : high - start], marks[low - start : high - start]))
                except (RoiError, np.linalg.LinAlgError) as e:
                    failed[utt] = f"bad-landmarks: {landmarks}: {e}"
    except UnsupportedMediaError as e:
        raise Skip("unsupported-video", str(e)) from None
    except MediaError as e:
        raise Skip("corrupt-video", str(e)) from None
    return decoded


def stream_wavs(video: str, fps: float, spans: dict, wavs: dict) -> None:
    """Each segment's samples (``spans``: utt -> [first, last) video frames at ``fps``) of the audio track of
    ``video`` into its wav writer (``wavs``: utt -> WavWriter), zero-padded where the track ends early."""
    bounds = {
        utt: (round(first / fps * SAMPLE_RATE), round(last / fps * SAMPLE_RATE)) for utt, (first, last) in spans.items()
    }
    end = max((stop for _, stop in bounds.values()), default=0)
    position = 0
    try:
        for chunk in iter_audio(video, SAMPLE_RATE):
            for utt, (begin, stop) in bounds.items():
                low, high = max(begin, position), min(stop, position + len(chunk))
                if low < high:
                    wavs[utt].write(chunk[low - position : high - position])
            position += len(chunk)
            if position >= end:
                break
    except MediaError as e:
        raise Skip("corrupt-video", str(e)) from None
    for utt, (begin, stop) in bounds.items():
        if wavs[utt].samples < stop - begin:
            wavs[utt].write(np.zeros(stop - begin - wavs[utt].samples, np.float32))


# ------------------------------------------------------------------------------------ jobs, merge


def _summary(extracted: int, skipped: list[tuple[str, str]], done: int | None = None) -> str:
    reasons = Counter(reason.split(":")[0] for _, reason in skipped)
    detail = ", ".join(f"{k}: {n}" for k, n in sorted(reasons.items()))
    kept = f" ({done} already done)" if done else ""
    return f"extracted {extracted}{kept}, skipped {len(skipped)}" + (f" ({detail})" if detail else "")


def skip_log(dump: Path, job: int, njobs: int) -> Path:
    return dump / "log" / f"skipped.{job}of{njobs}.txt"


class _Detector:
    """The landmark files of ``--landmarks detect``: one face mesh worker per job, started at the first
    recording that needs it and restarted after a failure."""

    def __init__(self, dump: Path):
        self.dump, self.face_mesh, self.detected, self.seconds = dump, None, 0, 0.0

    def landmarks(self, rec: str, video: str) -> str | None:
        """The detected landmark file of ``rec`` (made now unless it exists), or None when the video cannot be
        read (extract_recording then skips it with the reason)."""
        target = detected_landmarks_path(self.dump, rec)
        if target.is_file():
            return str(target)
        if self.face_mesh is None:
            self.face_mesh = FaceMesh()
        began = time.perf_counter()
        try:
            write_detected_landmarks(video, target, self.face_mesh)
        except MediaError:
            return None
        except FaceMeshError:
            self.close()  # a fresh worker for the next recording
            raise
        self.detected += 1
        self.seconds += time.perf_counter() - began
        return str(target)

    def close(self) -> None:
        if self.face_mesh is not None:
            self.face_mesh.close()
            self.face_mesh = None


def run_job(data_dir: str | Path, dump: str | Path, job: int = 1, njobs: int = 1, detect: bool = False) -> Outcome:
    """Extract shard ``job`` (1-based) of ``njobs``: every ``njobs``-th recording. ``detect``: recordings
    without a landmark file get one from the face mesh first (module docstring)."""
    data_dir, dump = Path(data_dir), Path(dump).resolve()
    if not 1 <= job <= njobs:
        raise ExtractError(f"--job must be in 1..--njobs ({njobs}), got {job}")
    by_recording, videos, landmarks = read_inputs(data_dir, detect)
    recordings = list(by_recording)[job - 1 :: njobs]
    detector = _Detector(dump) if detect else None
    if detect and any(rec in videos and rec not in landmarks for rec in recordings):
        try:
            face_mesh_python()
        except FaceMeshUnavailable as e:
            raise ExtractError(f"--landmarks detect: {e}") from None
    total = Outcome([], [], [])
    bar = dict(desc=f"extract {data_dir.name} {job}/{njobs}", unit="rec", file=sys.stderr, mininterval=10)
    for rec in progress(recordings, **bar):
        if rec not in videos:
            total.skipped += [(u.utt, "no-video: recording not in video.scp") for u in by_recording[rec]]
            continue
        try:
            marks = landmarks.get(rec)
            if detector is not None and marks is None and not all(is_done(dump, u.utt) for u in by_recording[rec]):
                marks = detector.landmarks(rec, videos[rec])
            one = extract_recording(by_recording[rec], videos[rec], marks, dump)
        except Exception as e:  # noqa: BLE001 - one recording must not stop the job: record it, go on
            log.exception("%s: extraction failed", videos[rec])
            reason = f"extract-failed: {videos[rec]}: {type(e).__name__}: {e}"
            one = Outcome([], [], [(u.utt, reason) for u in by_recording[rec] if not is_done(dump, u.utt)])
        total.extracted += one.extracted
        total.already_done += one.already_done
        total.skipped += one.skipped
        total.seconds += one.seconds
        total.resampled += one.resampled
    atomic.write_text(skip_log(dump, job, njobs), "".join(f"{utt} {reason}\n" for utt, reason in total.skipped))
    per_utt = f"; {total.seconds / len(total.extracted):.3f} s per utterance" if total.extracted else ""
    resampled = f"; {len(total.resampled)} videos resampled to {VIDEO_FPS} fps" if total.resampled else ""
    detected = ""
    if detector is not None:
        detector.close()
        if detector.detected:
            detected = (
                f"; landmarks detected for {detector.detected} recordings "
                f"({detector.seconds / detector.detected:.2f} s each)"
            )
    print(
        f"{data_dir} job {job}/{njobs}: "
        + _summary(len(total.extracted), total.skipped, len(total.already_done))
        + per_utt
        + resampled
        + detected,
        file=sys.stderr,
    )
    return total


def merge(data_dir: str | Path, dump: str | Path, detect: bool = False) -> tuple[list[str], list[tuple[str, str]]]:
    """Write wav.scp / roi.scp for the utterances with both files, log the others to skipped.txt
    (with the reason a job gave, once) and filter the data directory to the extracted ones. ``detect``: the
    detected landmark files join ``landmarks.scp``."""
    data_dir, dump = Path(data_dir), Path(dump).resolve()
    by_recording, videos, landmarks = read_inputs(data_dir, detect)
    utts = sorted(u.utt for us in by_recording.values() for u in us)
    done = [utt for utt in utts if is_done(dump, utt)]
    reasons: dict[str, str] = {}
    for path in sorted((dump / "log").glob("skipped.*.txt")):
        for line in path.read_text().splitlines():
            utt, _, reason = line.partition(" ")
            reasons[utt] = reason
    have = set(done)
    missing = [utt for utt in utts if utt not in have]
    skipped = [(utt, reasons.get(utt, "not-extracted: no output (was every --job run?)")) for utt in missing]
    if any(utt not in reasons for utt in missing):
        unexplained = sum(utt not in reasons for utt in missing)
        log.warning("%s: %d utterances have no output and no recorded reason", data_dir, unexplained)
    with kaldi.rewrite_data_dir(data_dir) as new:  # the data directory changes in one step
        kaldi.write_table(new / "wav.scp", {utt: wav_path(dump, utt) for utt in done})
        kaldi.write_table(new / "roi.scp", {utt: roi_path(dump, utt) for utt in done})
        if detect:
            found = {rec: detected_landmarks_path(dump, rec) for rec in videos if rec not in landmarks}
            table = {**landmarks, **{rec: path for rec, path in found.items() if path.is_file()}}
            kaldi.write_table(new / "landmarks.scp", dict(sorted(table.items())))
        logged = set(kaldi.read_skipped(new))
        kaldi.append_skipped(new, [s for s in skipped if (s[0], " ".join(s[1].split())) not in logged])
        kaldi.filter_data_dir(new, done)
    print(f"{data_dir}: " + _summary(len(done), skipped), file=sys.stderr)
    return done, skipped


def extract(data_dir: str | Path, dump: str | Path, detect: bool = False) -> tuple[list[str], list[tuple[str, str]]]:
    """All shards in this process, then the merge."""
    run_job(data_dir, dump, detect=detect)
    return merge(data_dir, dump, detect)
