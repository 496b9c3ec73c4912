"""Using a trained model: one object, in the manner of ESPnet's ``Speech2Text``.

:class:`AVSR2Text` loads a model from a training output directory (``exp/<model>``: ``config.yaml`` and a
checkpoint) or from a packed folder (``python -m mome.bin.pack_model``), and transcribes arrays, files of any
length, and batches, at any trained (audio rate, video rate) pair or at ``rates="auto"``
(:mod:`mome.cascade`). Stage 5 (``mome.bin.avsr_inference``) and ``mome-transcribe`` use it.

Rates are written ``(A, V)``; None (or 0 in text) stands for an absent modality.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml

from mome import cascade as cascade_lib
from mome.progress import progress

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "valid.loss.ave.pth"
SAMPLE_RATE = 16000
VIDEO_FPS = 25
SAMPLES_PER_FRAME = SAMPLE_RATE // VIDEO_FPS  # 640: pieces of a long file are cut on the video frame grid
MAX_ROI_SIDE = 128  # a frame this small is taken for a ready-made mouth ROI
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
PACK_MANIFEST = "manifest.json"
# config options that name files or directories: (section, key)
PATH_OPTIONS = (
    ("llm_conf", "path"), ("llm_conf", "config"), ("llm_conf", "tokenizer"), ("llm_conf", "tokenizer_dir"),
    ("llm_conf", "texts"), ("audio_encoder_conf", "path"), ("audio_encoder_conf", "config"),
    ("video_encoder_conf", "path"), ("video_encoder_conf", "config"),
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Rate pairs
# --------------------------------------------------------------------------------------------------
def parse_rates(text: str) -> tuple[int | None, int | None]:
    """``"4,2"`` -> (4, 2); ``"4,0"`` -> (4, None)."""
    try:
        audio, video = (int(x) for x in text.split(","))
    except ValueError:
        raise ValueError(
            f"rates must be 'A,V' (audio rate, video rate; 0 for an absent modality), got {text!r}"
        ) from None
    if audio < 0 or video < 0:
        raise ValueError(f"rates must not be negative, got {text!r}")
    return audio or None, video or None


def format_pair(pair) -> str:
    return f"{pair[0] or 0},{pair[1] or 0}"


# --------------------------------------------------------------------------------------------------
# Loading: a training output directory or a packed folder
# --------------------------------------------------------------------------------------------------
def resolve_checkpoint(model_dir: Path, checkpoint: str | Path | None) -> Path:
    """A checkpoint path as given, or relative to the model directory; a clear error if neither exists."""
    checkpoint = Path(checkpoint or DEFAULT_CHECKPOINT)
    for candidate in (checkpoint, model_dir / checkpoint):
        if candidate.is_file():
            return candidate
    found = sorted(p.name for p in model_dir.glob("*.pth")) if model_dir.is_dir() else []
    raise FileNotFoundError(
        f"checkpoint {model_dir / checkpoint} does not exist"
        + (
            f"; checkpoints in {model_dir}: {', '.join(found)}"
            if found
            else f" (no *.pth in {model_dir}: was the model trained?)"
        )
    )


def resolve_path(value: str, bases: Sequence[Path]) -> str:
    """A path option: ``$VAR`` expanded; a relative path is looked up under each of ``bases`` in turn, then
    from the working directory (the first that exists wins; else it stays as written, and the builder names
    it)."""
    expanded = os.path.expandvars(str(value))
    path = Path(expanded)
    if path.is_absolute() or "$" in expanded:
        return expanded
    for base in bases:
        if (base / path).exists():
            return str((base / path).absolute())
    return expanded


def read_config(model_dir: Path, bases: Sequence[Path] | None = None) -> argparse.Namespace:
    """``model_dir/config.yaml`` with its path options resolved (:func:`resolve_path`; default bases: the
    model directory, then the recipe directory of an ``exp/<model>`` layout, whose paths training wrote
    relative to; a packed model: its own folder only), then the working directory; the training-only babble
    noise file is dropped (decoding adds no noise)."""
    config = model_dir / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(
            f"training config {config} does not exist (is {model_dir} a training output directory or a packed model?)"
        )
    with open(config, encoding="utf-8") as f:
        args = argparse.Namespace(**yaml.safe_load(f))
    if bases is None:
        packed = (model_dir / PACK_MANIFEST).is_file()
        bases = [model_dir] if packed else [model_dir, model_dir.absolute().parent.parent]
    for section, key in PATH_OPTIONS:
        conf = getattr(args, section, None)
        if isinstance(conf, dict) and isinstance(conf.get(key), str):
            conf[key] = resolve_path(conf[key], bases)
    preprocess = getattr(args, "preprocessor_conf", None)
    if isinstance(preprocess, dict):
        preprocess.pop("noise", None)
    return args


def _load(model_dir: str | Path, checkpoint: str | Path | None = None, device: str = "cpu"):
    """(:class:`~mome.espnet.model.AVSRESPnetModel` in eval mode, its config, the checkpoint file) of a training
    output directory or a packed folder (its manifest names the checkpoint)."""
    from mome.espnet.task import AVSRTask

    model_dir = Path(model_dir)
    manifest = model_dir / PACK_MANIFEST
    if checkpoint is None and manifest.is_file():
        import json

        checkpoint = json.loads(manifest.read_text(encoding="utf-8"))["checkpoint"]
    args = read_config(model_dir)
    checkpoint = resolve_checkpoint(model_dir, checkpoint)
    model = AVSRTask.build_model(args)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(f"{checkpoint} does not fit the model of {model_dir / 'config.yaml'}: {e}") from None
    log.info("loaded %s with %s", model_dir / "config.yaml", checkpoint)
    return model.to(device).eval(), args, checkpoint


# --------------------------------------------------------------------------------------------------
# Media: mouth ROI of a video, long recordings cut at pauses
# --------------------------------------------------------------------------------------------------
def detect_landmarks(video_path: str | Path) -> np.ndarray:
    """``(T, 68, 2)`` float32 iBUG-68 landmarks of a video's decoded frames from MediaPipe's face mesh
    (:func:`mome.data.face_mesh.detect_landmarks`; NaN rows where no face is found). The one place that calls a
    detector. Without the face mesh environment, a ValueError naming the options that give landmarks and the
    command that makes the environment."""
    from mome.data.face_mesh import FaceMeshUnavailable
    from mome.data.face_mesh import detect_landmarks as detect

    try:
        return detect(video_path)
    except FaceMeshUnavailable as e:
        raise ValueError(
            f"{video_path}: the frames are not a mouth ROI; give --landmarks (68-point landmarks per frame; "
            f"landmarks= in AVSR2Text.transcribe_file) so that the mouth region can be cut out, or make the face "
            f"mesh environment that finds them: {e}"
        ) from None


def mouth_roi(video_path: str | Path, landmarks=None) -> np.ndarray:
    """uint8 ``(T, 96, 96)`` mouth ROI of a video as stage 2 cuts it: frames upright and at 25 fps
    (:func:`mome.data.media.decode_video`), the landmarks of the decoded frames (a file of any
    :mod:`mome.data.landmarks` layout, a ``(T, 68, 2)`` array, or None: detected, :func:`detect_landmarks`)
    cleaned (:func:`mome.data.roi.prepare_landmarks`) and taken at the frames kept. A video of frames at most
    128x128 without landmarks is taken for a ready-made ROI."""
    from mome.data.extract import match_landmarks
    from mome.data.landmarks import read_landmarks
    from mome.data.media import decode_video
    from mome.data.roi import crop_mouths, prepare_landmarks

    video = decode_video(video_path, gray=True)
    if landmarks is None:
        height, width = video.frames.shape[1:3]
        if max(height, width) <= MAX_ROI_SIDE:
            return video.frames
        try:
            landmarks = detect_landmarks(video_path)
        except ValueError as e:
            raise ValueError(f"{e} ({width}x{height} frames are not a mouth ROI)") from None
        if np.isnan(landmarks).all():
            raise ValueError(
                f"{video_path}: the face mesh found no face in any of its {len(landmarks)} frames ({width}x{height} "
                "frames are not a mouth ROI); give --landmarks (landmarks= in AVSR2Text.transcribe_file)"
            )
    points = read_landmarks(landmarks) if isinstance(landmarks, (str, Path)) else np.asarray(landmarks, np.float32)
    points = match_landmarks(
        points, video.decoded, str(landmarks if isinstance(landmarks, (str, Path)) else video_path)
    )
    return crop_mouths(video.frames, prepare_landmarks(points)[video.source_index])


def split_at_pauses(
    audio: np.ndarray | None, frames: int, max_seconds: float, min_seconds: float | None = None
) -> list[tuple[int, int]]:
    """Pieces ``[(first, end)]`` in video frames (25 / s; audio samples = 640 x frames) of a recording of
    ``frames`` frames, none longer than ``max_seconds``: each cut falls at the quietest 40 ms of the audio
    (energy smoothed over 200 ms) between ``min_seconds`` (default half of ``max_seconds``) and
    ``max_seconds`` after the piece's start, a pause where there is one; without audio, every
    ``max_seconds``."""
    longest = max(1, int(max_seconds * VIDEO_FPS))
    shortest = max(1, int((max_seconds / 2 if min_seconds is None else min_seconds) * VIDEO_FPS))
    if frames <= longest:
        return [(0, frames)]
    energy = None
    if audio is not None:
        usable = np.asarray(audio[: frames * SAMPLES_PER_FRAME], dtype=np.float64)
        usable = np.pad(usable, (0, frames * SAMPLES_PER_FRAME - len(usable)))
        energy = np.convolve((usable.reshape(frames, SAMPLES_PER_FRAME) ** 2).mean(axis=1), np.ones(5) / 5, mode="same")
    pieces, start = [], 0
    while frames - start > longest:
        lo, hi = start + shortest, start + longest
        cut = hi if energy is None else lo + int(np.argmin(energy[lo : hi + 1]))
        pieces.append((start, cut))
        start = cut
    pieces.append((start, frames))
    return pieces


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------
@dataclass
class Transcription:
    """What one call gives.

    - ``text``: the transcript (one line of words);
    - ``rates``: the (audio rate, video rate) pair whose hypothesis this is (None: an absent modality); for a
      long file cut into pieces at different pairs, the finest of them;
    - ``token_ids`` / ``token_log_probs``: the LLM tokens of the hypothesis and the natural-log probability the
      decoder gave each (the final <eos> included in the log-probabilities);
    - ``llm_input_tokens`` / ``llm_tflops``: the cost of the call by the project's accounting
      (:mod:`mome.models.accounting`): LLM input positions (prompt + transcript + <eos>, per decoded pair,
      summed over every pair the call decoded), and forward TFLOPs = 2 x the LLM parameters a token passes
      through x those positions (beam search does about ``beam_size`` times the work past the prompt;
      encoders, adapters and attention scores are not counted);
    - ``seconds``: input duration; ``tried``: the pairs decoded (``rates="auto"``); ``pieces``: the pieces of a
      long file, each a Transcription with its span (``start`` / ``end``, seconds).
    """

    text: str
    rates: tuple[int | None, int | None]
    token_ids: list[int] = field(default_factory=list)
    token_log_probs: list[float] = field(default_factory=list)
    llm_input_tokens: int = 0
    llm_tflops: float = 0.0
    seconds: float = 0.0
    tried: list[tuple[int | None, int | None]] = field(default_factory=list)
    pieces: list[Transcription] = field(default_factory=list)
    start: float = 0.0
    end: float = 0.0

    @property
    def confidence(self) -> float:
        """Geometric-mean token probability, in [0, 1] (:func:`mome.cascade.confidence`)."""
        return cascade_lib.confidence(self.token_log_probs)

    def to_dict(self) -> dict:
        body = asdict(self)
        body["rates"] = format_pair(self.rates)
        body["tried"] = [format_pair(p) for p in self.tried]
        body["confidence"] = self.confidence
        body["pieces"] = [{k: v for k, v in p.to_dict().items() if k != "pieces"} for p in self.pieces]
        return body


def clean_hypothesis(text: str) -> str:
    """One line of words: control characters dropped, whitespace runs made single spaces."""
    return " ".join("".join(c for c in text if c.isprintable() or c.isspace()).split())


# --------------------------------------------------------------------------------------------------
# The object
# --------------------------------------------------------------------------------------------------
class AVSR2Text:
    """A trained AVSR model for transcription (ESPnet's ``Speech2Text`` for this task).

    Examples:
        >>> avsr = AVSR2Text.from_pretrained("exp/mome", beam_size=4)  # doctest: +SKIP
        >>> avsr.trained_pairs  # doctest: +SKIP
        [(4, 2), (4, 5), (16, 2), (16, 5)]
        >>> result = avsr(audio=wave, video=roi, rates=(4, 2))  # doctest: +SKIP
        >>> result.text, result.confidence, result.llm_tflops  # doctest: +SKIP
        ('the cat sat on the mat', 0.81, 0.0004)
        >>> avsr.transcribe_file("talk.mp4", landmarks="talk.pkl", rates="auto").text  # doctest: +SKIP
    """

    def __init__(
        self,
        model,
        args: argparse.Namespace,
        beam_size: int = 4,
        max_new_tokens: int = 32,
        dtype: str = "float32",
        cascade: tuple[Sequence, float] | None = None,
        ctc_weight: float = 0.0,
    ):
        """``model``: an :class:`~mome.espnet.model.AVSRESPnetModel` (eval mode, on its device); ``args``: its
        training config; ``cascade``: ``(ladder, threshold)`` of ``rates="auto"`` (default: the model's
        calibration, else the cheapest and the finest pair at threshold 0.5); ``ctc_weight`` > 0: joint CTC / LLM
        decoding with the model's CTC head (:mod:`mome.models.ctc_prefix`; a model trained with a CTC loss)."""
        from mome.espnet.task import AVSRTask
        from mome.models.accounting import llm_forward_params

        if beam_size < 1 or max_new_tokens < 1:
            raise ValueError(f"beam_size and max_new_tokens must be positive, got {beam_size} and {max_new_tokens}")
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
        model.avsr.check_decoding_ctc_weight(ctc_weight)  # before any data is read
        self.model = model
        self.args = args
        self.model_dir: Path | None = None  # where from_pretrained found it, and its weights file
        self.checkpoint: Path | None = None
        self.beam_size = beam_size
        self.max_new_tokens = max_new_tokens
        self.dtype = dtype
        self.ctc_weight = ctc_weight
        self.preprocess = AVSRTask.build_preprocess_fn(args, train=False)
        self.flops_per_token = 2 * llm_forward_params(model.avsr.llm.hf)
        ladder, threshold = cascade or (cascade_lib.default_ladder(self.trained_pairs), 0.5)
        self.cascade_ladder = [self.check_pair(p) for p in ladder]
        self.cascade_threshold = cascade_lib.check_threshold(threshold)

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        device: str = "cpu",
        beam_size: int = 4,
        max_new_tokens: int = 32,
        checkpoint: str | Path | None = None,
        dtype: str = "float32",
        ctc_weight: float = 0.0,
    ) -> AVSR2Text:
        """Load a training output directory (``config.yaml`` + ``checkpoint``, default ``valid.loss.ave.pth``;
        relative paths in the config are found from the working directory, the model directory or the recipe
        directory above ``exp/``) or a packed folder (``python -m mome.bin.pack_model``). A calibrated
        ``cascade.json`` beside the config sets ``rates="auto"``."""
        model_dir = Path(model_dir)
        if not model_dir.is_dir():
            raise FileNotFoundError(f"model directory {model_dir} does not exist")
        model, args, checkpoint = _load(model_dir, checkpoint, device)
        avsr = cls(model, args, beam_size, max_new_tokens, dtype, cascade_lib.load_calibration(model_dir), ctc_weight)
        avsr.model_dir, avsr.checkpoint = model_dir, checkpoint
        return avsr

    # -- configuration -------------------------------------------------------------------------------
    @property
    def trained_pairs(self) -> list[tuple[int | None, int | None]]:
        """The (audio rate, video rate) pairs the model was trained at (None: an absent modality)."""
        return list(self.model.avsr.rate_pairs)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.model.avsr.modalities

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def check_pair(self, pair) -> tuple[int | None, int | None]:
        """The pair (a tuple, or ``"A,V"``) if the model was trained at it; else an error naming the trained pairs."""
        if isinstance(pair, str):
            pair = parse_rates(pair)
        pair = tuple(None if r in (None, 0) else int(r) for r in pair)
        if pair not in self.trained_pairs:
            raise ValueError(
                f"rate pair {format_pair(pair)} was not trained into this model; trained pairs (audio,video): "
                + " ".join(format_pair(p) for p in self.trained_pairs)
            )
        return pair

    def check_rates(self, rates):
        """A trained pair, or ``"auto"``."""
        return "auto" if isinstance(rates, str) and rates.strip().lower() == "auto" else self.check_pair(rates)

    def _autocast(self):
        if self.dtype == "bfloat16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- arrays --------------------------------------------------------------------------------------
    def __call__(self, audio: np.ndarray | None = None, video: np.ndarray | None = None, rates=(4, 2)) -> Transcription:
        """Transcribe one utterance.

        Args:
            audio: ``(samples,)`` float waveform at 16 kHz in [-1, 1] (the model's audio modality).
            video: ``(frames, 96, 96)`` uint8 mouth ROI at 25 fps, as stage 2 writes it (``roi.scp``), or any
                ``(frames, H, W)`` of at least 88x88 (the centre 88x88 is taken).
            rates: a trained (audio rate, video rate) pair, or ``"auto"`` (:mod:`mome.cascade`).
        """
        return self.transcribe_batch([{"audio": audio, "video": video}], rates)[0]

    def transcribe_batch(self, items: Sequence[dict], rates=(4, 2), budget: str | None = None) -> list[Transcription]:
        """Transcribe utterances together: ``items`` of ``{"audio": ..., "video": ...}`` as in :meth:`__call__`.
        ``budget="finest"`` caps the cascade (``rates="auto"``) at the finest pair's prompt cost of the batch."""
        from espnet2.train.collate_fn import CommonCollateFn

        rates = self.check_rates(rates)
        rows = []
        for i, item in enumerate(items):
            data = {}
            for modality in self.modalities:
                value = item.get(modality)
                if value is None:
                    raise ValueError(
                        f"the model reads {' and '.join(self.modalities)}: give {modality}= (item {i} has none)"
                    )
                data[modality] = np.asarray(value)
            extra = [m for m in ("audio", "video") if item.get(m) is not None and m not in self.modalities]
            if extra:
                raise ValueError(f"the model has no {extra[0]} encoder: leave {extra[0]}= out")
            data = self.preprocess(f"item{i}", data)
            rows.append((f"item{i}", {k: np.asarray(v, dtype=np.float32) for k, v in data.items()}))
        _, batch = CommonCollateFn()(rows)
        return self.decode_batch(batch, [rates], budget)[rates]

    def decode_batch(self, batch: dict[str, torch.Tensor], pairs: Sequence, budget: str | None = None) -> dict:
        """``{pair: [Transcription]}`` of a collated, preprocessed batch (``audio`` ``(B, samples)``,
        ``audio_lengths``, ``video`` ``(B, frames, 88, 88)``, ``video_lengths``), encoded once and decoded at
        every entry of ``pairs`` (trained pairs or ``"auto"``)."""
        pairs = [self.check_rates(p) for p in pairs]
        with torch.no_grad(), self._autocast():
            inputs = {
                k: v.to(self.device)
                for k, v in batch.items()
                if k in ("audio", "audio_lengths", "video", "video_lengths")
            }
            features = self.model.avsr.encode(**inputs)
            seconds = self._seconds(batch)
            return {
                p: (self._cascade(features, seconds, budget) if p == "auto" else self._decode(features, seconds, p))
                for p in pairs
            }

    @staticmethod
    def _seconds(batch) -> list[float]:
        if "audio_lengths" in batch:
            return [int(n) / SAMPLE_RATE for n in batch["audio_lengths"]]
        return [int(n) / VIDEO_FPS for n in batch["video_lengths"]]

    def _decode(self, features, seconds: Sequence[float], pair) -> list[Transcription]:
        out = []
        rows = self.model.avsr.decode_scored_from_features(
            features, pair, self.beam_size, self.max_new_tokens, self.ctc_weight
        )
        for row, s in zip(rows, seconds):
            log_probs = row["log_probs"].tolist()
            # LLM input positions; none for a model trained by CTC alone (it transcribes without the LLM)
            tokens = 0 if self.model.avsr.ctc_only else row["prompt_tokens"] + len(log_probs)
            text = clean_hypothesis(self.model.avsr.llm.detokenize(row["ids"]))
            out.append(
                Transcription(
                    text, pair, row["ids"].tolist(), log_probs, tokens, self.flops_per_token * tokens / 1e12, s, [pair]
                )
            )
        return out

    def _prompt_tokens(self, features, pair) -> list[int]:
        """LLM prompt positions per row at ``pair``, known before decoding (for cascade budgets)."""
        from mome.models.accounting import MARKER_TOKENS

        llm = self.model.avsr.llm
        instruction = len(llm.tokenizer(llm.instruction(self.modalities), add_special_tokens=False)["input_ids"])
        total = None
        for modality, rate in zip(("audio", "video"), pair):
            if rate is None:
                continue
            _, lengths = self.model.avsr.compressor(*features[modality], modality, rate)
            total = lengths + MARKER_TOKENS[modality] if total is None else total + lengths + MARKER_TOKENS[modality]
        return [int(n) + instruction + (llm.bos_id is not None) for n in total]

    def _cascade(self, features, seconds: Sequence[float], budget: str | None = None) -> list[Transcription]:
        """``rates="auto"``: :func:`mome.cascade.select`'s rule, decoding only what it needs."""
        ladder = cascade_lib.active_ladder(self.cascade_ladder, self.cascade_threshold)
        if budget not in (None, "finest"):
            raise ValueError(f"budget must be None or 'finest', got {budget!r}")
        n = len(seconds)
        results: list[Transcription | None] = [None] * n
        spent_tokens, tried = [0] * n, [[] for _ in range(n)]
        finest_prompts = self._prompt_tokens(features, self.cascade_ladder[-1]) if budget else None
        pending = list(range(n))
        for step, pair in enumerate(ladder):
            sub = (
                features
                if len(pending) == n
                else {m: (x[pending], lengths[pending]) for m, (x, lengths) in features.items()}
            )
            decoded = self._decode(sub, [seconds[i] for i in pending], pair)
            for i, d in zip(pending, decoded):
                spent_tokens[i] += d.llm_input_tokens
                tried[i].append(pair)
                results[i] = d
            if step == len(ladder) - 1:
                break
            following = ladder[step + 1]
            costs = [cascade_lib.move_cost(p, following == self.cascade_ladder[-1], self.max_new_tokens)
                     for p in self._prompt_tokens(sub, following)]  # fmt: skip
            allowance = cascade_lib.budget_allowance(finest_prompts, sum(spent_tokens)) if budget else None
            go = cascade_lib.fallbacks([d.confidence for d in decoded], self.cascade_threshold, costs, allowance)
            pending = [pending[j] for j in go]
            if not pending:
                break
        for i, r in enumerate(results):
            r.tried, r.llm_input_tokens = tried[i], spent_tokens[i]
            r.llm_tflops = self.flops_per_token * spent_tokens[i] / 1e12
        return results

    # -- files ---------------------------------------------------------------------------------------
    def read_file(self, path: str | Path, landmarks=None) -> dict[str, np.ndarray]:
        """The model's inputs from a media file: 16 kHz audio (a video's sound track, or an audio file) and
        the mouth ROI (:func:`mouth_roi`)."""
        from mome.data.media import read_audio, read_wav

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        audio_file = path.suffix.lower() in AUDIO_SUFFIXES
        if audio_file and "video" in self.modalities:
            raise ValueError(f"{path} is an audio file, but the model reads video too: give a video file")
        data = {}
        if "audio" in self.modalities:
            data["audio"] = read_wav(path, SAMPLE_RATE) if audio_file else read_audio(path)
        if "video" in self.modalities:
            data["video"] = mouth_roi(path, landmarks)
        return data

    def transcribe_file(
        self,
        path: str | Path,
        landmarks=None,
        rates=(4, 2),
        max_piece_seconds: float = 10.0,
        batch_size: int = 8,
        show_progress: bool = True,
    ) -> Transcription:
        """Transcribe a media file of any length: a video (mp4, ...; audio from its sound track) or, for an
        audio-only model, an audio file. A recording longer than ``max_piece_seconds`` (also held to the audio
        encoder's window) is cut at pauses (:func:`split_at_pauses`), the pieces are transcribed
        ``batch_size`` at a time (with a progress bar) and their texts joined; costs add up.
        ``landmarks``: 68-point landmarks of the video's frames (a file or a ``(T, 68, 2)`` array), needed
        unless the frames are a mouth ROI already or a face-mesh detector is installed."""
        rates = self.check_rates(rates)
        data = self.read_file(path, landmarks)
        frames = len(data["video"]) if "video" in data else -(-len(data["audio"]) // SAMPLES_PER_FRAME)
        window = getattr(self.model.avsr.encoders["audio"], "max_frames", None) if "audio" in self.modalities else None
        if window:
            max_piece_seconds = min(max_piece_seconds, window / 100)  # mel frames: 100 / s
        spans = split_at_pauses(data.get("audio"), frames, max_piece_seconds)
        items = [
            {
                m: (data[m][a * SAMPLES_PER_FRAME : b * SAMPLES_PER_FRAME] if m == "audio" else data[m][a:b])
                for m in data
            }
            for a, b in spans
        ]
        pieces: list[Transcription] = []
        groups = [list(range(i, min(i + batch_size, len(items)))) for i in range(0, len(items), batch_size)]
        bar = progress(
            total=len(items),
            desc=f"transcribing {Path(path).name}",
            unit="piece",
            disable=not show_progress or len(items) == 1,
        )
        with bar:
            for group in groups:
                pieces += self.transcribe_batch([items[i] for i in group], rates)
                bar.update(len(group))
        for piece, (a, b) in zip(pieces, spans):
            piece.start, piece.end = a / VIDEO_FPS, b / VIDEO_FPS
        if len(pieces) == 1:
            return pieces[0]
        finest = max((p.rates for p in pieces), key=cascade_lib.pair_cost_per_second)
        tried = list(dict.fromkeys(pair for p in pieces for pair in p.tried))
        return Transcription(
            " ".join(p.text for p in pieces if p.text), finest, [t for p in pieces for t in p.token_ids],
            [lp for p in pieces for lp in p.token_log_probs], sum(p.llm_input_tokens for p in pieces),
            sum(p.llm_tflops for p in pieces), sum(p.seconds for p in pieces), tried, pieces, 0.0, frames / VIDEO_FPS,
        )  # fmt: skip
