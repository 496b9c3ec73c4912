"""Audio and video encoders: shapes and lengths of ragged batches, padding independence, Whisper log-mel
parity with transformers' extractor, Whisper save_pretrained loading, AV-HuBERT public checkpoint loading
(without fairseq), the frozen flag, the constructors' path= / config= choice."""

from __future__ import annotations

import argparse
import sys
import types

import numpy as np
import pytest
import torch

from mome.models.encoders.avhubert import AVHubertVideoEncoder, avhubert_config
from mome.models.encoders.avhubert_checkpoint import fairseq_style_checkpoint, load_avhubert, to_fairseq_state_dict
from mome.models.encoders.logmel import WhisperLogMel, num_frames
from mome.models.encoders.small import SmallAudioEncoder, SmallVideoEncoder
from mome.models.encoders.whisper import WhisperAudioEncoder

TINY_WHISPER = dict(
    d_model=32,
    encoder_layers=2,
    encoder_attention_heads=4,
    encoder_ffn_dim=64,
    max_source_positions=100,
    decoder_layers=1,
    decoder_attention_heads=4,
    decoder_ffn_dim=64,
    max_target_positions=16,
    vocab_size=64,
    num_mel_bins=80,
    pad_token_id=1,
    bos_token_id=2,
    eos_token_id=2,
    decoder_start_token_id=3,
)  # 100 positions = 200 mel frames = 2 s


def _audio(seconds: float, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).standard_normal(int(seconds * 16000)).astype(np.float32) * 0.1)


def _ragged(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    batch = torch.zeros(len(items), max(len(x) for x in items), *items[0].shape[1:])
    for i, x in enumerate(items):
        batch[i, : len(x)] = x
    return batch, torch.tensor([len(x) for x in items])


def _no_trainable(module: torch.nn.Module) -> bool:
    return not any(p.requires_grad for p in module.parameters())


# ------------------------------------------------------------------ log-mel


def test_logmel_frame_counts():
    assert num_frames(torch.tensor([160, 161, 16000, 16001])).tolist() == [1, 2, 100, 101]


def test_logmel_matches_whisper_feature_extractor():
    from transformers import WhisperFeatureExtractor

    audio = _audio(1.3)
    reference = WhisperFeatureExtractor()(audio.numpy(), sampling_rate=16000, return_tensors="np").input_features[0]
    batch, lengths = _ragged([_audio(2.1, seed=1), audio])
    mel, frames = WhisperLogMel(80)(batch, lengths)
    assert frames.tolist() == [210, 130] and mel.shape == (2, 80, 210)
    # The valid frames and the padded (silence) frames both equal the extractor's (which pads to 30 s).
    np.testing.assert_allclose(mel[1].numpy(), reference[:, :210], atol=1e-5)
    alone, _ = WhisperLogMel(80)(audio[None], lengths[1:])
    torch.testing.assert_close(alone[0], mel[1, :, :130], atol=1e-6, rtol=0)


# ------------------------------------------------------------------ Whisper


@pytest.fixture(scope="module")
def whisper_dirs(tmp_path_factory):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(WhisperConfig(**TINY_WHISPER)).eval()
    root = tmp_path_factory.mktemp("whisper")
    dirs = {"generation": root / "gen", "model": root / "model", "encoder": root / "enc"}
    model.save_pretrained(dirs["generation"])
    model.model.save_pretrained(dirs["model"])
    model.model.encoder.save_pretrained(dirs["encoder"])
    return model, dirs


def test_whisper_loads_every_save_pretrained_layout_and_matches_hf(whisper_dirs):
    from transformers import WhisperFeatureExtractor

    model, dirs = whisper_dirs
    audio = _audio(1.7)
    # Whisper's own recipe: pad to the full window (2 s here), no mask; must equal WhisperEncoder.forward.
    features = WhisperFeatureExtractor(chunk_length=2)(audio.numpy(), sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        reference = model.model.encoder(features.input_features).last_hidden_state
    for kind, path in dirs.items():
        full = WhisperAudioEncoder.from_pretrained(path, mask_padding=False, pad_to_full=True)
        out, lengths = full(audio[None], torch.tensor([len(audio)]))
        assert out.shape == (1, 100, 32) and lengths.tolist() == [85], kind
        torch.testing.assert_close(out, reference, atol=1e-5, rtol=0)
    assert WhisperAudioEncoder.from_pretrained(dirs["generation"]).num_parameters() == sum(
        p.numel() for p in model.model.encoder.parameters()
    )


def test_whisper_ragged_batch_lengths_and_padding(whisper_dirs):
    _, dirs = whisper_dirs
    items = [_audio(1.0, seed=2), _audio(0.37, seed=3)]  # 100 and 37 mel frames
    batch, lengths = _ragged(items)
    masked = WhisperAudioEncoder.from_pretrained(dirs["generation"])  # mask_padding=True
    out, out_lengths = masked(batch, lengths)
    assert masked.frame_rate == 50 and masked.output_size == 32
    assert out.shape == (2, 50, 32) and out_lengths.tolist() == [50, 19]
    for i, item in enumerate(items):  # with the mask an item is independent of the batch
        alone, alone_lengths = masked(item[None], lengths[i : i + 1])
        assert alone.shape[1] == alone_lengths.item() == out_lengths[i]
        torch.testing.assert_close(alone[0], out[i, : out_lengths[i]], atol=1e-5, rtol=0)

    # Without the mask (as Whisper was trained) the padded silence is attended to: the longest item is
    # unaffected, a shorter one changes with the batch.
    unmasked = WhisperAudioEncoder.from_pretrained(dirs["generation"], mask_padding=False)
    out, _ = unmasked(batch, lengths)
    torch.testing.assert_close(unmasked(items[0][None], lengths[:1])[0][0], out[0], atol=1e-5, rtol=0)
    short_alone = unmasked(items[1][None], lengths[1:])[0][0]
    assert (short_alone - out[1, :19]).abs().max() > 1e-4


def test_whisper_encodes_audio_longer_than_its_window_window_by_window(whisper_dirs):
    """4.6 s with a 2 s window (460 mel frames): windows 0-200, 200-400, 400-460, each encoded on its own as
    Whisper encodes its windows; a short item batched with the long one is what it is alone."""
    model, dirs = whisper_dirs
    encoder = WhisperAudioEncoder.from_pretrained(dirs["generation"])
    long, short = _audio(4.6, seed=4), _audio(0.9, seed=5)
    batch, lengths = _ragged([long, short])
    out, out_lengths = encoder(batch, lengths)
    assert out_lengths.tolist() == [230, 45] and out.shape == (2, 230, 32)
    mel, frames = encoder.log_mel(long[None], lengths[:1], pad_to_multiple=2, extra_frames=2)
    assert frames.tolist() == [460]
    with torch.no_grad():  # a full window is exactly what transformers' WhisperEncoder takes
        for w in (0, 1):
            reference = model.model.encoder(mel[..., 200 * w : 200 * (w + 1)]).last_hidden_state[0]
            torch.testing.assert_close(out[0, 100 * w : 100 * (w + 1)], reference, atol=1e-5, rtol=0)
        last = encoder._encode(mel[..., 400:462], torch.tensor([30]), 30)[0]
    torch.testing.assert_close(out[0, 200:], last, atol=1e-5, rtol=0)
    alone, _ = encoder(short[None], lengths[1:])
    torch.testing.assert_close(out[1, :45], alone[0], atol=1e-5, rtol=0)


def test_whisper_frozen_flag(whisper_dirs):
    _, dirs = whisper_dirs
    frozen = WhisperAudioEncoder.from_pretrained(dirs["encoder"], frozen=True).train()
    assert _no_trainable(frozen) and not frozen.training
    trainable = WhisperAudioEncoder.from_pretrained(dirs["encoder"], frozen=False).train()
    out, _ = trainable(_audio(0.5)[None], torch.tensor([8000]))
    out.sum().backward()
    assert trainable.encoder.conv1.weight.grad is not None and trainable.training


def test_whisper_missing_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        WhisperAudioEncoder(path=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="config.json"):
        WhisperAudioEncoder.from_pretrained(tmp_path)


# ------------------------------------------------------------------ AV-HuBERT


def _frames(num: int, seed: int) -> torch.Tensor:
    return torch.randn(num, 88, 88, generator=torch.Generator().manual_seed(seed))


def test_avhubert_public_layout_names_and_shapes():
    with torch.device("meta"):
        base = AVHubertVideoEncoder("base")
        large = AVHubertVideoEncoder("large")
    public = {k: tuple(v.shape) for k, v in to_fairseq_state_dict(base).items()}
    expected = {  # names and shapes of the public base checkpoint
        "feature_extractor_video.resnet.frontend3D.0.weight": (64, 1, 5, 7, 7),
        "feature_extractor_video.resnet.frontend3D.2.weight": (64,),  # PReLU
        "feature_extractor_video.resnet.trunk.layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "feature_extractor_video.resnet.trunk.layer4.1.relu2.weight": (512,),
        "feature_extractor_video.proj.weight": (768, 512),
        "layer_norm.weight": (1536,),
        "post_extract_proj.weight": (768, 1536),
        "encoder.pos_conv.0.weight_g": (1, 1, 128),
        "encoder.pos_conv.0.weight_v": (768, 48, 128),
        "encoder.layers.11.self_attn.k_proj.weight": (768, 768),
        "encoder.layers.0.self_attn_layer_norm.weight": (768,),
        "encoder.layers.0.fc1.weight": (3072, 768),
        "encoder.layers.0.final_layer_norm.bias": (768,),
        "encoder.layer_norm.weight": (768,),
    }
    assert {k: public[k] for k in expected} == expected
    assert base.num_parameters() == 102_539_648 and large.num_parameters() == 324_515_456
    assert base.frame_rate == 25 and large.output_size == 1024


def test_avhubert_ragged_batch_lengths_and_padding():
    torch.manual_seed(0)
    encoder = AVHubertVideoEncoder("tiny", frozen=True)
    items = [_frames(11, 0), _frames(6, 1)]
    batch, lengths = _ragged(items)
    out, out_lengths = encoder(batch, lengths)
    assert out.shape == (2, 11, 32) and out_lengths.tolist() == [11, 6]
    for i, item in enumerate(items):
        alone, _ = encoder(item[None], lengths[i : i + 1])
        torch.testing.assert_close(alone[0], out[i, : lengths[i]], atol=1e-5, rtol=0)
    assert _no_trainable(encoder)


def _save_with_fairseq_classes(checkpoint: dict, path) -> None:
    """torch.save a checkpoint that references a fairseq class, then make that class unimportable."""
    names = ["fairseq", "fairseq.logging", "fairseq.logging.meters"]
    modules = {name: types.ModuleType(name) for name in names}
    meter = type("AverageMeter", (), {"__module__": "fairseq.logging.meters", "__init__": lambda self: None})
    modules["fairseq.logging.meters"].AverageMeter = meter
    sys.modules.update(modules)
    try:
        checkpoint["extra_state"] = {"metrics": {"train": meter()}}
        torch.save(checkpoint, path)
    finally:
        for name in names:
            del sys.modules[name]


def test_avhubert_loads_public_pretraining_checkpoint(tmp_path):
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    source = AVHubertVideoEncoder("tiny", frozen=False).eval()
    for module in source.modules():  # non-trivial batch-norm statistics must travel too
        if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    checkpoint = fairseq_style_checkpoint(source)
    checkpoint["cfg"] = OmegaConf.create({**checkpoint["cfg"], "task": {"label_rate": "${model.label_rate}"}})
    extras = {  # pre-training parts that video-only inference does not use
        "feature_extractor_audio.proj.weight": torch.randn(32, 104),
        "mask_emb": torch.zeros(104),
        "final_proj.weight": torch.randn(16, 32),
        "label_embs_concat": torch.randn(10, 16),
    }
    checkpoint["model"].update(extras)
    _save_with_fairseq_classes(checkpoint, tmp_path / "avhubert.pt")

    loaded = load_avhubert(tmp_path / "avhubert.pt")
    assert loaded.load_report["missing"] == [] and loaded.load_report["unused"] == sorted(extras)
    assert loaded.config == source.config and _no_trainable(loaded)
    batch, lengths = _ragged([_frames(9, 2), _frames(5, 3)])
    torch.testing.assert_close(loaded(batch, lengths)[0], source(batch, lengths)[0], atol=0, rtol=0)


def test_avhubert_loads_finetuned_layout_with_args_namespace(tmp_path):
    torch.manual_seed(1)
    config = avhubert_config("tiny", layer_norm_first=False, resnet_relu_type="relu", encoder_attention_heads=2)
    source = AVHubertVideoEncoder(config).eval()
    state = {"encoder.w2v_model." + k: v for k, v in to_fairseq_state_dict(source).items()}
    state["decoder.embed_tokens.weight"] = torch.randn(5, 32)
    args = argparse.Namespace(encoder_attention_heads=2, layer_norm_first=False, encoder_embed_dim=32)
    torch.save({"model": state, "args": args, "cfg": None}, tmp_path / "finetuned.pt")

    loaded = AVHubertVideoEncoder(path=tmp_path / "finetuned.pt")
    assert loaded.config == config
    assert loaded.load_report["unused"] == ["decoder.embed_tokens.weight"]
    batch, lengths = _ragged([_frames(7, 4), _frames(4, 5)])
    torch.testing.assert_close(loaded(batch, lengths)[0], source(batch, lengths)[0], atol=0, rtol=0)


def test_avhubert_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        AVHubertVideoEncoder(path=tmp_path / "absent.pt")
    state = to_fairseq_state_dict(AVHubertVideoEncoder("tiny"))
    del state["encoder.layers.1.fc2.bias"]
    torch.save({"model": state}, tmp_path / "partial.pt")
    with pytest.raises(KeyError, match="encoder.layers.1.fc2.bias"):
        load_avhubert(tmp_path / "partial.pt")


# ------------------------------------------------------------------ small encoders


@pytest.mark.parametrize("stride, rate, expected_lengths", [(2, 50, [50, 19]), (4, 25, [25, 10])])
def test_small_audio_encoder(stride, rate, expected_lengths):
    torch.manual_seed(0)
    encoder = SmallAudioEncoder(stride=stride).eval()
    items = [_audio(1.0, seed=4), _audio(0.37, seed=5)]
    batch, lengths = _ragged(items)
    out, out_lengths = encoder(batch, lengths)
    assert encoder.frame_rate == rate and out_lengths.tolist() == expected_lengths
    assert out.shape == (2, expected_lengths[0], encoder.output_size)
    alone, _ = encoder(items[1][None], lengths[1:])
    torch.testing.assert_close(alone[0], out[1, : expected_lengths[1]], atol=1e-5, rtol=0)
    assert 200_000 < encoder.num_parameters() < 2_500_000


def test_small_video_encoder_trains_and_freezes():
    torch.manual_seed(0)
    encoder = SmallVideoEncoder().eval()
    items = [_frames(10, 6), _frames(3, 7)]
    batch, lengths = _ragged(items)
    out, out_lengths = encoder(batch, lengths)
    assert encoder.frame_rate == 25 and out.shape == (2, 10, 144) and out_lengths.tolist() == [10, 3]
    torch.testing.assert_close(encoder(items[1][None], lengths[1:])[0][0], out[1, :3], atol=1e-5, rtol=0)
    assert 200_000 < encoder.num_parameters() < 2_500_000

    encoder.train()
    encoder(batch, lengths)[0].sum().backward()
    assert encoder.stem.weight.grad is not None
    frozen = SmallVideoEncoder(frozen=True).train()
    assert _no_trainable(frozen) and not frozen.training


# ------------------------------------------------------------------ the registry


def test_registry_names_the_encoder_classes_and_errors(tmp_path):
    from mome.espnet.choices import ConfigError, audio_encoder_choices, build, video_encoder_choices

    assert isinstance(build(audio_encoder_choices, "whisper", {"config": TINY_WHISPER}), WhisperAudioEncoder)
    assert _no_trainable(
        build(audio_encoder_choices, "whisper", {"config": TINY_WHISPER})
    )  # pretrained kinds default frozen
    (tmp_path / "whisper.json").write_text(__import__("json").dumps(TINY_WHISPER))
    from_json = build(audio_encoder_choices, "whisper", {"config": str(tmp_path / "whisper.json")})
    assert from_json.output_size == TINY_WHISPER["d_model"]
    assert isinstance(build(audio_encoder_choices, "small", {"dim": 64, "layers": 1}), SmallAudioEncoder)
    tiny = build(video_encoder_choices, "avhubert", {"config": "tiny", "frozen": False})
    assert isinstance(tiny, AVHubertVideoEncoder) and not _no_trainable(tiny)
    with pytest.raises(ConfigError, match="--audio_encoder must be one of"):
        build(audio_encoder_choices, "wav2vec", {})
    with pytest.raises(ConfigError, match="--video_encoder must be one of"):
        build(video_encoder_choices, "resnet", {})
    with pytest.raises(ConfigError, match=r"audio_encoder_conf: .*'dims'.*allowed keys for SmallAudioEncoder: \['dim'"):
        build(audio_encoder_choices, "small", {"dims": 3})
    with pytest.raises(ValueError, match="exactly one of path"):
        build(video_encoder_choices, "avhubert", {})
    with pytest.raises(ValueError, match="exactly one of path"):
        WhisperAudioEncoder()
    with pytest.raises(ValueError, match="unknown AV-HuBERT preset 'huge'"):
        build(video_encoder_choices, "avhubert", {"config": "huge"})
