"""OrderedCode slice keys: how TensorFlow names the slices of a partitioned variable."""

from __future__ import annotations

_MAX_RANK = 254  # TensorShape::MaxDimensions()


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
