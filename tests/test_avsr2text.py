"""The inference object (mome.AVSR2Text): it gives stage 5's hypotheses, a packed model loads in a fresh process
from another folder with the same text, a 3-minute file is transcribed in pieces cut at pauses, the adaptive
rate (rates="auto") equals the fixed pairs at thresholds 0 and 1 and its budget never lets it cost more than
the finest pair, and mome-transcribe takes folders and writes JSON."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from mome import cascade
from mome.bin import avsr_inference, pack_model, transcribe
from mome.data.kaldi import read_table
from mome.data.media import write_mp4
from mome.data.roi import read_roi
from mome.inference import AVSR2Text, Transcription, split_at_pauses
from tests.helpers.espnet import train_tiny_model

PAIRS = [(4, 2), (4, 5), (16, 2), (16, 5)]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    return train_tiny_model(tmp_path_factory.mktemp("avsr2text"), test_clips=6)


@pytest.fixture(scope="module")
def avsr(trained):
    return AVSR2Text.from_pretrained(trained[0], beam_size=2, max_new_tokens=6)


def inputs(test_dir: Path, utt: str) -> dict:
    wav, roi = read_table(test_dir / "wav.scp")[utt], read_table(test_dir / "roi.scp")[utt]
    return {"audio": sf.read(wav, dtype="float32")[0], "video": read_roi(roi)}


def test_the_object_gives_stage_5s_hypotheses_confidences_and_costs(trained, avsr, tmp_path):
    exp, test_dir = trained
    out = tmp_path / "decode"
    assert avsr_inference.main(["--model_dir", str(exp), "--data_dir", str(test_dir),
                                "--rates", "16,5", "--beam_size", "2", "--max_new_tokens", "6", "--batch_size", "1",
                                "--output_dir", str(out)]) == 0  # fmt: skip
    stage5 = read_table(out / "text")
    confidences = {u: v.split() for u, v in read_table(out / "confidence").items()}
    assert sorted(stage5) == sorted(read_table(test_dir / "wav.scp"))
    per_token = avsr.flops_per_token
    for utt, text in stage5.items():
        result = avsr(**inputs(test_dir, utt), rates=(16, 5))
        assert isinstance(result, Transcription) and result.rates == (16, 5)
        assert result.text == text
        assert float(confidences[utt][0]) == pytest.approx(result.confidence, abs=1e-6)
        assert int(confidences[utt][1]) == result.llm_input_tokens
        # cost: the prompt (bos, 2 + 2 markers, ceil(frames / rate) tokens per modality, instruction) + hypothesis + eos
        assert len(result.token_log_probs) in (len(result.token_ids), len(result.token_ids) + 1)
        assert all(lp <= 0 for lp in result.token_log_probs) and 0 < result.confidence <= 1
        assert result.llm_tflops == pytest.approx(per_token * result.llm_input_tokens / 1e12)
    # batched, at every pair at once, the same as one by one
    utts = sorted(stage5)
    batch = avsr.transcribe_batch([inputs(test_dir, u) for u in utts[:1]], rates=(4, 2))
    assert batch[0].text == avsr(**inputs(test_dir, utts[0]), rates=(4, 2)).text
    assert avsr.trained_pairs == PAIRS
    with pytest.raises(ValueError, match="rate pair 4,3 was not trained into this model; trained pairs"):
        avsr(**inputs(test_dir, utts[0]), rates=(4, 3))
    with pytest.raises(ValueError, match="give video="):
        avsr(audio=inputs(test_dir, utts[0])["audio"])


def test_joint_ctc_decoding_is_refused_for_a_model_without_a_ctc_head(trained, avsr, capsys):
    assert avsr.model.avsr.ctc_blank is None and avsr.ctc_weight == 0  # trained without a CTC loss
    with pytest.raises(ValueError, match="ctc_weight 0.3: the model has no CTC head"):
        AVSR2Text(avsr.model, avsr.args, ctc_weight=0.3)
    with pytest.raises(ValueError, match=r"ctc_weight must be in \[0, 1\]"):
        AVSR2Text(avsr.model, avsr.args, ctc_weight=1.5)
    assert (
        avsr_inference.main(["--model_dir", str(trained[0]), "--data_dir", str(trained[1]), "--ctc_weight", "0.3"]) == 1
    )
    assert "ctc_weight 0.3: the model has no CTC head" in capsys.readouterr().err


def test_a_packed_model_loads_in_a_fresh_process_from_another_folder(trained, avsr, tmp_path):
    exp, test_dir = trained
    # a copy of the experiment and its tokenizer, removed after packing: the pack must need neither
    source = tmp_path / "recipe"
    shutil.copytree(exp.parent, source / "exp")
    config = yaml.safe_load((source / "exp" / "mome" / "config.yaml").read_text())
    shutil.copytree(config["llm_conf"]["tokenizer_dir"], source / "tok")
    config["llm_conf"]["tokenizer_dir"] = "tok"  # relative, as a recipe writes it (from the recipe folder)
    (source / "exp" / "mome" / "config.yaml").write_text(yaml.safe_dump(config))
    packed = tmp_path / "packed"
    assert pack_model.main([str(source / "exp" / "mome"), str(packed)]) == 0
    manifest = json.loads((packed / "manifest.json").read_text())
    assert manifest["checkpoint"] == "model.pth" and (packed / "model.pth").is_file()
    assert [(p["option"], p["copied"], p["path"]) for p in manifest["frozen"]] == [
        ("llm_conf.tokenizer_dir", True, "tokenizer")
    ]
    assert (packed / "tokenizer" / "tokenizer.json").is_file()
    elsewhere = tmp_path / "another" / "machine"
    shutil.copytree(packed, elsewhere)
    shutil.rmtree(source)
    shutil.rmtree(packed)

    utt = sorted(read_table(test_dir / "wav.scp"))[0]
    np.savez(tmp_path / "in.npz", **inputs(test_dir, utt))
    script = (
        "import json, sys, numpy as np; from mome import AVSR2Text\n"
        f"m = AVSR2Text.from_pretrained({str(elsewhere)!r}, beam_size=2, max_new_tokens=6)\n"
        f"x = np.load({str(tmp_path / 'in.npz')!r})\n"
        "print(json.dumps([m(audio=x['audio'], video=x['video'], rates=p).to_dict() for p in [(4, 2), (16, 5)]]))\n"
    )
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    fresh = json.loads(run.stdout.strip().splitlines()[-1])
    for got, pair in zip(fresh, [(4, 2), (16, 5)]):
        want = avsr(**inputs(test_dir, utt), rates=pair)
        assert got["text"] == want.text and got["token_ids"] == want.token_ids
        assert got["token_log_probs"] == pytest.approx(want.token_log_probs, abs=1e-5)
        assert got["llm_input_tokens"] == want.llm_input_tokens
    with pytest.raises(FileExistsError):
        from mome.packing import pack_model as pack

        pack(exp, elsewhere)


def test_pauses_are_where_long_recordings_are_cut():
    rng = np.random.default_rng(0)
    frames = 25 * 60
    audio = 0.3 * rng.standard_normal(frames * 640).astype(np.float32)
    quiet = [(170, 180), (370, 385), (560, 570), (760, 765), (970, 980), (1170, 1180), (1370, 1380)]  # every ~8 s
    for a, b in quiet:
        audio[a * 640 : b * 640] = 0.0
    spans = split_at_pauses(audio, frames, max_seconds=10.0)
    assert spans[0][0] == 0 and spans[-1][1] == frames
    assert all(b == c for (_, b), (c, _) in zip(spans, spans[1:]))  # contiguous
    assert all(0 < b - a <= 250 for a, b in spans)
    for _, cut in spans[:-1]:  # every cut is inside a pause
        assert any(a <= cut <= b for a, b in quiet), (cut, spans)
    assert split_at_pauses(None, 600, 10.0) == [(0, 250), (250, 500), (500, 600)]
    assert split_at_pauses(audio, 100, 10.0) == [(0, 100)]


def test_a_three_minute_file_is_transcribed_in_pieces(avsr, tmp_path, capsys):
    seconds = 180
    rng = np.random.default_rng(3)
    t = np.arange(seconds * 16000) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    pauses = [(s, s + 0.4) for s in np.arange(7.0, seconds, 7.3)]  # a pause every 7.3 s
    for a, b in pauses:
        audio[int(a * 16000) : int(b * 16000)] = 0.0
    video = rng.integers(0, 256, (seconds * 25, 96, 96), dtype=np.uint8)
    path = tmp_path / "talk.mp4"
    write_mp4(path, video, audio=audio)
    result = avsr.transcribe_file(path, rates=(16, 5), max_piece_seconds=10.0)
    assert len(result.pieces) >= 18
    assert result.pieces[0].start == 0 and result.pieces[-1].end == pytest.approx(seconds, abs=0.1)
    assert all(p.end - p.start <= 10.0 for p in result.pieces)
    for piece in result.pieces[:-1]:  # cut inside a pause
        assert any(a - 0.1 <= piece.end <= b + 0.1 for a, b in pauses), piece.end
    assert result.text == " ".join(p.text for p in result.pieces if p.text)
    assert result.llm_input_tokens == sum(p.llm_input_tokens for p in result.pieces)
    assert result.seconds == pytest.approx(seconds, abs=0.1)
    # each piece is what the object gives on that span alone
    data = avsr.read_file(path)
    third = result.pieces[2]
    a, b = round(third.start * 25), round(third.end * 25)
    alone = avsr(audio=data["audio"][a * 640 : b * 640], video=data["video"][a:b], rates=(16, 5))
    assert alone.text == third.text
    assert "transcribing talk.mp4" in capsys.readouterr().err  # the progress bar


def test_the_cascade_equals_the_fixed_pairs_at_thresholds_0_and_1_and_its_budget_holds(trained, avsr):
    exp, test_dir = trained
    utts = sorted(read_table(test_dir / "wav.scp"))
    items = [inputs(test_dir, u) for u in utts]
    fixed = {p: avsr.transcribe_batch(items, p) for p in PAIRS}
    ladder = avsr.cascade_ladder
    assert ladder == [(16, 5), (4, 2)]  # cheapest, finest
    saved = avsr.cascade_threshold
    try:
        for threshold, pair in ((0.0, (16, 5)), (1.0, (4, 2))):
            avsr.cascade_threshold = threshold
            auto = avsr.transcribe_batch(items, "auto")
            for a, f in zip(auto, fixed[pair]):
                assert (a.text, a.rates, a.tried, a.llm_input_tokens, a.llm_tflops) == (
                    f.text,
                    pair,
                    [pair],
                    f.llm_input_tokens,
                    f.llm_tflops,
                )
        cheap, fine = fixed[(16, 5)], fixed[(4, 2)]
        confidences = sorted(c.confidence for c in cheap)
        for threshold in [0.0, confidences[1] + 1e-9, confidences[3] + 1e-9, 0.999, 1.0]:
            avsr.cascade_threshold = threshold
            auto = avsr.transcribe_batch(items, "auto")
            capped = avsr.transcribe_batch(items, "auto", budget="finest")
            for a, c, f in zip(auto, cheap, fine):
                fell = 0 < threshold < 1 and c.confidence < threshold
                assert a.text == (f.text if fell or threshold == 1 else c.text)
                expected = (
                    (c.llm_input_tokens + f.llm_input_tokens) if fell else (f if threshold == 1 else c).llm_input_tokens
                )
                assert a.llm_input_tokens == expected
            # with the budget, the batch never costs more than the finest pair, and the pure rule chose the same
            assert sum(r.llm_input_tokens for r in capped) <= sum(f.llm_input_tokens for f in fine)
            decoded = {p: [cascade.Decoded(r.text, r.confidence, r.llm_input_tokens, r.llm_input_tokens,
                                           r.llm_input_tokens - len(r.token_log_probs)) for r in fixed[p]]
                       for p in ladder}  # fmt: skip
            chosen = cascade.select(decoded, ladder, threshold, budget="finest", max_new_tokens=avsr.max_new_tokens)
            assert [decoded[p][i].text for i, (p, _, _) in enumerate(chosen)] == [r.text for r in capped]
            assert [cost for _, _, cost in chosen] == [r.llm_input_tokens for r in capped]
            assert [t for _, t, _ in cascade.select(decoded, ladder, threshold)] == [r.tried for r in auto]
    finally:
        avsr.cascade_threshold = saved


def test_select_never_costs_more_than_the_finest_pair_under_its_budget():
    rng = np.random.default_rng(0)
    ladder = [(16, 5), (16, 2), (4, 2)]
    n = 50
    prompt = {(16, 5): 30, (16, 2): 45, (4, 2): 70}

    def hyp(p, i):
        tokens = prompt[p] + int(rng.integers(1, 8))
        return cascade.Decoded(f"{p}{i}", float(rng.uniform()), float(tokens), tokens, prompt[p])

    decoded = {p: [hyp(p, i) for i in range(n)] for p in ladder}
    finest = sum(d.cost for d in decoded[(4, 2)])
    for t in np.linspace(0, 1, 21):
        capped = cascade.select(decoded, ladder, t, budget="finest", max_new_tokens=8)
        assert sum(c for _, _, c in capped) <= finest
        assert all(tried == ladder[: len(tried)] or (t == 1 and tried == [(4, 2)]) for _, tried, _ in capped)
        free = cascade.select(decoded, ladder, t)
        assert all(len(a[1]) <= len(b[1]) for a, b in zip(capped, free))  # the budget only ever holds fallbacks back
    assert sum(c for _, _, c in cascade.select(decoded, ladder, 0.9)) > finest  # without it, it can cost more
    assert all(p == (16, 5) for p, _, _ in cascade.select(decoded, ladder, 0.0))
    assert [c for _, _, c in cascade.select(decoded, ladder, 1.0)] == [d.cost for d in decoded[(4, 2)]]
    assert cascade.confidence([]) == 0.0 and cascade.confidence([0.0, 0.0]) == 1.0
    with pytest.raises(ValueError, match="cascade threshold must be in"):
        cascade.check_threshold(1.5)


def test_calibration_is_stored_with_the_model_and_read_back(trained, tmp_path):
    exp, _ = trained
    ladder = [(16, 5), (4, 2)]
    refs = ["a b", "c d", "e f", "g h"]
    D = cascade.Decoded
    decoded = {
        (16, 5): [D("a b", 0.9, 1.0), D("x d", 0.2, 1.0), D("e f", 0.8, 1.0), D("y", 0.3, 1.0)],
        (4, 2):  [D("a b", 0.9, 3.0), D("c d", 0.9, 3.0), D("e f", 0.9, 3.0), D("g h", 0.9, 3.0)],
    }  # fmt: skip
    threshold, points = cascade.calibrate(decoded, refs, ladder, max_cost_share=0.9, grid=[0.0, 0.25, 0.5, 1.0])
    assert threshold == 0.5  # both unreliable ones fall back: WER 0 at (4 + 2 x 3) / 4 = 2.5 <= 0.9 x 3
    assert [p.wer for p in points] == [37.5, 25.0, 0.0, 0.0]  # "x d": 1 error, "y": 2, of 8 words
    model = tmp_path / "model"
    shutil.copytree(exp, model, symlinks=True)
    cascade.save_calibration(model, ladder, threshold)
    assert AVSR2Text.from_pretrained(model).cascade_threshold == 0.5
    (model / "cascade.json").write_text("{}")
    with pytest.raises(ValueError, match="not a cascade calibration"):
        AVSR2Text.from_pretrained(model)


def test_mome_transcribe_takes_a_folder_and_writes_text_or_json(trained, avsr, tmp_path, capsys, monkeypatch):
    exp, _ = trained
    rng = np.random.default_rng(1)
    folder = tmp_path / "videos"
    for name in ("b", "a"):
        write_mp4(folder / f"{name}.mp4", rng.integers(0, 256, (25, 96, 96), dtype=np.uint8),
                  audio=(0.3 * np.sin(np.arange(16000) / 5)).astype(np.float32))  # fmt: skip
    (folder / "notes.txt").write_text("not media")
    argv = [str(folder), "--model_dir", str(exp), "--rates", "16,5", "--beam_size", "2", "--max_new_tokens", "4"]
    assert transcribe.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [str(folder / "a.mp4"), str(folder / "b.mp4")]
    expected = AVSR2Text.from_pretrained(exp, beam_size=2, max_new_tokens=4).transcribe_file(
        folder / "a.mp4", rates=(16, 5)
    )
    assert lines[0] == f"{folder / 'a.mp4'} {expected.text}".rstrip()
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"no video")
    load = AVSR2Text.from_pretrained

    def chatty(*args, **kwargs):  # ESPnet prints to stdout when the model's modules first load
        print("Failed to import Flash Attention, using ESPnet default")
        return load(*args, **kwargs)

    monkeypatch.setattr(AVSR2Text, "from_pretrained", staticmethod(chatty))
    assert transcribe.main([*argv, str(broken), "--output_format", "json", "--rates", "auto"]) == 1
    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["file"] for r in rows] == [str(folder / "a.mp4"), str(folder / "b.mp4"), str(broken)]
    assert {"text", "rates", "confidence", "llm_input_tokens", "llm_tflops", "tried"} <= set(rows[0])
    assert rows[0]["rates"] in ("16,5", "4,2") and 0 <= rows[0]["confidence"] <= 1 and "error" in rows[2]
    assert "broken.mp4" in captured.err and "Flash Attention" in captured.err  # stdout: the JSON lines alone


def test_calibration_decodes_are_reused_until_the_checkpoint_changes(trained, tmp_path, monkeypatch):
    """calibrate_cascade caches a data directory's decodes; a model retrained in place (a new checkpoint file)
    must be decoded again, not scored from the old model's hypotheses."""
    from mome.bin import calibrate_cascade
    from mome.espnet import inference as stage5

    exp, test_dir = trained
    model_dir = tmp_path / "model"
    shutil.copytree(exp, model_dir)
    calls = []
    real = stage5.decode_data_dir
    monkeypatch.setattr(stage5, "decode_data_dir", lambda *a, **k: calls.append(1) or real(*a, **k))
    pairs = [(16, 5)]
    cache = tmp_path / "decodes.json"

    def decode():
        avsr = AVSR2Text.from_pretrained(model_dir, beam_size=1, max_new_tokens=3)
        return calibrate_cascade.decode_set(avsr, test_dir, pairs, cache, batch_size=4)

    first = decode()
    assert decode() == first and len(calls) == 1  # the same model: reused
    weights = model_dir / "valid.loss.ave.pth"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # "retrained"
    assert decode()["utts"] == first["utts"] and len(calls) == 2
