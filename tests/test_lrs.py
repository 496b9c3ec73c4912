"""mome.data.lrs: the LRS transcript format, text normalisation, cutting long clips between words."""

from __future__ import annotations

import pytest

from mome.data.lrs import (
    Frame,
    LRSFormatError,
    Transcript,
    Word,
    cut_at_word_boundaries,
    format_lrs_txt,
    normalize_text,
    parse_lrs_txt,
    read_lrs_txt,
    write_lrs_txt,
)

LRS3_PRETRAIN = (
    "Text:  SO I WAS {LG} STANDING THERE\n"
    "Conf:  4\n"
    "Ref:  0af00UcTOSc\n"
    "\n"
    "FRAME \tX \tY \tW \tH \n"
    "000071 \t0.430 \t0.289 \t0.146 \t0.263 \t\n"
    "000072 \t0.431 \t0.290 \t0.145 \t0.262 \t\n"
    "\n"
    "WORD START END ASDSCORE\n"
    "SO 0.17 0.28 4.8\n"
    "I 0.28 0.35 5.1\n"
    "WAS 0.35 0.52 6.0\n"
)


def test_parse_lrs3_file_with_both_tables():
    t = parse_lrs_txt(LRS3_PRETRAIN)
    assert t.text == "SO I WAS {LG} STANDING THERE"
    assert (t.conf, t.ref) == ("4", "0af00UcTOSc")
    assert t.frames == [Frame(71, 0.43, 0.289, 0.146, 0.263), Frame(72, 0.431, 0.29, 0.145, 0.262)]
    assert t.words == [Word("SO", 0.17, 0.28, 4.8), Word("I", 0.28, 0.35, 5.1), Word("WAS", 0.35, 0.52, 6.0)]


def test_parse_lrs2_main_file_without_tables():
    t = parse_lrs_txt("Text:  WE HAVE TO GO\nConf:  3\n")
    assert (t.text, t.conf, t.ref, t.frames, t.words) == ("WE HAVE TO GO", "3", "", [], [])


def test_parse_word_table_without_score_column():
    t = parse_lrs_txt("Text:  HI THERE\nConf:  1\n\nWORD START END\nHI 0.10 0.30\nTHERE 0.30 0.70\n")
    assert t.words == [Word("HI", 0.1, 0.3, 0.0), Word("THERE", 0.3, 0.7, 0.0)]


def test_round_trip_with_tables(tmp_path):
    t = Transcript(
        text="HELLO {LG} WORLD",
        conf="5",
        ref="abcDEF-_123",
        frames=[Frame(1, 0.125, 0.25, 0.5, 0.375), Frame(2, 0.126, 0.251, 0.5, 0.375)],
        words=[Word("HELLO", 0.04, 0.5, 3.5), Word("WORLD", 0.62, 1.25, 7.0)],
    )
    path = tmp_path / "00001.txt"
    write_lrs_txt(path, t)
    assert read_lrs_txt(path) == t
    assert parse_lrs_txt(format_lrs_txt(t)) == t


def test_round_trip_without_tables():
    t = Transcript(text="JUST TEXT", conf="2", ref="")
    text = format_lrs_txt(t)
    assert "FRAME" not in text and "WORD" not in text
    assert parse_lrs_txt(text) == t


def test_the_word_word_inside_a_word_table_is_a_word():
    # Transcripts contain the words "WORD" and "FRAME"; inside a table they are entries, not headers.
    t = Transcript(text="ONE WORD", conf="1", words=[Word("ONE", 0.1, 0.3, 1.0), Word("WORD", 0.3, 0.6, 1.0)])
    assert parse_lrs_txt(format_lrs_txt(t)).words == t.words


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "first line must start with 'Text:'"),
        ("hello\n", "first line must start with 'Text:'"),
        ("Text:  A\nConf:  1\n\nWORD START END\nA zero 0.5\n", ":5: cannot parse"),
        ("Text:  A\nConf:  1\nstray line here\n", ":3: cannot parse"),
    ],
)
def test_bad_files_name_source_and_line(content, message):
    with pytest.raises(LRSFormatError, match=message) as e:
        parse_lrs_txt(content, "some/clip.txt")
    assert "some/clip.txt" in str(e.value)


def test_read_missing_file_names_it(tmp_path):
    with pytest.raises(LRSFormatError, match="missing") as e:
        read_lrs_txt(tmp_path / "nope.txt")
    assert "nope.txt" in str(e.value)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("DON'T {LG} STOP, NOW!", "don't stop now"),
        ("SO I WAS {NS} STANDING THERE", "so i was standing there"),
        ("[NOISE] HELLO <unk> THERE", "hello there"),
        ("'QUOTED' WORDS AND IT'S FINE", "quoted words and it's fine"),
        ("WELL-KNOWN 1990S; YES?", "well known 1990s yes"),
        ("  MANY   SPACES\tAND TABS ", "many spaces and tabs"),
        ("{LG}", ""),
        ("", ""),
    ],
)
def test_normalize_text(raw, expected):
    assert normalize_text(raw) == expected


def _w(word: str, start: float, end: float) -> Word:
    return Word(word, start, end)


def test_cut_at_word_boundaries_hand_computed():
    words = [_w("A", 0.0, 1.0), _w("B", 1.2, 5.0), _w("C", 5.5, 9.0), _w("D", 9.1, 12.0)]
    # A+B span 0.0-5.0 (5 s); adding C would span 9 s > 6; C+D would span 5.5-12.0 = 6.5 s > 6
    segments = cut_at_word_boundaries(words, 6.0)
    assert [[w.word for w in s] for s in segments] == [["A", "B"], ["C"], ["D"]]


def test_cut_keeps_a_segment_exactly_at_the_limit():
    words = [_w("A", 1.0, 2.0), _w("B", 2.0, 5.0), _w("C", 5.0, 5.5)]
    # A..B spans 1.0-5.0 = 4.0 s: allowed at max 4; C would make it 4.5 s
    assert [[w.word for w in s] for s in cut_at_word_boundaries(words, 4.0)] == [["A", "B"], ["C"]]


def test_cut_short_clip_is_one_segment_and_long_word_stands_alone():
    words = [_w("A", 0.0, 1.0), _w("B", 1.0, 2.0)]
    assert cut_at_word_boundaries(words, 16.0) == [words]
    long_word = [_w("A", 0.0, 0.5), _w("LONG", 0.5, 20.0), _w("C", 20.0, 21.0)]
    assert [[w.word for w in s] for s in cut_at_word_boundaries(long_word, 3.0)] == [["A"], ["LONG"], ["C"]]
    assert cut_at_word_boundaries([], 16.0) == []
