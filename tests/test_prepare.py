"""Stage 1 (mome.data.prepare, python -m mome.bin.prepare_lrs) on tiny fake LRS3 and LRS2 trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mome.bin.prepare_lrs import main as prepare_main
from mome.data.kaldi import read_skipped, read_table, validate_data_dir
from mome.data.lrs import Transcript, Word, write_lrs_txt
from mome.data.prepare import PrepareError, prepare_lrs2, prepare_lrs3
from tests.helpers.media import Clip, write_clip

# pretrain/spkA/00001: 2.0 s, cut at max 1.0 s: HELLO..THERE spans 0.10-0.90; adding GOOD would span 1.20 s
LONG_WORDS = [Word("HELLO", 0.10, 0.40), Word("THERE,", 0.50, 0.90), Word("GOOD", 1.00, 1.30), Word("{LG}", 1.30, 1.35),
              Word("PEOPLE", 1.40, 1.90)]  # fmt: skip


def put(root: Path, lm_root: Path, rel: str, text: str | None, clip: Clip, words=(), seed=0) -> None:
    """Write ``root/rel.mp4`` (+ landmarks ``lm_root/rel.pkl``) and its transcript (None: no .txt)."""
    write_clip(root / f"{rel}.mp4", lm_root / f"{rel}.pkl", clip, seed=seed)
    if text is not None:
        write_lrs_txt(root / f"{rel}.txt", Transcript(text, "4", "ref", words=list(words)))


@pytest.fixture(scope="module")
def lrs3(tmp_path_factory):
    base = tmp_path_factory.mktemp("lrs3")
    root, lm = base / "lrs3", base / "landmarks"
    put(root, lm, "pretrain/spkA/00001", "HELLO THERE GOOD {LG} PEOPLE", Clip("a", frames=50), LONG_WORDS)
    put(root, lm, "pretrain/spkA/00002", "SHORT ONE", Clip("b", frames=20), [Word("SHORT", 0.1, 0.3)])
    put(root, lm, "pretrain/spkB/00001", "NO TABLE HERE", Clip("c", frames=50))  # too long, cannot be cut
    for i, spk in enumerate(["spkA", "spkA", "spkB", "spkC", "spk-D"]):
        put(root, lm, f"trainval/{spk}/{i + 1:05d}", f"TRAINVAL CLIP {i + 1}", Clip("t", frames=10), seed=i)
    put(root, lm, "test/spkE/00001", "DON'T {LG} STOP, NOW!", Clip("x", frames=15))
    put(root, lm, "test/spkE/00002", "ANOTHER TEST", Clip("y", frames=12))
    # bad inputs, each skipped with its reason
    put(root, lm, "test/bad/00001", None, Clip("m", frames=10))  # no .txt
    put(root, lm, "test/bad/00002", "X", Clip("e", frames=10))
    (root / "test/bad/00002.txt").write_text("")  # empty .txt
    put(root, lm, "test/bad/00003", "{LG} [NOISE]", Clip("n", frames=10))  # nothing left after normalisation
    put(root, lm, "test/bad/00004", "CORRUPT", Clip("c", corrupt=True))
    put(root, lm, "test/bad/00005", "SILENT", Clip("s", frames=10, audio_seconds=0))  # no audio track
    put(root, lm, "test/bad/00006", "SHORT VIDEO", Clip("v", frames=10, audio_seconds=2.0))  # 0.4 s video, 2 s audio
    put(root, lm, "test/bad/00007", "NO LANDMARKS", Clip("l", frames=10, landmarks=False))
    return root, lm


def table(d: Path, name: str) -> dict[str, str]:
    return read_table(d / name)


def test_lrs3_sets(lrs3, tmp_path, capsys):
    root, lm = lrs3
    out = tmp_path / "data"
    assert prepare_main(["--corpus", "lrs3", "--root", str(root), "--output_dir", str(out), "--landmarks", str(lm),
                         "--max_seconds", "1.0", "--val_count", "2", "--seed", "3"]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    for name in ("train", "val", "test"):
        validate_data_dir(out / name)
        for f in ("text", "utt2spk", "segments", "utt2dur", "video.scp", "landmarks.scp", "spk2utt"):
            rows = (out / name / f).read_text().splitlines()
            assert rows == sorted(rows, key=lambda r: r.split()[0].encode()), f"{name}/{f} not in C order"

    train, val = table(out / "train", "text"), table(out / "val", "text")
    trainval = {f"{s}_{i + 1:05d}" for i, s in enumerate(["spkA", "spkA", "spkB", "spkC", "spk-D"])}
    assert len(val) == 2 and set(val) <= trainval
    assert set(train) & set(val) == set()
    assert set(train) == (trainval - set(val)) | {"spkA_00001_00", "spkA_00001_01", "spkA_00002_00"}
    # pretrain spkA/00001 and trainval spkA/00001 share a clip number: distinct utterances and recordings
    assert train["spkA_00001_00"] == "hello there" and train["spkA_00001_01"] == "good people"
    segments = table(out / "train", "segments")
    assert segments["spkA_00001_00"] == "pretrain/spkA/00001 0.10 0.90"
    assert segments["spkA_00001_01"] == "pretrain/spkA/00001 1.00 1.90"
    assert segments["spkA_00002_00"] == "pretrain/spkA/00002 0.00 0.80"
    dur = table(out / "train", "utt2dur")
    assert (dur["spkA_00001_00"], dur["spkA_00001_01"], dur["spkA_00002_00"]) == ("0.80", "0.90", "0.80")
    assert table(out / "train", "utt2spk")["spkA_00001_01"] == "spkA"
    video = table(out / "train", "video.scp")
    assert video["pretrain/spkA/00001"] == os.path.abspath(root / "pretrain/spkA/00001.mp4")
    assert table(out / "train", "landmarks.scp")["pretrain/spkA/00001"] == os.path.abspath(
        lm / "pretrain/spkA/00001.pkl"
    )
    assert "pretrain/spkB/00001" not in video
    assert read_skipped(out / "train") == [
        ("pretrain/spkB/00001", "longer than 1 s: 2.00 s and no WORD table to cut it")
    ]

    assert table(out / "test", "text") == {"spkE_00001": "don't stop now", "spkE_00002": "another test"}
    assert table(out / "test", "segments") == {"spkE_00001": "test/spkE/00001 0.00 0.60",
                                               "spkE_00002": "test/spkE/00002 0.00 0.48"}  # fmt: skip
    assert table(out / "test", "utt2dur") == {"spkE_00001": "0.60", "spkE_00002": "0.48"}
    skipped = dict(read_skipped(out / "test"))
    assert sorted(skipped) == [f"test/bad/0000{i}" for i in range(1, 8)]
    assert skipped["test/bad/00001"].startswith("transcript missing")
    assert skipped["test/bad/00002"].startswith("transcript file empty")
    assert skipped["test/bad/00003"].startswith("empty transcript after normalisation")
    assert skipped["test/bad/00004"].startswith("video unreadable")
    assert skipped["test/bad/00005"].startswith("no audio track")
    assert skipped["test/bad/00006"] == "video shorter than audio: 0.40 s video, 2.00 s audio"
    assert skipped["test/bad/00007"].startswith("landmark file missing")
    assert "test: 2 utterances from 9 clips; skipped 7" in printed
    assert "train: 6 utterances from 6 clips (long clips cut at word boundaries: 1); skipped 1" in printed


def test_lrs3_val_draw_is_seeded_and_list_file_works(lrs3, tmp_path):
    root, _ = lrs3
    a = prepare_lrs3(root, tmp_path / "a", max_seconds=1.0, val_count=3, seed=7)
    prepare_lrs3(root, tmp_path / "b", max_seconds=1.0, val_count=3, seed=7, nj=2)  # parallel: same result
    assert a["val"].utterances == 3
    for name in ("train/text", "train/segments", "val/text", "test/utt2dur", "test/skipped.txt"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text(), name
    assert not (tmp_path / "a/val/landmarks.scp").exists()  # no landmarks root given
    listed = tmp_path / "val.lst"
    listed.write_text("spkB/00003\nspk-D_00005 extra fields ignored\n")
    prepare_lrs3(root, tmp_path / "c", max_seconds=16, val_list=listed)
    assert set(table(tmp_path / "c/val", "text")) == {"spkB_00003", "spk-D_00005"}
    assert "spkB_00003" not in table(tmp_path / "c/train", "text")
    # with the default limit, pretrain clips are kept whole (suffix _00)
    assert table(tmp_path / "c/train", "segments")["spkA_00001_00"] == "pretrain/spkA/00001 0.00 2.00"
    listed.write_text("spkZ/99999\n")
    with pytest.raises(PrepareError, match="not trainval clips"):
        prepare_lrs3(root, tmp_path / "d", val_list=listed)


def test_rerun_replaces_old_files(lrs3, tmp_path):
    root, _ = lrs3
    out = tmp_path / "data"
    (out / "test").mkdir(parents=True)
    (out / "test" / "wav.scp").write_text("stale /x.wav\n")
    for _ in range(2):
        prepare_lrs3(root, out, val_count=1)
    assert not (out / "test" / "wav.scp").exists()
    assert len(read_skipped(out / "test")) == 6  # not doubled; no landmark check without --landmarks


def test_missing_corpus_fails_with_its_name(tmp_path, capsys):
    missing = tmp_path / "no_such_lrs3"
    assert prepare_main(["--corpus", "lrs3", "--root", str(missing), "--output_dir", str(tmp_path / "d")]) == 1
    assert str(missing) in capsys.readouterr().err
    with pytest.raises(PrepareError, match="no_such_lrs2"):
        prepare_lrs2(tmp_path / "no_such_lrs2", tmp_path / "d")
    (tmp_path / "half").mkdir()
    with pytest.raises(PrepareError, match="trainval"):
        prepare_lrs3(tmp_path / "half", tmp_path / "d")


@pytest.fixture(scope="module")
def lrs2(tmp_path_factory):
    base = tmp_path_factory.mktemp("lrs2")
    mv, lm = base / "mvlrs_v1", base / "landmarks"
    words = [Word("ONE", 0.0, 0.3), Word("TWO", 0.4, 0.8), Word("THREE", 0.9, 1.5)]
    put(mv, lm, "pretrain/111/00001", "ONE TWO THREE", Clip("p", frames=40), words)  # 1.6 s, cut at 1.0 s
    put(mv, lm, "main/111/00001", "MAIN ONE", Clip("a", frames=10))  # same show/clip as the pretrain one
    put(mv, lm, "main/111/00002", "MAIN TWO", Clip("b", frames=10))
    put(mv, lm, "main/222/00001", "VALIDATION", Clip("c", frames=10))
    put(mv, lm, "main/333/00001", "TESTING IT'S", Clip("d", frames=10))
    put(mv, lm, "main/333/00002", "NOT IN ANY LIST", Clip("e", frames=10))
    for f, entries in {"pretrain": ["111/00001"], "train": ["111/00001", "111/00002", "999/00001"],
                       "val": ["222/00001"], "test": ["333/00001 NF"]}.items():  # fmt: skip
        (base / f"{f}.txt").write_text("".join(e + "\n" for e in entries))
    return base, lm


def test_lrs2_lists_honoured(lrs2, tmp_path):
    root, lm = lrs2
    out = tmp_path / "data"
    s = prepare_lrs2(root, out, landmarks=lm, max_seconds=1.0)
    for name in ("train", "val", "test"):
        validate_data_dir(out / name)
    assert table(out / "train", "text") == {
        "111_00001": "main one", "111_00001_00": "one two", "111_00001_01": "three", "111_00002": "main two",
    }  # fmt: skip
    assert table(out / "train", "segments")["111_00001_01"] == "pretrain/111/00001 0.90 1.50"
    assert table(out / "train", "segments")["111_00001"] == "main/111/00001 0.00 0.40"
    assert table(out / "train", "video.scp")["pretrain/111/00001"] == os.path.abspath(
        root / "mvlrs_v1/pretrain/111/00001.mp4"
    )
    assert table(out / "train", "landmarks.scp")["main/111/00002"] == os.path.abspath(lm / "main/111/00002.pkl")
    assert [item for item, _ in read_skipped(out / "train")] == ["main/999/00001"]  # listed, not on disk
    assert table(out / "val", "text") == {"222_00001": "validation"}
    assert table(out / "test", "text") == {"333_00001": "testing it's"}
    assert table(out / "test", "utt2spk") == {"333_00001": "333"}
    assert (s["train"].utterances, s["train"].cut_clips) == (4, 1)


def test_lrs2_missing_list_named(lrs2, tmp_path):
    root, _ = lrs2
    partial = tmp_path / "lrs2"
    (partial / "mvlrs_v1").mkdir(parents=True)
    for d in ("main", "pretrain"):
        (partial / "mvlrs_v1" / d).symlink_to(root / "mvlrs_v1" / d)
    with pytest.raises(PrepareError, match=r"pretrain\.txt"):
        prepare_lrs2(partial, tmp_path / "data")


def test_pretrain_clips_are_cut_at_16_s_by_default(lrs3, lrs2, tmp_path, monkeypatch):
    """Every caller of the recipe passes 16; the entry points must default to it too."""
    import inspect

    import mome.data.prepare as prepare

    seen = []
    monkeypatch.setattr(
        prepare, "_prepare_sets", lambda out, sets, nj, max_seconds, landmarks: seen.append(max_seconds) or {}
    )
    prepare_lrs3(lrs3[0], tmp_path / "a")
    prepare_lrs2(lrs2[0], tmp_path / "b")
    assert prepare_main(["--corpus", "lrs3", "--root", str(lrs3[0]), "--out", str(tmp_path / "c")]) == 0
    assert seen == [16.0, 16.0, 16.0]
    assert inspect.signature(prepare.process_clip).parameters["max_seconds"].default == 16.0
