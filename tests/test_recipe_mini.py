"""The mini_lrs3 recipe end to end through its shell entry point, in a copy of the recipe folder so that
the checkout's egs/ stays clean. The tiny corpus (20 clips) runs in CI; the default size is marked slow."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mome.data.kaldi import read_skipped, read_table
from mome.data.roi import read_roi
from mome.data.media import read_wav

REPO = Path(__file__).resolve().parents[1]
SETS = ("train", "val", "test") + tuple(f"test_babble_snr{n}" for n in (-5, 0, 5, 10, 15, 20))


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
    """Stages 3-5: a model, a decoding per trained rate pair and test condition, each scored, and RESULTS.md."""
    exp = recipe / "exp" / "mome"
    assert (exp / "valid.loss.ave.pth").is_file() or any(exp.glob("*.pth"))
    pairs = ("ra4_rv2", "ra4_rv5", "ra16_rv2", "ra16_rv5")
    for name in SETS[2:]:
        for pair in pairs:
            d = exp / f"decode_{name}_{pair}"
            assert set(read_table(d / "text")) == set(read_table(recipe / "data" / name / "text")), d
            assert "Sum/Avg" in (d / "score" / "result.txt").read_text()
    results = (recipe / "exp" / "RESULTS.md").read_text()
    assert "| model | (4,2) | (4,5) | (16,2) | (16,5) |" in results
    assert results.count("| mome |") == 7 and f"utterances: {n_test}," in results  # clean + 6 SNRs
    return results


def test_mini_recipe_stages_0_to_5_tiny(tmp_path):
    """The whole recipe on the 20-clip corpus, training only a few steps: every stage runs and writes its outputs."""
    recipe, corpus = recipe_copy(tmp_path), tmp_path / "corpus"
    run_recipe(recipe, corpus, "tiny", "--train_args", "--max_epoch 1 --num_iters_per_epoch 2",
               "--decode_args", "--beam_size 2 --max_new_tokens 8", timeout=600)  # fmt: skip
    counts = check_stage_outputs(recipe)
    check_results(recipe, counts["test"])
    assert counts["val"] == 2 and counts["test"] == 8 and counts["train"] == 10
    assert all(counts[f"test_babble_snr{n}"] == counts["test"] for n in (-5, 0, 5, 10, 15, 20))

    # resume: a second run of stage 2 redoes no finished utterance
    wavs = sorted((recipe / "dump").rglob("*.wav")) + sorted((recipe / "dump").rglob("*.mkv"))
    before = {p: p.stat().st_mtime_ns for p in wavs}
    run_recipe(recipe, corpus, "tiny", "--stage", "2", "--stop_stage", "2", timeout=300)
    assert {p: p.stat().st_mtime_ns for p in wavs} == before


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
