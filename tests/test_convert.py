"""Converters on small synthetic inputs (no downloads): the CTranslate2 model.bin reader against files written
from the published layout, the CTranslate2 -> Hugging Face Whisper mapping against a random tiny Whisper mapped
the CTranslate2 way, the errors, and the mome-convert command. The real packages: test_real_whisper.py."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from mome.models.convert.ctranslate2 import CTranslate2FormatError, read_ctranslate2
from mome.models.convert.whisper import WhisperConversionError, whisper_config_values, whisper_state_dict

DTYPE_IDS = {np.float32: 0, np.int8: 1, np.int16: 2, np.int32: 3, np.float16: 4}


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def write_model_bin(path, variables: dict, aliases: dict | None = None, spec="WhisperSpec", revision=3, version=6):
    """A model.bin in CTranslate2's binary layout (version 6), variables in sorted order as CTranslate2 writes."""
    out = [struct.pack("<I", version), _string(spec), struct.pack("<I", revision), struct.pack("<I", len(variables))]
    for name in sorted(variables):
        value = np.asarray(variables[name])
        out += [_string(name), struct.pack("<B", value.ndim), *(struct.pack("<I", d) for d in value.shape)]
        out += [struct.pack("<B", DTYPE_IDS[value.dtype.type]), struct.pack("<I", value.nbytes), value.tobytes()]
    out.append(struct.pack("<I", len(aliases or {})))
    for alias, target in (aliases or {}).items():
        out += [_string(alias), _string(target)]
    path.write_bytes(b"".join(out))
    return path


def test_reader_dtypes_shapes_scalars_aliases(tmp_path):
    rng = np.random.default_rng(0)
    variables = {
        "a/weight": rng.standard_normal((3, 4)).astype(np.float16),
        "a/bias": rng.standard_normal(3).astype(np.float32),
        "conv/weight": rng.standard_normal((2, 3, 3)).astype(np.float16),
        "num_heads": np.int16(6),
        "pre_norm": np.int8(1),
    }
    model = read_ctranslate2(write_model_bin(tmp_path / "model.bin", variables, {"b/weight": "a/weight"}))
    assert (model.spec, model.revision) == ("WhisperSpec", 3)
    assert set(model.variables) == {*variables, "b/weight"} and model.aliases == {"b/weight": "a/weight"}
    for name, value in variables.items():
        assert model.variables[name].dtype == np.asarray(value).dtype
        assert np.array_equal(model.variables[name], value)
    assert np.array_equal(model.variables["b/weight"], variables["a/weight"])
    assert model.scalar("num_heads") == 6 and model.scalar("pre_norm") == 1
    with pytest.raises(CTranslate2FormatError, match="not a scalar"):
        model.scalar("a/bias")


def test_reader_errors(tmp_path):
    good = write_model_bin(tmp_path / "good.bin", {"x": np.zeros((2, 2), np.float16)})
    with pytest.raises(CTranslate2FormatError, match="binary version 5"):
        read_ctranslate2(write_model_bin(tmp_path / "v5.bin", {"x": np.zeros(2, np.float32)}, version=5))
    half = tmp_path / "half.bin"
    half.write_bytes(good.read_bytes()[:-6])
    with pytest.raises(CTranslate2FormatError, match="truncated.*concatenated in order"):
        read_ctranslate2(half)
    extra = tmp_path / "extra.bin"
    extra.write_bytes(good.read_bytes() + b"\0\0")
    with pytest.raises(CTranslate2FormatError, match="2 unexpected bytes"):
        read_ctranslate2(extra)
    with pytest.raises(CTranslate2FormatError, match="alias y points at missing variable z"):
        read_ctranslate2(write_model_bin(tmp_path / "alias.bin", {"x": np.zeros(2, np.float32)}, {"y": "z"}))
    with pytest.raises(CTranslate2FormatError, match="quantised"):
        read_ctranslate2(
            write_model_bin(
                tmp_path / "q.bin", {"x/weight": np.zeros(2, np.int8), "x/weight_scale": np.ones(1, np.float32)}
            )
        )
    with pytest.raises(FileNotFoundError, match="missing.bin does not exist"):
        read_ctranslate2(tmp_path / "missing.bin")


# ------------------------------------------------------------------ Whisper mapping

TINY = dict(
    d_model=16,
    encoder_layers=2,
    encoder_attention_heads=2,
    encoder_ffn_dim=24,
    decoder_layers=2,
    decoder_attention_heads=4,
    decoder_ffn_dim=20,
    max_source_positions=30,
    max_target_positions=12,
    vocab_size=40,
    num_mel_bins=80,
)
IDS = dict(pad_token_id=1, bos_token_id=2, eos_token_id=2, decoder_start_token_id=3)


def ctranslate2_layout(model) -> tuple[dict, dict]:
    """A Hugging Face Whisper's weights named and stacked as CTranslate2's Whisper converter stores them
    (written here from the documented layout, independently of the converter under test)."""
    sd = {k: v.detach().numpy().astype(np.float16) for k, v in model.state_dict().items()}
    cfg = model.config
    out = {
        "encoder/num_heads": np.int16(cfg.encoder_attention_heads),
        "decoder/num_heads": np.int16(cfg.decoder_attention_heads),
        "decoder/activation": np.int8(3),
        "decoder/pre_norm": np.int8(1),
        "decoder/scale_embeddings": np.int8(0),
        "decoder/alibi": np.int8(0),
        "decoder/embeddings/weight": sd["model.decoder.embed_tokens.weight"],
    }

    def lin(dst, src):
        out[f"{dst}/weight"], out[f"{dst}/bias"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def norm(dst, src):
        out[f"{dst}/gamma"], out[f"{dst}/beta"] = sd[f"{src}.weight"], sd[f"{src}.bias"]

    def stack(dst, src, parts):
        out[f"{dst}/weight"] = np.concatenate([sd[f"{src}.{p}_proj.weight"] for p in parts])
        zeros = np.zeros(cfg.d_model, np.float16)
        out[f"{dst}/bias"] = np.concatenate([sd.get(f"{src}.{p}_proj.bias", zeros) for p in parts])

    for stack_name, n in (("encoder", cfg.encoder_layers), ("decoder", cfg.decoder_layers)):
        hf = f"model.{stack_name}"
        out[f"{stack_name}/position_encodings/encodings"] = sd[f"{hf}.embed_positions.weight"]
        norm(f"{stack_name}/layer_norm", f"{hf}.layer_norm")
        for i in range(n):
            ct, h = f"{stack_name}/layer_{i}", f"{hf}.layers.{i}"
            stack(f"{ct}/self_attention/linear_0", f"{h}.self_attn", "qkv")
            lin(f"{ct}/self_attention/linear_1", f"{h}.self_attn.out_proj")
            norm(f"{ct}/self_attention/layer_norm", f"{h}.self_attn_layer_norm")
            if stack_name == "decoder":
                lin(f"{ct}/attention/linear_0", f"{h}.encoder_attn.q_proj")
                stack(f"{ct}/attention/linear_1", f"{h}.encoder_attn", "kv")
                lin(f"{ct}/attention/linear_2", f"{h}.encoder_attn.out_proj")
                norm(f"{ct}/attention/layer_norm", f"{h}.encoder_attn_layer_norm")
            lin(f"{ct}/ffn/linear_0", f"{h}.fc1")
            lin(f"{ct}/ffn/linear_1", f"{h}.fc2")
            norm(f"{ct}/ffn/layer_norm", f"{h}.final_layer_norm")
    for conv in ("conv1", "conv2"):
        lin(f"encoder/{conv}", f"model.encoder.{conv}")
    return out, {"decoder/projection/weight": "decoder/embeddings/weight"}


@pytest.fixture(scope="module")
def tiny_whisper():
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    with torch.random.fork_rng():  # leave the global random state as the other tests expect it
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(WhisperConfig(**TINY, **IDS)).eval()
    with torch.no_grad():  # float16-exact weights, so that the round trip can be compared bit for bit
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def test_whisper_mapping_inverts_ctranslate2_layout(tmp_path, tiny_whisper):
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    variables, aliases = ctranslate2_layout(tiny_whisper)
    ct2 = read_ctranslate2(write_model_bin(tmp_path / "model.bin", variables, aliases))
    sizes = whisper_config_values(ct2)
    assert sizes == {k: TINY[k] for k in sizes} and set(sizes) == set(TINY)
    state = whisper_state_dict(ct2, sizes["d_model"])
    with torch.random.fork_rng():
        rebuilt = WhisperForConditionalGeneration(WhisperConfig(**sizes, **IDS))
    rebuilt.load_state_dict(state, strict=True)
    for key, value in tiny_whisper.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value), key
    assert rebuilt.proj_out.weight.data_ptr() == rebuilt.model.decoder.embed_tokens.weight.data_ptr()  # still tied
    features = torch.randn(1, 80, 2 * TINY["max_source_positions"], generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[3, 5, 7]])
    with torch.no_grad():
        assert torch.equal(
            rebuilt(features, decoder_input_ids=ids).logits, tiny_whisper(features, decoder_input_ids=ids).logits
        )


def test_whisper_mapping_errors(tmp_path, tiny_whisper):
    variables, aliases = ctranslate2_layout(tiny_whisper)

    def convert(changed: dict, drop=(), new_aliases=aliases):
        values = {k: v for k, v in {**variables, **changed}.items() if k not in drop}
        ct2 = read_ctranslate2(write_model_bin(tmp_path / "m.bin", values, new_aliases))
        return whisper_state_dict(ct2, whisper_config_values(ct2)["d_model"])

    bias = variables["encoder/layer_1/self_attention/linear_0/bias"].copy()
    bias[TINY["d_model"]] = 1  # a k bias, which Whisper does not have
    with pytest.raises(
        WhisperConversionError, match="layer_1/self_attention/linear_0: the k_proj bias slice is not zero"
    ):
        convert({"encoder/layer_1/self_attention/linear_0/bias": bias})
    with pytest.raises(WhisperConversionError, match="no variable decoder/layer_0/attention/linear_2/weight"):
        convert({}, drop=["decoder/layer_0/attention/linear_2/weight"])
    with pytest.raises(WhisperConversionError, match="does not map: encoder/extra"):
        convert({"encoder/extra": np.zeros(2, np.float16)})
    with pytest.raises(WhisperConversionError, match="activation = 0, Whisper needs 3"):
        convert({"decoder/activation": np.int8(0)})
    untied = variables["decoder/embeddings/weight"] + np.float16(1)
    with pytest.raises(WhisperConversionError, match="not tied"):
        convert({"decoder/projection/weight": untied}, new_aliases={})
    with pytest.raises(WhisperConversionError, match="spec 'TransformerSpec' is not WhisperSpec"):
        whisper_config_values(
            read_ctranslate2(write_model_bin(tmp_path / "t.bin", variables, aliases, spec="TransformerSpec"))
        )


def test_convert_command_errors_leave_no_directory(tmp_path, capsys):
    from mome.bin.convert import main

    (tmp_path / "ct2").mkdir()
    write_model_bin(tmp_path / "ct2" / "model.bin", {"x": np.zeros(2, np.float16)})
    assert main(["whisper-ct2", str(tmp_path / "ct2"), str(tmp_path / "out")]) == 1
    assert "no variable 'encoder/conv1/weight' (not a CTranslate2 Whisper model?)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial-*"))
    assert main(["gguf", str(tmp_path / "missing.gguf"), str(tmp_path / "out")]) == 1
    assert "missing.gguf does not exist" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "config.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_:  # a usage error: argparse's status 2
        main(["gguf", str(tmp_path / "missing.gguf"), str(tmp_path / "full")])
    assert exit_.value.code == 2
    assert "exists and is not empty (--overwrite" in capsys.readouterr().err
