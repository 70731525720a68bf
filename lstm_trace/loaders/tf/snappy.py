"""Snappy block decompression (the compression of SSTable blocks), in pure Python."""

from __future__ import annotations

from ..protobuf_wire import (
    ProtobufDecodeError,
    decode_varint,
)

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
