"""mome.data.kaldi: data directory tables, validation messages, filtering and fixing."""

from __future__ import annotations

import pytest

from mome.data.kaldi import (
    DataDirError,
    append_skipped,
    filter_data_dir,
    fix_data_dir,
    main,
    read_data_dir,
    read_skipped,
    read_table,
    spk2utt_to_utt2spk,
    utt2spk_to_spk2utt,
    validate_data_dir,
    write_data_dir,
    write_table,
)

UTTS = {  # utt -> (speaker, recording, start, end, text)
    "spkB_00002": ("spkB", "test/spkB/00002", 0.0, 2.0, "good night"),
    "spkA_00001_01": ("spkA", "pretrain/spkA/00001", 4.5, 9.0, "world"),
    "spkA_00001_00": ("spkA", "pretrain/spkA/00001", 0.0, 4.0, "hello"),
    "spkA-x_00003": ("spkA-x", "test/spkA-x/00003", 0.0, 1.5, "it's me"),
}


def make_dir(path, utts=UTTS, landmarks=True):
    tables = {
        "text": {u: v[4] for u, v in utts.items()},
        "utt2spk": {u: v[0] for u, v in utts.items()},
        "segments": {u: f"{v[1]} {v[2]:.2f} {v[3]:.2f}" for u, v in utts.items()},
        "utt2dur": {u: f"{v[3] - v[2]:.2f}" for u, v in utts.items()},
        "video.scp": {v[1]: f"/corpus/{v[1]}.mp4" for v in utts.values()},
    }
    if landmarks:
        tables["landmarks.scp"] = {v[1]: f"/lm/{v[1]}.pkl" for v in utts.values()}
    write_data_dir(path, tables)
    return path


def lines(path):
    return path.read_text().splitlines()


def test_write_sorts_in_c_order_and_derives_spk2utt(tmp_path):
    d = make_dir(tmp_path / "d")
    # C order: '-' (0x2d) < '0' < '_' (0x5f); upper case before lower case
    assert [line.split()[0] for line in lines(d / "utt2spk")] == [
        "spkA-x_00003", "spkA_00001_00", "spkA_00001_01", "spkB_00002",
    ]  # fmt: skip
    assert lines(d / "spk2utt") == ["spkA spkA_00001_00 spkA_00001_01", "spkA-x spkA-x_00003", "spkB spkB_00002"]
    assert lines(d / "segments")[1] == "spkA_00001_00 pretrain/spkA/00001 0.00 4.00"
    assert lines(d / "video.scp") == [
        "pretrain/spkA/00001 /corpus/pretrain/spkA/00001.mp4",
        "test/spkA-x/00003 /corpus/test/spkA-x/00003.mp4",
        "test/spkB/00002 /corpus/test/spkB/00002.mp4",
    ]
    validate_data_dir(d)
    tables = read_data_dir(d)
    assert tables["text"]["spkA-x_00003"] == "it's me"
    assert set(tables) == {"text", "utt2spk", "segments", "utt2dur", "video.scp", "landmarks.scp"}


def test_table_round_trip_and_spk_maps(tmp_path):
    write_table(tmp_path / "t", {"b": "two words", "a": 1, "c": ""})
    assert lines(tmp_path / "t") == ["a 1", "b two words", "c"]
    assert read_table(tmp_path / "t") == {"a": "1", "b": "two words", "c": ""}
    u2s = {"s1_a": "s1", "s2_b": "s2", "s1_c": "s1"}
    assert utt2spk_to_spk2utt(u2s) == {"s1": "s1_a s1_c", "s2": "s2_b"}
    assert spk2utt_to_utt2spk(utt2spk_to_spk2utt(u2s)) == u2s


def _invalid(d, *fragments):
    with pytest.raises(DataDirError) as e:
        validate_data_dir(d)
    for fragment in fragments:
        assert fragment in str(e.value), str(e.value)


def test_unsorted_file_named_with_line(tmp_path):
    d = make_dir(tmp_path / "d")
    rows = lines(d / "text")
    (d / "text").write_text("\n".join([rows[1], rows[0]] + rows[2:]) + "\n")
    _invalid(d, f"{d / 'text'}:2: not sorted")


def test_duplicate_id_named_with_line(tmp_path):
    d = make_dir(tmp_path / "d")
    rows = lines(d / "utt2dur")
    (d / "utt2dur").write_text("\n".join(rows[:2] + [rows[1]] + rows[2:]) + "\n")
    _invalid(d, f"{d / 'utt2dur'}:3: duplicate id 'spkA_00001_00'")


def test_utterance_missing_from_one_file(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "utt2dur").write_text("\n".join(line for line in lines(d / "utt2dur") if not line.startswith("spkB")) + "\n")
    _invalid(d, str(d / "utt2dur"), "'spkB_00002' (in utt2spk) is missing")


def test_utterance_not_in_utt2spk(tmp_path):
    d = make_dir(tmp_path / "d")
    with open(d / "text", "a") as f:
        f.write("spkC_00009 extra\n")
    _invalid(d, f"{d / 'text'}: utterance 'spkC_00009' is not in utt2spk")


def test_utterance_not_prefixed_by_speaker(tmp_path):
    bad = dict(UTTS, x_00001=("spkZ", "test/spkZ/00001", 0.0, 1.0, "hi"))
    d = make_dir(tmp_path / "d", bad)
    _invalid(d, "utt2spk", "'x_00001' does not start with its speaker id 'spkZ'")


def test_empty_transcript(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "text").write_text(
        "\n".join(line if not line.startswith("spkB") else "spkB_00002" for line in lines(d / "text")) + "\n"
    )
    _invalid(d, f"{d / 'text'}:4: empty transcript for 'spkB_00002'")


def test_bad_segment_times_and_recordings(tmp_path):
    d = make_dir(tmp_path / "d")
    seg = [line.replace("0.00 2.00", "3.00 2.00") for line in lines(d / "segments")]
    (d / "segments").write_text("\n".join(seg) + "\n")
    _invalid(d, "spkB_00002: start/end must satisfy 0 <= start < end")
    d2 = make_dir(tmp_path / "d2")
    (d2 / "video.scp").write_text("\n".join(lines(d2 / "video.scp")[:2]) + "\n")
    _invalid(d2, f"{d2 / 'video.scp'}: recording 'test/spkB/00002' (used in segments) is missing")
    d3 = make_dir(tmp_path / "d3")
    with open(d3 / "landmarks.scp", "a") as f:
        f.write("zzz/unused /lm/x.pkl\n")
    _invalid(d3, "recording 'zzz/unused' is used by no utterance")


def test_spk2utt_must_match(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "spk2utt").write_text("spkA spkA_00001_00\nspkA-x spkA-x_00003\nspkB spkB_00002\n")
    _invalid(d, "spk2utt: does not match utt2spk")


def test_missing_required_file(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "text").unlink()
    _invalid(d, f"{d / 'text'}: required file missing")


def test_filter_keeps_given_utts_and_drops_unused_recordings(tmp_path):
    d = make_dir(tmp_path / "d")
    (d / "wav.scp").write_text("".join(f"{u} /dump/{u}.wav\n" for u in sorted(UTTS)))
    removed = filter_data_dir(d, ["spkA_00001_01", "spkB_00002", "not_there"], reason="no roi")
    assert removed == ["spkA-x_00003", "spkA_00001_00"]
    t = read_data_dir(d)
    for name in ("text", "utt2spk", "segments", "utt2dur", "wav.scp"):
        assert sorted(t[name]) == ["spkA_00001_01", "spkB_00002"], name
    assert sorted(t["video.scp"]) == sorted(t["landmarks.scp"]) == ["pretrain/spkA/00001", "test/spkB/00002"]
    assert lines(d / "spk2utt") == ["spkA spkA_00001_01", "spkB spkB_00002"]
    assert read_skipped(d) == [("spkA-x_00003", "no roi"), ("spkA_00001_00", "no roi")]
    validate_data_dir(d)


def test_fix_drops_incomplete_utts_and_sorts(tmp_path):
    d = make_dir(tmp_path / "d")
    rows = lines(d / "utt2dur")
    (d / "utt2dur").write_text("\n".join(reversed([r for r in rows if not r.startswith("spkB")])) + "\n")
    (d / "spk2utt").unlink()
    append_skipped(d, [("earlier_item", "from stage 1")])
    assert fix_data_dir(d) == ["spkB_00002"]
    validate_data_dir(d)
    assert "test/spkB/00002" not in read_table(d / "video.scp")
    assert read_skipped(d) == [("earlier_item", "from stage 1"), ("spkB_00002", "fix_data_dir: missing from utt2dur")]


def test_cli_validate_and_fix(tmp_path, capsys):
    d = make_dir(tmp_path / "d")
    assert main(["validate", str(d)]) == 0
    (d / "spk2utt").write_text("broken x\n")
    assert main(["validate", str(d)]) == 1
    assert "spk2utt" in capsys.readouterr().err
    assert main(["fix", str(d)]) == 0
    assert main(["validate", str(d)]) == 0
