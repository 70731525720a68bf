"""The zip container of ``torch.save`` (PyTorch 1.6+) and ``torch.jit.save``.

Layout: every member lives under one root directory (the file's stem when saved)::

    <root>/data.pkl        the saved object, a pickle whose tensors name storages
    <root>/data/<key>      each storage's raw bytes
    <root>/byteorder       "little" or "big" (absent in old files: little)
    <root>/constants.pkl   TorchScript only, with <root>/code/... (the module's TorchScript)

Member names are checked (no absolute paths, no ``..``), sizes are checked before any
read (against :data:`MAX_MEMBER_BYTES`, and each storage's declared size against its
member), so a zip bomb or a lying pickle is refused before memory is spent on it.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LoadError
from .pickle_vm import PickleError, load_pickle
from .tensors import TORCH_ALLOWED, StorageRef, parse_storage_pid, storage_type_globals

ZIP_MAGIC = b"PK\x03\x04"
#: Largest member read into memory, and largest pickle.
MAX_MEMBER_BYTES = 8 << 30
MAX_PICKLE_BYTES = 1 << 30
#: A member inflating more than this many times its compressed size is a zip bomb.
MAX_COMPRESSION_RATIO = 1000
_SAFE_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _unsafe_name(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


def find_root(names: list[str]) -> str | None:
    """The root directory holding ``data.pkl`` (``archive`` in ``archive/data.pkl``), or None."""
    roots = [n[: -len("data.pkl")] for n in names
             if n.endswith("/data.pkl") and n.count("/") == 1]
    if "data.pkl" in names:
        roots.append("")
    return roots[0] if len(roots) == 1 else None


def match(path: Path) -> bool:
    """A zip holding ``<root>/data.pkl``: torch.save's zip format or a TorchScript archive."""
    try:
        with open(path, "rb") as f:
            if f.read(4) != ZIP_MAGIC:
                return False
        with zipfile.ZipFile(path) as archive:
            return find_root(archive.namelist()) is not None
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, NotImplementedError, RuntimeError):
        return False


@dataclass
class TorchZip:
    """An open torch zip archive: checked member names, its root, its byte order."""

    path: Path
    archive: zipfile.ZipFile
    root: str
    byteorder: str

    @classmethod
    def open(cls, path: Path) -> TorchZip:
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as err:
            raise LoadError(f"{path.name}: not a readable zip archive ({err})") from None
        names = archive.namelist()
        bad = [n for n in names if _unsafe_name(n)]
        if bad:
            archive.close()
            raise LoadError(f"{path.name}: archive member {bad[0]!r} has a path-like name "
                            "(absolute or with '..'); refusing to read this file")
        root = find_root(names)
        if root is None:
            archive.close()
            raise LoadError(f"{path.name}: zip archive holds no <root>/data.pkl (or several): "
                            "not a torch.save / torch.jit.save file")
        self = cls(path, archive, root, "little")
        if f"{root}byteorder" in names:
            order = self.read(f"{root}byteorder", limit=16).decode("ascii", "replace").strip()
            if order not in ("little", "big"):
                raise LoadError(f"{path.name}: byteorder member says {order!r}, expected "
                                "'little' or 'big'")
            self.byteorder = order
        return self

    def close(self) -> None:
        self.archive.close()

    def has(self, name: str) -> bool:
        try:
            self.archive.getinfo(name)
        except KeyError:
            return False
        return True

    def names(self) -> list[str]:
        return self.archive.namelist()

    def info(self, name: str) -> zipfile.ZipInfo:
        try:
            return self.archive.getinfo(name)
        except KeyError:
            raise LoadError(f"{self.path.name}: archive member {name!r} is missing") from None

    def read(self, name: str, limit: int = MAX_MEMBER_BYTES, nbytes: int | None = None) -> bytes:
        """A member's bytes (or its first ``nbytes``), after checking its declared sizes."""
        info = self.info(name)
        if info.file_size > limit:
            raise LoadError(f"{self.path.name}: member {name!r} is {info.file_size:,} bytes, "
                            f"more than lstm-trace reads ({limit:,})")
        if (info.compress_type != zipfile.ZIP_STORED and info.file_size > 1 << 20
                and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1)):
            raise LoadError(f"{self.path.name}: member {name!r} inflates {info.compress_size:,} "
                            f"bytes to {info.file_size:,} (a zip bomb?); refusing to read it")
        try:
            with self.archive.open(info) as f:
                data = f.read(info.file_size if nbytes is None else nbytes)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError,
                RuntimeError) as err:
            # zipfile's words for damage: bad CRC, unknown compression or version, encryption
            raise LoadError(f"{self.path.name}: member {name!r} is damaged ({err})") from None
        want = info.file_size if nbytes is None else nbytes
        if len(data) != want:
            raise LoadError(f"{self.path.name}: member {name!r} is truncated")
        return data

    def read_storage(self, key: str, nbytes: int, directory: str = "data") -> bytes:
        """``<root>/<directory>/<key>``'s first ``nbytes``, refused if the member holds fewer.

        ``directory`` is ``data`` (``data.pkl``'s storages) or ``constants``
        (``constants.pkl``'s, in a TorchScript archive).
        """
        if not _SAFE_KEY.match(key) or key in (".", ".."):
            raise LoadError(f"{self.path.name}: the pickle names storage {key!r:.60}, which is not "
                            "a plain member name; refusing to read it")
        name = f"{self.root}{directory}/{key}"
        info = self.info(name)
        if nbytes > info.file_size:
            raise LoadError(f"{self.path.name}: storage {key!r} declares {nbytes:,} bytes but its "
                            f"member holds only {info.file_size:,}: the file is corrupt or forged")
        return self.read(name, nbytes=nbytes)

    def load_pickle(self, member: str, extra_allowed: dict | None = None,
                    storage_dir: str = "data") -> Any:
        """Interpret ``<root><member>`` with the torch allow-list; storages resolve lazily
        from ``<root><storage_dir>/``."""
        data = self.read(f"{self.root}{member}", limit=MAX_PICKLE_BYTES)

        def read(key: str, nbytes: int) -> bytes:
            return self.read_storage(key, nbytes, storage_dir)

        def persistent_load(pid: Any) -> StorageRef:
            storage_type, key, numel = parse_storage_pid(pid)
            return StorageRef(key, storage_type, numel, read, self.byteorder)

        allowed = {**TORCH_ALLOWED, **storage_type_globals(), **(extra_allowed or {})}
        try:
            value, _ = load_pickle(data, allowed=allowed, persistent_load=persistent_load)
        except PickleError as err:
            raise LoadError(f"{self.path.name}: {member} is not a readable pickle ({err})") from None
        return value

    def is_torchscript(self) -> bool:
        return self.has(f"{self.root}constants.pkl") and any(
            n.startswith(f"{self.root}code/") for n in self.names()
        )
