"""A reader of CTranslate2's ``model.bin`` (binary format version 6), in numpy.

Layout of the file, all integers little-endian (as written by ``ModelSpec._serialize`` in CTranslate2's
``python/ctranslate2/specs/model_spec.py``, ``CURRENT_BINARY_VERSION = 6``)::

    uint32 binary version | string spec name | uint32 spec revision | uint32 number of variables
    per variable: string name | uint8 rank | rank x uint32 dims | uint8 dtype id | uint32 byte count | bytes
    uint32 number of aliases | per alias: string alias | string name of the variable it stands for

A string is a uint16 length that counts a trailing NUL, the UTF-8 bytes, then the NUL. Dtype ids follow
CTranslate2's ``DataType`` enum: 0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16. Variable names
are scopes joined by ``/`` (``encoder/layer_0/self_attention/linear_0/weight``); scalars (rank 0) hold
options such as ``decoder/num_heads``. Aliases name weights stored once under another name (a tied output
projection).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mome.errors import MomeError

SUPPORTED_VERSION = 6
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
_BFLOAT16 = 5


class CTranslate2FormatError(MomeError, ValueError):
    """A file that is not a CTranslate2 model.bin this reader understands."""


@dataclass
class CTranslate2Model:
    """The contents of one ``model.bin``: spec name and revision, every variable by name (aliases resolved to
    the array they stand for), and the alias table itself."""

    spec: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)

    def scalar(self, name: str) -> int | float:
        """A rank-0 option such as ``decoder/num_heads``; KeyError naming the variable when absent."""
        value = self.variables[name]
        if value.ndim != 0:
            raise CTranslate2FormatError(f"variable {name} is not a scalar (shape {value.shape})")
        return value.item()


class _Cursor:
    def __init__(self, data: bytes, source: str):
        self.data, self.pos, self.source = memoryview(data), 0, source

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise CTranslate2FormatError(
                f"{self.source}: truncated at byte {self.pos} (wanted {n} more bytes of {len(self.data)}); "
                "a model split in parts must be concatenated in order"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.unpack("H")))
        if not raw.endswith(b"\0"):
            raise CTranslate2FormatError(f"{self.source}: malformed string before byte {self.pos}")
        return raw[:-1].decode("utf-8")


def read_ctranslate2(path: str | Path) -> CTranslate2Model:
    """Read a CTranslate2 ``model.bin``.

    Arrays come back in their stored dtype (float16 for the usual Whisper exports), copied out of the file.
    Raises CTranslate2FormatError for another binary version, an unknown or quantised dtype, a truncated
    file (e.g. only one part of a split model) or trailing bytes; FileNotFoundError when ``path`` is missing.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CTranslate2 model file {path} does not exist")
    cur = _Cursor(path.read_bytes(), str(path))
    version = cur.unpack("I")
    if version != SUPPORTED_VERSION:
        raise CTranslate2FormatError(
            f"{path}: CTranslate2 binary version {version}; this reader knows version {SUPPORTED_VERSION}"
        )
    spec = cur.string()
    revision = cur.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(cur.unpack("I")):
        name = cur.string()
        shape = tuple(cur.unpack("I") for _ in range(cur.unpack("B")))
        type_id = cur.unpack("B")
        nbytes = cur.unpack("I")
        raw = cur.take(nbytes)
        if type_id == _BFLOAT16:
            raise CTranslate2FormatError(f"{path}: variable {name} is bfloat16, which this reader does not convert")
        if type_id not in _DTYPES:
            raise CTranslate2FormatError(f"{path}: variable {name} has unknown dtype id {type_id}")
        array = np.frombuffer(raw, dtype=np.dtype(_DTYPES[type_id]).newbyteorder("<"))
        if array.size != int(np.prod(shape)):
            raise CTranslate2FormatError(f"{path}: variable {name}: {nbytes} bytes do not fill shape {shape}")
        variables[name] = array.reshape(shape).copy()
    aliases = {}
    for _ in range(cur.unpack("I")):
        alias, target = cur.string(), cur.string()
        if target not in variables:
            raise CTranslate2FormatError(f"{path}: alias {alias} points at missing variable {target}")
        aliases[alias] = target
        variables[alias] = variables[target]
    if cur.pos != len(cur.data):
        raise CTranslate2FormatError(f"{path}: {len(cur.data) - cur.pos} unexpected bytes after the alias table")
    if any(name.endswith("_scale") for name in variables):
        raise CTranslate2FormatError(
            f"{path}: quantised weights (*_scale variables) are not supported; need float16/32"
        )
    return CTranslate2Model(spec, revision, variables, aliases)
