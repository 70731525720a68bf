"""The legacy ``torch.save`` format (before PyTorch 1.6, or ``_use_new_zipfile_serialization=False``).

One file of consecutive pickles and raw blocks::

    pickle  magic number 0x1950a86a20f9469cfc6c
    pickle  protocol version (1001)
    pickle  sys_info {"little_endian": bool, "type_sizes": {...}}
    pickle  the saved object; storages are persistent ids
            ('storage', torch.FloatStorage, key, location, numel, view_metadata)
    pickle  the storage keys, in the order their blocks follow
    for each key: int64 element count (little-endian), then count * itemsize raw bytes

Every block's position is indexed before any tensor is read; a block that reaches
past the end of the file, or a count that differs from what the pickle declared, is
refused. The still older tar layout (PyTorch 0.1-0.3) is not read.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from ..errors import LoadError
from .pickle_vm import PickleError, load_pickle
from .tensors import TORCH_ALLOWED, StorageRef, parse_storage_pid, storage_type_globals

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
#: ``LONG1`` of the magic number, as every legacy file's first pickle holds it.
MAGIC_BYTES = b"\x8a\x0a" + MAGIC_NUMBER.to_bytes(10, "little")
#: Largest legacy file read into memory.
MAX_FILE_BYTES = 8 << 30


def match(path: Path) -> bool:
    """A pickle whose first value is torch's magic number."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return False
    return head[:1] == b"\x80" and MAGIC_BYTES in head[:24]


def load_legacy(path: Path) -> Any:
    """The saved object, with :class:`StorageRef` storages reading from the indexed blocks."""
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise LoadError(f"{path.name}: {size:,} bytes is more than lstm-trace reads "
                        f"({MAX_FILE_BYTES:,})")
    data = path.read_bytes()
    pos = 0

    def next_pickle(what: str, persistent_load: Any = None, allowed: dict | None = None) -> Any:
        nonlocal pos
        try:
            value, used = load_pickle(memoryview(data)[pos:], allowed=allowed,
                                      persistent_load=persistent_load, encoding="latin1")
        except PickleError as err:
            raise LoadError(f"{path.name}: the {what} pickle is not readable ({err})") from None
        pos += used
        return value

    if next_pickle("magic number") != MAGIC_NUMBER:
        raise LoadError(f"{path.name}: not a torch.save file (wrong magic number)")
    version = next_pickle("protocol version")
    if version != PROTOCOL_VERSION:
        raise LoadError(f"{path.name}: torch.save protocol {version!r:.20} is not supported "
                        f"(expected {PROTOCOL_VERSION})")
    sys_info = next_pickle("sys_info")
    little = not isinstance(sys_info, dict) or sys_info.get("little_endian", True)
    byteorder = "little" if little else "big"

    storages: dict[str, StorageRef] = {}
    blocks: dict[str, tuple[int, int]] = {}

    def read_storage(key: str, nbytes: int) -> bytes:
        if key not in blocks:
            raise LoadError(f"{path.name}: storage {key!r:.60} has no data block in the file")
        start, count = blocks[key]
        itemsize = storages[key].storage_type.itemsize
        if nbytes > count * itemsize:
            raise LoadError(f"{path.name}: storage {key!r:.60} declares {nbytes:,} bytes but its "
                            f"block holds {count * itemsize:,}: the file is corrupt or forged")
        return bytes(data[start:start + nbytes])

    def persistent_load(pid: Any) -> StorageRef:
        storage_type, key, numel = parse_storage_pid(pid)
        if key not in storages:
            storages[key] = StorageRef(key, storage_type, numel, read_storage, byteorder)
        return storages[key]

    allowed = {**TORCH_ALLOWED, **storage_type_globals()}
    obj = next_pickle("object", persistent_load, allowed)
    keys = next_pickle("storage keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise LoadError(f"{path.name}: the storage key list is malformed")
    for key in keys:
        if pos + 8 > len(data):
            raise LoadError(f"{path.name}: storage {key!r:.60} is missing (file truncated)")
        (count,) = struct.unpack("<q", data[pos:pos + 8])
        ref = storages.get(key)
        itemsize = ref.storage_type.itemsize if ref else 1
        end = pos + 8 + count * itemsize
        if count < 0 or end > len(data):
            raise LoadError(f"{path.name}: storage {key!r:.60} claims {count:,} elements, past the "
                            "end of the file: the file is truncated or forged")
        blocks[key] = (pos + 8, count)
        pos = end
    return obj
