"""The mini_lrs3 recipe end to end through its shell entry point, in a copy of the recipe folder so that
the checkout's egs/ stays clean. The tiny corpus (20 clips) runs in CI; the default size is marked slow.
The fault-injection test kills the recipe with SIGKILL at seeded random moments over its whole run and
reruns it after each kill: it must end with an uninterrupted run's outputs."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import yaml

from mome.atomic import KILL_IN_SAVE
from mome.data.kaldi import read_skipped, read_table
from mome.data.media import read_wav
from mome.data.roi import read_roi

REPO = Path(__file__).resolve().parents[1]
SETS = ("train", "val", "test") + tuple(f"test_babble_snr{n}" for n in (-5, 0, 5))


def recipe_copy(tmp_path: Path) -> Path:
    egs = tmp_path / "egs"
    (egs / "mini_lrs3").mkdir(parents=True)
    (egs / "TEMPLATE").symlink_to(REPO / "egs" / "TEMPLATE")
    recipe = egs / "mini_lrs3" / "avsr"
    recipe.mkdir()
    for name in ("run.sh", "path.sh", "cmd.sh", "db.sh", "local", "conf", "utils"):
        (recipe / name).symlink_to(REPO / "egs" / "mini_lrs3" / "avsr" / name)
    return recipe


def run_recipe(recipe: Path, corpus: Path, size: str, *args: str, timeout: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", LC_ALL="C",
               MINI_LRS3=str(corpus), MINI_LRS3_SIZE=size)  # fmt: skip
    r = subprocess.run(["./run.sh", *args], cwd=recipe, env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def check_stage_outputs(recipe: Path) -> dict[str, int]:
    counts = {}
    for name in SETS:
        d = recipe / "data" / name
        text, wav, roi = read_table(d / "text"), read_table(d / "wav.scp"), read_table(d / "roi.scp")
        assert set(wav) == set(roi) == set(text) != set(), name
        counts[name] = len(text)
    # every clean clip made it through (the synthetic corpus has no broken clips)
    assert not read_skipped(recipe / "data" / "test")
    # one utterance read back: 16 kHz audio as long as its video, 96x96 uint8 mouth frames
    utt, wav_path = sorted(read_table(recipe / "data/test/wav.scp").items())[0]
    audio = read_wav(wav_path)
    rois = read_roi(read_table(recipe / "data/test/roi.scp")[utt])
    assert rois.shape[1:] == (96, 96) and rois.dtype.name == "uint8"
    assert abs(len(audio) / 16000 - len(rois) / 25) <= 1 / 25
    return counts


def check_results(recipe: Path, n_test: int) -> str:
    """Stages 3-7: the stand-ins, a model, a decoding per trained rate pair and test condition, each scored,
    RESULTS.md with its analysis section, and the plots."""
    exp = recipe / "exp"
    lm = exp / "pretrain_lm"
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "pretraining.json"} <= {
        p.name for p in lm.iterdir()
    }
    for modality in ("audio", "video"):
        assert (exp / f"pretrain_{modality}" / "encoder" / "model.safetensors").is_file()
    assert (recipe / "data/lang/phones.lexiconp.txt").is_file() and (recipe / "data/train/visemes").is_file()
    assert (exp / "mome" / "valid.loss.ave.pth").is_file()
    pairs = ("ra4_rv2", "ra4_rv5", "ra16_rv2", "ra16_rv5")
    for name in SETS[2:]:
        for pair in pairs:
            d = exp / "mome" / f"decode_{name}_{pair}"
            assert set(read_table(d / "text")) == set(read_table(recipe / "data" / name / "text")), d
            assert "Sum/Avg" in (d / "score" / "result.txt").read_text()
    results = (exp / "RESULTS.md").read_text()
    assert "| model | (4,2) | (4,5) | (16,2) | (16,5) |" in results
    # one WER row per test condition (clean + 3 SNRs), then one per rate pair in the compute table
    assert len(re.findall(r"^\| mome \| [\d.]+ \|", results, re.M)) == 4 and f"utterances: {n_test}," in results
    assert len(re.findall(r"^\| mome \| \(\d+,\d+\) \|", results, re.M)) == 4
    assert "### Routing of mome" in results
    for plot in ("wer_vs_compute.png", "routing_mome.png"):
        assert (exp / "plots" / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot
    return results


# ----------------------------------------------------------------------------- watched runs, outputs

TINY_ARGS = (
    "--tag",  # the model's folder, exp/mome, instead of a name made of the --train_args
    "mome",
    "--train_args",
    "--max_epoch 2 --num_iters_per_epoch 2",
    "--decode_args",
    "--beam_size 2 --max_new_tokens 8",
)
LOG_LINE = re.compile(r"^\S+ \((?:avsr|run|data)\.sh\) (.*)$")  # the stage scripts' own log lines, without the time


@dataclass
class Run:
    returncode: int
    seconds: float
    lines: list[tuple[float, str]]  # (seconds since the start, line)
    killed: bool = False
    killed_after: str = ""  # the last stage-script log line before the kill

    def markers(self) -> list[tuple[float, str]]:
        return [(t, m.group(1)) for t, line in self.lines if (m := LOG_LINE.match(line))]


@dataclass
class KillPoint:
    at: float  # seconds into the uninterrupted run
    marker: str  # the stage-script log line last printed before that moment ...
    delay: float  # ... and how long after it
    landed: str = field(default="")


def watched_run(
    recipe: Path,
    corpus: Path,
    size: str,
    *args: str,
    env: dict | None = None,
    kill: KillPoint | None = None,
    timeout: int = 1800,
) -> Run:
    """Run the recipe in its own process group; with ``kill``, SIGKILL the whole group ``kill.delay`` s after
    ``kill.marker`` is printed (if the run gets there and is still running)."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", LC_ALL="C",
               MINI_LRS3=str(corpus), MINI_LRS3_SIZE=size, **(env or {}))  # fmt: skip
    start = time.monotonic()
    proc = subprocess.Popen(["./run.sh", *args], cwd=recipe, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)  # fmt: skip
    lines: list[tuple[float, str]] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # paths of this copy of the recipe are written as <corpus> / <recipe>
            line = line.rstrip("\n").replace(str(corpus), "<corpus>").replace(str(recipe), "<recipe>")
            lines.append((time.monotonic() - start, line))
            m = LOG_LINE.match(line)
            if kill is not None and m and m.group(1) == kill.marker:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    killed = False
    if kill is not None:
        while not seen.wait(0.2) and proc.poll() is None:
            pass
        if seen.is_set():
            time.sleep(kill.delay)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    reader.join(timeout=30)
    run = Run(proc.returncode, time.monotonic() - start, lines, killed)
    run.killed_after = (run.markers() or [(0, "(nothing printed)")])[-1][1]
    return run


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _weights_digest(path: Path) -> str:
    """Digest of the tensors of a weights file; of checkpoint.pth, its model and optimiser state (its
    reporter holds wall-clock times)."""
    state = torch.load(path, map_location="cpu", weights_only=path.name != "checkpoint.pth")
    if path.name == "checkpoint.pth":
        state = {"model": state["model"], "optimizers": state["optimizers"]}
    h = hashlib.sha256()

    def add(value, key: str = "") -> None:
        if isinstance(value, torch.Tensor):
            h.update(key.encode())
            h.update(value.detach().contiguous().cpu().numpy().tobytes())
        elif isinstance(value, dict):
            for k in sorted(value, key=str):
                add(value[k], f"{key}/{k}")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                add(v, f"{key}/{i}")
        else:
            h.update(f"{key}={value!r}".encode())

    add(state)
    return h.hexdigest()[:16]


def is_temporary(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def final_outputs(recipe: Path, corpus: Path) -> dict[str, str]:
    """What a run leaves that later work reads, by path: every file of data/ (absolute paths made relative),
    the extracted media (digests), the weights (tensor digests, link targets), each decoding's hypotheses,
    skip log and scores, and RESULTS.md (its date line aside)."""
    places = {str(recipe.resolve()): "<recipe>", str(corpus.resolve()): "<corpus>"}

    def text(path: Path) -> str:
        content = path.read_text(encoding="utf-8")
        for place, name in places.items():
            content = content.replace(place, name)
        return content

    out = {}
    for path in sorted((recipe / "data").rglob("*")):
        if path.is_file() and not is_temporary(path, recipe):
            out[str(path.relative_to(recipe))] = text(path)
    for path in sorted((recipe / "dump").rglob("*")):
        if path.suffix in (".wav", ".mkv") and not is_temporary(path, recipe):  # Matroska holds a random UID: frames
            data = path.read_bytes() if path.suffix == ".wav" else read_roi(path).tobytes()
            out[str(path.relative_to(recipe))] = _digest(data)
    exp = recipe / "exp"
    for path in sorted(exp.glob("*/*.pth")):
        name = str(path.relative_to(recipe))
        out[name] = f"-> {os.readlink(path)}" if path.is_symlink() else _weights_digest(path)
    for path in sorted(exp.glob("*/decode_*/*")) + sorted(exp.glob("*/decode_*/score/*")):
        if path.is_file() and path.name in (
            "text",
            "skipped.txt",
            "wer",
            "result.txt",
            "result_raw.txt",
            "alignment.txt",
        ):
            out[str(path.relative_to(recipe))] = text(path)
    out["exp/RESULTS.md"] = "\n".join(
        line for line in text(exp / "RESULTS.md").splitlines() if not line.startswith("- date:")
    )
    return out


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One uninterrupted run of the whole recipe on the 20-clip corpus (shared by the tests below)."""
    tmp = tmp_path_factory.mktemp("tiny")
    recipe, corpus = recipe_copy(tmp), tmp / "corpus"
    run = watched_run(recipe, corpus, "tiny", *TINY_ARGS)
    assert run.returncode == 0, "\n".join(line for _, line in run.lines[-60:])
    return recipe, corpus, run, final_outputs(recipe, corpus)


def test_mini_recipe_stages_1_to_7_tiny(tiny_run):
    """The whole recipe on the 20-clip corpus, training only a few steps: every stage runs and writes its outputs."""
    recipe, corpus, _, _ = tiny_run
    counts = check_stage_outputs(recipe)
    check_results(recipe, counts["test"])
    assert counts["val"] == 2 and counts["test"] == 8 and counts["train"] == 10
    assert all(counts[f"test_babble_snr{n}"] == counts["test"] for n in (-5, 0, 5))
    # stage 3's speech set beside the training set: the audio-only training data of the real-weights warm-up
    data = recipe / "data"
    for name in ("wav.scp", "text", "utt2dur", "utt2spk", "phones"):
        both = read_table(data / "train_speech_set" / name)
        parts = {**read_table(data / "train" / name), **read_table(data / "speech_set" / name)}
        assert both == parts and len(both) == counts["train"] + 20, name

    # resume: a second run of stage 2 redoes no finished utterance (and changes no output)
    wavs = sorted((recipe / "dump").rglob("*.wav")) + sorted((recipe / "dump").rglob("*.mkv"))
    before = {p: p.stat().st_mtime_ns for p in wavs}
    outputs = final_outputs(recipe, corpus)
    run_recipe(recipe, corpus, "tiny", "--stage", "2", "--stop_stage", "2", timeout=300)
    assert {p: p.stat().st_mtime_ns for p in wavs} == before
    assert final_outputs(recipe, corpus) == outputs


def kill_points(reference: Run, count: int, seed: int) -> list[KillPoint]:
    """``count`` moments drawn one per equal slice of the uninterrupted run (seeded), each expressed as a
    stage-script log line and a delay after it, so that a rerun is killed at the same place in the work
    whatever the stages are called or numbered."""
    rng = random.Random(seed)
    markers = reference.markers()
    points = []
    for i in range(count):
        at = reference.seconds * (i + rng.random()) / count
        t, marker = [(t, m) for t, m in markers if t <= at][-1] if markers[0][0] <= at else markers[0]
        points.append(KillPoint(at, marker, max(0.0, at - t)))
    return points


def kill_and_resume(tiny_run, tmp_path: Path, count: int, seed: int, new_corpus: bool = True) -> list[KillPoint]:
    """A fresh copy of the recipe, killed at ``count`` seeded random moments and once inside the first
    checkpoint.pth save, rerun after each kill; its final outputs must equal the uninterrupted run's.
    ``new_corpus=False`` starts from a copy of the uninterrupted run's corpus (stage 1 then generates nothing)."""
    _, reference_corpus, reference, expected = tiny_run
    recipe, corpus = recipe_copy(tmp_path), tmp_path / "corpus"
    if not new_corpus:
        shutil.copytree(reference_corpus, corpus, symlinks=True)
    # first the kill inside a checkpoint save (the trainer kills the recipe half way through writing it: a
    # later kill might come after training has saved for the last time), then the random ones in time order
    in_save = KillPoint(float("nan"), "(MOME_KILL_IN_SAVE=checkpoint.pth)", 0.0)
    order = [in_save, *kill_points(reference, count, seed)]
    for point in order:
        if point is in_save:
            run = watched_run(recipe, corpus, "tiny", *TINY_ARGS, env={KILL_IN_SAVE: "checkpoint.pth"})
            assert run.returncode == -signal.SIGKILL, "\n".join(line for _, line in run.lines[-40:])
            point.landed = "inside checkpoint.pth save, in: " + run.killed_after
            continue
        # a rerun skips finished work and the machine's pace varies: when the rerun ends before the moment
        # comes (a point near the end), it is tried again sooner after its log line
        for delay in (point.delay, point.delay / 4):
            run = watched_run(recipe, corpus, "tiny", *TINY_ARGS, kill=KillPoint(point.at, point.marker, delay))
            log = "\n".join(line for _, line in run.lines[-40:])
            if run.killed:
                assert run.returncode == -signal.SIGKILL, log
                point.delay, point.landed = delay, run.killed_after
                break
            assert run.returncode == 0, log  # the rerun finished before the moment came
            point.landed = "(finished first)"
    final = watched_run(recipe, corpus, "tiny", *TINY_ARGS)
    assert final.returncode == 0, "\n".join(line for _, line in final.lines[-60:])
    report = "\n".join(
        f"kill at {p.at:6.1f} s ({p.delay:5.1f} s after '{p.marker[:60]}') landed in: {p.landed[:80]}" for p in order
    )
    print(report)
    (tmp_path / "kill_points.txt").write_text(report + "\n")
    got = final_outputs(recipe, corpus)
    differ = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
    assert not differ, f"{len(differ)} outputs differ from the uninterrupted run's, e.g. {differ[:10]}\n{report}"
    leftovers = [str(p.relative_to(recipe)) for p in (recipe / "data").rglob("*") if is_temporary(p, recipe)]
    leftovers += [str(p.relative_to(recipe)) for p in (recipe / "exp").glob("*/decode_*/.*")]
    assert not leftovers, leftovers
    return order


def test_killed_anywhere_resumed_same_result_tiny(tiny_run, tmp_path):
    """CI: 3 seeded random kills spread over the whole run plus one inside the first checkpoint save (the
    corpus taken from the uninterrupted run, to save its generation)."""
    points = kill_and_resume(tiny_run, tmp_path, count=3, seed=8, new_corpus=False)
    assert sum(p.landed != "(finished first)" for p in points) >= 3  # the kill in the save and 2 of the others


@pytest.mark.slow
def test_killed_anywhere_resumed_same_result_many_points(tiny_run, tmp_path):
    """The long version: 12 seeded random kills over the whole run plus one inside a checkpoint save."""
    points = kill_and_resume(tiny_run, tmp_path, count=12, seed=2026)
    assert sum(p.landed != "(finished first)" for p in points) >= 10


@pytest.mark.slow
def test_mini_recipe_default(tmp_path):
    """The README's main job: the default-size corpus through all stages (tens of minutes on 2 CPUs)."""
    recipe, corpus = recipe_copy(tmp_path), tmp_path / "corpus"
    run_recipe(recipe, corpus, "default", timeout=5400)
    counts = check_stage_outputs(recipe)
    check_results(recipe, counts["test"])
    stats = json.loads((corpus / "stats.json").read_text())
    assert stats["utterances"] == 2200 and stats["vocabulary"] >= 300 and stats["speakers"] >= 20
    assert counts["val"] == 200 and counts["train"] == 1800 and counts["test"] == 200


def corpus_wer(result: Path) -> float:
    """The WER (%) of an sclite result.txt (its Sum/Avg line's Err column)."""
    line = next(line for line in result.read_text().splitlines() if "Sum/Avg" in line)
    return float(line.replace("|", " ").split()[-2])


def test_recipe_learns_tiny(tmp_path):
    """The main job at a reduced size must learn: stand-ins pretrained on the 10 training clips (the LM on their
    sentences only), then MoME ASR-only trained on them; decoded on the same clips with its last weights (the
    validation clips are unseen speakers: the checkpoints best on them are the early ones), its WER at each audio
    rate is at most half that of the same model untrained (its adapters and projector at their initial weights:
    one step at learning rate 0). Fails when any part of the chain stops learning. Measured (65aa345): 0.0 %
    against 134.6 % at both rates."""
    recipe, corpus = recipe_copy(tmp_path), tmp_path / "corpus"
    conf = yaml.safe_load((REPO / "egs/mini_lrs3/avsr/conf/train_asr_mome.yaml").read_text())
    schedule = conf["scheduler_conf"]
    configs = {
        "learned": {
            "max_epoch": 8,
            "num_iters_per_epoch": 25,
            "batch_bins": 400,
            "scheduler_conf": {**schedule, "first_cycle_steps": 200, "warmup_steps": 20},
        },
        "untrained": {  # one step at learning rate 0 (the scheduler sets it)
            "max_epoch": 1,
            "num_iters_per_epoch": 1,
            "scheduler_conf": {**schedule, "first_cycle_steps": 2, "warmup_steps": 1, "max_lr": 0.0},
        },
    }
    for name, change in configs.items():
        (tmp_path / f"train_{name}.yaml").write_text(yaml.safe_dump({**conf, **change}))
    pretrain = (
        "--modalities audio --lm_args '--max_steps 300 --batch_size 8 --sentences data/train/text' "
        "--encoder_args '--max_epoch 6 --num_iters_per_epoch 20'"
    )
    run_recipe(
        recipe,
        corpus,
        "tiny",
        "--stop_stage",
        "6",
        "--test_sets",
        "train",
        "--noise",
        "",
        "--pretrain_args",
        pretrain,
        "--decode_args",
        "--beam_size 1 --checkpoint latest.pth",
        "--train_configs",
        " ".join(str(tmp_path / f"train_{name}.yaml") for name in configs),
        timeout=600,
    )
    wer = {
        (name, rate): corpus_wer(recipe / f"exp/{name}/decode_train_ra{rate}_rv0/score/result.txt")
        for name in configs
        for rate in (4, 16)
    }
    for rate in (4, 16):
        assert wer["learned", rate] <= 0.5 * wer["untrained", rate], wer
