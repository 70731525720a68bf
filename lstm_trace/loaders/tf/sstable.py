"""LevelDB-style SSTables: the `.index` file of a tensor bundle (blocks, trailers, footer)."""

from __future__ import annotations

from collections.abc import Iterator

from ..protobuf_wire import (
    ProtobufDecodeError,
    decode_varint,
)
from .crc32c import (
    crc32c,
    unmask_crc,
)
from .errors import BundleError
from .snappy import snappy_decompress

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_BLOCK_TRAILER_SIZE = 5


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
