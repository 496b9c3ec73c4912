"""utils/parse_options.sh, utils/run_jobs.sh, and the recipe scripts' option handling and stage guards."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mome.data.kaldi import read_table
from mome.data.lrs import Transcript, write_lrs_txt
from tests.helpers.media import Clip, write_clip

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "utils"
ENV = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", LC_ALL="C")


def sh(cmd: list[str] | str, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=120, shell=isinstance(cmd, str)
    )


# ------------------------------------------------------------------------------- parse_options.sh

OPTS_SCRIPT = """#!/usr/bin/env bash
set -euo pipefail
stage=1
stop_stage=10
name=default
use_gpu=false
empty=
help_message="Usage: demo.sh [options] <a> <b>"
. {utils}/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage name=$name use_gpu=$use_gpu empty=$empty"
echo "args=$*"
"""


@pytest.fixture()
def demo(tmp_path):
    script = tmp_path / "demo.sh"
    script.write_text(OPTS_SCRIPT.format(utils=UTILS))
    script.chmod(0o755)
    return lambda *args: sh([str(script), *args])


def test_parse_options_sets_defined_variables(demo):
    r = demo("--stage", "3", "--stop-stage", "-5", "--name=a b", "--use_gpu", "true", "pos1", "--not-an-option")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "stage=3 stop_stage=-5 name=a b use_gpu=true empty=",
        "args=pos1 --not-an-option",
    ]
    r = demo("--empty", "x", "--", "--stage", "9")
    assert r.stdout.splitlines() == ["stage=1 stop_stage=10 name=default use_gpu=false empty=x", "args=--stage 9"]


def test_parse_options_help_and_errors(demo):
    r = demo("--help")
    assert (r.returncode, r.stdout.strip()) == (0, "Usage: demo.sh [options] <a> <b>")
    r = demo("--stage", "2", "--no-such-thing", "1")
    assert r.returncode == 1 and "unknown option --no_such_thing" in r.stderr and r.stdout == ""
    r = demo("--use_gpu", "yes")
    assert r.returncode == 1 and "--use_gpu takes true or false, got 'yes'" in r.stderr
    r = demo("--stage")
    assert r.returncode == 1 and "option --stage needs a value" in r.stderr


def test_parse_options_config_file(demo, tmp_path):
    conf = tmp_path / "x.conf"
    conf.write_text("stage=7\nname=from_conf\n")
    r = demo("--config", str(conf), "--stage", "8")
    assert r.stdout.splitlines()[0] == "stage=8 stop_stage=10 name=from_conf use_gpu=false empty="


# ------------------------------------------------------------------------------------ run_jobs.sh


def test_run_jobs_local_runs_every_job(tmp_path):
    r = sh([str(UTILS / "run_jobs.sh"), "JOB=1:4", "log/echo.JOB.log",
            "bash", "-c", "echo job JOB > out.JOB; echo said JOB"], cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    for j in range(1, 5):
        assert (tmp_path / f"out.{j}").read_text() == f"job {j}\n"
        log = (tmp_path / f"log/echo.{j}.log").read_text()
        assert f"said {j}\n" in log and "# Ended (code 0)" in log
    r = sh([str(UTILS / "run_jobs.sh"), "--max_jobs", "1", "single.log", "echo", "a b", "$HOME"], cwd=tmp_path)
    assert r.returncode == 0 and "\na b $HOME\n" in (tmp_path / "single.log").read_text()


def test_run_jobs_reports_failed_jobs(tmp_path):
    r = sh([str(UTILS / "run_jobs.sh"), "JOB=1:3", "log/x.JOB.log", "bash", "-c", "echo try JOB; test JOB != 2"],
           cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1
    assert "1 of 3 jobs failed, see: log/x.2.log" in r.stderr
    assert "# Ended (code 1)" in (tmp_path / "log/x.2.log").read_text()
    assert "# Ended (code 0)" in (tmp_path / "log/x.3.log").read_text()


def test_run_jobs_usage_errors(tmp_path):
    r = sh([str(UTILS / "run_jobs.sh"), "JOB=1:2", "log/same.log", "true"], cwd=tmp_path)
    assert r.returncode == 1 and "must contain JOB" in r.stderr
    r = sh([str(UTILS / "run_jobs.sh"), "--backend", "pbs", "x.log", "true"], cwd=tmp_path)
    assert r.returncode == 1 and "--backend must be local or slurm" in r.stderr


def test_run_jobs_slurm_calls_sbatch(tmp_path):
    # A stand-in sbatch: records its options and runs the wrapped script into the --output file.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(
        '#!/usr/bin/env bash\nargs="$*"; echo "${args//$\'\\n\'/;}" >> "$SBATCH_CALLS"\n'
        "while [ $# -gt 0 ]; do case $1 in "
        "--output) out=$2; shift 2;; --wrap) wrap=$2; shift 2;; *) shift;; esac; done\n"
        'bash -c "$wrap" > "$out" 2>&1\n'
    )
    (bin_dir / "sbatch").chmod(0o755)
    env = dict(ENV, PATH=f"{bin_dir}:{ENV['PATH']}", SBATCH_CALLS=str(tmp_path / "calls"))
    cmd = [str(UTILS / "run_jobs.sh"), "--backend", "slurm", "--gpu", "1", "--mem", "4G", "--time", "1:00:00",
           "JOB=1:2", "log/s.JOB.log", "bash", "-c", "echo slurm JOB; exit $((JOB - 1))"]  # fmt: skip
    r = sh(cmd, cwd=tmp_path, env=env)
    assert r.returncode == 1 and "1 of 2 jobs failed, see: log/s.2.log" in r.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 2
    assert all("--wait" in c and "--gres gpu:1" in c and "--mem 4G" in c and "--time 1:00:00" in c for c in calls)
    assert "slurm 1\n" in (tmp_path / "log/s.1.log").read_text()


# ------------------------------------------------------------------------------------- the recipes


def test_recipe_layout():
    for corpus in ("lrs3", "lrs2", "mini_lrs3"):
        d = REPO / "egs" / corpus / "avsr"
        assert os.readlink(d / "utils") == "../../../utils"
        assert (d / "utils" / "run_jobs.sh").is_file()
        for f in ("run.sh", "path.sh", "cmd.sh", "db.sh", "local/data.sh"):
            assert (d / f).is_file(), d / f
        assert os.access(d / "run.sh", os.X_OK) and os.access(d / "local/data.sh", os.X_OK)
    # LRS2 and LRS3 share one set of configs: each name in either conf/ is a link to the same file
    lrs2, lrs3 = (REPO / "egs" / c / "avsr" / "conf" for c in ("lrs2", "lrs3"))
    names = sorted(p.name for p in lrs3.iterdir())
    assert names == sorted(p.name for p in lrs2.iterdir()) and "train_mome.yaml" in names
    for name in names:
        assert (lrs2 / name).is_symlink() and (lrs2 / name).resolve() == (lrs3 / name).resolve(), name
        assert (lrs3 / name).resolve().parent == REPO / "egs/TEMPLATE/avsr/conf/lrs"
    # the template knows no corpus: no corpus name outside its comments, no layout option
    template = (REPO / "egs/TEMPLATE/avsr/avsr.sh").read_text()
    code = "\n".join(line.split("#")[0] for line in template.splitlines())
    assert not re.search(r"lrs[23]|mini|corpus_root|val_count|max_seconds", code, re.I), code


def test_real_recipe_fails_on_missing_corpus_path(tmp_path):
    d = REPO / "egs" / "lrs3" / "avsr"
    r = sh(["./run.sh", "--stop_stage", "1"], cwd=d, env=dict(ENV, LRS3=str(tmp_path / "nowhere")))
    assert r.returncode == 1
    assert f"corpus root '{tmp_path / 'nowhere'}' does not exist: set LRS3 in db.sh" in r.stderr
    assert "stage 1 failed (local/data.sh)" in r.stderr
    env = dict(ENV, LRS3=str(tmp_path), LRS3_LANDMARKS=str(tmp_path / "no_marks"))
    r = sh(["./run.sh", "--stop_stage", "1"], cwd=d, env=env)
    assert (
        r.returncode == 1 and f"landmarks root '{tmp_path / 'no_marks'}' does not exist: set LRS3_LANDMARKS" in r.stderr
    )
    assert not (d / "data").exists()


def test_training_stage_needs_extracted_data(tmp_path):
    d = REPO / "egs" / "lrs2" / "avsr"
    r = sh(["./run.sh", "--stage", "3", "--datadir", str(tmp_path / "data")], cwd=d)
    assert r.returncode == 1 and f"{tmp_path}/data/train has neither roi.scp nor wav.scp: run stage 2 first" in r.stderr
    assert not (d / "exp").exists()
    r = sh(["./run.sh", "--stage", "3", "--train_configs", "conf/nonexistent.yaml"], cwd=d)
    assert r.returncode == 1 and "training config 'conf/nonexistent.yaml' does not exist" in r.stderr
    r = sh(["./run.sh", "--help"], cwd=d)
    assert r.returncode == 0 and "--train_configs (conf/train_mome.yaml)" in r.stdout
    assert "--local_data_opts" in r.stdout and "--tag" in r.stdout
    r = sh(["local/data.sh", "--help"], cwd=d)  # stage 1's own options, with their defaults
    assert r.returncode == 0 and "--max_seconds (16)" in r.stdout and "--corpus_root (/path/to/LRS2)" in r.stdout


def test_training_stage_passes_the_inputs_each_set_has(tmp_path):
    """An audio-only training set (the mini recipe's speech set: wav.scp and text, no roi.scp) trains without
    video inputs; a set with both passes both (avsr_train then keeps what the config reads)."""
    recipe = tmp_path / "recipe"
    (recipe / "conf").mkdir(parents=True)
    (recipe / "utils").symlink_to(UTILS)
    (recipe / "conf/train_x.yaml").write_text("llm: tiny\n")
    for s, files in [("train_speech", ["wav.scp", "text"]), ("val", ["wav.scp", "roi.scp", "text"])]:
        (recipe / "data" / s).mkdir(parents=True)
        for f in files:
            (recipe / "data" / s / f).write_text("u1 x\n")
    runner = tmp_path / "runner.sh"  # the job runner: records the training command instead of running it
    runner.write_text(f'#!/usr/bin/env bash\necho "$@" >> {tmp_path}/commands\n')
    runner.chmod(0o755)
    template = [str(REPO / "egs/TEMPLATE/avsr/avsr.sh"), "--stage", "4", "--stop_stage", "4", "--features", "false"]
    opts = ["--gpu_cmd", str(runner), "--train_set", "train_speech", "--train_configs", "conf/train_x.yaml"]
    r = sh([*template, *opts], cwd=recipe)
    assert r.returncode == 0, r.stderr
    command = (tmp_path / "commands").read_text()
    data = re.findall(r"--(train|valid)_data_path_and_name_and_type (\S+)", command)
    assert data == [
        ("train", "data/train_speech/wav.scp,audio,sound"),
        ("train", "data/train_speech/text,text,text"),
        ("valid", "data/val/wav.scp,audio,sound"),
        ("valid", "data/val/roi.scp,video,roi"),
        ("valid", "data/val/text,text,text"),
    ]


def test_model_names_carry_the_train_args_or_the_tag(tmp_path):
    """exp/<config name without train_> followed by the --train_args (ESPnet's asr_tag), or --tag: stage 5 looks
    for the model stage 4 would have trained."""
    d = REPO / "egs" / "lrs2" / "avsr"
    exp = tmp_path / "exp"
    args = ["./run.sh", "--stage", "5", "--expdir", str(exp), "--datadir", str(tmp_path / "data")]
    r = sh([*args, "--train_args", "--max_epoch 5 --compressor_conf audio_rates=[4,16]"], cwd=d)
    assert r.returncode == 1, r.stderr
    assert f"{exp}/mome_max_epoch5_compressor_confaudio_rates4-16 does not exist: run stage 4 first" in r.stderr
    r = sh([*args, "--train_args", "--max_epoch 5", "--tag", "mine"], cwd=d)
    assert r.returncode == 1 and f"{exp}/mine does not exist: run stage 4 first" in r.stderr
    r = sh([*args, "--tag", "mine", "--train_configs", "conf/train_mome.yaml conf/train_llama_avsr.yaml"], cwd=d)
    assert r.returncode == 1 and "--tag names one model: give one --train_configs with it" in r.stderr
    r = sh([*args, "--landmarks", "/some/where"], cwd=d)
    assert r.returncode == 1 and "--landmarks is empty or 'detect', got '/some/where'" in r.stderr


def test_mini_corpus_generation_skips_an_existing_corpus(tmp_path):
    d = REPO / "egs" / "mini_lrs3" / "avsr"
    corpus = tmp_path / "mini"
    corpus.mkdir()
    (corpus / ".done").write_text("size=tiny seed=0\n")
    r = sh(["local/make_corpus.sh", "--size", "tiny", "--seed", "0", str(corpus)], cwd=d)
    assert r.returncode == 0, r.stderr
    assert "already holds the corpus" in r.stdout
    r = sh(["local/make_corpus.sh", "--size", "default", "--seed", "0", str(corpus)], cwd=d)
    assert r.returncode == 1 and "made with 'size=tiny seed=0'" in r.stderr


def test_stage1_is_the_recipes_local_data_sh(tmp_path):
    """The template runs the recipe's local/data.sh (here LRS3's, on a 3-clip corpus named by the recipe's db.sh)
    with --datadir, --nj and --local_data_opts, and validates what it wrote; without one it says so."""
    root = tmp_path / "lrs3"
    for rel, words in [("trainval/spkA/00001", "ONE"), ("trainval/spkB/00002", "TWO"), ("test/spkC/00003", "THREE")]:
        write_clip(root / f"{rel}.mp4", tmp_path / "lm" / f"{rel}.pkl", Clip("c", frames=8))
        write_lrs_txt(root / f"{rel}.txt", Transcript(words, "1", "x"))
    (root / "pretrain").mkdir()
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    (recipe / "utils").symlink_to(UTILS)
    template = [str(REPO / "egs/TEMPLATE/avsr/avsr.sh"), "--nj", "1", "--stop_stage", "1"]
    r = sh(template, cwd=recipe)
    assert r.returncode == 1 and "local/data.sh is missing: each recipe prepares its corpus there" in r.stderr
    (recipe / "local").symlink_to(REPO / "egs/lrs3/avsr/local")
    (recipe / "path.sh").symlink_to(REPO / "egs/lrs3/avsr/path.sh")
    (recipe / "db.sh").write_text(f"LRS3={root}\nLRS3_LANDMARKS={tmp_path / 'lm'}\n")
    r = sh([*template, "--local_data_opts", "--val_count 1 --seed 3"], cwd=recipe)
    assert r.returncode == 0, r.stderr
    assert "stage 1: data preparation" in r.stdout and "stage 1: done" in r.stdout
    assert read_table(recipe / "data/test/text") == {"spkC_00003": "three"}
    assert len(read_table(recipe / "data/val/text")) == 1 and len(read_table(recipe / "data/train/text")) == 1
    assert (recipe / "data/train/landmarks.scp").is_file()


def test_mini_help_generates_nothing(tmp_path):
    d = REPO / "egs" / "mini_lrs3" / "avsr"
    r = sh(["./run.sh", "--help"], cwd=d, env=dict(ENV, MINI_LRS3=str(tmp_path / "corpus")))
    assert r.returncode == 0 and "stage 1 generates the corpus" in r.stdout and "--train_configs" in r.stdout
    assert not (tmp_path / "corpus").exists()
