"""The mini recipe's stand-ins of the pretrained parts: frame labels and lexicons from the synthesiser's
alignments, frame-label pretraining of an encoder, saved encoders, the stand-in LLM's documents and its saved
directory, speed perturbation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mome.data.synth.alignments import (
    SILENCE,
    frame_labels,
    read_lexicon,
    read_phn,
    viseme_units,
    word_units,
    write_lexicon,
)
from mome.espnet.preprocess import AVSRPreprocessor, speed, stretch
from mome.models.encoders.pretraining import IGNORE_LABEL, FrameClassifier, neighbour_labels
from mome.models.encoders.small import SmallAudioEncoder, SmallVideoEncoder


# ------------------------------------------------------------------------------------------ alignments
def test_read_phn_and_frame_labels(tmp_path):
    phn = tmp_path / "a.phn"
    phn.write_text("0.10 0.20 k\n0.20 0.30 a\n0.30 0.38 _\n0.38 0.50 t\n")
    units = read_phn(phn)
    assert units == [(0.10, 0.20, "k"), (0.20, 0.30, "a"), (0.30, 0.38, "_"), (0.38, 0.50, "t")]
    ids = {SILENCE: 0, "k": 1, "a": 2, "t": 3}
    # 10 frames per second: centres 0.05, 0.15, ..., 0.55
    assert frame_labels(units, 6, 10, ids).tolist() == [0, 1, 2, 0, 3, 0]
    # from 0.1 s on (a segment that starts inside the clip): centres 0.15, 0.25, 0.35, 0.45
    assert frame_labels(units, 4, 10, ids, offset=0.1).tolist() == [1, 2, 0, 3]
    # a unit missing from the list is silence
    assert frame_labels(units, 6, 10, {SILENCE: 0, "a": 1}).tolist() == [0, 0, 1, 0, 0, 0]


def test_read_phn_names_a_bad_file(tmp_path):
    bad = tmp_path / "bad.phn"
    bad.write_text("0.1 0.2\n")
    with pytest.raises(ValueError, match="bad.phn:1"):
        read_phn(bad)


def test_visemes_follow_the_lips_and_words_collect_their_units():
    units = [(0.0, 0.1, "_"), (0.1, 0.2, "p"), (0.2, 0.3, "a"), (0.3, 0.4, "t")]
    visemes = viseme_units(units)
    assert [v for _, _, v in visemes] == [SILENCE, "PP", "AA", "DD"]
    assert visemes[1][:2] == pytest.approx((0.08, 0.18))  # the lips lead the sound by 20 ms
    assert word_units(units, [("pat", 0.1, 0.4), ("um", 0.4, 0.5)]) == [("pat", ("p", "a", "t")), ("um", ())]


def test_lexicon_round_trip(tmp_path):
    from collections import Counter

    path = tmp_path / "lexiconp.txt"
    write_lexicon(path, {"the": Counter({("D", "@"): 3, ("D", "i:"): 1}), "a": Counter({("a#",): 2})})
    assert path.read_text().splitlines() == ["a 1.0000 a#", "the 0.7500 D @", "the 0.2500 D i:"]
    lexicon = read_lexicon(path)
    assert lexicon["the"][0] == [("D", "@"), ("D", "i:")]
    assert lexicon["the"][1].tolist() == pytest.approx([0.75, 0.25])


# --------------------------------------------------------------------------- frame-label pretraining
def test_frame_classifier_loss_and_accuracy_by_hand():
    encoder = SmallAudioEncoder(dim=16, layers=1, heads=2, ffn_dim=32)
    classifier = FrameClassifier(encoder, num_labels=3)
    with torch.no_grad():  # a head that always says label 1, surely
        classifier.head.weight.zero_()
        classifier.head.bias.copy_(torch.tensor([0.0, 10.0, 0.0]))
    audio = torch.randn(2, 1600)  # 0.1 s: 5 output frames
    labels = torch.tensor(
        [[1, 1, 2, 0, 1, 1, 1], [1, 2, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL, IGNORE_LABEL]]
    )
    out = classifier(audio, torch.tensor([1600, 800]), labels)  # the second has 2 frames of its own (400 samples each)
    # labelled frames: 5 of the first (the labels past the encoder's output are cut), 2 of the second
    assert int(out.frames) == 7
    assert float(out.accuracy) == pytest.approx(4 / 7)  # 1, 1, -, -, 1 | 1, -
    p_right = np.exp(10) / (np.exp(10) + 2)
    expected = -(4 * np.log(p_right) + 3 * np.log((1 - p_right) / 2)) / 7
    assert out.loss.item() == pytest.approx(expected, rel=1e-4)


def test_neighbour_labels_name_the_previous_and_next_segment():
    n = IGNORE_LABEL
    labels = torch.tensor([[5, 5, 7, 7, 7, 2, n], [3, 3, 3, n, n, n, n], [4, 9, 4, 4, 0, 0, 0]])
    previous, following = neighbour_labels(labels)
    assert previous.tolist() == [[n, n, 5, 5, 5, 7, n], [n, n, n, n, n, n, n], [n, 4, 9, 9, 4, 4, 4]]
    assert following.tolist() == [[7, 7, 2, 2, 2, n, n], [n, n, n, n, n, n, n], [9, 4, 0, 0, n, n, n]]


def test_context_classifiers_add_their_weighted_loss():
    encoder = SmallAudioEncoder(dim=16, layers=1, heads=2, ffn_dim=32)
    classifier = FrameClassifier(encoder, num_labels=3, context_weight=0.5)
    with torch.no_grad():  # every head says label 1 surely; only the next-segment head is uniform
        for head in (classifier.head, classifier.previous_head, classifier.next_head):
            head.weight.zero_()
            head.bias.copy_(torch.tensor([0.0, 10.0, 0.0]))
        classifier.next_head.bias.zero_()
    audio = torch.randn(1, 1600)  # 5 output frames
    out = classifier(audio, torch.tensor([1600]), torch.tensor([[1, 1, 2, 2, 0]]))
    # frames: labels 1 1 2 2 0 | previous - - 1 1 2 | next 2 2 0 0 -
    p_right = np.exp(10) / (np.exp(10) + 2)
    right, wrong = -np.log(p_right), -np.log((1 - p_right) / 2)
    frame_loss = (2 * right + 3 * wrong) / 5
    previous_loss = (2 * right + wrong) / 3
    next_loss = np.log(3)
    assert out.loss.item() == pytest.approx(frame_loss + 0.5 * (previous_loss + next_loss), rel=1e-4)
    assert float(out.accuracy) == pytest.approx(2 / 5)
    # previous: 2 of 3 right; next: a uniform head's arg-max is label 0, right on 2 of 4
    assert float(out.context_accuracy) == pytest.approx((2 / 3 + 2 / 4) / 2)
    with pytest.raises(ValueError, match="context_weight"):
        FrameClassifier(encoder, num_labels=3, context_weight=-1)


@pytest.mark.parametrize(
    "cls, x", [(SmallAudioEncoder, torch.randn(2, 8000)), (SmallVideoEncoder, torch.randn(2, 10, 88, 88))]
)
def test_saved_encoder_loads_frozen_and_computes_the_same(tmp_path, cls, x):
    kwargs = dict(dim=16, layers=1, heads=2, ffn_dim=32)
    if cls is SmallVideoEncoder:
        kwargs.update(channels=[4, 8, 8, 16], input_pool=2, stem_frames=3)
    encoder = cls(**kwargs).eval()
    lengths = torch.tensor([x.shape[1], x.shape[1] // 2])
    saved = encoder.save_pretrained(tmp_path / "encoder")
    loaded = cls.from_pretrained(saved)
    assert loaded.frozen and not any(p.requires_grad for p in loaded.parameters())
    assert loaded.config == encoder.config
    with torch.no_grad():  # (the frozen one runs without a graph: torch may take its fused path there)
        torch.testing.assert_close(loaded(x, lengths)[0], encoder(x, lengths)[0], rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="holds a"):
        (SmallVideoEncoder if cls is SmallAudioEncoder else SmallAudioEncoder).from_pretrained(saved)
    with pytest.raises(FileNotFoundError, match="not a saved encoder"):
        cls.from_pretrained(tmp_path)


def test_small_encoders_load_from_a_path(tmp_path):
    SmallAudioEncoder(dim=16, layers=1, heads=2, ffn_dim=32).save_pretrained(tmp_path / "enc")
    loaded = SmallAudioEncoder(path=tmp_path / "enc")
    assert loaded.frozen and loaded.output_size == 16  # the saved sizes, not the signature's defaults
    assert not SmallAudioEncoder(path=tmp_path / "enc", frozen=False).frozen
    assert SmallAudioEncoder(path=tmp_path / "enc", dropout=0.0).config["dropout"] == 0.0  # a non-shape option on top
    assert not SmallAudioEncoder(dim=16, layers=1, heads=2, ffn_dim=32).frozen  # built from sizes: trainable
    with pytest.raises(ValueError, match="do not fit"):
        SmallAudioEncoder(path=tmp_path / "enc", dim=32)
    with pytest.raises(FileNotFoundError, match="not a saved encoder"):
        SmallAudioEncoder(path=tmp_path / "missing")


# ---------------------------------------------------------------------------------- speed perturbation
def test_speed_perturbation_stretches_audio_and_labels_alike():
    wave = np.sin(np.arange(16000) / 10).astype(np.float32)
    assert len(speed(wave, 1.25)) == 12800 and len(speed(wave, 0.8)) == 20000
    assert np.array_equal(speed(wave, 1.0), wave)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    assert stretch(labels, 2.0).tolist() == [0, 1, 2, 3]
    assert stretch(labels, 0.5).tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
    pre = AVSRPreprocessor(train=True, tokenizer=None, speed_perturb=[0.5, 0.5], mask_window=0)
    out = pre("u", {"audio": wave, "labels": np.arange(50)})
    assert len(out["audio"]) == 32000 and len(out["labels"]) == 100  # 2x slower, each label twice
    with pytest.raises(ValueError, match="speed_perturb"):
        AVSRPreprocessor(train=True, tokenizer=None, speed_perturb=[1.2, 0.8])


# --------------------------------------------------------------------------------------- stand-in LLM
def _lexicons():
    from collections import Counter

    from mome.data.synth.text import vocabulary

    # every grammar word spelled by its letters: a lexicon that covers any sentence
    phones = {w: ([tuple(w)], np.array([1.0])) for w in vocabulary()}
    visemes = {w: ([tuple("V" if c in "aeiou" else "C" for c in w)], np.array([1.0])) for w in vocabulary()}
    return {"audio": phones, "video": visemes}, Counter


def test_lm_documents_hold_spellings_repeats_and_never_an_excluded_sentence(tmp_path):
    from mome.pretrain.lm import GrammarDocuments, LMConfig, grammar_sentences, train_tokenizer, unit_token

    lexicons, _ = _lexicons()
    exclude = set()
    stream = grammar_sentences(5, ())
    while len(exclude) < 300:
        exclude.add(next(stream))
    units = [
        unit_token(m, u)
        for m, lex in lexicons.items()
        for u in sorted({u for p, _ in lex.values() for q in p for u in q})
    ]
    text = grammar_sentences(1, ())
    tokenizer = train_tokenizer([next(text) for _ in range(2000)], tmp_path / "tok", 400, units)
    for token in units:  # every unit is one token of its own
        assert tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id
        assert tokenizer(token, add_special_tokens=False)["input_ids"][-1:] == [tokenizer.convert_tokens_to_ids(token)]
    config = LMConfig(block_size=96, spelling_p=0.4, repeat_p=0.3, drop_p=0.0, double_p=0.0, swap_p=0.0)
    documents = GrammarDocuments(tokenizer, config, exclude, seed=0, lexicons=lexicons)
    texts = [tokenizer.decode(next(iter_)["input_ids"]) for iter_ in [iter(documents)] for _ in range(40)]
    sentences = [s.strip() for t in texts for s in t.replace("<s>", "").split("</s>")]
    words = [s.split(".")[-1].strip() for s in sentences if s.strip()]
    assert not set(words) & exclude
    assert any("<ph:" in t for t in texts) and any("<vi:" in t for t in texts)
    assert any("Transcribe speech and video to text." in t for t in texts)
    # a noise-free spelling holds every unit of every word, in order
    spelled = documents.spellers["audio"].spell("the cat", np.random.default_rng(0), noise=False)
    assert tokenizer.convert_ids_to_tokens(spelled) == [unit_token("audio", c) for c in "thecat"]
    assert documents.spellers["audio"].spell("the zzz", np.random.default_rng(0)) is None


def test_pretrained_lm_directory_loads_as_a_frozen_llm(tmp_path):
    from mome.models.llm import FrozenLLM
    from mome.pretrain.lm import LMConfig, pretrain_lm

    lexicons, _ = _lexicons()
    config = LMConfig(
        vocab_size=400,
        hidden_size=32,
        layers=1,
        heads=2,
        kv_heads=1,
        intermediate_size=64,
        block_size=64,
        batch_size=4,
        max_steps=3,
        warmup_steps=1,
    )
    figures = pretrain_lm(tmp_path / "lm", {"the cat sat"}, config, ["the dog ran"], lexicons)
    assert set(figures) == {"perplexity_per_word", "copy", "read_audio", "read_video", "read_audio_video"}
    assert all(0 <= v <= 1 for k, v in figures.items() if k != "perplexity_per_word")
    llm = FrozenLLM.from_pretrained(tmp_path / "lm")
    assert llm.tokenizer.bos_token == "<s>" and llm.tokenizer.eos_token == "</s>"
    assert llm.tokenizer.convert_tokens_to_ids("<ph:a>") != llm.tokenizer.unk_token_id
    assert not any(p.requires_grad for p in llm.hf.parameters())
    assert (tmp_path / "lm" / "pretraining.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging directory left


def test_lm_sentence_pool_replaces_the_grammar_and_keeps_exclusions():
    from mome.pretrain.lm import grammar_sentences

    pool = ["emma sold our fish", "george read our bird at night", "kate stopped near that cold market"]
    drawn = [s for s, _ in zip(grammar_sentences(0, {pool[1]}, pool=pool), range(200))]
    assert set(drawn) == {pool[0], pool[2]}  # both kept ones drawn, the excluded one never
    grammar = [s for s, _ in zip(grammar_sentences(0, set()), range(50))]
    assert len(set(grammar)) > 40 and not set(grammar) & set(pool)
