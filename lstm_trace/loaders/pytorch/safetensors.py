"""``.safetensors``: an 8-byte little-endian header length, a JSON header, then raw data.

The header maps each tensor name to ``{"dtype", "shape", "data_offsets": [begin, end]}``
(offsets relative to the end of the header) plus an optional ``__metadata__`` of strings.
Everything is validated before reading: the header length against the file, each
tensor's byte range against the data area and against ``prod(shape) * itemsize``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..errors import LoadError

#: safetensors dtype names -> NumPy (``BF16`` is decoded by hand).
DTYPES: dict[str, str] = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "bfloat16", "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
}
MAX_HEADER_BYTES = 100 << 20


def match(path: Path) -> bool:
    """8-byte header length that fits the file, followed by a JSON object."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
            size = path.stat().st_size
    except OSError:
        return False
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= min(MAX_HEADER_BYTES, size - 8) and head[8:9] == b"{"


def read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All tensors as NumPy arrays (in file order) and the ``__metadata__`` strings."""
    name = path.name
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise LoadError(f"{name}: too short for a safetensors file")
        (length,) = struct.unpack("<Q", head)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise LoadError(f"{name}: safetensors header claims {length:,} bytes, more than the "
                            "file holds")
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, ValueError) as err:
            raise LoadError(f"{name}: safetensors header is not JSON ({err})") from None
        if not isinstance(header, dict):
            raise LoadError(f"{name}: safetensors header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        data_size = size - 8 - length
        tensors: dict[str, np.ndarray] = {}
        for key, entry in header.items():
            tensors[key] = _read_tensor(f, name, key, entry, 8 + length, data_size)
    return tensors, {str(k): str(v) for k, v in dict(metadata).items()}


def _read_tensor(f, name: str, key: str, entry: object, base: int, data_size: int) -> np.ndarray:
    where = f"{name}: tensor {key!r}"
    if not isinstance(entry, dict):
        raise LoadError(f"{where} has no dtype/shape/data_offsets entry")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPES:
        raise LoadError(f"{where} has dtype {dtype!r:.20}, which lstm-trace does not read")
    if not (isinstance(shape, list) and all(isinstance(n, int) and 0 <= n < 1 << 40 for n in shape)):
        raise LoadError(f"{where} has an invalid shape {shape!r:.60}")
    if not (isinstance(offsets, list) and len(offsets) == 2
            and all(isinstance(n, int) for n in offsets) and 0 <= offsets[0] <= offsets[1] <= data_size):
        raise LoadError(f"{where}: data_offsets {offsets!r:.60} lie outside the data area "
                        f"({data_size:,} bytes)")
    itemsize = 2 if dtype == "BF16" else np.dtype(DTYPES[dtype]).itemsize
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if offsets[1] - offsets[0] != count * itemsize:
        raise LoadError(f"{where}: shape {tuple(shape)} needs {count * itemsize:,} bytes but "
                        f"data_offsets span {offsets[1] - offsets[0]:,}")
    f.seek(base + offsets[0])
    raw = f.read(count * itemsize)
    if len(raw) != count * itemsize:
        raise LoadError(f"{where}: file is truncated")
    if dtype == "BF16":
        half = np.frombuffer(raw, "<u2").astype(np.uint32)
        return (half << 16).view(np.float32).reshape(shape)
    return np.frombuffer(raw, DTYPES[dtype]).astype(np.dtype(DTYPES[dtype]).newbyteorder("="),
                                                     copy=True).reshape(shape)
