"""The synthetic mini LRS3 generator (mome.data.synth): layout, formats, alignment, determinism."""

from __future__ import annotations

import re
import string
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from mome.data.landmarks import read_landmarks
from mome.data.lrs import normalize_text, read_lrs_txt
from mome.data.synth import corpus, face, speech, text, visemes

FPS = 25
SR = 16000


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("mini_lrs3")
    stats = corpus.generate(out, size="tiny", seed=3, nj=1, progress=False)
    return out, stats


def _videos(out: Path) -> list[Path]:
    return sorted((out / "lrs3").glob("*/*/*.mp4"))


def _landmark_path(out: Path, video: Path) -> Path:
    rel = video.relative_to(out / "lrs3").with_suffix(".pkl")
    return out / "landmarks" / rel


def _inner_opening(points: np.ndarray) -> np.ndarray:
    return points[:, 66, 1] - points[:, 62, 1]  # lower minus upper inner lip centre


def test_layout_and_transcripts(tiny):
    out, stats = tiny
    videos = _videos(out)
    size = corpus.SIZES["tiny"]
    assert len(videos) == size.pretrain + size.trainval + size.test == stats["utterances"]
    per_split = {s: [v for v in videos if v.parts[-3] == s] for s in corpus.SPLITS}
    assert [len(per_split[s]) for s in corpus.SPLITS] == [size.pretrain, size.trainval, size.test]
    alphabet = set(string.ascii_letters + string.digits + "-_")
    for video in videos:
        speaker, clip = video.parent.name, video.stem
        assert len(speaker) == 11 and set(speaker) <= alphabet
        assert re.fullmatch(r"\d{5}", clip)
        assert _landmark_path(out, video).is_file()
        t = read_lrs_txt(video.with_suffix(".txt"))
        assert t.text == t.text.upper() and t.ref == speaker and t.conf.isdigit()
        assert [w.word for w in t.words] == t.text.split()
        with av.open(str(video)) as c:
            num_frames = c.streams.video[0].frames
        duration = num_frames / FPS
        assert 1.0 <= duration <= 4.0
        assert len(t.frames) == num_frames
        assert [f.frame for f in t.frames] == list(range(t.frames[0].frame, t.frames[0].frame + num_frames))
        assert all(0 <= f.x < f.x + f.w <= 1.001 and 0 <= f.y < f.y + f.h <= 1.001 for f in t.frames)
        starts = [w.start for w in t.words]
        ends = [w.end for w in t.words]
        assert 0 < starts[0] and ends[-1] <= duration
        assert all(s < e for s, e in zip(starts, ends))
        assert all(e <= s2 for e, s2 in zip(ends, starts[1:]))  # increasing, not overlapping
    # test speakers are unseen in training, and the README/stats say what was made
    speakers = {s: {v.parent.name for v in per_split[s]} for s in corpus.SPLITS}
    assert not speakers["test"] & (speakers["pretrain"] | speakers["trainval"])
    assert len(speakers["test"]) == size.test_speakers and len(speakers["pretrain"]) == size.train_speakers
    assert stats["splits"]["test"]["speakers"] == size.test_speakers
    assert (out / "stats.json").is_file() and "test" in (out / "README.txt").read_text()


def test_mp4_streams(tiny):
    out, _ = tiny
    for video in _videos(out)[:6]:
        with av.open(str(video)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert (v.codec_context.name, v.width, v.height, v.average_rate) == ("h264", 224, 224, 25)
            assert (a.codec_context.name, a.rate, a.channels) == ("aac", SR, 1)
            video_s = v.frames / FPS
            assert abs(float(a.duration * a.time_base) - video_s) <= 1 / FPS
            samples = sum(f.samples for f in c.decode(a))
        # AAC decodes to whole 1024-sample frames: at most one of them past the video's end
        assert video_s * SR <= samples < video_s * SR + 1024


def test_landmarks_follow_frames_and_speech(tiny):
    out, _ = tiny
    during, silent = [], []
    for video in _videos(out):
        points = read_landmarks(_landmark_path(out, video))
        with av.open(str(video)) as c:
            num_frames = c.streams.video[0].frames
        assert points.shape == (num_frames, 68, 2) and not np.isnan(points).any()
        assert (points >= -5).all() and (points <= 229).all()
        # iBUG order: image-left eye left of the right one, brows above eyes, nose above mouth above chin
        assert (points[:, 36, 0] < points[:, 45, 0]).all() and (points[:, 19, 1] < points[:, 37, 1]).all()
        assert (points[:, 33, 1] < points[:, 51, 1]).all() and (points[:, 57, 1] < points[:, 8, 1]).all()
        t = read_lrs_txt(video.with_suffix(".txt"))
        centres = (np.arange(num_frames) + 0.5) / FPS
        opening = _inner_opening(points)
        during.append(opening[(centres > t.words[0].start) & (centres < t.words[-1].end)].mean())
        silent.append(
            opening[centres < t.words[0].start - 0.1].mean() if centres[0] < t.words[0].start - 0.1 else np.nan
        )
    assert np.nanmean(during) > 3 * np.nanmean(silent) and np.nanmean(during) > 3.0


def test_mouth_pixels_follow_landmarks():
    """Frames drawn at an open vowel differ from the rest frame inside the mouth landmarks, not at the eyes."""
    st = face.FaceStyle(angle=0.05)
    rest = face.rest_state()
    open_a = rest.copy()
    open_a[:5] = visemes.TARGETS[visemes.VISEMES.index("AA")]
    renderer = face.ClipRenderer(st)
    offset = (face.MARGIN, face.MARGIN)
    f0, f1 = renderer.frame(rest, offset).astype(int), renderer.frame(open_a, offset).astype(int)
    pts = face.clip_landmarks(st, np.stack([open_a]), np.array([offset]))[0]
    cx, cy = np.round(pts[60:68].mean(0)).astype(int)
    assert np.abs(f1[cy, cx] - f0[cy, cx]).sum() > 100  # dark mouth inside where the lips were closed
    eye = np.round(pts[36:42].mean(0)).astype(int)
    assert (
        f1[eye[1] - 3 : eye[1] + 4, eye[0] - 3 : eye[0] + 4] == f0[eye[1] - 3 : eye[1] + 4, eye[0] - 3 : eye[0] + 4]
    ).all()
    inner = pts[[62, 66]]
    assert inner[1, 1] - inner[0, 1] > 0.5 * st.max_open


def test_same_seed_same_clip(tmp_path):
    clips = corpus.plan(corpus.SIZES["tiny"], seed=5)
    again = corpus.plan(corpus.SIZES["tiny"], seed=5)
    assert clips == again
    other = corpus.plan(corpus.SIZES["tiny"], seed=6)
    assert [c.text for c in other] != [c.text for c in clips]
    for clip in (clips[0], clips[-1]):
        corpus.make_clip(tmp_path / "a", clip)
        corpus.make_clip(tmp_path / "b", clip)
        for sub, ext in (("lrs3", ".txt"), ("landmarks", ".pkl"), ("lrs3", ".mp4")):
            a = (tmp_path / "a" / sub / clip.name).with_suffix(ext).read_bytes()
            b = (tmp_path / "b" / sub / clip.name).with_suffix(ext).read_bytes()
            assert a == b, f"{clip.name}{ext} differs between two runs"


def test_resume_skips_done_clips(tiny, tmp_path):
    out, stats = tiny
    stamps = {p: p.stat().st_mtime_ns for p in _videos(out)}
    again = corpus.generate(out, size="tiny", seed=3, nj=1, progress=False)
    assert {p: p.stat().st_mtime_ns for p in _videos(out)} == stamps
    assert again["splits"] == stats["splits"]


def test_babble_noise(tiny):
    out, _ = tiny
    audio, rate = sf.read(out / "noise" / "babble.wav")
    assert rate == SR and audio.ndim == 1
    assert abs(len(audio) / SR - corpus.SIZES["tiny"].babble_seconds) < 0.01
    rms = np.sqrt(np.mean(audio**2))
    assert 0.03 < rms < 0.3
    # many talkers at once: hardly any silent 100 ms stretch after the first second
    frames = audio[SR:].reshape(-1, SR // 10)
    assert (np.sqrt((frames**2).mean(1)) > 0.1 * rms).mean() > 0.95


def test_default_plan_sizes_and_disjoint_text():
    clips = corpus.plan(corpus.SIZES["default"], seed=0)
    by_split = {s: [c for c in clips if c.split == s] for s in corpus.SPLITS}
    assert len(by_split["pretrain"]) + len(by_split["trainval"]) >= 1900
    assert len(by_split["trainval"]) >= 600 and len(by_split["test"]) == 200
    train_text = {c.text for c in by_split["pretrain"] + by_split["trainval"]}
    test_text = {c.text for c in by_split["test"]}
    assert len(train_text) == len(by_split["pretrain"]) + len(by_split["trainval"])  # no duplicates
    assert not train_text & test_text
    train_spk = {c.speaker.id for c in by_split["pretrain"] + by_split["trainval"]}
    test_spk = {c.speaker.id for c in by_split["test"]}
    assert len(train_spk | test_spk) >= 20 and not train_spk & test_spk
    assert len({c.speaker.voice.name for c in clips}) == len(train_spk | test_spk)
    assert len({c.speaker.female for c in clips}) == 2
    assert len({w for c in clips for w in c.text.split()}) >= 300
    assert all(normalize_text(c.text) == c.text for c in clips)
    names = [c.name for c in clips]
    assert len(set(names)) == len(names)


def test_grammar_vocabulary():
    assert len(text.vocabulary()) >= 300
    sentences = text.make_sentences(np.random.default_rng(0), 300, max_words=7)
    assert len(set(sentences)) == 300
    assert all(2 <= len(s.split()) <= 7 for s in sentences)
    assert {w for s in sentences for w in s.split()} <= text.vocabulary()
    excluded = text.make_sentences(np.random.default_rng(1), 50, exclude=set(sentences))
    assert not set(excluded) & set(sentences)


def test_espeak_word_and_phoneme_times():
    voice = speech.Voice("en-us+m3", rate=160, pitch=50, pitch_range=50)
    sp = speech.synthesize("there were forty houses near the river", voice)  # espeak joins "there were"
    assert [w.label for w in sp.words] == "there were forty houses near the river".split()
    assert all(w.start < w.end for w in sp.words)
    assert all(a.end <= b.start + 1e-9 for a, b in zip(sp.words, sp.words[1:]))
    assert sp.words[-1].end <= sp.duration
    assert abs(sp.duration - len(sp.audio) / SR) < 1e-9 and sp.audio.dtype == np.float32
    # the audio is loud inside words and the phonemes tile the utterance in order
    inside = np.concatenate([sp.audio[int(w.start * SR) : int(w.end * SR)] for w in sp.words])
    assert np.sqrt(np.mean(inside**2)) > 0.02
    starts = [p.start for p in sp.phonemes]
    assert starts == sorted(starts) and sp.phonemes[-1].end == pytest.approx(sp.duration, abs=1e-3)
    assert "aU" in {p.label for p in sp.phonemes}  # the vowel of "houses", stress marks stripped


def test_breathy_voice_same_samples_in_every_process():
    """A breathy variant (f5) mixes noise into the voice: two fresh espeak-ng servers, started a second apart
    (the library seeds its noise from the clock), speak it to the same samples."""
    import time

    from mome.data.synth.espeak import EspeakServer

    voice = speech.Voice("en-gb-x-rp+f5", rate=170, pitch=50, pitch_range=50)
    first = EspeakServer()
    time.sleep(1.1)
    second = EspeakServer()
    try:
        a, b = (s.speak("the quick brown fox", voice)[0] for s in (first, second))
    finally:
        first.close(), second.close()
    assert len(a) > 1000 and a == b


def test_viseme_map():
    assert len(visemes.VISEMES) <= 14 and visemes.TARGETS.shape == (len(visemes.VISEMES), 5)
    v = visemes.viseme_of
    assert v("p") == v("b") == v("m") != v("f") == v("v")
    assert v("'aI") == v("a#") == v("A:") == visemes.VISEMES.index("AA")
    assert v("u:") == v("w") != v("i:")
    assert v("_:") == v("_") == 0 and v(";") is None
    # every phoneme espeak-ng says for a sample of sentences has a mouth shape
    voice = speech.Voice("en-gb-x-rp+f2", rate=170, pitch=55, pitch_range=50)
    for s in text.make_sentences(np.random.default_rng(2), 20):
        for p in speech.synthesize(s, voice).phonemes:
            assert v(p.label) is not None or not p.label[0].isalnum(), p.label


def test_mouth_track_open_on_vowels_closed_in_silence():
    seg = speech.Segment
    phones = [seg("_", 0.0, 0.3), seg("b", 0.3, 0.38), seg("'aa", 0.38, 0.6), seg("m", 0.6, 0.68), seg("_", 0.68, 1.2)]
    track = visemes.mouth_track(phones, num_frames=30, fps=25, offset=0.2)
    opening = track[:, visemes.MOUTH_PARAMS.index("open")]
    vowel = int((0.2 + 0.49) * 25)
    assert opening[vowel] > 0.6 and opening[:5].max() < 0.05 and opening[-3:].max() < 0.05
    assert np.abs(np.diff(opening)).max() < 0.5  # smoothed between frames


def test_speech_set_voices_sentences_and_frame_labels(tmp_path):
    """The audio stand-in's extra speech: a new voice every N utterances, never an excluded voice or sentence,
    one phoneme label per 20 ms of each wav, reproducible from its seed."""
    import json

    from mome.bin.make_speech_set import main as make_speech_set_main
    from mome.data.kaldi import read_table
    from mome.data.media import read_wav
    from mome.data.synth.speakers import draw_voice
    from mome.data.synth.speech_set import _STREAM

    phones = tmp_path / "phones.txt"
    phones.write_text("_\n@\nI\na\nd\nn\ns\nt\n")  # espeak phonemes outside this list count as silence
    first_voice = draw_voice(np.random.default_rng([0, _STREAM, 0, 1])).name
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"speakers_detail": [{"voice": first_voice, "splits": ["test"]}]}))
    excluded = tmp_path / "text"
    excluded.write_text("u1 the cat sat\n")
    args = ["--data_dir", str(tmp_path / "data"), "--dump_dir", str(tmp_path / "dump"), "--phone_list", str(phones)]
    args += ["--exclude", str(excluded), "--corpus_stats", str(stats), "--utterances", "3"]
    assert make_speech_set_main([*args, "--utterances_per_voice", "2", "--no_progress"]) == 0
    data = tmp_path / "data"
    wavs, texts, labels = (read_table(data / name) for name in ("wav.scp", "text", "phones"))
    assert set(wavs) == set(texts) == set(labels) and len(wavs) == 3
    assert sorted(set(read_table(data / "utt2spk").values())) == ["voice00000", "voice00001"]
    voices = read_table(data / "spk2voice")
    assert sorted(voices) == ["voice00000", "voice00001"] and first_voice not in voices.values()
    assert "the cat sat" not in texts.values()
    for utt, path in wavs.items():
        ids = [int(i) for i in labels[utt].split()]
        assert len(ids) == round(len(read_wav(path)) / 16000 * 50)
        assert ids[0] == 0 and ids[-1] == 0 and set(ids) - {0}  # silence around speech
    first = (tmp_path / "dump/wav" / f"{sorted(wavs)[0]}.wav").read_bytes()
    assert make_speech_set_main([*args, "--no_progress"]) == 0  # a finished set is kept
    assert (tmp_path / "dump/wav" / f"{sorted(wavs)[0]}.wav").read_bytes() == first
