"""Tensors named by a torch pickle, read lazily from their storages into NumPy.

A pickled tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
where ``storage`` is a persistent id resolved by the container format (a zip member,
or a block after the pickle in the legacy format). :data:`TORCH_ALLOWED` is the
allow-list of reconstructors a torch pickle may call: these functions only build
:class:`TensorRef` records; bytes are read when :meth:`TensorRef.numpy` is called, after
the storage's declared size has been checked against what the file holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LoadError

#: ``torch.<Name>Storage`` -> NumPy dtype name (``bfloat16`` is decoded by hand).
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "float32", "DoubleStorage": "float64", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "ComplexFloatStorage": "complex64",
    "ComplexDoubleStorage": "complex128", "UntypedStorage": "uint8",
}


@dataclass(frozen=True)
class StorageType:
    """A ``torch.FloatStorage``-like global: only its element type matters."""

    name: str
    dtype: str

    @property
    def itemsize(self) -> int:
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize


#: Reads ``nbytes`` bytes of the storage called ``key``; raises LoadError if it cannot.
StorageReader = Callable[[str, int], bytes]


@dataclass(eq=False)
class StorageRef:
    """One storage of the file: ``numel`` elements of ``dtype``, read on demand."""

    key: str
    storage_type: StorageType
    numel: int
    reader: StorageReader
    byteorder: str = "little"
    _array: np.ndarray | None = None

    def array(self) -> np.ndarray:
        """The whole storage as a flat, native-endian array."""
        if self._array is None:
            raw = self.reader(self.key, self.numel * self.storage_type.itemsize)
            dtype = self.storage_type.dtype
            if dtype == "bfloat16":
                half = np.frombuffer(raw, np.dtype("<u2" if self.byteorder == "little" else ">u2"))
                self._array = (half.astype(np.uint32) << 16).view(np.float32)
            else:
                order = "<" if self.byteorder == "little" else ">"
                np_dtype = np.dtype(dtype).newbyteorder(order)
                self._array = np.frombuffer(raw, np_dtype).astype(np.dtype(dtype), copy=False)
        return self._array


@dataclass(eq=False)
class TensorRef:
    """A strided view of a storage: ``size`` elements spaced ``stride`` from ``offset``."""

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.size

    @property
    def dtype(self) -> str:
        return self.storage.storage_type.dtype

    def describe(self) -> str:
        return f"{'x'.join(map(str, self.size)) or 'scalar'} {self.dtype}"

    def numpy(self) -> np.ndarray:
        """A contiguous copy of the tensor; raises LoadError if it reaches past its storage."""
        where = f"tensor of shape {self.size} in storage {self.storage.key!r}"
        count = int(np.prod(self.size, dtype=np.int64)) if self.size else 1
        if count == 0:
            return np.zeros(self.size, np.dtype("float32" if self.dtype == "bfloat16" else self.dtype))
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if last >= self.storage.numel:
            raise LoadError(
                f"{where} reaches element {last} but the storage declares only "
                f"{self.storage.numel}: the file is corrupt"
            )
        flat = self.storage.array()
        if flat.size < self.storage.numel:
            raise LoadError(f"{where}: the storage holds fewer elements than it declares")
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:], shape=self.size, strides=[s * item for s in self.stride],
            writeable=False,
        )
        return np.array(view)


def _check_ints(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 40 for v in values
    ):
        raise LoadError(f"a pickled tensor has an invalid {what} {values!r:.80}")
    return tuple(values)


def rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any,
                   *_ignored: Any) -> TensorRef:
    """``torch._utils._rebuild_tensor[_v2]``: record the view, read nothing."""
    if not isinstance(storage, StorageRef):
        raise LoadError(f"a pickled tensor's storage is a {type(storage).__name__}, not a storage")
    (offset,) = _check_ints((storage_offset,), "offset")
    size_t = _check_ints(size, "size")
    stride_t = _check_ints(stride, "stride")
    if len(size_t) != len(stride_t):
        raise LoadError(f"a pickled tensor has size {size_t} but stride {stride_t}")
    return TensorRef(storage, offset, size_t, stride_t)


def rebuild_parameter(data: Any, *_ignored: Any) -> Any:
    """``torch._utils._rebuild_parameter[_with_state]``: a Parameter is its data."""
    return data


def _identity_first(value: Any, *_ignored: Any) -> Any:
    return value


def _tensor_list(items: Any) -> Any:
    return items


#: Reconstructors a torch pickle may call (pure: they only build records).
TORCH_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor"): rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): rebuild_parameter,
    # TorchScript archives wrap typed containers: the value is the first argument.
    ("torch.jit._pickle", "restore_type_tag"): _identity_first,
    ("torch.jit._pickle", "build_tensorlist"): _tensor_list,
    ("torch.jit._pickle", "build_intlist"): _tensor_list,
    ("torch.jit._pickle", "build_doublelist"): _tensor_list,
    ("torch.jit._pickle", "build_boollist"): _tensor_list,
}


def storage_type_globals() -> dict[tuple[str, str], StorageType]:
    """``torch.FloatStorage`` ... as inert :class:`StorageType` values (never called)."""
    out: dict[tuple[str, str], StorageType] = {}
    for name, dtype in STORAGE_DTYPES.items():
        out[("torch", name)] = StorageType(name, dtype)
        out[("torch.storage", name)] = StorageType(name, dtype)
    return out


def parse_storage_pid(pid: Any) -> tuple[StorageType, str, int]:
    """``('storage', StorageType, key, location, numel[, view_metadata])`` -> type, key, numel."""
    if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
        raise LoadError(f"the pickle refers to an unknown kind of external data {pid!r:.80}")
    storage_type, key, numel = pid[1], pid[2], pid[4]
    if not isinstance(storage_type, StorageType):
        raise LoadError(f"the pickle names storage type {storage_type!r:.60}, which is not a torch "
                        "storage type lstm-trace reads")
    if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
        raise LoadError(f"the pickle declares a malformed storage {pid!r:.80}")
    return storage_type, key, numel
