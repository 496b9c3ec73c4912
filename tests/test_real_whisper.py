"""Whisper base and tiny.en converted from their CTranslate2 packages (tools/get_pretrained.sh), on real speech:
Debian alsa-utils' recordings of a person saying the eight loudspeaker positions, plus Noise.wav (noise only).

The expected token ids are what CTranslate2 itself (ctranslate2 4.8.5, float32, greedy) writes from the packaged
model.bin files: the converted models must decode exactly as the originals. tiny.en hears "Rear right" as "We're
right." in CTranslate2 as well; that is the model, not the conversion."""

from __future__ import annotations

import re

import pytest
import torch

from mome.data.media import read_wav
from mome.models.encoders.whisper import WhisperAudioEncoder
from tests.helpers.real_parts import real_part

pytestmark = pytest.mark.real

RECORDINGS = [
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Noise",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
]
PHRASES = {n: n.lower().replace("_", " ") for n in RECORDINGS if n != "Noise"}  # what the voice says
CHANNEL_WORDS = {"front", "rear", "side", "center", "left", "right"}
CTRANSLATE2_GREEDY = {  # token ids after the decoder prompt, up to (not including) <|endoftext|>
    "whisper-base": {
        "Front_Center": [17348, 5169, 13],
        "Front_Left": [17348, 11, 1411, 13],
        "Front_Right": [1868, 11, 558, 13],
        "Noise": [293],
        "Rear_Center": [1300, 289, 5169, 13],
        "Rear_Left": [1300, 289, 11, 1411, 13],
        "Rear_Right": [1300, 289, 11, 558, 13],
        "Side_Left": [19026, 11, 1411, 13],
        "Side_Right": [1252, 11, 558, 13],
    },
    "whisper-tiny.en": {
        "Front_Center": [8880, 11, 3641, 13],
        "Front_Left": [8880, 11, 1364, 13],
        "Front_Right": [8880, 11, 826, 13],
        "Noise": [345],
        "Rear_Center": [30144, 3337, 13],
        "Rear_Left": [8286, 1364, 13],
        "Rear_Right": [775, 821, 826, 13],
        "Side_Left": [12075, 1364, 13],
        "Side_Right": [12075, 11, 826, 13],
    },
}
HEARD = {"whisper-base": PHRASES, "whisper-tiny.en": {**PHRASES, "Rear_Right": "we're right"}}
PROMPTS = {  # decoder prompt: <|startoftranscript|> [<|en|> <|transcribe|>] <|notimestamps|>
    "whisper-base": [50258, 50259, 50359, 50363],
    "whisper-tiny.en": [50257, 50362],  # English-only: no language or task token
}
SIZES = {"whisper-base": (512, 6, 6, 51865), "whisper-tiny.en": (384, 4, 4, 51864)}  # d_model, layers, vocab


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", text.lower()).split())


@pytest.fixture(scope="module")
def recordings() -> dict[str, torch.Tensor]:
    folder = real_part("alsa-sounds", needs="Front_Center.wav")
    return {name: torch.from_numpy(read_wav(folder / f"{name}.wav", 16000)) for name in RECORDINGS}


@pytest.fixture(scope="module", params=["whisper-base", "whisper-tiny.en"])
def whisper(request):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    path = real_part(request.param)
    with torch.random.fork_rng():  # loading must not move the global random state the other tests start from
        model, info = WhisperForConditionalGeneration.from_pretrained(path, output_loading_info=True)
    return request.param, path, model.eval(), info, WhisperProcessor.from_pretrained(path)


def test_recordings_are_the_expected_ones(recordings):
    assert set(recordings) == set(RECORDINGS)
    for name, audio in recordings.items():
        assert 1.2 < len(audio) / 16000 < 1.6, name  # the 1.4 s clips, 48 kHz read as 16 kHz


def test_directory_loads_strictly_with_tied_output(whisper):
    name, _, model, info, processor = whisper
    assert info == {"missing_keys": set(), "unexpected_keys": set(), "mismatched_keys": set(), "error_msgs": []}
    d, enc, dec, vocab = SIZES[name]
    c = model.config
    assert (c.d_model, c.encoder_layers, c.decoder_layers, c.vocab_size) == (d, enc, dec, vocab)
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    assert model.dtype == torch.float32 and processor.feature_extractor.feature_size == c.num_mel_bins == 80


def test_generation_config_languages(whisper):
    name, _, model, _, processor = whisper
    g = model.generation_config
    if name == "whisper-tiny.en":
        assert g.is_multilingual is False
        assert not hasattr(g, "lang_to_id") and not hasattr(g, "task_to_id")
        features = torch.zeros(1, 80, 3000)
        with pytest.raises(ValueError, match="English-only"):
            model.generate(features, language="en")
    else:
        assert g.is_multilingual is True and len(g.lang_to_id) == 99
        assert g.lang_to_id["<|en|>"] == processor.tokenizer.convert_tokens_to_ids("<|en|>") == 50259
        assert g.task_to_id == {"transcribe": 50359, "translate": 50358}
    assert g.no_timestamps_token_id == processor.tokenizer.convert_tokens_to_ids("<|notimestamps|>")


def test_transcribes_the_recordings_as_ctranslate2_does(whisper, recordings):
    name, _, model, _, processor = whisper
    features = processor.feature_extractor(
        [recordings[n].numpy() for n in RECORDINGS], sampling_rate=16000, return_tensors="pt"
    ).input_features
    kwargs = {"language": "en", "task": "transcribe"} if model.generation_config.is_multilingual else {}
    with torch.no_grad():
        out = model.generate(features, return_dict_in_generate=True, **kwargs).sequences
    eos = model.generation_config.eos_token_id
    prompt = PROMPTS[name]
    ids, texts = {}, {}
    for rec, row in zip(RECORDINGS, out.tolist()):
        assert row[: len(prompt)] == prompt, rec
        body = row[len(prompt) :]
        ids[rec] = body[: body.index(eos)] if eos in body else body
        texts[rec] = words(processor.tokenizer.decode(ids[rec], skip_special_tokens=True))
    assert ids == CTRANSLATE2_GREEDY[name]
    assert {n: texts[n] for n in PHRASES} == HEARD[name]
    assert not CHANNEL_WORDS & set(texts["Noise"].split())  # noise is not heard as a channel name


def test_our_encoder_in_30_second_mode_equals_hugging_face(whisper, recordings):
    _, path, model, _, processor = whisper
    ours = WhisperAudioEncoder.from_pretrained(path, mask_padding=False, pad_to_full=True).eval()
    items = [recordings["Front_Center"], recordings["Rear_Left"]]  # 1.43 s and 1.31 s: a ragged batch
    batch = torch.zeros(2, max(len(x) for x in items))
    for i, x in enumerate(items):
        batch[i, : len(x)] = x
    lengths = torch.tensor([len(x) for x in items])
    features = processor.feature_extractor(
        [x.numpy() for x in items], sampling_rate=16000, return_tensors="pt"
    ).input_features
    with torch.no_grad():
        reference = model.model.encoder(features).last_hidden_state  # (2, 1500, d)
        encoded, feature_lengths = ours(batch, lengths)
    assert encoded.shape == reference.shape
    assert feature_lengths.tolist() == [(int(n) // 160 + (int(n) % 160 > 0) + 1) // 2 for n in lengths]
    assert torch.equal(encoded, reference)  # exactly: same log-mel, same layers, same 30 s window
