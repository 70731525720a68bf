"""Read TensorFlow V2 checkpoints ("tensor bundles") without TensorFlow.

A checkpoint written by ``tf.train.Checkpoint``, ``tf.compat.v1.train.Saver``
or Keras ``model.save_weights`` in TF format is a *tensor bundle*:

``<prefix>.index``
    A LevelDB-style SSTable mapping tensor names to metadata. The entry with
    the empty key ``""`` is a ``BundleHeaderProto``; every other value is a
    ``BundleEntryProto``. Keys are sorted bytewise.
``<prefix>.data-NNNNN-of-MMMMM``
    ``MMMMM`` shards holding the raw tensor bytes, addressed by
    ``(shard_id, offset, size)`` from the entry.
``checkpoint`` (optional, in the directory)
    A text-format ``CheckpointState`` whose ``model_checkpoint_path: "..."``
    line names the latest prefix.

SSTable layout (``tensorflow/core/lib/io/{format,block,table}.cc``)::

    [data block 0][trailer] ... [data block N][trailer]
    [metaindex block][trailer] [index block][trailer] [footer: 48 bytes]

* footer: two *BlockHandles* (varint64 offset, varint64 size) for metaindex and
  index, zero padding to 40 bytes, then the magic ``0xdb4775248b80fb57`` as
  fixed64 little-endian.
* trailer (5 bytes) after each block: 1 byte compression type (0 none,
  1 snappy) and the masked CRC32C of ``block bytes + type byte``.
* block: entries ``varint32 shared | varint32 non_shared | varint32 value_len |
  key_delta | value`` where a key shares ``shared`` leading bytes with the
  previous key; then ``uint32 restart offsets[num_restarts]`` and
  ``uint32 num_restarts``.
* the index block maps a separator key per data block to that block's handle.

Protos (``tensorflow/core/protobuf/tensor_bundle.proto``)::

    BundleHeaderProto { int32 num_shards = 1; Endianness endianness = 2;
                        VersionDef version = 3; }
    BundleEntryProto  { DataType dtype = 1; TensorShapeProto shape = 2;
                        int32 shard_id = 3; int64 offset = 4; int64 size = 5;
                        fixed32 crc32c = 6; repeated TensorSliceProto slices = 7; }

Checksums (``tensorflow/core/util/tensor_bundle/tensor_bundle.cc``): the entry's
``crc32c`` is the **masked** CRC32C (``mask(c) = ((c >> 15 | c << 17) +
0xa282ead8) mod 2**32``) of the tensor bytes as they are in the file. A
``DT_STRING`` tensor is stored as ``varint64 length`` per element, a 4-byte
masked CRC32C of the lengths, then the string bytes; its entry checksum covers
the lengths *as little-endian uint32* (uint64 if >= 2**32), the 4 stored
length-checksum bytes and the string bytes.

Partitioned variables have a full-tensor entry with ``slices`` and no data; each
slice is a separate entry whose key is ``EncodeTensorNameSlice(name, slice)``
(OrderedCode: ``\\x00``, escaped name, ``\\x00\\x01``, rank, signed start/length
per dimension). :meth:`TensorBundle.read` reassembles them.

The object-based checkpoints (TF2) also store a scalar string tensor
``_CHECKPOINTABLE_OBJECT_GRAPH``: a serialized ``TrackableObjectGraph`` that
:func:`parse_object_graph` decodes into dataclasses, which map checkpoint keys
such as ``layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE`` to the
variable's ``full_name`` (``lstm/lstm_cell/kernel``).

Nothing read from the files is executed, and every size or offset is checked
against the actual file sizes before memory is allocated or bytes are sliced.
Problems raise :class:`BundleError` (a :class:`ValueError`) with one line naming
the file and what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..protobuf_wire import (
    Message,
    ProtobufDecodeError,
    decode_varint,
    get_bool,
    get_fixed32,
    get_int,
    get_message,
    get_uint,
    has_field,
    parse_message,
    repeated_messages,
)
from .checkpoint_files import resolve_prefix
from .crc32c import (
    crc32c,
    unmask_crc,
)
from .errors import BundleError
from .object_graph import OBJECT_GRAPH_KEY
from .ordered_code import _MAX_RANK, _decode_slice_key
from .sstable import _TableReader

_BUNDLE_VERSION = 1  # kTensorBundleVersion: what this reader understands
_MAX_SHARDS = 1 << 20



# DataType enum -> (name, little-endian NumPy dtype or None for strings)
_DTYPES: dict[int, tuple[str, str | None]] = {
    1: ("float32", "<f4"),
    2: ("float64", "<f8"),
    3: ("int32", "<i4"),
    4: ("uint8", "u1"),
    5: ("int16", "<i2"),
    6: ("int8", "i1"),
    7: ("string", None),
    8: ("complex64", "<c8"),
    9: ("int64", "<i8"),
    10: ("bool", "u1"),
    11: ("qint8", "i1"),
    12: ("quint8", "u1"),
    13: ("qint32", "<i4"),
    14: ("bfloat16", "<u2"),
    15: ("qint16", "<i2"),
    16: ("quint16", "<u2"),
    17: ("uint16", "<u2"),
    18: ("complex128", "<c16"),
    19: ("float16", "<f2"),
    22: ("uint32", "<u4"),
    23: ("uint64", "<u8"),
}
_UNSUPPORTED_DTYPES = {0: "invalid", 20: "resource", 21: "variant"}
_DT_STRING = 7
_DT_BOOL = 10
_DT_BFLOAT16 = 14


def _dtype_name(dtype: int) -> str:
    if dtype in _DTYPES:
        return _DTYPES[dtype][0]
    return _UNSUPPORTED_DTYPES.get(dtype, f"dtype#{dtype}")


@dataclass(frozen=True)
class TensorSlice:
    """One stored slice of a partitioned tensor: per dimension ``(start, length)``.

    ``length`` is ``None`` for a dimension the slice covers fully.
    """

    extents: tuple[tuple[int, int | None], ...]

    def bounds(self, shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(start, stop)`` per dimension for a tensor of the full ``shape``."""
        return tuple(
            (0, dim) if length is None else (start, start + length)
            for (start, length), dim in zip(self.extents, shape, strict=True)
        )


@dataclass(frozen=True)
class BundleEntry:
    """Metadata of one tensor (a decoded ``BundleEntryProto``)."""

    name: str
    dtype_enum: int
    shape: tuple[int, ...]
    shard_id: int
    offset: int
    size: int
    crc32c_masked: int
    slices: tuple[TensorSlice, ...] = ()

    @property
    def dtype(self) -> str:
        """TensorFlow dtype name: ``float32``, ``bfloat16``, ``string``, ..."""
        return _dtype_name(self.dtype_enum)

    @property
    def num_elements(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


def _parse_shape(msg: Message | None) -> tuple[int, ...]:
    """Decode a ``TensorShapeProto``.

    ``{ repeated Dim dim = 2 { int64 size = 1; string name = 2; } bool unknown_rank = 3; }``
    """
    if msg is None:
        return ()
    if get_bool(msg, 3):
        raise ValueError("shape has unknown rank")
    dims = repeated_messages(msg, 2)
    if len(dims) > _MAX_RANK:
        raise ValueError(f"shape has rank {len(dims)}")
    shape = tuple(get_int(d, 1) for d in dims)
    if any(d < 0 for d in shape):
        raise ValueError(f"shape {shape} is not fully defined")
    return shape


def _parse_slice(msg: Message) -> TensorSlice:
    """TensorSliceProto { repeated Extent extent = 1 { int64 start = 1; oneof { int64 length = 2; } } }"""
    extents = []
    for ext in repeated_messages(msg, 1):
        start = get_int(ext, 1)
        length = get_int(ext, 2) if has_field(ext, 2) else None
        if start < 0 or (length is not None and length < 0):
            raise ValueError(f"bad slice extent start={start} length={length}")
        extents.append((start, length))
    return TensorSlice(tuple(extents))


def _parse_entry(name: str, value: bytes) -> BundleEntry:
    msg = parse_message(value)
    entry = BundleEntry(
        name=name,
        dtype_enum=get_uint(msg, 1),
        shape=_parse_shape(get_message(msg, 2)),
        shard_id=get_int(msg, 3, bits=32),
        offset=get_int(msg, 4),
        size=get_int(msg, 5),
        crc32c_masked=get_fixed32(msg, 6),
        slices=tuple(_parse_slice(s) for s in repeated_messages(msg, 7)),
    )
    if entry.offset < 0 or entry.size < 0 or entry.shard_id < 0:
        raise ValueError(f"negative shard/offset/size ({entry.shard_id}, {entry.offset}, {entry.size})")
    for tensor_slice in entry.slices:
        if len(tensor_slice.extents) != len(entry.shape):
            raise ValueError(
                f"slice of rank {len(tensor_slice.extents)} for a tensor of rank {len(entry.shape)}"
            )
    return entry


class TensorBundle:
    """A TensorFlow V2 checkpoint opened for reading.

    >>> bundle = TensorBundle.open("training_checkpoints")      # doctest: +SKIP
    >>> bundle.keys()[:2]                                         # doctest: +SKIP
    ['_CHECKPOINTABLE_OBJECT_GRAPH', 'layer_with_weights-0/cell/bias/.ATTRIBUTES/VARIABLE_VALUE']
    >>> kernel = bundle.read("layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE")  # doctest: +SKIP
    >>> graph = parse_object_graph(bundle.object_graph())        # doctest: +SKIP

    The index is read and checked once in :meth:`open`; tensor data is read
    on demand by :meth:`read`.
    """

    def __init__(
        self,
        prefix: str,
        entries: dict[str, BundleEntry],
        slice_keys: dict[tuple[str, tuple[tuple[int, int | None], ...]], BundleEntry],
        num_shards: int,
        big_endian: bool,
        version: tuple[int, int],
    ) -> None:
        self.prefix = prefix
        self.num_shards = num_shards
        self.big_endian = big_endian
        self.version = version
        self._entries = entries
        self._slices = slice_keys

    def __repr__(self) -> str:
        return f"TensorBundle(prefix={self.prefix!r}, tensors={len(self._entries)}, shards={self.num_shards})"

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> TensorBundle:
        """Open a checkpoint from its directory, prefix, ``.index`` or data file path."""
        prefix = resolve_prefix(path)
        index_path = prefix + ".index"
        try:
            data = Path(index_path).read_bytes()
        except OSError as exc:
            raise BundleError(f"cannot read checkpoint index file {index_path}: {exc.strerror}") from None
        return cls._from_index(prefix, index_path, data)

    @classmethod
    def _from_index(cls, prefix: str, index_path: str, data: bytes) -> TensorBundle:
        table = _TableReader(index_path, data)
        pairs = table.entries()
        if not pairs or pairs[0][0] != b"":
            raise table.fail("the bundle header entry (empty key) is missing")
        try:
            header = parse_message(pairs[0][1])
            num_shards = get_int(header, 1, bits=32)
            endianness = get_uint(header, 2)
            version_msg = get_message(header, 3) or {}
            producer = get_int(version_msg, 1, bits=32)
            min_consumer = get_int(version_msg, 2, bits=32)
            bad_consumers = [v & 0xFFFFFFFF for v in version_msg.get(3, []) if isinstance(v, int)]
        except ProtobufDecodeError as exc:
            raise table.fail(f"unreadable bundle header ({exc})") from None
        if not 1 <= num_shards <= _MAX_SHARDS:
            raise table.fail(f"bundle header says {num_shards} data shards")
        if endianness not in (0, 1):
            raise table.fail(f"bundle header has unknown endianness {endianness}")
        if min_consumer > _BUNDLE_VERSION or _BUNDLE_VERSION in bad_consumers:
            raise BundleError(
                f"checkpoint index file {index_path} needs a tensor bundle reader of version "
                f">= {min_consumer}; this reader implements version {_BUNDLE_VERSION}"
            )
        entries: dict[str, BundleEntry] = {}
        slices: dict[tuple[str, tuple[tuple[int, int | None], ...]], BundleEntry] = {}
        for key, value in pairs[1:]:
            slice_id = None
            if key[:1] == b"\x00":
                try:
                    slice_id = _decode_slice_key(key)
                except (ValueError, UnicodeDecodeError) as exc:
                    raise table.fail(f"undecodable slice key {key!r} ({exc})") from None
                name = f"{slice_id[0]}<slice {slice_id[1]}>"
            else:
                name = key.decode("utf-8", "surrogateescape")
            try:
                entry = _parse_entry(name, value)
            except ValueError as exc:  # includes ProtobufDecodeError
                raise table.fail(f"entry {name!r} is unreadable ({exc})") from None
            if entry.shard_id >= num_shards and not entry.slices:
                raise table.fail(f"entry {name!r} lives in shard {entry.shard_id} of only {num_shards}")
            if slice_id is not None:
                slices[slice_id] = entry
            else:
                entries[name] = entry
        return cls(prefix, entries, slices, num_shards, endianness == 1, (producer, min_consumer))

    # -- metadata -----------------------------------------------------------------------

    def keys(self) -> list[str]:
        """Tensor names, sorted (the header and internal slice entries excluded)."""
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def entry(self, name: str) -> BundleEntry:
        """The decoded ``BundleEntryProto`` of ``name``."""
        try:
            return self._entries[name]
        except KeyError:
            raise KeyError(f"tensor {name!r} is not in checkpoint {self.prefix}") from None

    def slice_entries(self, name: str) -> list[BundleEntry]:
        """The stored pieces of a partitioned tensor (empty for an ordinary one).

        Raises :class:`BundleError` if the index lacks a piece its full entry lists.
        """
        entry = self.entry(name)
        pieces = []
        for tensor_slice in entry.slices:
            part = self._slices.get((entry.name, tensor_slice.extents))
            if part is None:
                raise BundleError(
                    f"checkpoint index file {self.prefix}.index is incomplete: slice "
                    f"{tensor_slice.extents} of {entry.name!r} has no entry"
                )
            pieces.append(part)
        return pieces

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entry(name).shape

    def dtype(self, name: str) -> str:
        """TensorFlow dtype name of ``name`` (``bfloat16`` tensors read as float32)."""
        return self.entry(name).dtype

    def data_path(self, shard_id: int) -> str:
        """File name of a data shard: ``<prefix>.data-00000-of-00001``."""
        return f"{self.prefix}.data-{shard_id:05d}-of-{self.num_shards:05d}"

    # -- data ---------------------------------------------------------------------------

    def read(self, name: str, verify: bool = True) -> np.ndarray:
        """Read tensor ``name`` as a NumPy array in native byte order.

        Numeric dtypes map to their NumPy equivalents; ``bfloat16`` is widened
        to ``float32`` exactly; ``float16`` stays ``float16``; ``bool`` is
        ``bool``. ``string`` tensors come back as an ``object`` array of
        ``bytes``. With ``verify`` (the default) the stored CRC32C is checked.
        """
        entry = self.entry(name)
        if entry.slices:
            return self._read_sliced(entry, verify)
        return self._read_entry(entry, verify)

    def read_all(self, verify: bool = True) -> dict[str, np.ndarray]:
        """Every tensor, by name."""
        return {name: self.read(name, verify) for name in self._entries}

    def object_graph(self) -> bytes | None:
        """The serialized ``TrackableObjectGraph``, or ``None`` for name-based (TF1) checkpoints."""
        if OBJECT_GRAPH_KEY not in self._entries:
            return None
        value = self.read(OBJECT_GRAPH_KEY)
        if value.size != 1:
            raise BundleError(
                f"checkpoint {self.prefix}: {OBJECT_GRAPH_KEY} should be a scalar string, "
                f"found shape {value.shape}"
            )
        return value.reshape(())[()]

    def _read_raw(self, entry: BundleEntry) -> bytearray:
        path = self.data_path(entry.shard_id)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise BundleError(
                f"checkpoint data file {path} is missing (tensor {entry.name!r} is in shard "
                f"{entry.shard_id} of {self.num_shards}); the checkpoint is incomplete"
            ) from None
        except OSError as exc:
            raise BundleError(f"cannot read checkpoint data file {path}: {exc.strerror}") from None
        with fh:
            file_size = os.fstat(fh.fileno()).st_size
            end = entry.offset + entry.size
            if end > file_size:
                raise BundleError(
                    f"checkpoint data file {path} is truncated: entry {entry.name!r} needs bytes "
                    f"{entry.offset}..{end} but file has {file_size} bytes; "
                    "the checkpoint is incomplete or corrupt"
                )
            buf = bytearray(entry.size)
            fh.seek(entry.offset)
            got = fh.readinto(buf)
        if got != entry.size:
            raise BundleError(f"checkpoint data file {path}: short read of entry {entry.name!r}")
        return buf

    def _checksum_error(self, entry: BundleEntry, actual: int) -> BundleError:
        return BundleError(
            f"checkpoint data file {self.data_path(entry.shard_id)} is corrupt: checksum mismatch "
            f"for entry {entry.name!r} (bytes {entry.offset}..{entry.offset + entry.size}, stored crc32c "
            f"{unmask_crc(entry.crc32c_masked):#010x}, computed {actual:#010x})"
        )

    def _read_entry(self, entry: BundleEntry, verify: bool) -> np.ndarray:
        if entry.dtype_enum not in _DTYPES:
            raise BundleError(
                f"checkpoint {self.prefix}: tensor {entry.name!r} has dtype {entry.dtype}, "
                "which this reader does not support"
            )
        if entry.dtype_enum == _DT_STRING:
            return self._read_strings(entry, verify)
        np_dtype = np.dtype(_DTYPES[entry.dtype_enum][1])
        expected = entry.num_elements * np_dtype.itemsize
        if entry.size != expected:
            raise BundleError(
                f"checkpoint index file {self.prefix}.index is inconsistent: entry {entry.name!r} "
                f"({entry.dtype}, shape {entry.shape}) needs {expected} bytes but says {entry.size}"
            )
        raw = self._read_raw(entry)
        if verify:
            actual = crc32c(raw)
            if actual != unmask_crc(entry.crc32c_masked):
                raise self._checksum_error(entry, actual)
        if self.big_endian:
            np_dtype = np_dtype.newbyteorder(">")
        array = np.frombuffer(raw, dtype=np_dtype).reshape(entry.shape)
        if self.big_endian:
            array = array.astype(np_dtype.newbyteorder("="))
        if entry.dtype_enum == _DT_BFLOAT16:
            return (array.astype(np.uint32) << 16).view(np.float32)
        if entry.dtype_enum == _DT_BOOL:
            return array != 0
        return array

    def _read_strings(self, entry: BundleEntry, verify: bool) -> np.ndarray:
        count = entry.num_elements
        path = self.data_path(entry.shard_id)
        if entry.size == 0:
            if count:
                raise BundleError(f"checkpoint {self.prefix}: string tensor {entry.name!r} has no data")
            return np.empty(entry.shape, dtype=object)
        # Each element needs at least a 1-byte length, plus the 4-byte length checksum.
        if count + 4 > entry.size:
            raise BundleError(
                f"checkpoint index file {self.prefix}.index is inconsistent: string tensor "
                f"{entry.name!r} has {count} elements but only {entry.size} bytes"
            )
        raw = self._read_raw(entry)  # bounded by the data file's size
        result = np.empty(count, dtype=object)
        order = "big" if self.big_endian else "little"

        def corrupt(what: str) -> BundleError:
            return BundleError(f"checkpoint data file {path} is corrupt: string tensor {entry.name!r} {what}")

        lengths = []
        pos = 0
        crc = 0
        try:
            for _ in range(count):
                length, pos = decode_varint(raw, pos, len(raw))
                lengths.append(length)
                width = 4 if length <= 0xFFFFFFFF else 8
                crc = crc32c(length.to_bytes(width, order), crc)
        except ProtobufDecodeError as exc:
            raise corrupt(f"has bad element lengths ({exc})") from None
        if pos + 4 > len(raw):
            raise corrupt("is truncated before its length checksum")
        stored_lengths_crc = int.from_bytes(raw[pos : pos + 4], order)
        if verify and unmask_crc(stored_lengths_crc) != crc:
            raise corrupt("fails its length checksum")
        crc = crc32c(raw[pos : pos + 4], crc)
        pos += 4
        if sum(lengths) > len(raw) - pos:
            raise corrupt(f"declares {sum(lengths)} bytes of strings but only {len(raw) - pos} are stored")
        for i, length in enumerate(lengths):
            chunk = bytes(raw[pos : pos + length])
            pos += length
            result[i] = chunk
            if verify:
                crc = crc32c(chunk, crc)
        if verify and crc != unmask_crc(entry.crc32c_masked):
            raise self._checksum_error(entry, crc)
        return result.reshape(entry.shape)

    def _read_sliced(self, entry: BundleEntry, verify: bool) -> np.ndarray:
        """Reassemble a partitioned tensor from its slice entries."""
        pieces = []
        stored_elements = 0
        for tensor_slice, part in zip(entry.slices, self.slice_entries(entry.name), strict=True):
            bounds = tensor_slice.bounds(entry.shape)
            expected_shape = tuple(stop - start for start, stop in bounds)
            if any(stop > dim for (_, stop), dim in zip(bounds, entry.shape, strict=True)):
                raise BundleError(
                    f"checkpoint index file {self.prefix}.index is inconsistent: slice {bounds} "
                    f"lies outside {entry.name!r} of shape {entry.shape}"
                )
            if part.shape != expected_shape or part.dtype_enum != entry.dtype_enum:
                raise BundleError(
                    f"checkpoint index file {self.prefix}.index is inconsistent: slice {bounds} of "
                    f"{entry.name!r} is stored as {part.dtype} {part.shape}"
                )
            pieces.append((bounds, self._read_entry(part, verify)))
            stored_elements += part.num_elements
        if entry.num_elements > stored_elements:
            raise BundleError(
                f"checkpoint {self.prefix}: the slices of {entry.name!r} cover {stored_elements} of "
                f"its {entry.num_elements} elements"
            )
        out = np.empty(entry.shape, dtype=pieces[0][1].dtype)
        covered = np.zeros(entry.shape, dtype=bool)
        for bounds, piece in pieces:
            index = tuple(slice(start, stop) for start, stop in bounds)
            out[index] = piece
            covered[index] = True
        if not covered.all():
            raise BundleError(f"checkpoint {self.prefix}: the slices of {entry.name!r} leave gaps")
        return out
