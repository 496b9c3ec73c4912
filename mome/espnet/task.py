"""The AVSR task for ESPnet: an ``AbsTask`` whose choices name our encoders, LLM, adapters and compressor.

Importing this module registers everything a plain ESPnet YAML config refers to (the ``roi`` data type
included), so ``python -m mome.bin.avsr_train --config conf/train_mome.yaml ...`` runs on ESPnet's own
trainer, data loaders, length-bucketed batch samplers, DDP launcher, checkpointing and model averaging.

    audio_encoder: whisper | small | none        audio_encoder_conf: {path: ...} / {dim: 144, ...}
    video_encoder: avhubert | small | none       video_encoder_conf: {path: ...} / {config: tiny} / {...}
    llm: hf | tiny                               llm_conf: {path: ...} / {tokenizer_dir: ..., texts: ...}
    llm_adapter: mome | lora | mtsk_ms | mtsk_ss | mtsk_mss | none   llm_adapter_conf: {experts: 23, top_k: 4, ...}
    compressor: matryoshka                       compressor_conf: {audio_rates: [4, 16], video_rates: [2, 5]}
    preprocessor: avsr                           preprocessor_conf: {noise: ..., snrs: [...], ...}
    model_conf: {projector_hidden: null, projector_layer_norm: true, balance_weight: 0.01,
                 pairs_per_forward: all, ctc_weight: 0.0, precomputed_features: false}

The names are those of :mod:`mome.espnet.choices` (the registry); every ``*_conf`` default, ``model_conf``'s
included, comes from the signature of the class it configures (ESPnet's ``get_default_kwargs``), and
``--print_config`` shows them.

``pairs_per_forward``: rate pairs whose prompts share one LLM pass ("all", or a number: less memory);
``ctc_weight``: weight of the auxiliary CTC loss on the projected tokens (:class:`AVSRModel`; 0: off; 1: CTC alone);
``precomputed_features``: true (every modality), a list (``[audio]``) or false: which modalities train from
features dumped once by ``python -m mome.bin.dump_features`` with their frozen encoders (no augmentation
of those modalities then) instead of encoding online.

Data: ``--*_data_path_and_name_and_type`` with the names ``audio`` (type ``sound``, wav.scp), ``video``
(type ``roi``, roi.scp), ``audio_feats`` / ``video_feats`` (type ``kaldi_ark``, the dumped features) and
``text`` (type ``text``); shape files give the sampler each utterance's length.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from collections.abc import Callable

from espnet2.tasks.abs_task import AbsTask
from espnet2.train.collate_fn import CommonCollateFn
from espnet2.utils.get_default_kwargs import get_default_kwargs
from espnet2.utils.nested_dict_action import NestedDictAction
from typeguard import typechecked

from mome.espnet.choices import (  # noqa: F401  (the choices are imported from here by other modules)
    ConfigError,
    audio_encoder_choices,
    build,
    build_encoder,
    compressor_choices,
    llm_adapter_choices,
    llm_choices,
    preprocessor_choices,
    video_encoder_choices,
)
from mome.espnet.features import check_dumpable
from mome.espnet.model import AVSRESPnetModel
from mome.espnet.preprocess import AUDIO, AUDIO_FEATS, TEXT, VIDEO, VIDEO_FEATS
from mome.espnet.readers import register_data_types
from mome.espnet.trainer import AVSRTrainer
from mome.models.avsr import AVSRModel

log = logging.getLogger(__name__)

register_data_types()

# AVSRModel's arguments that the other slots build (or the task fixes: each encoder's own ``frozen`` decides)
MODEL_SLOTS = ("llm", "audio_encoder", "video_encoder", "compressor", "adapter", "freeze_encoders")


def model_conf_defaults() -> dict:
    """``model_conf``: the keyword arguments of :class:`AVSRModel` that no other slot builds, with their
    defaults, and ``precomputed_features`` (which inputs the model gets: a data option of this task)."""
    defaults = {k: v for k, v in get_default_kwargs(AVSRModel).items() if k not in MODEL_SLOTS}
    return {**defaults, "precomputed_features": False}


def precomputed_modalities(args: argparse.Namespace) -> tuple[str, ...]:
    """The modalities that ``model_conf precomputed_features`` takes from dumped features (true: all of the
    model's; a list names them; false: none)."""
    value = (getattr(args, "model_conf", None) or {}).get("precomputed_features", False)
    present = tuple(m for m in (AUDIO, VIDEO) if getattr(args, f"{m}_encoder", None) is not None)
    if value is None or value is False:
        return ()
    if value is True:
        return present
    names = [value] if isinstance(value, str) else list(value)
    for name in names:
        if name not in present:
            raise ConfigError(
                f"model_conf precomputed_features: {name!r} is not a modality of this model; use true, false "
                f"or a list of {list(present)}"
            )
    return tuple(m for m in present if m in names)


class AVSRTask(AbsTask):
    num_optimizers = 1
    trainer = AVSRTrainer
    class_choices_list = [
        audio_encoder_choices,
        video_encoder_choices,
        llm_choices,
        llm_adapter_choices,
        compressor_choices,
        preprocessor_choices,
    ]

    @classmethod
    def get_parser(cls):
        parser = super().get_parser()
        # no attention plots (our model has none of ESPnet's attention modules); tensorboard when installed
        parser.set_defaults(num_att_plot=0, use_tensorboard=importlib.util.find_spec("tensorboard") is not None)
        return parser

    @classmethod
    def add_task_arguments(cls, parser: argparse.ArgumentParser):
        group = parser.add_argument_group(description="AVSR task related")
        group.add_argument(
            "--model_conf",
            action=NestedDictAction,
            default=model_conf_defaults(),
            help="Keyword arguments of the AVSR model (mome.models.avsr.AVSRModel): projector_hidden, "
            "projector_layer_norm, balance_weight, pairs_per_forward (all | N), ctc_weight; and precomputed_features "
            "(false | true | [audio, video])",
        )
        for class_choices in cls.class_choices_list:
            class_choices.add_arguments(group)

    @classmethod
    @typechecked
    def build_collate_fn(cls, args: argparse.Namespace, train: bool) -> Callable:
        return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)

    @classmethod
    @typechecked
    def build_preprocess_fn(cls, args: argparse.Namespace, train: bool) -> Callable | None:
        tokenizer = cls.llm_spec(args).load_tokenizer()
        name = getattr(args, "preprocessor", "avsr") or "avsr"
        return build(
            preprocessor_choices, name, getattr(args, "preprocessor_conf", None), train=train, tokenizer=tokenizer
        )

    @classmethod
    def required_data_names(cls, train: bool = True, inference: bool = False) -> tuple[str, ...]:
        return () if inference else (TEXT,)

    @classmethod
    def optional_data_names(cls, train: bool = True, inference: bool = False) -> tuple[str, ...]:
        return (AUDIO, VIDEO, AUDIO_FEATS, VIDEO_FEATS, TEXT) if inference else (AUDIO, VIDEO, AUDIO_FEATS, VIDEO_FEATS)

    # -- model ------------------------------------------------------------------------------------------
    @staticmethod
    def llm_spec(args: argparse.Namespace):
        if getattr(args, "llm", None) is None:
            raise ConfigError(f"llm: name the LLM, one of {sorted(llm_choices.classes)} (with its llm_conf)")
        return build(llm_choices, args.llm, getattr(args, "llm_conf", None))

    @classmethod
    @typechecked
    def build_model(cls, args: argparse.Namespace) -> AVSRESPnetModel:
        llm_spec = cls.llm_spec(args)
        encoders, confs, external = {}, {}, ["llm.model"] if llm_spec.pretrained else []
        for modality in (AUDIO, VIDEO):
            encoder = build_encoder(modality, args)
            if encoder is None:
                continue
            encoders[modality] = encoder
            conf = confs[modality] = getattr(args, f"{modality}_encoder_conf", None) or {}
            if conf.get("path") is not None and not any(p.requires_grad for p in encoder.parameters()):
                external.append(f"encoders.{modality}")
        if not encoders:
            raise ConfigError("audio_encoder and video_encoder are both none: the model needs at least one")
        defaults = model_conf_defaults()
        model_conf = {**defaults, **(getattr(args, "model_conf", None) or {})}
        unknown = set(model_conf) - set(defaults)
        if unknown:
            raise ConfigError(f"model_conf: unknown key(s) {sorted(unknown)}; allowed: {sorted(defaults)}")
        precomputed = precomputed_modalities(args)
        del model_conf["precomputed_features"]  # a data option: which inputs the model gets (see avsr_train)
        for modality in precomputed:
            try:
                check_dumpable(modality, encoders[modality], confs[modality])
            except ConfigError as e:
                raise ConfigError(f"model_conf precomputed_features: {e}") from None
        adapter = build(
            llm_adapter_choices, getattr(args, "llm_adapter", None), getattr(args, "llm_adapter_conf", None)
        )
        try:
            compressor = build(compressor_choices, args.compressor, getattr(args, "compressor_conf", None))
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(f"compressor_conf: {e}") from None
        llm = llm_spec.build()
        try:
            avsr = AVSRModel(
                llm,
                audio_encoder=encoders.get(AUDIO),
                video_encoder=encoders.get(VIDEO),
                compressor=compressor,
                adapter=adapter,
                freeze_encoders=False,  # each encoder's own ``frozen`` flag decides
                **model_conf,
            )
        except ValueError as e:
            raise ConfigError(f"cannot build the AVSR model from this config: {e}") from None
        model = AVSRESPnetModel(avsr, external)
        log.info(
            "AVSR model: rate pairs %s in LLM passes %s; %d trainable parameters; %d frozen weights left out of "
            "checkpoints; precomputed features: %s",
            model.avsr.rate_pairs,
            model.avsr.pair_groups(),
            sum(p.numel() for p in model.parameters() if p.requires_grad),
            len(model.external_keys),
            list(precomputed) or "none",
        )
        return model
