"""One CLI vocabulary and one error path for every mome.bin entry point (mome.bin._cli)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import yaml

import mome.bin
from mome.bin._cli import add_hidden_aliases, entry_point
from mome.errors import MomeError

ENTRY_POINTS = sorted(m.name for m in pkgutil.iter_modules(mome.bin.__path__) if not m.name.startswith("_"))
# spellings the project no longer shows (ESPnet's: --data_dir, --model_dir, --output_dir, --dump_dir, --beam_size)
OLD = re.compile(r"--(data|model|out|out_root|dump|beam|num_beams|outdir|out_dir)(?![\w-])|--[a-z0-9]+-[a-z0-9-]+")


def help_text(name: str, capsys) -> str:
    module = importlib.import_module(f"mome.bin.{name}")
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_every_entry_point_is_found():
    assert {"extract", "make_noisy", "dump_features", "avsr_inference", "transcribe", "params", "flops"} <= set(
        ENTRY_POINTS
    )


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_help_uses_only_the_espnet_spellings(name, capsys):
    text = help_text(name, capsys)
    if name in ("avsr_train", "pretrain_encoder"):  # ESPnet's own parser: check our options, not its hundreds
        text = "\n".join(line for line in text.splitlines() if "--" in line and "model_conf" not in line)
    assert "usage:" in text or name in ("avsr_train", "pretrain_encoder")
    assert not OLD.findall(text), f"{name} --help shows old spellings {sorted(set(OLD.findall(text)))}"


def test_every_entry_point_reports_user_errors_through_the_wrapper():
    for name in ENTRY_POINTS:
        main = importlib.import_module(f"mome.bin.{name}").main
        assert getattr(main, "prog", None), f"mome.bin.{name}.main is not wrapped by mome.bin._cli.entry_point"


@pytest.mark.parametrize("old,new,argv", [
    ("--data", "--data_dir", ["--data", "d", "--dump", "x"]),
    ("--dump", "--dump_dir", ["--data_dir", "d", "--dump", "x"]),
])  # fmt: skip
def test_hidden_alias_reaches_the_new_option_and_is_not_in_help(old, new, argv):
    p = argparse.ArgumentParser(prog="x")
    p.add_argument("--data_dir", required=True)
    p.add_argument("--dump_dir", required=True)
    add_hidden_aliases(p, {"--data": "--data_dir", "--dump": "--dump_dir"})
    a = p.parse_args(argv)
    assert (a.data_dir, a.dump_dir) == ("d", "x")
    assert vars(p.parse_args(["--data=e", "--dump_dir", "y"])) == {"data_dir": "e", "dump_dir": "y"}
    help_ = p.format_help()
    assert new in help_ and not re.search(rf"{old}(?![\w])", help_)
    with pytest.raises(ValueError, match="no option --nope"):
        add_hidden_aliases(p, {"--x": "--nope"})
    with pytest.raises(ValueError, match="already an option"):
        add_hidden_aliases(p, {"--data_dir": "--dump_dir"})


def test_old_spellings_still_work_in_the_entry_points(tmp_path, capsys, monkeypatch):
    from mome.bin import dump_features, extract, flops, make_noisy, prepare_lrs, transcribe

    calls = {}
    monkeypatch.setattr(
        extract, "run_job", lambda data, dump, job, njobs, detect: calls.setdefault("extract", (data, dump))
    )
    monkeypatch.setattr(extract, "merge", lambda *a: None)
    assert extract.main(["--data", "data/x", "--dump", "dump/x"]) == 0
    monkeypatch.setattr(
        make_noisy, "make_noisy_copies", lambda data, noise, dump, snrs: calls.setdefault("noisy", (data, dump)) and []
    )
    assert make_noisy.main(["--data", "data/x", "--noise", "n.wav", "--dump", "dump"]) == 0
    monkeypatch.setattr(prepare_lrs, "prepare_lrs3", lambda root, out, *a: calls.setdefault("prepare", (out, a[1])))
    assert prepare_lrs.main(["--corpus", "lrs3", "--root", "r", "--out", "data", "--max-seconds", "8"]) == 0
    assert calls == {"extract": ("data/x", "dump/x"), "noisy": ("data/x", "dump"), "prepare": ("data", 8.0)}
    assert transcribe.get_parser().parse_args(["f.mp4", "--model", "exp/m"]).model_dir == "exp/m"
    with pytest.raises(SystemExit):  # still mutually exclusive with --dump_dir through its old spelling
        dump_features.main(["--config", "c", "--data_dir", "d", "--out", "o", "--dump_dir", "f"])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        flops.main(["--llm-config", "c.json", "--seconds", "0", "--rates", "4,2"])
    assert "--seconds must be > 0" in capsys.readouterr().err  # --llm-config was taken: the check ran


def test_a_mome_error_gives_prog_error_and_status_1(capsys):
    class Broken(MomeError, ValueError):
        pass

    @entry_point("python -m mome.bin.example")
    def main(argv=None):
        raise Broken("data/x/wav.scp: no such table (run stage 2)")

    assert main([]) == 1
    assert capsys.readouterr().err == "python -m mome.bin.example: error: data/x/wav.scp: no such table (run stage 2)\n"

    @entry_point("p")
    def bug(argv=None):
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        bug([])


def test_a_mome_error_of_a_real_entry_point(tmp_path, capsys):
    from mome.bin import extract, flops

    (tmp_path / "data").mkdir()
    assert extract.main(["--data_dir", str(tmp_path / "data"), "--dump_dir", str(tmp_path / "dump")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("python -m mome.bin.extract: error: ") and "data" in err, err
    assert flops.main(["--llm_config", str(tmp_path / "missing.json"), "--seconds", "1", "--rates", "4,2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mome-flops: error: ") and "missing.json" in err, err


@pytest.mark.parametrize(
    "path",
    sorted(Path(__file__).resolve().parents[1].glob("egs/*/avsr/conf/decode*.yaml")),
    ids=lambda p: f"{p.parts[-4]}/{p.name}",
)
def test_every_recipe_decoding_config_is_options_of_stage_5(path):
    from mome.bin import avsr_inference

    keys = set(yaml.safe_load(path.read_text()))
    args = avsr_inference.get_parser().parse_args(["--config", str(path)])  # an unknown key is refused
    assert keys <= set(vars(args)) and 0 <= args.ctc_weight <= 1 and args.beam_size >= 1
    if path.name == "decode_real.yaml":  # the real-weights models decode jointly with their CTC head
        assert args.ctc_weight > 0


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("ctc_weight:\n", "ctc_weight: None is not one value of its type"),
        ("ctc_weight: [0.5]\n", "ctc_weight: [0.5] is not one value of its type"),
        ("ctc_weight: true\n", "ctc_weight: True is not one value of its type"),
        ("ctc_weight: 1.5\n", "ctc_weight: 1.5: must be in [0, 1], got 1.5"),
        ("beam_size: 0.5\n", "beam_size: 0.5: invalid literal for int()"),
        ("beam_size:\n", "beam_size: None is not one value of its type"),
        ("dtype: float16\n", "dtype: 'float16' is not one of float32, bfloat16"),
    ],
)
def test_a_decoding_config_value_is_checked_as_on_the_command_line(tmp_path, capsys, yaml_text, message):
    from mome.bin import avsr_inference

    path = tmp_path / "decode.yaml"
    path.write_text(yaml_text)
    with pytest.raises(SystemExit) as exit_info:
        avsr_inference.get_parser().parse_args(["--config", str(path)])
    assert exit_info.value.code == 2
    assert f"error: --config: {message}" in capsys.readouterr().err


def test_decoding_config_values_take_the_options_types():
    from mome.bin import avsr_inference

    parser = avsr_inference.get_parser()
    parser.set_defaults(ctc_weight=1, beam_size=4, checkpoint=None, data_dir=["data/test"], dtype="bfloat16")
    args = parser.parse_args([])
    assert (args.ctc_weight, args.beam_size, args.checkpoint, args.data_dir, args.dtype) == (
        1.0,
        4,
        None,
        ["data/test"],
        "bfloat16",
    )
    assert type(args.ctc_weight) is float
    # the command line wins over the config, and gets the same check
    assert parser.parse_args(["--ctc_weight", "0.25"]).ctc_weight == 0.25
    with pytest.raises(SystemExit):
        parser.parse_args(["--ctc_weight", "nan"])


def test_unit_interval():
    import argparse

    from mome.bin._cli import unit_interval

    assert unit_interval("0") == 0.0 and unit_interval("1") == 1.0 and unit_interval("0.5") == 0.5
    for text, message in [("1.5", "must be in"), ("-0.1", "must be in"), ("nan", "must be in"), ("x", "expected")]:
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            unit_interval(text)
