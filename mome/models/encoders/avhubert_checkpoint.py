"""AV-HuBERT weights from the public fairseq checkpoints, and back.

Public layout (``AVHubertModel`` of facebookresearch/av_hubert, fairseq's wav2vec 2.0 TransformerEncoder)
-> our modules (``avhubert.AVHubertVideoEncoder``):

    feature_extractor_video.resnet.{frontend3D,trunk}.*  -> frontend.{frontend3D,trunk}.*
    feature_extractor_video.proj.*                        -> video_proj.*
    layer_norm.*                                          -> fusion_norm.*
    post_extract_proj.*                                   -> fusion_proj.*
    encoder.pos_conv.0.{weight_g,weight_v,bias}           -> encoder.pos_conv.conv.{weight_g,weight_v,bias}
    encoder.layer_norm.*, encoder.layers.N.*              -> the same names

Fine-tuned checkpoints hold the same model under ``encoder.w2v_model.`` (seq2seq) or
``w2v_encoder.w2v_model.`` (CTC). Unused by video-only inference, and reported as such: the audio
branch (``feature_extractor_audio.*``), the pre-training heads (``mask_emb``, ``final_proj.*``,
``label_embs_concat``) and a fine-tuned model's decoder.

Dimensions are read from the tensors' shapes; what shapes cannot tell (attention heads, pre- or
post-LN) from the checkpoint's config ("cfg", or "args" in older files), with the public defaults
(64-dim heads, pre-LN) when it has none.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from pathlib import Path

import torch

from mome.models.encoders.avhubert import AVHubertConfig, AVHubertVideoEncoder
from mome.models.encoders.fairseq_checkpoint import checkpoint_config, read_fairseq_checkpoint

logger = logging.getLogger(__name__)

# (public prefix, our prefix), the first match wins.
_KEY_MAP = (
    ("feature_extractor_video.resnet.", "frontend."),
    ("feature_extractor_video.proj.", "video_proj."),
    ("layer_norm.", "fusion_norm."),
    ("post_extract_proj.", "fusion_proj."),
    ("encoder.pos_conv.0.parametrizations.weight.original0", "encoder.pos_conv.conv.weight_g"),  # torch>=2.1
    ("encoder.pos_conv.0.parametrizations.weight.original1", "encoder.pos_conv.conv.weight_v"),
    ("encoder.pos_conv.0.", "encoder.pos_conv.conv."),
    ("encoder.layer_norm.", "encoder.layer_norm."),
    ("encoder.layers.", "encoder.layers."),
)
_WRAPPER_PREFIXES = ("", "encoder.w2v_model.", "w2v_encoder.w2v_model.", "w2v_model.", "model.")
_ANCHOR = "feature_extractor_video.proj.weight"


def public_to_ours(key: str) -> str | None:
    """Our parameter name for a public (unwrapped) key, None if video-only inference does not use it."""
    for public, ours in _KEY_MAP:
        if key.startswith(public):
            return ours + key[len(public) :]
    return None


def ours_to_public(key: str) -> str:
    for public, ours in _KEY_MAP:
        if "parametrizations" not in public and key.startswith(ours):
            return public + key[len(ours) :]
    raise KeyError(f"no public AV-HuBERT name for parameter {key!r}")


def to_fairseq_state_dict(encoder: AVHubertVideoEncoder) -> dict[str, torch.Tensor]:
    """Our weights under the public key layout (the inverse of the loading map)."""
    return {ours_to_public(k): v.detach().clone() for k, v in encoder.state_dict().items()}


def fairseq_style_checkpoint(encoder: AVHubertVideoEncoder) -> dict:
    """A dict shaped like a public pre-training checkpoint: {"model": state dict, "cfg": {"model": ...}}."""
    cfg = encoder.config.to_dict()
    cfg.pop("resnet_width")  # not a public option: the public front-end is always 64 wide
    return {"model": to_fairseq_state_dict(encoder), "cfg": {"model": {"_name": "av_hubert", **cfg}}}


def _model_section(cfg: dict) -> dict:
    model = cfg.get("model") or {}
    w2v = model.get("w2v_args") if isinstance(model, dict) else None
    if isinstance(w2v, dict) and isinstance(w2v.get("model"), dict):  # a fine-tuned model wraps the pre-trained one
        return w2v["model"]
    return model if isinstance(model, dict) else {}


def infer_config(state: dict[str, torch.Tensor], cfg: dict | None = None) -> AVHubertConfig:
    """The architecture of an (unwrapped, public-layout) state dict; shapes win over the config."""
    section = _model_section(cfg or {})
    dim = state[_ANCHOR].shape[0]
    layer_ids = {int(m.group(1)) for k in state if (m := re.match(r"encoder\.layers\.(\d+)\.", k))}
    pos_key = next(k for k in state if k.startswith("encoder.pos_conv.0.") and ("weight_v" in k or "original1" in k))
    pos_weight = state[pos_key]
    shapes = dict(
        encoder_embed_dim=dim,
        encoder_layers=max(layer_ids) + 1 if layer_ids else 0,
        encoder_ffn_embed_dim=state["encoder.layers.0.fc1.weight"].shape[0] if layer_ids else 4 * dim,
        conv_pos=pos_weight.shape[-1],
        conv_pos_groups=dim // pos_weight.shape[1],
        modality_fuse="concat" if "post_extract_proj.weight" in state else "add",
        resnet_relu_type="prelu" if "feature_extractor_video.resnet.frontend3D.2.weight" in state else "relu",
        resnet_width=state["feature_extractor_video.resnet.frontend3D.0.weight"].shape[0],
    )
    for name, value in shapes.items():
        if name in section and section[name] != value and not isinstance(section[name], str):
            logger.warning("checkpoint config: %s=%r, weights: %r; using the weights", name, section[name], value)
    values = {**section, **shapes}
    heads = section.get("encoder_attention_heads")
    values["encoder_attention_heads"] = heads if isinstance(heads, int) else max(1, dim // 64)
    if not isinstance(section.get("layer_norm_first"), bool):
        values["layer_norm_first"] = True
    return AVHubertConfig.from_dict({k: v for k, v in values.items() if not isinstance(v, str) or k in shapes})


def _unwrap(state: dict[str, torch.Tensor], source: str) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The AV-HuBERT model's keys without a fine-tuning wrapper's prefix, and the keys left outside it."""
    for prefix in _WRAPPER_PREFIXES:
        if prefix + _ANCHOR in state:
            inner = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            outside = [k for k in state if not k.startswith(prefix)]
            return inner, outside
    raise KeyError(
        f"{source}: no AV-HuBERT video front-end in this checkpoint "
        f"(looked for {[p + _ANCHOR for p in _WRAPPER_PREFIXES]})"
    )


def _summary(keys: list[str]) -> str:
    groups = Counter(".".join(k.split(".")[:2]) if k.count(".") > 1 else k for k in keys)
    return ", ".join(f"{g} ({n})" for g, n in sorted(groups.items())) or "none"


def read_avhubert(path: str | Path, config_overrides: dict | None = None):
    """(architecture, public-layout weights, keys outside the AV-HuBERT model) of a public checkpoint;
    ``config_overrides`` set non-shape options (e.g. dropout)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"AV-HuBERT checkpoint file not found: {path}")
    state = read_fairseq_checkpoint(path)
    weights, outside = _unwrap(state["model"], str(path))
    if any(k.startswith("feature_extractor_video.encoder.") for k in weights):
        raise ValueError(f"{path}: video sub-encoder layers (sub_encoder_layers > 0) are not supported")
    config = infer_config(weights, checkpoint_config(state))
    if config_overrides:
        config = AVHubertConfig.from_dict({**config.to_dict(), **config_overrides})
    return config, weights, outside


def load_avhubert_weights(
    encoder: AVHubertVideoEncoder,
    weights: dict[str, torch.Tensor],
    outside: list[str],
    source: str,
    strict: bool = True,
) -> None:
    """Load :func:`read_avhubert`'s weights into ``encoder``; ``encoder.load_report`` lists the missing and
    unused keys (public names); ``strict``: a missing weight is an error."""
    mapped, unused = {}, list(outside)
    for key, value in weights.items():
        ours = public_to_ours(key)
        if ours is None:
            unused.append(key)
        else:
            mapped[ours] = value
    result = encoder.load_state_dict(mapped, strict=False)
    missing = [ours_to_public(k) for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    unused += [ours_to_public(k) for k in result.unexpected_keys]
    config = encoder.config
    encoder.load_report = {"source": source, "missing": missing, "unused": sorted(unused), "config": config.to_dict()}
    logger.info(
        "AV-HuBERT from %s: %d layers, width %d, %d tensors loaded; unused: %s; missing: %s",
        source,
        config.encoder_layers,
        config.encoder_embed_dim,
        len(mapped) - len(result.unexpected_keys),
        _summary(unused),
        _summary(missing),
    )
    if strict and missing:
        raise KeyError(f"{source}: weights missing for {missing}")


def load_avhubert(
    path: str | Path, *, frozen: bool = True, strict: bool = True, **config_overrides
) -> AVHubertVideoEncoder:
    """An ``AVHubertVideoEncoder`` with the weights of a public AV-HuBERT checkpoint (pre-trained or
    fine-tuned), read without fairseq: ``AVHubertVideoEncoder(path=path, ...)``. ``encoder.load_report``
    lists the missing and unused keys (public names). ``config_overrides`` set non-shape options (e.g. dropout)."""
    return AVHubertVideoEncoder(config_overrides or None, path=path, frozen=frozen, strict=strict)
