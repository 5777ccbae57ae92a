"""Reading MXNet's ``.params`` files (``mx.nd.save`` / ``mx.model.save_checkpoint``) without MXNet.

MXNet is no longer maintained and has no wheels for our Python; its NDArray list format is small and
fixed (src/ndarray/ndarray.cc, ``NDArray::Save`` and the list writer), little-endian throughout:

    uint64 0x112 (list magic), uint64 reserved,
    uint64 count, then per array: uint32 0xF993FAC9 (V2) or 0xF993FAC8 (V1) magic, [V2: int32 storage type,
        0 = dense], uint32 ndim, int64 dims[ndim], int32 device type, int32 device id, int32 dtype flag,
        the raw values;
    uint64 count, then per name: uint64 length, the bytes (``arg:<name>`` or ``aux:<name>``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

LIST_MAGIC = 0x112
ARRAY_V1, ARRAY_V2 = 0xF993FAC8, 0xF993FAC9
DTYPES = {0: np.float32, 1: np.float64, 2: np.float16, 3: np.uint8, 4: np.int32, 5: np.int8, 6: np.int64}


class MXNetFormatError(ValueError):
    """The file is not an MXNet NDArray list this reader understands."""


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def values(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise MXNetFormatError("truncated file")
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return values

    def take(self, fmt: str) -> int:
        return self.values(fmt)[0]

    def array(self) -> np.ndarray:
        magic = self.take("<I")
        if magic not in (ARRAY_V1, ARRAY_V2):
            raise MXNetFormatError(f"unknown NDArray magic {magic:#x} (legacy or sparse arrays are not supported)")
        if magic == ARRAY_V2 and self.take("<i") != 0:
            raise MXNetFormatError("sparse arrays are not supported")
        shape = self.values(f"<{self.take('<I')}q")
        self.values("<ii")  # the device it was saved from
        dtype = DTYPES.get(self.take("<i"))
        if dtype is None:
            raise MXNetFormatError("unsupported dtype flag")
        count = int(np.prod(shape))
        size = count * np.dtype(dtype).itemsize
        if self.at + size > len(self.data):
            raise MXNetFormatError("truncated file")
        values = np.frombuffer(self.data, dtype=dtype, count=count, offset=self.at).reshape(shape)
        self.at += size
        return values

    def string(self) -> str:
        length = self.take("<Q")
        text = self.data[self.at:self.at + length].decode("utf-8")
        self.at += length
        return text


def read_params(path: str | Path) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` with the ``arg:`` / ``aux:`` prefixes of a checkpoint removed."""
    reader = _Reader(Path(path).read_bytes())
    if reader.values("<QQ")[0] != LIST_MAGIC:
        raise MXNetFormatError(f"{path}: not an MXNet NDArray list (.params) file")
    arrays = [reader.array() for _ in range(reader.take("<Q"))]
    names = [reader.string() for _ in range(reader.take("<Q"))]
    if len(names) != len(arrays):
        raise MXNetFormatError(f"{path}: {len(arrays)} arrays but {len(names)} names")
    return {name.split(":", 1)[-1]: torch.from_numpy(array.copy()) for name, array in zip(names, arrays)}
