"""What every encoder shares: the padding mask from lengths, the frozen switch, and a saved-weights layout.

A frozen encoder has no trainable parameters, stays in eval mode when its parent calls ``.train()``
(no dropout, no layer drop, fixed batch-norm statistics) and runs without building an autograd graph.

An encoder built from keyword arguments keeps them in ``config``; ``save_pretrained(dir)`` writes them with
the weights (``config.json`` + ``model.safetensors``, Hugging Face's layout) and the constructor's ``path=dir``
(:func:`loads_saved`; ``from_pretrained(dir)`` says the same) rebuilds it, frozen by default: how the mini
recipe's pretrained stand-in encoders reach the AVSR model.

Every encoder takes its pretrained weights through its own constructor (``path=``), so that a config's
``<modality>_encoder_conf`` is exactly the class's keyword arguments (ESPnet's ``ClassChoices``,
:mod:`mome.espnet.choices`).
"""

from __future__ import annotations

import contextlib
import functools
import json
from pathlib import Path

import torch
from torch import nn

from mome.atomic import replace_dir, staging_dir


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B, max_len) bool, True at the positions inside each item's length."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def check_lengths(x: torch.Tensor, lengths: torch.Tensor, axis: int = 1) -> torch.Tensor:
    """Lengths as a long tensor on x's device; each must lie in [1, x.shape[axis]]."""
    lengths = torch.as_tensor(lengths, device=x.device).long()
    if lengths.dim() != 1 or lengths.numel() != x.shape[0]:
        raise ValueError(f"lengths must have shape ({x.shape[0]},), got {tuple(lengths.shape)}")
    if lengths.numel() and (int(lengths.min()) < 1 or int(lengths.max()) > x.shape[axis]):
        raise ValueError(f"lengths must lie in [1, {x.shape[axis]}] (the padded input size), got {lengths.tolist()}")
    return lengths


class Encoder(nn.Module):
    """Base class: ``forward(x, lengths) -> (features (B, T', D), feature_lengths (B,))``.

    Subclasses set ``output_size`` (D) and ``frame_rate`` (output tokens per second) and call
    ``self.set_frozen(frozen)`` at the end of their constructor.
    """

    output_size: int
    frame_rate: int
    config: dict  # the constructor's keyword arguments (``frozen`` aside), for save_pretrained

    def __init__(self) -> None:
        super().__init__()
        self.frozen = False

    def set_frozen(self, frozen: bool) -> "Encoder":
        self.frozen = bool(frozen)
        self.requires_grad_(not self.frozen)
        if self.frozen:
            super().train(False)
        return self

    def train(self, mode: bool = True) -> "Encoder":
        # A frozen encoder is an inference-time feature extractor: keep it in eval mode.
        return super().train(mode and not self.frozen)

    def grad_context(self) -> contextlib.AbstractContextManager:
        return torch.no_grad() if self.frozen else contextlib.nullcontext()

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- saved weights ----------------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Write ``config.json`` (the class name and ``config``) and ``model.safetensors`` into ``path``, whole
        or not at all (written beside it, then renamed)."""
        from safetensors.torch import save_file

        if not hasattr(self, "config"):
            raise TypeError(f"{type(self).__name__} keeps no config: it cannot be saved with save_pretrained")
        tmp = staging_dir(path)  # the directory appears whole or not at all
        (tmp / CONFIG_NAME).write_text(json.dumps({"encoder": type(self).__name__, **self.config}, indent=1) + "\n")
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(tmp / WEIGHTS_NAME))
        return replace_dir(tmp, path)

    @classmethod
    def from_pretrained(cls, path: str | Path, frozen: bool = True, **overrides) -> "Encoder":
        """The encoder whose weights are at ``path``: ``cls(path=path, frozen=frozen, **overrides)`` (each class
        says what ``path`` holds; :meth:`save_pretrained`'s layout for those built with :func:`loads_saved`)."""
        return cls(path=path, frozen=frozen, **overrides)


CONFIG_NAME, WEIGHTS_NAME = "config.json", "model.safetensors"


def read_saved_config(path: str | Path, cls: type) -> dict:
    """The keyword arguments that :meth:`Encoder.save_pretrained` wrote to ``path`` for a ``cls``."""
    path = Path(path)
    if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
        raise FileNotFoundError(f"{path}: not a saved encoder (needs {CONFIG_NAME} and {WEIGHTS_NAME})")
    config = json.loads((path / CONFIG_NAME).read_text())
    kind = config.pop("encoder", None)
    if kind != cls.__name__:
        raise ValueError(f"{path} holds a {kind}, not a {cls.__name__}")
    return config


def loads_saved(init):
    """Decorator of the ``__init__`` of an encoder that keeps its keyword arguments in ``config`` and declares
    ``frozen: bool | None = None`` and ``path: str | None = None`` (so that ESPnet's ``--print_config`` lists
    them).

    Without ``path`` the encoder is built from the given arguments, trainable unless ``frozen=True``. With
    ``path`` (a directory :meth:`Encoder.save_pretrained` wrote) it is built from the saved arguments, those
    given here on top (options that keep the weights' shapes, such as ``dropout``), gets the saved weights
    and is frozen unless ``frozen=False``. The decorated ``__init__`` never sees a path.
    """

    @functools.wraps(init)
    def wrapper(self, *args, path: str | Path | None = None, frozen: bool | None = None, **kwargs):
        if path is None:
            init(self, *args, frozen=bool(frozen), **kwargs)
            return
        from safetensors.torch import load_file

        if args:
            raise TypeError(f"{type(self).__name__}(path=...): give the other arguments by name")
        init(self, **{**read_saved_config(path, type(self)), **kwargs}, frozen=False)
        try:
            self.load_state_dict(load_file(str(Path(path) / WEIGHTS_NAME)))
        except RuntimeError as e:
            raise ValueError(
                f"{path}: the saved weights do not fit the saved config with {kwargs} on top: {e}"
            ) from None
        self.set_frozen(True if frozen is None else frozen)

    return wrapper
