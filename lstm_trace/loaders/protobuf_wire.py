"""A minimal, framework-free decoder of the protobuf wire format.

lstm-trace reads a few small protobuf messages stored inside TensorFlow files
(``BundleHeaderProto``, ``BundleEntryProto``, ``TrackableObjectGraph``, ...)
without importing TensorFlow or the ``protobuf`` package. This module decodes
the *wire format* only; the meaning of each field number lives with the caller.

Wire format in brief
--------------------
A message is a sequence of fields. Each field starts with a *tag*, a varint
``(field_number << 3) | wire_type``, followed by the payload:

=========  ==================  ===================================================
wire type  name                payload
=========  ==================  ===================================================
0          VARINT              base-128 varint, little-endian groups of 7 bits,
                               high bit set on all but the last byte (<= 10 bytes)
1          I64 (fixed64)       8 bytes little-endian
2          LEN                 varint length, then that many bytes (string, bytes,
                               nested message, packed repeated scalars)
3, 4       SGROUP / EGROUP     deprecated groups (not supported here)
5          I32 (fixed32)       4 bytes little-endian
=========  ==================  ===================================================

Signed integers: ``int32``/``int64`` are stored as the two's complement value
reinterpreted as unsigned 64-bit (negative numbers take 10 bytes); ``sint32``/
``sint64`` use *zigzag* encoding (0, -1, 1, -2, ... -> 0, 1, 2, 3, ...).
A field may occur several times: for a scalar the last value wins, repeated
fields keep all values. Repeated scalars may be *packed* (one LEN field holding
the concatenated payloads) or not; a correct reader accepts both.

:func:`parse_message` returns ``{field_number: [raw values...]}`` where a raw
value is an ``int`` (varint, fixed32, fixed64: unsigned) or ``bytes`` (LEN).
The ``get_*`` / ``repeated_*`` helpers interpret those raw values.

Robustness: every read is bounds-checked against the buffer, lengths are
compared with the bytes actually present before anything is sliced, varints
are limited to 10 bytes, and nested parsing is driven by the caller (no
recursion on untrusted depth). Any malformed input raises
:class:`ProtobufDecodeError` (a :class:`ValueError`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = [
    "WIRE_END_GROUP",
    "WIRE_FIXED32",
    "WIRE_FIXED64",
    "WIRE_LEN",
    "WIRE_START_GROUP",
    "WIRE_VARINT",
    "Message",
    "ProtobufDecodeError",
    "RawValue",
    "decode_fixed32",
    "decode_fixed64",
    "decode_packed_fixed32",
    "decode_packed_fixed64",
    "decode_packed_varints",
    "decode_string",
    "decode_varint",
    "decode_zigzag",
    "get_bool",
    "get_bytes",
    "get_fixed32",
    "get_int",
    "get_message",
    "get_string",
    "get_uint",
    "has_field",
    "iter_fields",
    "parse_message",
    "repeated_messages",
    "repeated_strings",
    "repeated_varints",
    "to_int32",
    "to_int64",
]

WIRE_VARINT = 0
WIRE_FIXED64 = 1
WIRE_LEN = 2
WIRE_START_GROUP = 3
WIRE_END_GROUP = 4
WIRE_FIXED32 = 5

_MAX_VARINT_BYTES = 10
_MAX_FIELD_NUMBER = (1 << 29) - 1
_UINT64_MASK = (1 << 64) - 1

RawValue = int | bytes
"""A raw field value: ``int`` for VARINT/I32/I64 fields, ``bytes`` for LEN."""

Message = dict[int, list[RawValue]]
"""A decoded message: field number -> raw values in the order they appeared."""


class ProtobufDecodeError(ValueError):
    """The bytes are not a well-formed protobuf message (or not the expected field type)."""


def decode_varint(buf: bytes | memoryview, pos: int, limit: int | None = None) -> tuple[int, int]:
    """Decode a base-128 varint starting at ``buf[pos]``.

    Returns ``(value, new_pos)``; the value is unsigned and truncated to 64 bits,
    as protobuf does. ``limit`` (default ``len(buf)``) is the end of the readable
    region. Raises :class:`ProtobufDecodeError` if the varint runs past ``limit``
    or is longer than 10 bytes.
    """
    end = len(buf) if limit is None else limit
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise ProtobufDecodeError(f"truncated varint at byte {start}")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & _UINT64_MASK, pos
        shift += 7
        if pos - start >= _MAX_VARINT_BYTES:
            raise ProtobufDecodeError(f"varint at byte {start} is longer than 10 bytes")


def decode_fixed32(buf: bytes | memoryview, pos: int, limit: int | None = None) -> tuple[int, int]:
    """Decode an unsigned little-endian 32-bit integer; returns ``(value, new_pos)``."""
    end = len(buf) if limit is None else limit
    if pos + 4 > end:
        raise ProtobufDecodeError(f"truncated fixed32 at byte {pos}")
    return int.from_bytes(buf[pos : pos + 4], "little"), pos + 4


def decode_fixed64(buf: bytes | memoryview, pos: int, limit: int | None = None) -> tuple[int, int]:
    """Decode an unsigned little-endian 64-bit integer; returns ``(value, new_pos)``."""
    end = len(buf) if limit is None else limit
    if pos + 8 > end:
        raise ProtobufDecodeError(f"truncated fixed64 at byte {pos}")
    return int.from_bytes(buf[pos : pos + 8], "little"), pos + 8


def decode_zigzag(value: int) -> int:
    """Undo zigzag encoding (``sint32``/``sint64``): 0->0, 1->-1, 2->1, 3->-2, ..."""
    return (value >> 1) ^ -(value & 1)


def to_int64(value: int) -> int:
    """Reinterpret an unsigned 64-bit raw value as a two's complement ``int64``."""
    value &= _UINT64_MASK
    return value - (1 << 64) if value >= 1 << 63 else value


def to_int32(value: int) -> int:
    """Reinterpret a raw varint as ``int32`` (protobuf keeps the low 32 bits)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def iter_fields(buf: bytes | memoryview) -> Iterator[tuple[int, int, RawValue]]:
    """Yield ``(field_number, wire_type, raw_value)`` for each field of a message.

    LEN payloads are returned as ``bytes`` copies; numbers as unsigned ``int``.
    Raises :class:`ProtobufDecodeError` on any malformed field; always advances,
    so it terminates after at most ``len(buf)`` fields.
    """
    view = memoryview(buf) if not isinstance(buf, memoryview) else buf
    end = len(view)
    pos = 0
    while pos < end:
        tag_pos = pos
        tag, pos = decode_varint(view, pos, end)
        field_number = tag >> 3
        wire_type = tag & 7
        if field_number == 0 or field_number > _MAX_FIELD_NUMBER:
            raise ProtobufDecodeError(f"invalid field number {field_number} at byte {tag_pos}")
        value: RawValue
        if wire_type == WIRE_VARINT:
            value, pos = decode_varint(view, pos, end)
        elif wire_type == WIRE_FIXED64:
            value, pos = decode_fixed64(view, pos, end)
        elif wire_type == WIRE_FIXED32:
            value, pos = decode_fixed32(view, pos, end)
        elif wire_type == WIRE_LEN:
            length, pos = decode_varint(view, pos, end)
            if length > end - pos:
                raise ProtobufDecodeError(
                    f"field {field_number} at byte {tag_pos} declares {length} bytes "
                    f"but only {end - pos} remain"
                )
            value = bytes(view[pos : pos + length])
            pos += length
        elif wire_type in (WIRE_START_GROUP, WIRE_END_GROUP):
            raise ProtobufDecodeError(
                f"field {field_number} at byte {tag_pos} uses the deprecated group wire type, "
                "which is not supported"
            )
        else:
            raise ProtobufDecodeError(
                f"field {field_number} at byte {tag_pos} has invalid wire type {wire_type}"
            )
        yield field_number, wire_type, value


def parse_message(buf: bytes | memoryview) -> Message:
    """Decode one message into ``{field_number: [raw values...]}``.

    Values keep their order of appearance. Unknown fields are kept (the caller
    ignores what it does not need). Raises :class:`ProtobufDecodeError`.
    """
    fields: Message = {}
    for number, _wire_type, value in iter_fields(buf):
        fields.setdefault(number, []).append(value)
    return fields


# --- interpreting raw values -------------------------------------------------


def decode_string(value: RawValue, field: int | None = None) -> str:
    """Interpret a LEN value as a UTF-8 ``string`` field."""
    raw = _expect_bytes(value, field)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = f"field {field}" if field is not None else "string field"
        raise ProtobufDecodeError(f"{where} is not valid UTF-8: {exc}") from None


def decode_packed_varints(value: bytes) -> list[int]:
    """Decode a packed repeated varint payload into unsigned ints."""
    view = memoryview(value)
    out: list[int] = []
    pos = 0
    end = len(view)
    while pos < end:
        number, pos = decode_varint(view, pos, end)
        out.append(number)
    return out


def decode_packed_fixed32(value: bytes, fmt: str = "I") -> list[int] | list[float]:
    """Decode a packed repeated fixed32 payload (``fmt``: ``I`` uint, ``i`` int, ``f`` float)."""
    if len(value) % 4:
        raise ProtobufDecodeError(f"packed fixed32 payload of {len(value)} bytes is not a multiple of 4")
    return list(struct.unpack(f"<{len(value) // 4}{fmt}", value))


def decode_packed_fixed64(value: bytes, fmt: str = "Q") -> list[int] | list[float]:
    """Decode a packed repeated fixed64 payload (``fmt``: ``Q`` uint, ``q`` int, ``d`` double)."""
    if len(value) % 8:
        raise ProtobufDecodeError(f"packed fixed64 payload of {len(value)} bytes is not a multiple of 8")
    return list(struct.unpack(f"<{len(value) // 8}{fmt}", value))


def _expect_int(value: RawValue, field: int | None) -> int:
    if not isinstance(value, int):
        where = f"field {field}" if field is not None else "field"
        raise ProtobufDecodeError(f"{where} should be a number but has a length-delimited payload")
    return value


def _expect_bytes(value: RawValue, field: int | None) -> bytes:
    if not isinstance(value, bytes):
        where = f"field {field}" if field is not None else "field"
        raise ProtobufDecodeError(f"{where} should be length-delimited but is a number")
    return value


def has_field(msg: Message, field: int) -> bool:
    """True if the field occurred at least once (proto3 cannot tell "absent" from default)."""
    return bool(msg.get(field))


def get_uint(msg: Message, field: int, default: int = 0) -> int:
    """Last value of a singular unsigned numeric field (``uint32/64``, enums, fixed)."""
    values = msg.get(field)
    if not values:
        return default
    return _expect_int(values[-1], field)


def get_int(msg: Message, field: int, default: int = 0, bits: int = 64) -> int:
    """Last value of a singular ``int32``/``int64`` field, as a signed Python int."""
    values = msg.get(field)
    if not values:
        return default
    raw = _expect_int(values[-1], field)
    return to_int32(raw) if bits == 32 else to_int64(raw)


def get_bool(msg: Message, field: int, default: bool = False) -> bool:
    """Last value of a singular ``bool`` field."""
    values = msg.get(field)
    if not values:
        return default
    return _expect_int(values[-1], field) != 0


def get_fixed32(msg: Message, field: int, default: int = 0) -> int:
    """Last value of a singular ``fixed32`` field (unsigned)."""
    return get_uint(msg, field, default)


def get_bytes(msg: Message, field: int, default: bytes = b"") -> bytes:
    """Last value of a singular ``bytes`` field."""
    values = msg.get(field)
    if not values:
        return default
    return _expect_bytes(values[-1], field)


def get_string(msg: Message, field: int, default: str = "") -> str:
    """Last value of a singular ``string`` field, decoded as UTF-8."""
    values = msg.get(field)
    if not values:
        return default
    return decode_string(values[-1], field)


def get_message(msg: Message, field: int) -> Message | None:
    """A singular nested message field, or ``None`` if absent.

    Protobuf merges repeated occurrences of a singular message field; this
    decoder does the same by concatenating their payloads before parsing.
    """
    values = msg.get(field)
    if not values:
        return None
    payload = b"".join(_expect_bytes(v, field) for v in values)
    return parse_message(payload)


def repeated_messages(msg: Message, field: int) -> list[Message]:
    """All occurrences of a repeated nested message field, each parsed."""
    return [parse_message(_expect_bytes(v, field)) for v in msg.get(field, [])]


def repeated_strings(msg: Message, field: int) -> list[str]:
    """All occurrences of a repeated ``string`` field."""
    return [decode_string(v, field) for v in msg.get(field, [])]


def repeated_varints(msg: Message, field: int) -> list[int]:
    """A repeated varint field in packed or unpacked form (or a mix), as unsigned ints."""
    out: list[int] = []
    for value in msg.get(field, []):
        if isinstance(value, bytes):
            out.extend(decode_packed_varints(value))
        else:
            out.append(value)
    return out
