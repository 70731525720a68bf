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

import functools
import os
import re
import sys
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstm_trace.loaders.errors import LoadError
from lstm_trace.loaders.protobuf_wire import (
    Message,
    ProtobufDecodeError,
    decode_varint,
    get_bool,
    get_fixed32,
    get_int,
    get_message,
    get_string,
    get_uint,
    has_field,
    parse_message,
    repeated_messages,
)

__all__ = [
    "OBJECT_GRAPH_KEY",
    "BundleEntry",
    "BundleError",
    "ObjectGraph",
    "ObjectReference",
    "SerializedTensor",
    "SlotVariableReference",
    "TensorBundle",
    "TensorSlice",
    "TrackableObject",
    "crc32c",
    "looks_like_bundle",
    "mask_crc",
    "parse_object_graph",
    "resolve_prefix",
    "snappy_decompress",
    "unmask_crc",
]

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
"""Key of the serialized ``TrackableObjectGraph`` in object-based checkpoints."""

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5
_BUNDLE_VERSION = 1  # kTensorBundleVersion: what this reader understands
_MAX_RANK = 254  # TensorShape::MaxDimensions()
_MAX_SHARDS = 1 << 20


class BundleError(LoadError):
    """A TensorFlow checkpoint could not be found, read or trusted (a ``ValueError``)."""


# --- CRC32C -----------------------------------------------------------------
#
# CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and xorout
# 0xFFFFFFFF). Small inputs use a byte-at-a-time table loop. Large inputs are
# split into many equal "lanes" whose CRC registers are advanced in parallel
# with NumPy (4 bytes per step, "slicing-by-4" tables), then merged: the CRC
# register is linear over GF(2), so reg(A + B) = shift_|B|(reg(A)) xor
# reg_0(B), where shift_n is the 32x32 bit matrix of feeding n zero bytes. A
# linear map on 32 bits is applied as 4 table lookups (one per input byte).

_CRC_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8
_NUMPY_CRC_MIN_BYTES = 4096


def _make_crc_table() -> list[int]:
    table = []
    for byte in range(256):
        reg = byte
        for _ in range(8):
            reg = (reg >> 1) ^ _CRC_POLY if reg & 1 else reg >> 1
        table.append(reg)
    return table


_CRC_TABLE = _make_crc_table()
_CRC_TABLE_NP = np.array(_CRC_TABLE, dtype=np.uint32)


def _crc_update_py(reg: int, data: bytes | memoryview) -> int:
    """Advance a raw (un-inverted) CRC register over ``data`` byte by byte."""
    table = _CRC_TABLE
    for byte in bytes(data):
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    return reg


# A linear map on 32-bit registers, stored as 4 lookup tables (4, 256): the
# image of a register v is T[0][byte0(v)] ^ T[1][byte1(v)] ^ T[2][...] ^ T[3][...].
_LinearMap = np.ndarray
_BYTE_BITS = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(bool)  # (256, 8)
# Column of a uint32 viewed as 4 uint8 that holds the least significant byte.
_LSB_COLUMN = 0 if sys.byteorder == "little" else 3


def _map_from_columns(columns: np.ndarray) -> _LinearMap:
    """Build the lookup tables of the linear map whose image of bit i is ``columns[i]``."""
    tables = np.empty((4, 256), dtype=np.uint32)
    for k in range(4):
        picked = np.where(_BYTE_BITS, columns[8 * k : 8 * k + 8], np.uint32(0))
        tables[k] = np.bitwise_xor.reduce(picked, axis=1)
    return tables


def _map_apply(tables: _LinearMap, v: np.ndarray) -> np.ndarray:
    """Apply a linear map to every register of the uint32 array ``v``."""
    octets = np.ascontiguousarray(v, dtype=np.uint32).view(np.uint8).reshape(-1, 4)
    if _LSB_COLUMN:
        octets = octets[:, ::-1]
    return (
        tables[0][octets[:, 0]] ^ tables[1][octets[:, 1]] ^ tables[2][octets[:, 2]] ^ tables[3][octets[:, 3]]
    )


_UNIT_COLUMNS = np.left_shift(np.uint32(1), np.arange(32, dtype=np.uint32))


@functools.lru_cache(maxsize=64)
def _zeros_map(nbytes: int) -> _LinearMap:
    """The linear map "feed ``nbytes`` zero bytes into the CRC register" (``nbytes`` a power of 2)."""
    if nbytes == 1:
        return _map_from_columns(_CRC_TABLE_NP[_UNIT_COLUMNS & 0xFF] ^ (_UNIT_COLUMNS >> 8))
    half = _zeros_map(nbytes // 2)
    return _map_from_columns(_map_apply(half, _map_apply(half, _UNIT_COLUMNS)))


def _crc_update_np(reg: int, data: memoryview) -> int:
    """Advance a raw CRC register over a large buffer with NumPy lanes.

    The largest prefix made of ``lanes`` (a power of two) equal lanes of
    ``4 * lane_words`` bytes (a power of two) is processed in parallel; the
    rest is handled recursively, so only power-of-two shift maps are needed.
    """
    n = len(data)
    lanes = 1 << max(4, min(13, (n // 512).bit_length() - 1))
    lane_words = 1 << ((n // (lanes * 4)).bit_length() - 1)
    body = lanes * lane_words * 4
    words = np.frombuffer(data[:body], dtype="<u4").reshape(lanes, lane_words).T.copy()
    step = _zeros_map(4)
    regs = np.zeros(lanes, dtype=np.uint32)
    regs[0] = reg  # the incoming register continues through lane 0
    for row in words:
        regs = _map_apply(step, regs ^ row)
    length = lane_words * 4
    while len(regs) > 1:  # merge neighbouring lanes pairwise
        regs = _map_apply(_zeros_map(length), regs[0::2]) ^ regs[1::2]
        length *= 2
    return _crc_update(int(regs[0]), data[body:])


def _crc_update(reg: int, data: memoryview) -> int:
    if len(data) >= _NUMPY_CRC_MIN_BYTES:
        return _crc_update_np(reg, data)
    return _crc_update_py(reg, data)


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC-32C of ``data``; pass a previous result as ``crc`` to extend it.

    ``crc32c(b + c) == crc32c(c, crc32c(b))``. Pure Python + NumPy; about
    tens of milliseconds for 4 MB.
    """
    view = memoryview(data).cast("B")
    return _crc_update((crc ^ 0xFFFFFFFF) & 0xFFFFFFFF, view) ^ 0xFFFFFFFF


def mask_crc(crc: int) -> int:
    """TensorFlow/LevelDB CRC masking: rotate right by 15 bits and add a constant."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def unmask_crc(masked: int) -> int:
    """Inverse of :func:`mask_crc`."""
    rot = (masked - _MASK_DELTA) & 0xFFFFFFFF
    return ((rot >> 17) | (rot << 15)) & 0xFFFFFFFF


# --- Snappy -----------------------------------------------------------------

_MAX_SNAPPY_OUTPUT = 1 << 30


def snappy_decompress(data: bytes | memoryview) -> bytes:
    """Decompress a raw Snappy block (the format LevelDB tables use).

    Format: varint uncompressed length, then elements whose first byte's low
    2 bits say: 0 literal (length in the tag or in 1-4 following bytes),
    1 copy with 11-bit offset, 2 copy with 16-bit offset, 3 copy with 32-bit
    offset. Raises :class:`ValueError` on malformed input.
    """
    buf = bytes(data)
    end = len(buf)
    try:
        expected, pos = decode_varint(buf, 0, end)
    except ProtobufDecodeError as exc:
        raise ValueError(f"bad snappy header: {exc}") from None
    # A 3-byte copy element yields at most 64 bytes, so the ratio is bounded.
    if expected > min(_MAX_SNAPPY_OUTPUT, 22 * end):
        raise ValueError(f"snappy block claims {expected} bytes from {end} compressed bytes")
    out = bytearray()
    while pos < end:
        tag = buf[pos]
        pos += 1
        kind = tag & 3
        if kind == 0:
            length = tag >> 2
            if length >= 60:
                nbytes = length - 59
                if pos + nbytes > end:
                    raise ValueError("truncated snappy literal length")
                length = int.from_bytes(buf[pos : pos + nbytes], "little")
                pos += nbytes
            length += 1
            if pos + length > end:
                raise ValueError("truncated snappy literal")
            out += buf[pos : pos + length]
            pos += length
        else:
            if kind == 1:
                if pos + 1 > end:
                    raise ValueError("truncated snappy copy")
                length = 4 + ((tag >> 2) & 7)
                offset = ((tag >> 5) << 8) | buf[pos]
                pos += 1
            else:
                nbytes = 2 if kind == 2 else 4
                if pos + nbytes > end:
                    raise ValueError("truncated snappy copy")
                length = 1 + (tag >> 2)
                offset = int.from_bytes(buf[pos : pos + nbytes], "little")
                pos += nbytes
            if offset == 0 or offset > len(out):
                raise ValueError(f"snappy copy offset {offset} outside the {len(out)} bytes decoded so far")
            if offset >= length:
                start = len(out) - offset
                out += out[start : start + length]
            else:  # overlapping copy repeats the last `offset` bytes
                pattern = bytes(out[-offset:])
                out += (pattern * (length // offset + 1))[:length]
        if len(out) > expected:
            raise ValueError(f"snappy block decodes to more than the declared {expected} bytes")
    if len(out) != expected:
        raise ValueError(f"snappy block decodes to {len(out)} bytes, header says {expected}")
    return bytes(out)


# --- SSTable ----------------------------------------------------------------


def _read_u32(buf: bytes, pos: int) -> int:
    return int.from_bytes(buf[pos : pos + 4], "little")


def _decode_handle(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    offset, pos = decode_varint(buf, pos, end)
    size, pos = decode_varint(buf, pos, end)
    return offset, size, pos


class _TableReader:
    """Reads every (key, value) pair of an in-memory SSTable, checking everything."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self.data = data

    def fail(self, what: str) -> BundleError:
        return BundleError(
            f"checkpoint index file {self.path} is corrupt: {what}; "
            "the checkpoint is incomplete or was not written by TensorFlow"
        )

    def entries(self) -> list[tuple[bytes, bytes]]:
        data = self.data
        if len(data) < _FOOTER_SIZE:
            raise BundleError(
                f"checkpoint index file {self.path} is truncated: it has {len(data)} bytes, "
                f"less than the {_FOOTER_SIZE}-byte table footer; the checkpoint is incomplete or corrupt"
            )
        footer = data[-_FOOTER_SIZE:]
        magic = int.from_bytes(footer[40:48], "little")
        if magic != _TABLE_MAGIC:
            raise BundleError(
                f"checkpoint index file {self.path} is not a TensorFlow checkpoint index "
                f"(bad table magic {magic:#018x}, expected {_TABLE_MAGIC:#018x}); "
                "the file is truncated, corrupt or of another format"
            )
        try:
            meta_offset, meta_size, pos = _decode_handle(footer, 0, 40)
            index_offset, index_size, _ = _decode_handle(footer, pos, 40)
        except ProtobufDecodeError as exc:
            raise self.fail(f"bad block handle in footer ({exc})") from None
        # TF writes no meta blocks (no filters); reading the metaindex still checks its CRC.
        self.block(meta_offset, meta_size, "metaindex block")
        index_block = self.block(index_offset, index_size, "index block")
        out: list[tuple[bytes, bytes]] = []
        previous: bytes | None = None
        for _, handle in self.block_entries(index_block, "index block"):
            try:
                offset, size, _ = _decode_handle(handle, 0, len(handle))
            except ProtobufDecodeError as exc:
                raise self.fail(f"bad data block handle ({exc})") from None
            block = self.block(offset, size, f"data block at byte {offset}")
            for key, value in self.block_entries(block, f"data block at byte {offset}"):
                if previous is not None and key <= previous:
                    raise self.fail(f"keys out of order ({previous!r} then {key!r})")
                previous = key
                out.append((key, value))
        return out

    def block(self, offset: int, size: int, what: str) -> bytes:
        limit = len(self.data) - _FOOTER_SIZE
        if offset + size + _BLOCK_TRAILER_SIZE > limit:
            raise BundleError(
                f"checkpoint index file {self.path} is truncated: {what} needs bytes "
                f"{offset}..{offset + size + _BLOCK_TRAILER_SIZE} but only {limit} bytes precede the "
                "footer; the checkpoint is incomplete or corrupt"
            )
        raw = self.data[offset : offset + size + 1]
        stored = unmask_crc(_read_u32(self.data, offset + size + 1))
        actual = crc32c(raw)
        if stored != actual:
            raise self.fail(f"checksum mismatch in {what} (stored {stored:#010x}, computed {actual:#010x})")
        compression = raw[-1]
        contents = raw[:-1]
        if compression == 0:
            return contents
        if compression == 1:
            try:
                return snappy_decompress(contents)
            except ValueError as exc:
                raise self.fail(f"{what} has bad snappy data ({exc})") from None
        raise self.fail(f"{what} uses unknown compression type {compression}")

    def block_entries(self, block: bytes, what: str) -> Iterator[tuple[bytes, bytes]]:
        size = len(block)
        if size < 4:
            raise self.fail(f"{what} is too short ({size} bytes)")
        num_restarts = _read_u32(block, size - 4)
        if num_restarts > (size - 4) // 4:
            raise self.fail(f"{what} claims {num_restarts} restart points in {size} bytes")
        end = size - 4 * (num_restarts + 1)
        pos = 0
        key = b""
        try:
            while pos < end:
                shared, pos = decode_varint(block, pos, end)
                non_shared, pos = decode_varint(block, pos, end)
                value_len, pos = decode_varint(block, pos, end)
                if shared > len(key) or non_shared + value_len > end - pos:
                    raise self.fail(f"{what} has an entry that does not fit at byte {pos}")
                key = key[:shared] + block[pos : pos + non_shared]
                pos += non_shared
                value = block[pos : pos + value_len]
                pos += value_len
                yield key, value
        except ProtobufDecodeError as exc:
            raise self.fail(f"{what} has a bad entry header ({exc})") from None


# --- OrderedCode slice keys --------------------------------------------------


def _read_ordered_string(key: bytes, pos: int) -> tuple[bytes, int]:
    out = bytearray()
    end = len(key)
    while pos < end:
        byte = key[pos]
        if byte == 0x00:
            if pos + 1 >= end:
                raise ValueError("unterminated string")
            nxt = key[pos + 1]
            if nxt == 0x01:
                return bytes(out), pos + 2
            if nxt != 0xFF:
                raise ValueError("bad escape")
            out.append(0)
            pos += 2
        elif byte == 0xFF:
            if pos + 1 >= end or key[pos + 1] != 0x00:
                raise ValueError("bad escape")
            out.append(0xFF)
            pos += 2
        else:
            out.append(byte)
            pos += 1
    raise ValueError("unterminated string")


def _read_ordered_uint(key: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(key):
        raise ValueError("missing number")
    length = key[pos]
    if length > 8 or pos + 1 + length > len(key):
        raise ValueError("bad number")
    return int.from_bytes(key[pos + 1 : pos + 1 + length], "big"), pos + 1 + length


def _read_ordered_signed(key: bytes, pos: int) -> tuple[int, int]:
    """OrderedCode signed number: sign bit, then (length - 1) copies of it, then its inverse."""
    if pos >= len(key):
        raise ValueError("missing number")
    head = int.from_bytes(key[pos : pos + 2].ljust(2, b"\x00"), "big")
    sign = head >> 15
    length = 1
    while length < 10 and (head >> (15 - length)) & 1 == sign:
        length += 1
    if pos + length > len(key):
        raise ValueError("truncated number")
    raw = int.from_bytes(key[pos : pos + length], "big")
    payload_bits = 7 * length
    value = raw & ((1 << payload_bits) - 1)
    if not sign:
        value -= 1 << payload_bits
    return value, pos + length


def _decode_slice_key(key: bytes) -> tuple[str, tuple[tuple[int, int | None], ...]]:
    """Decode ``EncodeTensorNameSlice``: ``(name, ((start, length or None), ...))``."""
    pos = 1  # leading WriteNumIncreasing(0) == b"\x00"
    name, pos = _read_ordered_string(key, pos)
    rank, pos = _read_ordered_uint(key, pos)
    if rank == 0 or rank > _MAX_RANK:
        raise ValueError(f"bad rank {rank}")
    extents = []
    for _ in range(rank):
        start, pos = _read_ordered_signed(key, pos)
        length, pos = _read_ordered_signed(key, pos)
        extents.append((0, None) if length < 0 else (start, length))
    if pos != len(key):
        raise ValueError("trailing bytes")
    return name.decode("utf-8", "surrogateescape"), tuple(extents)


# --- Bundle entries -----------------------------------------------------------

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


# --- Locating a checkpoint -------------------------------------------------------

_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
_STATE_LINE = re.compile(r'^\s*model_checkpoint_path\s*:\s*"((?:[^"\\]|\\.)*)"\s*$', re.MULTILINE)
_ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {
    b"n": b"\n",
    b"t": b"\t",
    b"r": b"\r",
    b"a": b"\a",
    b"b": b"\b",
    b"f": b"\f",
    b"v": b"\v",
    b"\\": b"\\",
    b"'": b"'",
    b'"': b'"',
    b"?": b"?",
}


def _unescape_text_proto(text: str) -> str:
    """Undo C-style escaping of a text-format protobuf string literal."""

    def repl(match: re.Match[bytes]) -> bytes:
        code = match.group(1)
        if code[:1] == b"x":
            return bytes([int(code[1:], 16)])
        if code[:1].isdigit():
            return bytes([int(code, 8) & 0xFF])
        return _SIMPLE_ESCAPES.get(code, code)

    return _ESCAPE.sub(repl, text.encode("utf-8")).decode("utf-8", "surrogateescape")


def _prefix_from_state_file(directory: Path) -> str:
    state = directory / "checkpoint"
    try:
        text = state.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise BundleError(f"cannot read checkpoint state file {state}: {exc.strerror}") from None
    match = _STATE_LINE.search(text)
    if match is None:
        raise BundleError(
            f"checkpoint state file {state} has no model_checkpoint_path line; "
            "pass the checkpoint prefix (the path without .index) instead"
        )
    target = _unescape_text_proto(match.group(1))
    prefix = Path(target) if os.path.isabs(target) else directory / target
    # A directory copied or moved since TF wrote an absolute path: the checkpoint beside
    # the state file is the one the user pointed at, even if the original still exists.
    beside = directory / Path(target).name
    if os.path.isabs(target) and Path(str(beside) + ".index").is_file():
        return str(beside)
    if not Path(str(prefix) + ".index").is_file():
        raise BundleError(
            f"checkpoint state file {state} points to {target!r}, but {prefix}.index does not exist; "
            "the checkpoint is incomplete or the state file is stale"
        )
    return str(prefix)


def resolve_prefix(path: str | os.PathLike[str]) -> str:
    """Turn a checkpoint directory, prefix, ``.index`` or ``.data-*`` path into a prefix.

    A directory is resolved through its ``checkpoint`` state file, or through
    its only ``*.index`` file if it has no state file.
    """
    p = Path(path)
    text = str(p)
    if p.is_dir():
        if (p / "checkpoint").is_file():
            return _prefix_from_state_file(p)
        indexes = sorted(p.glob("*.index"))
        if len(indexes) == 1:
            return str(indexes[0])[: -len(".index")]
        if not indexes:
            raise BundleError(
                f"directory {p} holds no TensorFlow checkpoint (no 'checkpoint' file, no *.index file)"
            )
        names = ", ".join(i.name for i in indexes[:5])
        raise BundleError(
            f"directory {p} holds several checkpoints ({names}) and no 'checkpoint' state file; "
            "pass one prefix (the path without .index)"
        )
    if text.endswith(".index") and p.is_file():
        return text[: -len(".index")]
    if _DATA_SUFFIX.search(text):
        return _DATA_SUFFIX.sub("", text)
    if Path(text + ".index").is_file():
        return text
    if p.exists():
        raise BundleError(
            f"{p} is not a TensorFlow checkpoint: expected a checkpoint directory, a prefix "
            f"with {p.name}.index next to it, or the .index file itself"
        )
    raise BundleError(
        f"no TensorFlow checkpoint at {p}: neither {p} nor {p.name}.index exists; "
        "pass the checkpoint directory or prefix (the path without .index)"
    )


def looks_like_bundle(path: str | os.PathLike[str]) -> bool:
    """Cheap content check: does ``path`` resolve to an ``.index`` with the table magic?"""
    try:
        index = Path(resolve_prefix(path) + ".index")
        with index.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if size < _FOOTER_SIZE:
                return False
            fh.seek(size - 8)
            return int.from_bytes(fh.read(8), "little") == _TABLE_MAGIC
    except (OSError, BundleError):
        return False


# --- The bundle -------------------------------------------------------------------------


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


# --- TrackableObjectGraph --------------------------------------------------------------


@dataclass(frozen=True)
class ObjectReference:
    """An edge of the object graph: child ``node_id`` reached by ``local_name``."""

    node_id: int
    local_name: str


@dataclass(frozen=True)
class SerializedTensor:
    """A tensor saved for an object: ``name`` (``VARIABLE_VALUE``), ``full_name``
    (the variable's graph name, e.g. ``lstm/lstm_cell/kernel``) and
    ``checkpoint_key`` (the bundle key)."""

    name: str
    full_name: str
    checkpoint_key: str
    optional_restore: bool = False


@dataclass(frozen=True)
class SlotVariableReference:
    """An optimizer slot (``m``, ``v``, ...) of a variable node."""

    original_variable_node_id: int
    slot_name: str
    slot_variable_node_id: int


@dataclass(frozen=True)
class TrackableObject:
    """One node of the object graph."""

    children: tuple[ObjectReference, ...] = ()
    attributes: tuple[SerializedTensor, ...] = ()
    slot_variables: tuple[SlotVariableReference, ...] = ()
    registered_saver: str = ""

    def child(self, local_name: str) -> int | None:
        """Node id of the child called ``local_name``, or ``None``."""
        for ref in self.children:
            if ref.local_name == local_name:
                return ref.node_id
        return None


@dataclass(frozen=True)
class ObjectGraph:
    """A decoded ``TrackableObjectGraph``; node 0 is the root (the saved object)."""

    nodes: tuple[TrackableObject, ...] = field(default_factory=tuple)

    def full_names(self) -> dict[str, str]:
        """``checkpoint_key -> full_name`` for every attribute that has a full name."""
        return {
            attr.checkpoint_key: attr.full_name
            for node in self.nodes
            for attr in node.attributes
            if attr.full_name
        }

    def attribute(self, checkpoint_key: str) -> SerializedTensor | None:
        """The attribute stored under ``checkpoint_key``."""
        for node in self.nodes:
            for attr in node.attributes:
                if attr.checkpoint_key == checkpoint_key:
                    return attr
        return None

    def walk(self) -> Iterator[tuple[tuple[str, ...], int]]:
        """Breadth-first ``(path of local names, node_id)`` from the root.

        Each node is yielded once, under its shortest path (the path TF uses
        to build checkpoint keys); cycles are safe.
        """
        if not self.nodes:
            return
        seen = {0}
        queue: deque[tuple[tuple[str, ...], int]] = deque([((), 0)])
        while queue:
            path, node_id = queue.popleft()
            yield path, node_id
            for ref in self.nodes[node_id].children:
                if ref.node_id not in seen:
                    seen.add(ref.node_id)
                    queue.append(((*path, ref.local_name), ref.node_id))

    def resolve(self, path: str | Sequence[str], start: int = 0) -> int:
        """Node id reached from ``start`` by local names (``"layer_with_weights-0/cell"``)."""
        names = [n for n in (path.split("/") if isinstance(path, str) else path) if n]
        node_id = start
        for i, name in enumerate(names):
            child = self.nodes[node_id].child(name)
            if child is None:
                trail = "/".join(names[:i]) or "<root>"
                raise KeyError(f"object {trail!r} has no child {name!r}")
            node_id = child
        return node_id

    def variables(self) -> Iterator[tuple[tuple[str, ...], SerializedTensor]]:
        """``(object path, attribute)`` for every saved tensor, in walk order."""
        for path, node_id in self.walk():
            for attr in self.nodes[node_id].attributes:
                yield path, attr


def parse_object_graph(data: bytes) -> ObjectGraph:
    """Decode a serialized ``TrackableObjectGraph`` (``trackable_object_graph.proto``)::

        TrackableObjectGraph { repeated TrackableObject nodes = 1; }
        TrackableObject {
          repeated ObjectReference children = 1;
              // { int32 node_id = 1; string local_name = 2; }
          repeated SerializedTensor attributes = 2;
              // { string name = 1; string full_name = 2; string checkpoint_key = 3;
              //   bool optional_restore = 4 (not in every TF version); }
          repeated SlotVariableReference slot_variables = 3;
              // { int32 original_variable_node_id = 1; string slot_name = 2;
              //   int32 slot_variable_node_id = 3; }
          RegisteredSaver registered_saver = 4;
              // { string name = 1; string object_name = 2; }
        }

    Raises :class:`BundleError` if the bytes are malformed or a reference
    points outside the node list.
    """
    try:
        graph = parse_message(data)
        nodes = []
        for node in repeated_messages(graph, 1):
            saver = get_message(node, 4)
            nodes.append(
                TrackableObject(
                    children=tuple(
                        ObjectReference(get_int(c, 1, bits=32), get_string(c, 2))
                        for c in repeated_messages(node, 1)
                    ),
                    attributes=tuple(
                        SerializedTensor(get_string(a, 1), get_string(a, 2), get_string(a, 3), get_bool(a, 4))
                        for a in repeated_messages(node, 2)
                    ),
                    slot_variables=tuple(
                        SlotVariableReference(
                            get_int(s, 1, bits=32), get_string(s, 2), get_int(s, 3, bits=32)
                        )
                        for s in repeated_messages(node, 3)
                    ),
                    registered_saver=get_string(saver, 1) if saver else "",
                )
            )
    except ProtobufDecodeError as exc:
        raise BundleError(f"checkpoint object graph ({OBJECT_GRAPH_KEY}) is corrupt: {exc}") from None
    count = len(nodes)
    for index, node in enumerate(nodes):
        refs = [ref.node_id for ref in node.children]
        refs += [s.original_variable_node_id for s in node.slot_variables]
        refs += [s.slot_variable_node_id for s in node.slot_variables]
        for ref in refs:
            if not 0 <= ref < count:
                raise BundleError(
                    f"checkpoint object graph ({OBJECT_GRAPH_KEY}) is corrupt: node {index} refers "
                    f"to node {ref} but the graph has {count} nodes"
                )
    return ObjectGraph(tuple(nodes))
