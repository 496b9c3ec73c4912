"""WER scoring: our aligner and sclite-layout reports against hand-computed numbers, against NIST sclite
itself (skipped where SCTK is not installed), and against jiwer; RESULTS.md from a fake exp tree."""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from pathlib import Path

import jiwer
import pytest

from mome.scoring.align import ErrorCounts, align_words
from mome.scoring.report import (
    ScoredUtterance,
    counts_from_raw,
    format_summary,
    format_wer_line,
    parse_summary,
)
from mome.scoring.results import collect_results, format_results_md, parse_decode_dir_name
from mome.scoring.score import ScliteError, find_sclite, score
from mome.scoring.texts import (
    ScoringInputError,
    Utterance,
    format_trn,
    load_utterances,
    sclite_speaker_labels,
    trn_id,
)

REPO = Path(__file__).resolve().parents[1]
SCLITE = find_sclite()
needs_sclite = pytest.mark.skipif(SCLITE is None, reason="sclite (SCTK) not installed")

# A small test set, hand-checked: 15 reference words, 1 sub, 4 del, 3 ins, 4 of 5 sentences wrong.
REF = """spkA_00001 THE CAT SAT ON THE MAT
spkA_00002 HELLO WORLD
spkB_00001 A B C D
spkB_00002 {LG}
spkC_00001 X Y Z
"""
HYP = """spkA_00001 the cat sit on mat
spkA_00002 hello there world
spkB_00001 a b c d
spkB_00002 foo bar
spkC_00001
"""
EXPECTED_TABLE = """


                     SYSTEM SUMMARY PERCENTAGES by SPEAKER                      

       ,----------------------------------------------------------------.
       |                            hyp.trn                             |
       |----------------------------------------------------------------|
       | SPKR   | # Snt # Wrd | Corr    Sub    Del    Ins    Err  S.Err |
       |--------+-------------+-----------------------------------------|
       | spka   |    2      8 | 75.0   12.5   12.5   12.5   37.5  100.0 |
       |--------+-------------+-----------------------------------------|
       | spkb   |    2      4 |100.0    0.0    0.0   50.0   50.0   50.0 |
       |--------+-------------+-----------------------------------------|
       | spkc   |    1      3 |  0.0    0.0  100.0    0.0  100.0  100.0 |
       |================================================================|
       | Sum/Avg|    5     15 | 66.7    6.7   26.7   20.0   53.3   80.0 |
       |================================================================|
       |  Mean  |  1.7    5.0 | 58.3    4.2   37.5   20.8   62.5   83.3 |
       |  S.D.  |  0.6    2.6 | 52.0    7.2   54.5   26.0   33.1   28.9 |
       | Median |  2.0    4.0 | 75.0    0.0   12.5   12.5   50.0  100.0 |
       `----------------------------------------------------------------'
"""


def ops(ref: str, hyp: str) -> str:
    return "".join(op for op, _, _ in align_words(ref.split(), hyp.split()).ops)


def scored(utts: list[Utterance]) -> list[ScoredUtterance]:
    return [ScoredUtterance(u, align_words(u.ref, u.hyp)) for u in utts]


# ------------------------------------------------------------------ hand-computed (no sclite needed)


@pytest.mark.parametrize(
    "ref,hyp,expected",
    [
        ("a b c", "a b c", "CCC"),
        ("", "x y", "II"),  # insertions only, empty reference
        ("x y", "", "DD"),  # deletions only, empty hypothesis
        ("", "", ""),
        ("a b c", "d e a", "SSS"),  # ties with 1 correct + 2 del + 2 ins (cost 12): the diagonal wins
        ("a b", "b a", "DCI"),  # deletion first, insertion last: ties prefer insertions near the end
        ("a b c d", "c d e f", "DDCCII"),  # cost 12 beats 4 substitutions (16)
        ("a a a", "a a", "DCC"),  # repeated words: the first one is the deleted one
        ("x1 x2 x3 a b", "a b y1 y2 y3", "DDDCCIII"),  # 6 errors, cost 18; 5 substitutions cost 20
    ],
)
def test_alignment_hand_cases(ref: str, hyp: str, expected: str) -> None:
    assert ops(ref, hyp) == expected


def test_error_counts_and_wer_line() -> None:
    c = align_words("the cat sat on the mat".split(), "the cat sit on mat mat mat".split()).counts
    assert c == ErrorCounts(correct=4, substitutions=2, deletions=0, insertions=1)
    assert (c.ref_words, c.hyp_words, c.errors) == (6, 7, 3)
    assert format_wer_line(ErrorCounts(10, 1, 4, 3)) == "%WER 53.33 [ 8 / 15, 3 ins, 4 del, 1 sub ]"
    assert ErrorCounts(0, 0, 0, 0).wer == 0.0 and ErrorCounts(0, 0, 0, 2).wer == float("inf")


def test_summary_table_hand_checked(tmp_path: Path) -> None:
    (tmp_path / "ref").write_text(REF)
    (tmp_path / "hyp").write_text(HYP)
    utts = load_utterances(tmp_path / "ref", tmp_path / "hyp")
    assert [u.speaker for u in utts] == ["spka", "spka", "spkb", "spkb", "spkc"]
    assert utts[3].ref == [] and utts[4].hyp == []  # {LG} normalised away; empty hypothesis kept
    table = format_summary(scored(utts))
    assert table == EXPECTED_TABLE
    s = parse_summary(table)
    assert (
        s.sentences,
        s.words,
        s.correct,
        s.substitutions,
        s.deletions,
        s.insertions,
        s.errors,
        s.sentence_errors,
    ) == (5, 15, 66.7, 6.7, 26.7, 20.0, 53.3, 80.0)
    assert counts_from_raw(format_summary(scored(utts), raw=True)) == ErrorCounts(10, 1, 4, 3)


def test_summary_rounds_half_away_from_zero() -> None:
    # 1 substitution in 16 words is 6.25 %: sclite prints 6.3 where printf("%.1f") alone gives 6.2
    words = [f"w{i}" for i in range(16)]
    u = Utterance("s_1", "s", words, ["x", *words[1:]])
    sum_line = next(line for line in format_summary(scored([u])).splitlines() if "Sum/Avg" in line)
    assert sum_line.split("|")[3].split() == ["93.8", "6.3", "0.0", "0.0", "6.3", "100.0"]


def test_speaker_without_reference_words_is_counted_not_averaged() -> None:
    utts = [Utterance("a_1", "a", ["x", "y"], ["x"]), Utterance("b_1", "b", [], ["p", "q"])]
    table = format_summary(scored(utts))
    assert "|    0*     0*     0*     2*     2* 100.0 |" in table
    assert "| 50.0+   0.0+  50.0+   0.0+  50.0+ 100.0 |" in table  # Mean over speaker a only
    assert "+ Speaker(s) with no reference data is ignored" in table


def test_speaker_labels_are_sclite_safe_and_unique() -> None:
    labels = sclite_speaker_labels(["0af0-Uc_TOSc", "0AF0uctosc", "_-", "x"])
    assert labels == {"0af0-Uc_TOSc": "0af0uctosc", "0AF0uctosc": "0af0uctoscx2", "_-": "spk", "x": "x"}
    u = Utterance("0af0-Uc_TOSc_00001", "0af0uctosc", ["hi"], [])
    assert format_trn([u], "ref") == "hi (0af0uctosc-0af0-Uc_TOSc_00001)\n" and trn_id(u).startswith("0af0uctosc-")


def test_inputs_utt2spk_missing_and_extra_hypotheses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("a-b_c_00001 HELLO\na-b_c_00002 WORLD\nzz_00001 HI\n")
    (data / "utt2spk").write_text("a-b_c_00001 a-b_c\na-b_c_00002 a-b_c\nzz_00001 zz\n")
    (tmp_path / "hyp").write_text("a-b_c_00001 hello\n\nzz_00001 hi\n")  # a blank line, a missing hypothesis
    utts = load_utterances(data / "text", tmp_path / "hyp")
    assert [(u.speaker, u.hyp) for u in utts] == [("abc", ["hello"]), ("abc", []), ("zz", ["hi"])]
    assert "no hypothesis" in caplog.text
    (tmp_path / "extra").write_text("a-b_c_00001 hello\nnot_in_ref x\n")
    with pytest.raises(ScoringInputError, match="not_in_ref"):
        load_utterances(data / "text", tmp_path / "extra")
    (tmp_path / "dup").write_text("zz_00001 a\nzz_00001 b\n")
    with pytest.raises(ScoringInputError, match="appears twice"):
        load_utterances(tmp_path / "dup", tmp_path / "hyp")


def test_python_backend_writes_all_files(tmp_path: Path) -> None:
    (tmp_path / "ref").write_text(REF)
    (tmp_path / "hyp").write_text(HYP)
    counts = score(tmp_path / "ref", tmp_path / "hyp", tmp_path / "out", backend="python")
    assert counts == ErrorCounts(10, 1, 4, 3)
    out = tmp_path / "out"
    assert (out / "result.txt").read_text() == EXPECTED_TABLE
    assert (out / "wer").read_text() == "%WER 53.33 [ 8 / 15, 3 ins, 4 del, 1 sub ]\n"
    assert (out / "hyp.trn").read_text().splitlines()[4] == " (spkc-spkC_00001)"
    pra = (out / "alignment.txt").read_text()
    assert "REF:  the cat SAT on THE mat \nHYP:  the cat SIT on *** mat \nEval:         S      D       " in pra


def test_auto_backend_falls_back_to_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCLITE", str(tmp_path / "no-such-sclite"))
    assert find_sclite() is None
    (tmp_path / "ref").write_text(REF)
    (tmp_path / "hyp").write_text(HYP)
    assert score(tmp_path / "ref", tmp_path / "hyp", tmp_path / "auto") == ErrorCounts(10, 1, 4, 3)
    assert (tmp_path / "auto" / "result.txt").read_text() == EXPECTED_TABLE
    with pytest.raises(ScliteError, match="sclite not found"):
        score(tmp_path / "ref", tmp_path / "hyp", tmp_path / "forced", backend="sclite")


# ------------------------------------------------------------------------------------- jiwer


def test_totals_against_jiwer() -> None:
    """Unit-cost Levenshtein (jiwer) finds the fewest errors; sclite's costs (sub 4, ins/del 3) can choose
    an alignment with more (x1 x2 x3 a b / a b y1 y2 y3: 6 against 5), never fewer. With no shared
    words the two agree exactly."""
    rng = random.Random(1)
    for _ in range(300):
        ref = [rng.choice("abcd") for _ in range(rng.randint(1, 10))]
        hyp = [rng.choice("abcd") for _ in range(rng.randint(1, 10))]
        ours = align_words(ref, hyp).counts
        j = jiwer.process_words(" ".join(ref), " ".join(hyp))
        assert ours.ref_words == j.hits + j.substitutions + j.deletions == len(ref)
        assert ours.hyp_words == len(hyp)
        assert ours.errors >= j.substitutions + j.deletions + j.insertions
        assert 4 * ours.substitutions + 3 * (ours.deletions + ours.insertions) <= (
            4 * j.substitutions + 3 * (j.deletions + j.insertions)
        )
        disjoint = [w.upper() for w in hyp]
        ours, j = align_words(ref, disjoint).counts, jiwer.process_words(" ".join(ref), " ".join(disjoint))
        assert ours.errors == j.substitutions + j.deletions + j.insertions
    j = jiwer.process_words("x1 x2 x3 a b", "a b y1 y2 y3")
    assert (
        j.substitutions + j.deletions + j.insertions,
        align_words("x1 x2 x3 a b".split(), "a b y1 y2 y3".split()).counts.errors,
    ) == (5, 6)


# ------------------------------------------------------------------------------- sclite parity


def run_sclite(tmp: Path, utts: list[Utterance], hyp_name: str = "hyp.trn") -> tuple[str, str, dict]:
    """sclite's .sys and .raw reports and its per-utterance counts (by lower-cased trn id)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "ref.trn").write_text(format_trn(utts, "ref"))
    (tmp / hyp_name).write_text(format_trn(utts, "hyp"))
    subprocess.run(
        [*SCLITE, "-r", "ref.trn", "trn", "-h", hyp_name, "trn", "-i", "rm", "-o", "all"],
        cwd=tmp,
        check=True,
        capture_output=True,
    )
    pra = (tmp / f"{hyp_name}.pra").read_text()
    counts = {
        m[1]: ErrorCounts(*map(int, m.group(2, 3, 4, 5)))
        for m in re.finditer(r"^id: \((\S+)\)\nScores: \(#C #S #D #I\) (\d+) (\d+) (\d+) (\d+)", pra, re.MULTILINE)
    }
    return (tmp / f"{hyp_name}.sys").read_text(), (tmp / f"{hyp_name}.raw").read_text(), counts


def assert_parity(tmp: Path, utts: list[Utterance], hyp_name: str = "hyp.trn") -> None:
    sys_report, raw_report, sclite_counts = run_sclite(tmp, utts, hyp_name)
    ours = scored(utts)
    assert {trn_id(s.utt).lower(): s.counts for s in ours} == sclite_counts
    assert format_summary(ours, hyp_name) == sys_report
    assert format_summary(ours, hyp_name, raw=True) == raw_report


def random_speaker(rng: random.Random) -> str:
    return "".join(rng.choice("abcXYZ019") for _ in range(rng.randint(1, 14)))


def random_utterances(rng: random.Random, n_speakers: int, vocab: str) -> list[Utterance]:
    names = list(sclite_speaker_labels(random_speaker(rng) for _ in range(n_speakers)).values())
    utts = []
    for s, name in enumerate(names):
        empty_refs = rng.random() < 0.15  # some speakers have no reference words at all
        for k in range(rng.randint(1, 6)):
            ref = [] if empty_refs else [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
            if rng.random() < 0.5:  # an edited copy
                hyp = [w for w in ref if rng.random() > 0.2]
                hyp = [rng.choice(vocab) if rng.random() < 0.2 else w for w in hyp]
                for _ in range(rng.randint(0, 2)):
                    hyp.insert(rng.randint(0, len(hyp)), rng.choice(vocab))
            else:  # unrelated words (many equal-cost alignments)
                hyp = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
            utts.append(Utterance(f"{name}_{k:05d}", name, ref, hyp))
    return utts


@needs_sclite
@pytest.mark.parametrize("case", ["insertions", "deletions", "empty_hyp", "empty_ref", "repeats", "speakers"])
def test_sclite_parity_cases(tmp_path: Path, case: str) -> None:
    ref = "the cat sat on the mat".split()
    utts = {
        "insertions": [Utterance("s_1", "s", ref, ["a", *ref[:3], "b", "c", *ref[3:], "d"])],
        "deletions": [Utterance("s_1", "s", ref, ref[1:3] + ref[4:5])],
        "empty_hyp": [Utterance("s_1", "s", ref, []), Utterance("s_2", "s", ["x"], ["x"])],
        "empty_ref": [
            Utterance("s_1", "s", [], ["a", "b"]),
            Utterance("t_1", "t", ref, ref),
            Utterance("u_1", "u", [], []),
            Utterance("v_1", "v", [], ["z"]),
            Utterance("w_1", "w", ["q"], ["r"]),
        ],  # consecutive word-less speakers
        "repeats": [
            Utterance("s_1", "s", "a a a b b a".split(), "a a b a a".split()),
            Utterance("s_2", "s", "the the the".split(), "the".split()),
        ],
        "speakers": [Utterance(f"{n}_1", n, ref, ref[::-1]) for n in ("zz", "averyverylongspeakername", "b1")],
    }[case]
    assert_parity(tmp_path, utts)


@needs_sclite
@pytest.mark.parametrize("seed", range(8))
def test_sclite_parity_random(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    utts = random_utterances(rng, n_speakers=rng.randint(1, 12), vocab="abcde"[: rng.randint(2, 5)])
    assert_parity(tmp_path, utts)


@needs_sclite
def test_sclite_parity_wide_tables(tmp_path: Path) -> None:
    # a title wider than the table, 6-digit word counts, and error rates above 1000 %
    many = [Utterance(f"big_{k}", "big", ["w"] * 500, []) for k in range(240)]  # 120000 words
    assert_parity(tmp_path / "a", many + [Utterance("s_1", "s", ["a"], ["b"] * 30)])
    assert_parity(tmp_path / "b", [Utterance("s_1", "s", ["a", "b"], ["a"])], hyp_name="h" * 90 + ".trn")


@needs_sclite
def test_backends_agree_end_to_end(tmp_path: Path) -> None:
    rng = random.Random(7)
    utts = random_utterances(rng, 6, "abcd")
    (tmp_path / "ref").write_text("".join(f"{u.utt_id} {' '.join(u.ref).upper()}\n" for u in utts))
    (tmp_path / "hyp").write_text("".join(f"{u.utt_id} {' '.join(u.hyp)}\n" for u in utts))
    counts = {b: score(tmp_path / "ref", tmp_path / "hyp", tmp_path / b, backend=b) for b in ("sclite", "python")}
    assert counts["sclite"] == counts["python"]
    for name in ("result.txt", "result_raw.txt", "wer", "ref.trn", "hyp.trn"):
        assert (tmp_path / "sclite" / name).read_text() == (tmp_path / "python" / name).read_text(), name


def test_shell_script_python_backend(tmp_path: Path) -> None:
    (tmp_path / "ref").write_text(REF)
    (tmp_path / "hyp").write_text(HYP)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(
        [
            str(REPO / "utils/score_sclite.sh"),
            "--backend",
            "python",
            str(tmp_path / "ref"),
            str(tmp_path / "hyp"),
            str(tmp_path / "out"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "%WER 53.33 [ 8 / 15, 3 ins, 4 del, 1 sub ]"
    assert (tmp_path / "out" / "result.txt").read_text() == EXPECTED_TABLE
    bad = subprocess.run(
        [str(REPO / "utils/score_sclite.sh"), "--backend", "kaldi", "a", "b", "c"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "--backend must be" in bad.stderr


# ------------------------------------------------------------------------------------ RESULTS.md


def fake_result(snt: int, wrd: int, err: float) -> str:
    return (
        f"| SPKR   | # Snt # Wrd | Corr    Sub    Del    Ins    Err  S.Err |\n"
        f"| Sum/Avg|{snt:5d}  {wrd:5d} | 90.0    5.0    5.0    1.0 {err:6.1f}   40.0 |\n"
    )


def test_results_md_from_fake_exp_tree(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    cells = {
        ("mome", "test", 4, 2): 1.8,
        ("mome", "test", 16, 5): 2.9,
        ("llama_avsr", "test", 4, 2): 2.4,
        ("mome", "test_babble_snr-5", 4, 2): 9.5,
        ("mome", "test_babble_snr10", 4, 2): 3.1,
        ("asr_only", "test", 4, 0): 2.2,
    }
    for (model, test_set, ra, rv), err in cells.items():
        score_dir = exp / model / f"decode_{test_set}_ra{ra}_rv{rv}" / "score"
        score_dir.mkdir(parents=True)
        snt, wrd = (1321, 9890) if model != "llama_avsr" else (1320, 9880)
        (score_dir / "result.txt").write_text(fake_result(snt, wrd, err))
    (exp / "mome" / "decode_test_ra4_rv5").mkdir()  # decoded, not scored: left out
    (exp / "mome" / "train.log").write_text("")

    assert parse_decode_dir_name("decode_test_babble_snr-5_ra16_rv0") == ("test_babble_snr-5", 16, 0)
    assert parse_decode_dir_name("decode_test") is None
    results = collect_results(exp)
    assert len(results) == 6
    md = format_results_md(results, "exp", env={"date": "today", "python": "3.11"})
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections == [
        "## Environment",
        "## test (clean)",
        "## test_babble_snr10 (babble noise, SNR 10 dB)",
        "## test_babble_snr-5 (babble noise, SNR -5 dB)",
    ]
    clean = md.split("## test (clean)")[1].split("## ")[0]
    assert "- utterances: 1321, words: 9890" in clean
    assert "- *: llama_avsr (4,2) scored 1320 utterances, 9880 words" in clean
    assert "| model | (4,-) | (4,2) | (16,5) |" in clean
    assert "| asr_only | 2.2 |  |  |" in clean
    assert "| llama_avsr |  | 2.4* |  |" in clean
    assert "| mome |  | 1.8 | 2.9 |" in clean
    assert "- date: `today`" in md

    out = tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [sys.executable, "-m", "mome.bin.make_results", str(exp), "--output", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "| mome |  | 1.8 | 2.9 |" in text and "- git commit: `" in text and "- torch: `" in text
