"""Tests of the framework-free protobuf decoder and TensorFlow checkpoint reader.

The first half needs no TensorFlow: it checks the wire decoder, CRC32C, Snappy,
slice keys and hand-made SSTables. The second half builds real checkpoints with
TensorFlow 2.21 *in a subprocess* (so this pytest process never imports
TensorFlow) and compares every tensor and the object graph with what
TensorFlow's own reader returns.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lstm_trace.loaders import protobuf_wire as pw
from lstm_trace.loaders.tf.bundle import TensorBundle
from lstm_trace.loaders.tf.checkpoint_files import looks_like_bundle, resolve_prefix
from lstm_trace.loaders.tf.crc32c import _crc_update_py, crc32c, mask_crc, unmask_crc
from lstm_trace.loaders.tf.errors import BundleError
from lstm_trace.loaders.tf.object_graph import OBJECT_GRAPH_KEY, parse_object_graph
from lstm_trace.loaders.tf.ordered_code import _decode_slice_key
from lstm_trace.loaders.tf.snappy import snappy_decompress

REPO_ROOT = Path(__file__).resolve().parents[1]

# --- encoding helpers (the tests' own tiny protobuf / SSTable writers) ----------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(field: int, wire: int) -> bytes:
    return varint((field << 3) | wire)


def f_varint(field: int, value: int) -> bytes:
    return tag(field, 0) + varint(value)


def f_len(field: int, payload: bytes) -> bytes:
    return tag(field, 2) + varint(len(payload)) + payload


def f_fixed32(field: int, value: int) -> bytes:
    return tag(field, 5) + value.to_bytes(4, "little")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "little")


# --- protobuf wire format --------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**31, 2**32, 2**63, 2**64 - 1])
def test_varint_round_trips(value: int) -> None:
    encoded = varint(value) + b"tail"
    assert pw.decode_varint(encoded, 0) == (value, len(varint(value)))


def test_negative_int32_uses_ten_bytes_and_reads_back_signed() -> None:
    msg = pw.parse_message(f_varint(3, -5))
    assert len(f_varint(3, -5)) == 11
    assert pw.get_int(msg, 3, bits=32) == -5
    assert pw.get_int(msg, 3) == -5
    assert pw.get_uint(msg, 3) == 2**64 - 5


def test_zigzag_maps_unsigned_to_alternating_signs() -> None:
    assert [pw.decode_zigzag(n) for n in range(6)] == [0, -1, 1, -2, 2, -3]
    assert pw.decode_zigzag(2**64 - 1) == -(2**63)


def test_fixed_width_fields_are_little_endian() -> None:
    buf = tag(1, 1) + (0x0102030405060708).to_bytes(8, "little") + f_fixed32(2, 0xDEADBEEF)
    msg = pw.parse_message(buf)
    assert msg == {1: [0x0102030405060708], 2: [0xDEADBEEF]}


def test_parse_message_keeps_every_occurrence_in_order() -> None:
    buf = f_varint(1, 7) + f_len(2, b"ab") + f_varint(1, 9) + f_len(2, b"")
    msg = pw.parse_message(buf)
    assert msg == {1: [7, 9], 2: [b"ab", b""]}
    assert pw.get_uint(msg, 1) == 9  # last value wins for a scalar


def test_nested_messages_and_strings_decode() -> None:
    inner = f_varint(1, 4) + f_len(2, "héllo".encode())
    outer = f_len(5, inner) + f_len(5, f_varint(1, 6))
    msg = pw.parse_message(outer)
    children = pw.repeated_messages(msg, 5)
    assert [pw.get_uint(c, 1) for c in children] == [4, 6]
    assert pw.get_string(children[0], 2) == "héllo"
    assert pw.get_message(msg, 9) is None


def test_singular_message_occurring_twice_is_merged() -> None:
    msg = pw.parse_message(f_len(3, f_varint(1, 1)) + f_len(3, f_varint(2, 2)))
    assert pw.get_message(msg, 3) == {1: [1], 2: [2]}


def test_packed_and_unpacked_repeated_varints_read_the_same() -> None:
    values = [0, 1, 300, 2**40]
    packed = f_len(4, b"".join(varint(v) for v in values))
    unpacked = b"".join(f_varint(4, v) for v in values)
    assert pw.repeated_varints(pw.parse_message(packed), 4) == values
    assert pw.repeated_varints(pw.parse_message(unpacked), 4) == values


def test_packed_fixed_payloads_decode() -> None:
    floats = np.array([1.5, -2.0], "<f4").tobytes()
    assert pw.decode_packed_fixed32(floats, "f") == [1.5, -2.0]
    assert pw.decode_packed_fixed64(np.array([3, 4], "<u8").tobytes()) == [3, 4]
    with pytest.raises(pw.ProtobufDecodeError, match="multiple of 4"):
        pw.decode_packed_fixed32(b"\x00" * 5)


@pytest.mark.parametrize(
    ("buf", "message"),
    [
        (b"\x08", "truncated varint"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x12\x05abc", "declares 5 bytes but only 3 remain"),
        (b"\x0d\x01\x02", "truncated fixed32"),
        (b"\x09\x01", "truncated fixed64"),
        (b"\x0e", "invalid wire type 6"),
        (b"\x00\x01", "invalid field number 0"),
        (b"\x0b\x0c", "group wire type"),
    ],
)
def test_malformed_messages_raise_decode_error(buf: bytes, message: str) -> None:
    with pytest.raises(pw.ProtobufDecodeError, match=message):
        pw.parse_message(buf)


def test_corrupt_huge_length_fails_fast_without_allocating() -> None:
    buf = tag(2, 2) + varint(2**62) + b"xyz"
    with pytest.raises(pw.ProtobufDecodeError, match="declares"):
        pw.parse_message(buf)


def test_decode_error_is_a_value_error() -> None:
    assert issubclass(pw.ProtobufDecodeError, ValueError)


def test_wrong_wire_type_for_a_field_is_a_decode_error() -> None:
    msg = pw.parse_message(f_varint(2, 1) + f_len(1, b"x"))
    with pytest.raises(pw.ProtobufDecodeError, match="field 2 should be length-delimited"):
        pw.get_string(msg, 2)
    with pytest.raises(pw.ProtobufDecodeError, match="field 1 should be a number"):
        pw.get_uint(msg, 1)
    with pytest.raises(pw.ProtobufDecodeError, match="not valid UTF-8"):
        pw.get_string(pw.parse_message(f_len(1, b"\xff\xfe")), 1)


def test_random_and_mutated_input_only_ever_raises_decode_error() -> None:
    rng = random.Random(1234)
    valid = f_varint(1, 300) + f_len(2, f_varint(1, 5) + f_len(2, b"name")) + f_fixed32(6, 7)
    for i in range(3000):
        if i % 2:
            buf = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        else:
            mutated = bytearray(valid)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            buf = bytes(mutated[: rng.randrange(len(mutated) + 1)])
        try:
            msg = pw.parse_message(buf)
            for values in msg.values():
                for value in values:
                    if isinstance(value, bytes):
                        with contextlib.suppress(pw.ProtobufDecodeError):
                            pw.parse_message(value)
        except pw.ProtobufDecodeError:
            pass


# --- CRC32C, Snappy, slice keys ---------------------------------------------------------------


def test_crc32c_matches_published_check_values() -> None:
    # "123456789" is the standard CRC check string; the others are from RFC 3720 (iSCSI).
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert crc32c(b"\xff" * 32) == 0x62A8AB43
    assert crc32c(bytes(range(32))) == 0x46DD794E
    assert crc32c(bytes(range(31, -1, -1))) == 0x113FDB5C
    assert crc32c(b"") == 0


@pytest.mark.parametrize("size", [4095, 4096, 4099, 5000, 65536, 100_003, 1 << 20, 3 * (1 << 20) + 7])
def test_numpy_crc32c_agrees_with_bytewise_reference(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    expected = _crc_update_py(0xFFFFFFFF, data) ^ 0xFFFFFFFF
    assert crc32c(data) == expected
    assert crc32c(memoryview(data)) == expected
    cut = size // 3
    assert crc32c(data[cut:], crc32c(data[:cut])) == expected


def test_crc_mask_round_trips_and_matches_leveldb() -> None:
    assert mask_crc(0) == 0xA282EAD8
    for value in (0, 1, 0xFFFFFFFF, 0xE3069283, 0x12345678):
        assert unmask_crc(mask_crc(value)) == value
        assert mask_crc(value) != value


def test_snappy_decodes_literals_and_copies() -> None:
    # "abcd" literal, copy-1 of 4 bytes at offset 4, copy-2 of 6 bytes at offset 2
    # (overlapping: repeats "cd"), literal with a 1-byte length (61 bytes).
    body = b"\x0cabcd" + bytes([0x01, 0x04]) + bytes([(6 - 1) << 2 | 2, 2, 0])
    body += bytes([60 << 2, 60]) + b"z" * 61
    expected = b"abcd" + b"abcd" + b"cdcdcd" + b"z" * 61
    assert snappy_decompress(varint(len(expected)) + body) == expected


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (varint(4) + b"\x0cab", "truncated snappy literal"),
        (varint(8) + b"\x0cabcd" + bytes([0x01, 0x09]), "offset 9 outside"),
        (varint(5) + b"\x0cabcd", "decodes to 4 bytes, header says 5"),
        (varint(2) + b"\x0cabcd", "more than the declared"),
        (varint(1 << 40) + b"\x00a", "claims"),
        (b"\xff" * 11, "bad snappy header"),
    ],
)
def test_snappy_rejects_malformed_streams(stream: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        snappy_decompress(stream)


def ordered_signed(value: int) -> bytes:
    """OrderedCode::WriteSignedNumIncreasing, written independently for the test."""
    for length in range(1, 11):
        if -(1 << (7 * length - 1)) <= value < (1 << (7 * length - 1)):
            break
    raw = value & ((1 << (7 * length)) - 1)
    if value >= 0:
        header_bits = ((1 << length) - 1) << (8 * length - length)  # `length` ones, then 0
        raw |= header_bits
    return raw.to_bytes(length, "big")


def test_slice_keys_decode_names_starts_and_lengths() -> None:
    # Name "rnn/w\x00\xff": OrderedCode escapes \x00 as \x00\xff and \xff as \xff\x00.
    key = b"\x00" + b"rnn/w" + b"\x00\xff" + b"\xff\x00" + b"\x00\x01"
    key += b"\x01\x03"  # rank 3
    key += ordered_signed(7) + ordered_signed(3)
    key += ordered_signed(0) + ordered_signed(-1)  # full extent
    key += ordered_signed(70000) + ordered_signed(5000)
    assert _decode_slice_key(key) == (
        "rnn/w\x00\udcff",
        ((7, 3), (0, None), (70000, 5000)),
    )


def test_signed_ordered_code_matches_tensorflow_examples() -> None:
    # From tensorflow/core/lib/strings/ordered_code.cc: 0x424242 -> f0 42 42 42, -0x800 -> 38 00.
    assert ordered_signed(0x424242) == bytes.fromhex("f0424242")
    assert ordered_signed(-0x800) == bytes.fromhex("3800")
    key = b"\x00a\x00\x01\x01\x01" + bytes.fromhex("f0424242") + bytes.fromhex("3800")
    with pytest.raises(ValueError, match="trailing bytes"):
        _decode_slice_key(key + b"junk")
    assert _decode_slice_key(key) == ("a", ((0, None),))


# --- hand-made bundles (exact control over the bytes; no TensorFlow) -----------------------------


def snappy_literals(data: bytes) -> bytes:
    out = bytearray(varint(len(data)))
    for i in range(0, len(data), 60):
        chunk = data[i : i + 60]
        out.append((len(chunk) - 1) << 2)
        out += chunk
    return bytes(out)


def table_block(pairs: list[tuple[bytes, bytes]], restart_interval: int = 2) -> bytes:
    out = bytearray()
    restarts = [0]
    previous = b""
    for i, (key, value) in enumerate(pairs):
        if i and i % restart_interval == 0:
            restarts.append(len(out))
            previous = b""
        shared = 0
        while shared < min(len(previous), len(key)) and previous[shared] == key[shared]:
            shared += 1
        out += varint(shared) + varint(len(key) - shared) + varint(len(value))
        out += key[shared:] + value
        previous = key
    for restart in restarts:
        out += u32(restart)
    return bytes(out + u32(len(restarts)))


def sstable(pairs: list[tuple[bytes, bytes]], compression: int = 0, per_block: int = 3) -> bytes:
    out = bytearray()

    def write_block(raw: bytes) -> bytes:
        contents = snappy_literals(raw) if compression == 1 else raw
        offset = len(out)
        out.extend(contents)
        out.append(compression)
        out.extend(u32(mask_crc(crc32c(contents + bytes([compression])))))
        return varint(offset) + varint(len(contents))

    index = []
    for i in range(0, len(pairs), per_block):
        chunk = pairs[i : i + per_block]
        index.append((chunk[-1][0], write_block(table_block(chunk))))
    meta_handle = write_block(table_block([]))
    index_handle = write_block(table_block(index))
    footer = (meta_handle + index_handle).ljust(40, b"\x00")
    out += footer + (0xDB4775248B80FB57).to_bytes(8, "little")
    return bytes(out)


def entry_proto(dtype: int, shape: tuple[int, ...], offset: int, data: bytes, shard: int = 0) -> bytes:
    dims = b"".join(f_len(2, f_varint(1, d)) for d in shape)
    return (
        f_varint(1, dtype)
        + f_len(2, dims)
        + (f_varint(3, shard) if shard else b"")
        + (f_varint(4, offset) if offset else b"")
        + f_varint(5, len(data))
        + f_fixed32(6, mask_crc(crc32c(data)))
    )


def header_proto(num_shards: int = 1, big_endian: bool = False, min_consumer: int = 0) -> bytes:
    version = f_varint(1, 1) + (f_varint(2, min_consumer) if min_consumer else b"")
    return f_varint(1, num_shards) + (f_varint(2, 1) if big_endian else b"") + f_len(3, version)


def write_bundle(
    prefix: Path,
    tensors: dict[str, np.ndarray],
    compression: int = 0,
    big_endian: bool = False,
) -> None:
    """Write a one-shard bundle of numeric tensors, the way BundleWriter lays it out."""
    data = bytearray()
    pairs = [(b"", header_proto(big_endian=big_endian))]
    dtypes = {np.dtype("float32"): 1, np.dtype("int32"): 3, np.dtype("float64"): 2}
    for name in sorted(tensors):
        array = tensors[name]
        raw = array.astype(array.dtype.newbyteorder(">" if big_endian else "<")).tobytes()
        pairs.append((name.encode(), entry_proto(dtypes[array.dtype], array.shape, len(data), raw)))
        data += raw
    prefix.with_name(prefix.name + ".data-00000-of-00001").write_bytes(bytes(data))
    prefix.with_name(prefix.name + ".index").write_bytes(sstable(pairs, compression))


@pytest.fixture
def small_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {f"layer_{i}/kernel": rng.standard_normal((i + 1, 3)).astype(np.float32) for i in range(7)}


@pytest.mark.parametrize("compression", [0, 1], ids=["uncompressed", "snappy"])
def test_handmade_bundle_reads_back(tmp_path: Path, small_tensors, compression: int) -> None:
    write_bundle(tmp_path / "m", small_tensors, compression)
    bundle = TensorBundle.open(tmp_path / "m")
    assert bundle.keys() == sorted(small_tensors)
    for name, array in small_tensors.items():
        assert bundle.dtype(name) == "float32"
        assert bundle.shape(name) == array.shape
        np.testing.assert_array_equal(bundle.read(name), array)
    assert bundle.object_graph() is None


def test_big_endian_bundle_is_byteswapped_to_native(tmp_path: Path) -> None:
    tensors = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([-7, 9], np.int32)}
    write_bundle(tmp_path / "be", tensors, big_endian=True)
    bundle = TensorBundle.open(tmp_path / "be")
    assert bundle.big_endian
    for name, array in tensors.items():
        result = bundle.read(name)
        assert result.dtype.isnative
        np.testing.assert_array_equal(result, array)


def test_entry_whose_size_disagrees_with_its_shape_is_reported(tmp_path: Path) -> None:
    raw = np.zeros(4, np.float32).tobytes()
    pairs = [(b"", header_proto()), (b"w", entry_proto(1, (5,), 0, raw))]
    (tmp_path / "x.index").write_bytes(sstable(pairs))
    (tmp_path / "x.data-00000-of-00001").write_bytes(raw)
    with pytest.raises(BundleError, match=r"entry 'w' \(float32, shape \(5,\)\) needs 20 bytes but says 16"):
        TensorBundle.open(tmp_path / "x").read("w")


def test_entry_in_a_shard_beyond_the_header_count_is_rejected(tmp_path: Path) -> None:
    pairs = [(b"", header_proto(2)), (b"w", entry_proto(1, (1,), 0, b"\x00" * 4, shard=5))]
    (tmp_path / "x.index").write_bytes(sstable(pairs))
    with pytest.raises(BundleError, match="entry 'w' lives in shard 5 of only 2"):
        TensorBundle.open(tmp_path / "x")


def test_newer_bundle_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.index").write_bytes(sstable([(b"", header_proto(min_consumer=7))]))
    with pytest.raises(BundleError, match="needs a tensor bundle reader of version >= 7"):
        TensorBundle.open(tmp_path / "x")


def test_index_without_header_entry_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "x.index").write_bytes(sstable([(b"w", entry_proto(1, (1,), 0, b"abcd"))]))
    with pytest.raises(BundleError, match="header entry .* is missing"):
        TensorBundle.open(tmp_path / "x")


def test_unknown_block_compression_is_rejected(tmp_path: Path, small_tensors) -> None:
    write_bundle(tmp_path / "m", small_tensors)
    index = tmp_path / "m.index"
    raw = bytearray(index.read_bytes())
    # First data block starts at 0; find its trailer via the block's own restart count.
    pairs_block_end = _first_block_size(bytes(raw))
    raw[pairs_block_end] = 4
    crc = mask_crc(crc32c(bytes(raw[: pairs_block_end + 1])))
    raw[pairs_block_end + 1 : pairs_block_end + 5] = u32(crc)
    index.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="unknown compression type 4"):
        TensorBundle.open(tmp_path / "m")


def _first_block_size(index: bytes) -> int:
    """Size of data block 0, read back from the index block's first handle."""
    footer = index[-48:]
    _, pos = pw.decode_varint(footer, 0)
    _, pos = pw.decode_varint(footer, pos)
    offset, pos = pw.decode_varint(footer, pos)
    size, _ = pw.decode_varint(footer, pos)
    block = index[offset : offset + size]
    _, p = pw.decode_varint(block, 0)
    non_shared, p = pw.decode_varint(block, p)
    _, p = pw.decode_varint(block, p)
    handle = block[p + non_shared :]
    _, q = pw.decode_varint(handle, 0)
    first_size, _ = pw.decode_varint(handle, q)
    return first_size


def test_flipped_byte_in_index_block_fails_its_checksum(tmp_path: Path, small_tensors) -> None:
    write_bundle(tmp_path / "m", small_tensors)
    index = tmp_path / "m.index"
    raw = bytearray(index.read_bytes())
    raw[5] ^= 0x40
    index.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"m\.index is corrupt: checksum mismatch in data block"):
        TensorBundle.open(tmp_path / "m")


def test_directory_with_state_file_resolves_relative_and_moved_paths(tmp_path: Path, small_tensors) -> None:
    write_bundle(tmp_path / "ckpt-1", small_tensors)
    write_bundle(tmp_path / "ckpt-2", small_tensors)
    state = tmp_path / "checkpoint"
    state.write_text('model_checkpoint_path: "ckpt-2"\nall_model_checkpoint_paths: "ckpt-1"\n')
    assert resolve_prefix(tmp_path) == str(tmp_path / "ckpt-2")
    state.write_text('model_checkpoint_path: "/elsewhere/gone/ckpt-1"\n')
    assert resolve_prefix(tmp_path) == str(tmp_path / "ckpt-1")
    state.write_text('model_checkpoint_path: "missing"\n')
    with pytest.raises(BundleError, match="points to 'missing'"):
        resolve_prefix(tmp_path)
    state.write_text('all_model_checkpoint_paths: "ckpt-1"\n')
    with pytest.raises(BundleError, match="has no model_checkpoint_path line"):
        resolve_prefix(tmp_path)


def test_state_file_escapes_are_decoded(tmp_path: Path, small_tensors) -> None:
    write_bundle(tmp_path / 'we"ird\\name', small_tensors)
    (tmp_path / "checkpoint").write_text('model_checkpoint_path: "we\\"ird\\\\name"\n')
    assert resolve_prefix(tmp_path) == str(tmp_path / 'we"ird\\name')


def test_prefix_index_and_data_paths_all_resolve(tmp_path: Path, small_tensors) -> None:
    write_bundle(tmp_path / "m", small_tensors)
    prefix = str(tmp_path / "m")
    assert resolve_prefix(prefix) == prefix
    assert resolve_prefix(prefix + ".index") == prefix
    assert resolve_prefix(prefix + ".data-00000-of-00001") == prefix
    assert resolve_prefix(tmp_path) == prefix  # the only .index in the directory
    assert looks_like_bundle(tmp_path)
    assert not looks_like_bundle(tmp_path / "nothing")


def test_unresolvable_paths_say_what_is_missing(tmp_path: Path, small_tensors) -> None:
    with pytest.raises(BundleError, match="no TensorFlow checkpoint at .*nope: neither"):
        resolve_prefix(tmp_path / "nope")
    with pytest.raises(BundleError, match="holds no TensorFlow checkpoint"):
        resolve_prefix(tmp_path)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(BundleError, match="is not a TensorFlow checkpoint"):
        resolve_prefix(tmp_path / "notes.txt")
    write_bundle(tmp_path / "a", small_tensors)
    write_bundle(tmp_path / "b", small_tensors)
    with pytest.raises(BundleError, match=r"several checkpoints \(a.index, b.index\)"):
        resolve_prefix(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is truncated: it has 0 bytes"),
        (b"\x00" * 10, "is truncated: it has 10 bytes"),
        (b"PK\x03\x04" + b"\x00" * 100, "bad table magic"),
    ],
)
def test_tiny_or_foreign_index_files_are_rejected(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "x.index").write_bytes(content)
    with pytest.raises(BundleError, match=message):
        TensorBundle.open(tmp_path / "x")


def test_random_garbage_with_valid_magic_never_escapes_as_another_error(tmp_path: Path) -> None:
    rng = random.Random(99)
    magic = (0xDB4775248B80FB57).to_bytes(8, "little")
    for _ in range(300):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
        footer = bytes(rng.randrange(256) for _ in range(40))
        (tmp_path / "g.index").write_bytes(body + footer + magic)
        with pytest.raises(BundleError):
            TensorBundle.open(tmp_path / "g")


def test_object_graph_rejects_references_to_missing_nodes() -> None:
    node = f_len(1, f_varint(1, 3) + f_len(2, b"child"))
    with pytest.raises(BundleError, match="node 0 refers to node 3 but the graph has 1 nodes"):
        parse_object_graph(f_len(1, node))
    with pytest.raises(BundleError, match="object graph .* is corrupt"):
        parse_object_graph(b"\x0a\x05ab")


def test_object_graph_walk_survives_cycles() -> None:
    root = f_len(1, f_varint(1, 1) + f_len(2, b"a"))
    child = f_len(1, f_varint(1, 0) + f_len(2, b"back")) + f_len(1, f_varint(1, 1) + f_len(2, b"self"))
    graph = parse_object_graph(f_len(1, root) + f_len(1, child))
    assert list(graph.walk()) == [((), 0), (("a",), 1)]
    assert graph.resolve("a/back/a/self") == 1
    with pytest.raises(KeyError, match="has no child 'zzz'"):
        graph.resolve("a/zzz")


# --- real checkpoints written by TensorFlow (in a subprocess) ------------------------------------

@pytest.fixture(scope="session")
def tf_checkpoints() -> Path:
    """Checkpoints written by TensorFlow (tests/builders/tf_bundle_checkpoints.py), cached."""
    from conftest import build_fixtures

    return build_fixtures("tf_bundle_checkpoints", timeout=900)


@pytest.fixture(scope="session")
def reference(tf_checkpoints: Path) -> dict:
    return json.loads((tf_checkpoints / "reference.json").read_text())


@pytest.fixture(scope="session")
def reference_arrays(tf_checkpoints: Path) -> dict[str, np.ndarray]:
    with np.load(tf_checkpoints / "reference.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files}


def _same_bits(actual: np.ndarray, expected: np.ndarray) -> bool:
    return (
        actual.dtype == expected.dtype
        and actual.shape == expected.shape
        and actual.tobytes() == expected.tobytes()
    )


@pytest.mark.parametrize("name", ["dtypes", "managed", "maxsize", "tf1", "keras"])
def test_every_tensor_reads_bit_exactly_like_tensorflow(
    tf_checkpoints: Path, reference: dict, reference_arrays: dict, name: str
) -> None:
    ref = reference[name]
    bundle = TensorBundle.open(tf_checkpoints / ref["prefix"])
    assert sorted(bundle.keys()) == sorted(ref["tensors"])
    for key, info in ref["tensors"].items():
        assert bundle.dtype(key) == info["dtype"], key
        assert bundle.shape(key) == tuple(info["shape"]), key
        value = bundle.read(key)
        if "strings" in info:
            assert value.dtype == object and value.shape == tuple(info["shape"])
            assert [v.hex() for v in value.ravel()] == info["strings"], key
        else:
            expected = reference_arrays[info["array"]]
            assert _same_bits(value, expected), (key, value, expected)


def test_bfloat16_and_float16_keep_their_exact_values(tf_checkpoints: Path) -> None:
    bundle = TensorBundle.open(tf_checkpoints / "dtypes" / "ckpt")
    bf16 = bundle.read("bf16/.ATTRIBUTES/VARIABLE_VALUE")
    assert bf16.dtype == np.float32 and bundle.dtype("bf16/.ATTRIBUTES/VARIABLE_VALUE") == "bfloat16"
    assert bf16[0] == 1.0 and bf16[1] == -3.140625
    assert np.isnan(bf16[4]) and np.signbit(bf16[5])
    assert (bf16.view(np.uint32) & 0xFFFF == 0).all()  # widened, not rounded
    f16 = bundle.read("f16/.ATTRIBUTES/VARIABLE_VALUE")
    assert f16.dtype == np.float16 and f16[2] == 65504.0 and np.isinf(f16[4])


def test_string_tensors_and_object_graph_come_back_as_bytes(tf_checkpoints: Path) -> None:
    bundle = TensorBundle.open(tf_checkpoints / "dtypes" / "ckpt")
    assert bundle.read("s/.ATTRIBUTES/VARIABLE_VALUE")[()] == b"hello\x00world"
    assert bundle.read("sarr/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [
        [b"a", b""],
        [b"x" * 300, b"\xff"],
    ]
    graph_bytes = bundle.object_graph()
    assert isinstance(graph_bytes, bytes) and len(graph_bytes) > 100


def test_multi_shard_checkpoint_with_split_tensors(tf_checkpoints: Path, reference_arrays, reference) -> None:
    bundle = TensorBundle.open(tf_checkpoints / "maxsize")
    assert bundle.num_shards > 2
    key = "big/.ATTRIBUTES/VARIABLE_VALUE"
    assert len(bundle.entry(key).slices) > 1
    assert len({part.shard_id for part in bundle.slice_entries(key)}) > 1
    assert bundle.slice_entries("small/.ATTRIBUTES/VARIABLE_VALUE") == []
    expected = reference_arrays[reference["maxsize"]["tensors"][key]["array"]]
    np.testing.assert_array_equal(bundle.read(key), expected)


def test_tf1_sharded_saver_with_partitioned_variables(tf_checkpoints: Path) -> None:
    bundle = TensorBundle.open(tf_checkpoints / "tf1")
    assert bundle.prefix.endswith("model.ckpt-3")
    assert bundle.num_shards == 2
    assert bundle.keys() == ["rnn/cols", "rnn/other", "rnn/part"]
    assert len(bundle.entry("rnn/part").slices) == 3
    assert len(bundle.entry("rnn/cols").slices) == 2
    assert bundle.read("rnn/part").shape == (10, 4)
    assert bundle.object_graph() is None


def test_directory_opens_the_latest_checkpoint(tf_checkpoints: Path) -> None:
    bundle = TensorBundle.open(tf_checkpoints / "managed")
    assert bundle.prefix == str(tf_checkpoints / "managed" / "ckpt-2")
    np.testing.assert_array_equal(bundle.read("w/.ATTRIBUTES/VARIABLE_VALUE"), [5.0, 6.0])
    assert bundle.read("save_counter/.ATTRIBUTES/VARIABLE_VALUE") == 2


def test_object_graph_decodes_like_tensorflows_proto(tf_checkpoints: Path, reference: dict) -> None:
    for name in ("dtypes", "keras", "maxsize"):
        ref = reference[name]
        graph = parse_object_graph(TensorBundle.open(tf_checkpoints / ref["prefix"]).object_graph())
        decoded = [
            {
                "children": [[c.node_id, c.local_name] for c in node.children],
                "attributes": [
                    [a.name, a.full_name, a.checkpoint_key, a.optional_restore] for a in node.attributes
                ],
                "slots": [
                    [s.original_variable_node_id, s.slot_name, s.slot_variable_node_id]
                    for s in node.slot_variables
                ],
            }
            for node in graph.nodes
        ]
        assert decoded == ref["graph"], name


def test_keras_weights_map_checkpoint_keys_to_layer_variable_names(tf_checkpoints: Path) -> None:
    bundle = TensorBundle.open(tf_checkpoints / "keras" / "weights.index")
    graph = parse_object_graph(bundle.object_graph())
    names = graph.full_names()
    assert names["layer_with_weights-0/cell/kernel/.ATTRIBUTES/VARIABLE_VALUE"] == "lstm/lstm_cell/kernel"
    # The wrapped layer's name gets a process-wide counter suffix ("forward_gru", "forward_gru_1").
    assert re.fullmatch(
        r"bidi/forward_gru(_\d+)?/gru_cell/recurrent_kernel",
        names["layer_with_weights-1/forward_layer/cell/recurrent_kernel/.ATTRIBUTES/VARIABLE_VALUE"],
    )
    assert names["layer_with_weights-2/bias/.ATTRIBUTES/VARIABLE_VALUE"] == "dense/bias"
    # Every variable key is reachable by walking the tree with local names.
    for path, attr in graph.variables():
        assert attr.checkpoint_key == "/".join(path) + "/.ATTRIBUTES/" + attr.name
        assert attr.checkpoint_key in bundle
    cell = graph.resolve("layer_with_weights-0/cell")
    kernel = graph.nodes[graph.nodes[cell].child("kernel")]
    assert kernel.attributes[0].full_name == "lstm/lstm_cell/kernel"
    assert bundle.read(kernel.attributes[0].checkpoint_key).shape == (3, 16)


def test_reading_never_imports_tensorflow(tf_checkpoints: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from lstm_trace.loaders.tf.bundle import TensorBundle
        from lstm_trace.loaders.tf.object_graph import parse_object_graph
        for p in ["dtypes", "maxsize", "tf1", "keras"]:
            b = TensorBundle.open({str(tf_checkpoints)!r} + "/" + p)
            b.read_all()
            if b.object_graph() is not None:
                parse_object_graph(b.object_graph())
        assert not [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "google", "keras")]
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr


# --- corrupted copies of real checkpoints ----------------------------------------------------------


@pytest.fixture
def dtypes_copy(tf_checkpoints: Path, tmp_path: Path) -> Path:
    target = tmp_path / "ckpt"
    shutil.copytree(tf_checkpoints / "dtypes", target)
    return target / "ckpt"


def _patch(path: Path, offset: int, xor: int = 0x01) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= xor
    path.write_bytes(bytes(raw))


def test_flipped_data_byte_is_a_checksum_error(dtypes_copy: Path) -> None:
    bundle = TensorBundle.open(dtypes_copy)
    entry = bundle.entry("f32/.ATTRIBUTES/VARIABLE_VALUE")
    good = bundle.read(entry.name)
    _patch(Path(bundle.data_path(0)), entry.offset + 17)
    with pytest.raises(BundleError) as info:
        bundle.read(entry.name)
    message = str(info.value)
    assert "ckpt.data-00000-of-00001 is corrupt: checksum mismatch for entry 'f32/" in message
    assert "\n" not in message
    unverified = bundle.read(entry.name, verify=False)
    assert not np.array_equal(unverified, good)


def test_flipped_byte_in_a_large_tensor_is_caught(dtypes_copy: Path) -> None:
    bundle = TensorBundle.open(dtypes_copy)
    entry = bundle.entry("big/.ATTRIBUTES/VARIABLE_VALUE")
    _patch(Path(bundle.data_path(0)), entry.offset + entry.size - 3, 0x80)
    with pytest.raises(BundleError, match="checksum mismatch for entry 'big/"):
        bundle.read(entry.name)


def test_flipped_byte_in_string_data_is_caught(dtypes_copy: Path) -> None:
    bundle = TensorBundle.open(dtypes_copy)
    entry = bundle.entry(OBJECT_GRAPH_KEY)
    _patch(Path(bundle.data_path(0)), entry.offset + entry.size - 10)
    with pytest.raises(BundleError, match="checksum mismatch for entry '_CHECKPOINTABLE_OBJECT_GRAPH'"):
        bundle.object_graph()


def test_flipped_string_length_is_caught(dtypes_copy: Path) -> None:
    bundle = TensorBundle.open(dtypes_copy)
    entry = bundle.entry("sarr/.ATTRIBUTES/VARIABLE_VALUE")
    _patch(Path(bundle.data_path(0)), entry.offset)  # first varint length: 1 -> 0
    with pytest.raises(BundleError, match="fails its length checksum"):
        bundle.read(entry.name)


def test_truncated_data_file_names_the_entry_and_byte_range(dtypes_copy: Path) -> None:
    bundle = TensorBundle.open(dtypes_copy)
    data = Path(bundle.data_path(0))
    data.write_bytes(data.read_bytes()[:2048])
    entry = bundle.entry("big/.ATTRIBUTES/VARIABLE_VALUE")
    expected = (
        f"checkpoint data file {data} is truncated: entry 'big/.ATTRIBUTES/VARIABLE_VALUE' needs bytes "
        f"{entry.offset}..{entry.offset + entry.size} but file has 2048 bytes; "
        "the checkpoint is incomplete or corrupt"
    )
    with pytest.raises(BundleError) as info:
        bundle.read(entry.name)
    assert str(info.value) == expected


def test_missing_shard_is_reported(tf_checkpoints: Path, tmp_path: Path) -> None:
    shutil.copytree(tf_checkpoints / "maxsize", tmp_path / "m")
    bundle = TensorBundle.open(tmp_path / "m")
    entry = bundle.entry("small/.ATTRIBUTES/VARIABLE_VALUE")
    Path(bundle.data_path(entry.shard_id)).unlink()
    with pytest.raises(BundleError, match=r"data-0000\d-of-0000\d is missing \(tensor 'small/"):
        bundle.read(entry.name)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_index_is_a_clear_error(dtypes_copy: Path, keep: float) -> None:
    index = Path(str(dtypes_copy) + ".index")
    raw = index.read_bytes()
    index.write_bytes(raw[: int(len(raw) * keep)])
    with pytest.raises(BundleError, match=r"ckpt\.index (is not a TensorFlow checkpoint index|is truncated)"):
        TensorBundle.open(dtypes_copy)


def test_random_garbage_index_is_a_clear_error(dtypes_copy: Path) -> None:
    index = Path(str(dtypes_copy) + ".index")
    index.write_bytes(np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(BundleError, match="is not a TensorFlow checkpoint index .*bad table magic"):
        TensorBundle.open(dtypes_copy)


def _read_every_tensor(prefix: Path) -> dict[str, np.ndarray]:
    bundle = TensorBundle.open(prefix)
    return {name: bundle.read(name) for name in list(bundle)}


def test_every_single_byte_flip_in_a_real_index_is_detected(dtypes_copy: Path) -> None:
    """Each byte of the index XOR 0x10: a BundleError, except in the footer's handles.

    The footer's block handles (its first 40 bytes) have no checksum: a changed handle
    must fail cleanly or, where the varint's change does not move the handle, read every
    tensor exactly as before.
    """
    index = Path(str(dtypes_copy) + ".index")
    original = index.read_bytes()
    expected = _read_every_tensor(dtypes_copy)
    footer_start = len(original) - 48
    for offset in range(len(original)):
        corrupted = bytearray(original)
        corrupted[offset] ^= 0x10
        index.write_bytes(bytes(corrupted))
        if footer_start <= offset < footer_start + 40:
            try:
                got = _read_every_tensor(dtypes_copy)
            except BundleError:
                continue
            assert got.keys() == expected.keys(), offset
            for name, value in expected.items():
                np.testing.assert_array_equal(got[name], value, err_msg=f"{offset}: {name}")
            continue
        with pytest.raises(BundleError):
            TensorBundle.open(dtypes_copy)


def test_copied_checkpoint_directory_reads_its_own_files(tmp_path):
    """A state file with an absolute path from before a copy names the file beside it."""
    import shutil

    from lstm_trace.loaders.tf.checkpoint_files import resolve_prefix

    original = tmp_path / "original"
    original.mkdir()
    (original / "ckpt-1.index").write_bytes(b"x")
    (original / "ckpt-1.data-00000-of-00001").write_bytes(b"x")
    (original / "checkpoint").write_text(f'model_checkpoint_path: "{original / "ckpt-1"}"\n')
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    assert resolve_prefix(copy) == str(copy / "ckpt-1")
    assert resolve_prefix(original) == str(original / "ckpt-1")
