"""Read a fairseq checkpoint file (``torch.save`` of a dict with "model", "cfg" or "args", ...) without fairseq.

Such a pickle names fairseq, omegaconf and hydra classes (the config, enums, training meters). The
reader first tries ``torch.load(weights_only=True)``; when that refuses, it unpickles with an Unpickler
that builds the real objects only for torch tensors and storages, numpy arrays and a few standard types,
and a stand-in (``Stub``) for every other class, without importing its module. ``plain()`` then turns the
config (an omegaconf DictConfig, a stand-in for one, or an argparse Namespace) into plain dicts.

Unpickling still runs torch's and numpy's reconstructors: load only checkpoints you trust.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import enum
import logging
import pickle
from pathlib import Path
from types import SimpleNamespace

import torch

logger = logging.getLogger(__name__)

# Classes and functions that are built for real; any other global becomes a Stub.
_REAL_GLOBALS = {
    ("builtins", name)
    for name in (
        "set",
        "frozenset",
        "dict",
        "list",
        "tuple",
        "int",
        "float",
        "str",
        "bytes",
        "bytearray",
        "bool",
        "complex",
        "slice",
        "range",
        "object",
    )
} | {
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("collections", "deque"),
    ("argparse", "Namespace"),
    ("copyreg", "_reconstructor"),
    ("_codecs", "encode"),
}
_REAL_TORCH_NAMES = {"Size", "device", "Tensor", "Parameter"}
_REAL_NUMPY_NAMES = {"_reconstruct", "scalar", "dtype", "ndarray", "_frombuffer"}


def _is_real(module: str, name: str) -> bool:
    """Tensors, storages, dtypes and numpy arrays are rebuilt for real; so are a few plain types."""
    if (module, name) in _REAL_GLOBALS:
        return True
    root = module.split(".")[0]
    if root == "torch":
        return (
            name.startswith("_rebuild")
            or name.endswith("Storage")
            or name in _REAL_TORCH_NAMES
            or isinstance(getattr(torch, name, None), torch.dtype)
        )
    if root == "numpy":
        return name in _REAL_NUMPY_NAMES or module in ("numpy.dtypes",)
    return False


class Stub:
    """Stands in for a class that is not imported; keeps whatever the pickle gives it."""

    _stub_name = "Stub"

    def __init__(self, *args, **kwargs) -> None:
        self._stub_args = args
        self._stub_kwargs = kwargs

    def __setstate__(self, state) -> None:
        if isinstance(state, tuple) and len(state) == 2 and (state[0] is None or isinstance(state[0], dict)):
            state = {**(state[0] or {}), **(state[1] or {})}  # (dict state, slots state)
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self._stub_state = state

    # Container-like classes (dict/list subclasses) are rebuilt through these.
    def __setitem__(self, key, value) -> None:
        self.__dict__.setdefault("_stub_items", {})[key] = value

    def append(self, value) -> None:
        self.__dict__.setdefault("_stub_list", []).append(value)

    def extend(self, values) -> None:
        self.__dict__.setdefault("_stub_list", []).extend(values)

    def __repr__(self) -> str:
        return f"<stub {self._stub_name}>"


def _stub_class(module: str, name: str) -> type:
    return type(name, (Stub,), {"_stub_name": f"{module}.{name}", "__module__": "stub." + module})


class _StubUnpickler(pickle.Unpickler):
    stubbed: set[str] = set()

    def find_class(self, module: str, name: str):
        # Python 2 names (protocol 2 pickles write __builtin__, copy_reg): what pickle's fix_imports does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if _is_real(module, name):
            return super().find_class(module, name)
        type(self).stubbed.add(f"{module}.{name}")
        return _stub_class(module, name)


# torch.load accepts any object with ``Unpickler`` and ``load`` as its pickle module.
_stub_pickle = SimpleNamespace(Unpickler=_StubUnpickler, load=pickle.load, __name__="stub_pickle")


def read_fairseq_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict, its "model" state dict intact; unknown classes are Stubs (see ``plain``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        _StubUnpickler.stubbed = set()
        state = torch.load(path, map_location="cpu", weights_only=False, pickle_module=_stub_pickle)
        if _StubUnpickler.stubbed:
            logger.info("%s: stand-ins for %s", path, ", ".join(sorted(_StubUnpickler.stubbed)))
    if not isinstance(state, dict) or "model" not in state:
        raise ValueError(f"{path}: not a fairseq checkpoint (expected a dict with a 'model' state dict)")
    return state


def plain(obj):
    """Config objects -> plain dicts/lists/values: omegaconf DictConfig/ListConfig (real or Stub), their
    value nodes, argparse Namespace, enums (real or Stub)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, argparse.Namespace):
        return {k: plain(v) for k, v in vars(obj).items()}
    if isinstance(obj, Stub):
        attrs = obj.__dict__
        if "_content" in attrs:  # omegaconf container
            return plain(attrs["_content"])
        if "_val" in attrs:  # omegaconf value node
            return plain(attrs["_val"])
        if "_value_" in attrs:  # an Enum member rebuilt from its state
            return plain(attrs["_value_"])
        if obj._stub_args:  # an Enum rebuilt as Cls(value), or a simple wrapper
            return plain(obj._stub_args[0]) if len(obj._stub_args) == 1 else plain(list(obj._stub_args))
        return {k: plain(v) for k, v in attrs.items() if not k.startswith("_stub")}
    if type(obj).__module__.startswith("omegaconf"):  # real omegaconf, if a file pickled it the safe way
        from omegaconf import OmegaConf

        return OmegaConf.to_container(obj, resolve=False)
    if isinstance(obj, enum.Enum):
        return obj.value
    return obj


def checkpoint_config(state: dict) -> dict:
    """The checkpoint's config as a plain dict ("cfg" of fairseq >= 0.10, or the older "args" Namespace
    as {"model": {...}}); {} if it has neither."""
    if state.get("cfg") is not None:
        return plain(state["cfg"]) or {}
    if state.get("args") is not None:
        return {"model": plain(state["args"])}
    return {}
