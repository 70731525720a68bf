"""Reading zip members without trusting the sizes the archive declares.

A zip member declares its inflated size (``file_size``) and its stored size
(``compress_size``); a hostile archive can lie in both, e.g. declare 18 KB and inflate
to 1 GiB. Before a member is inflated, :func:`check_member` refuses it when

- it declares more than ``limit`` bytes (the caller's absolute cap);
- it would inflate more than :data:`MAX_RATIO` times its stored size (past
  :data:`RATIO_FREE_BYTES`; real weights compress about 1.1 times, zeros about 1000);
- it stores more compressed bytes than its declared size could ever compress to
  (deflate adds at most ~0.1% to incompressible data): the declared size is a lie.

:func:`read_member` then inflates it a chunk at a time and stops at the declared size,
so memory never exceeds what was checked. Messages name the member but not the
archive: callers prefix it.
"""

from __future__ import annotations

import zipfile

#: Most a member may inflate relative to its stored size (above RATIO_FREE_BYTES).
MAX_RATIO = 200
#: Members up to this size are not ratio-checked (small configs of zeros are fine).
RATIO_FREE_BYTES = 16 << 20
CHUNK_BYTES = 1 << 20


class ZipLimitError(ValueError):
    """A zip member is too large, or its declared sizes cannot be true."""


class ZipUnreadableError(ValueError):
    """A file cannot be opened as a zip archive at all (its message says why)."""


def check_member(info: zipfile.ZipInfo, limit: int) -> None:
    """Refuse ``info`` before inflating it (see the module docstring); ``limit`` in bytes."""
    name, size, stored = info.filename, info.file_size, info.compress_size
    if size > limit:
        raise ZipLimitError(f"{name} declares {size:,} bytes, more than the {_human(limit)} "
                            "lstm-trace reads from an archive member")
    if info.compress_type == zipfile.ZIP_STORED:
        if stored != size:
            raise ZipLimitError(f"{name} is stored uncompressed but declares {size:,} bytes "
                                f"and holds {stored:,}: a damaged or hostile archive")
        return
    if size > RATIO_FREE_BYTES and size > MAX_RATIO * max(stored, 1):
        raise ZipLimitError(f"{name} would inflate {size // max(stored, 1):,} times "
                            f"({stored:,} to {size:,} bytes): refused as a zip bomb")
    if stored > size + size // 500 + 1024:
        raise ZipLimitError(f"{name} declares {size:,} bytes but holds {stored:,} compressed "
                            "bytes, more than that can inflate from: a damaged or hostile archive")


def check_archive(archive: zipfile.ZipFile, limit: int) -> None:
    """:func:`check_member` for every member of ``archive``."""
    for info in archive.infolist():
        check_member(info, limit)


def check_zip_file(path: str, limit: int) -> None:
    """Open ``path`` as a zip and :func:`check_archive` it before anything inflates a member
    (``np.load`` of an ``.npz`` trusts the declared sizes).

    Raises :class:`ZipLimitError` for a member refused, :class:`ZipUnreadableError` (naming
    the error) for a file that is not a readable zip.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            check_archive(archive, limit)
    except ZipLimitError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise ZipUnreadableError(f"{type(err).__name__}: {err}") from None


def read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    """The inflated bytes of member ``name``, checked first and read a chunk at a time.

    Raises :class:`ZipLimitError` for sizes that are too large or cannot be true, and
    ``KeyError`` / ``zipfile.BadZipFile`` / ``OSError`` / ``EOFError`` as zipfile does.
    """
    info = archive.getinfo(name)
    check_member(info, limit)
    out = bytearray()
    with archive.open(info) as member:
        while True:
            chunk = member.read(CHUNK_BYTES)
            if not chunk:
                break
            out += chunk
            if len(out) > info.file_size:  # zipfile stops at the declared size; stay sure
                raise ZipLimitError(f"{name} inflates past its declared {info.file_size:,} bytes")
    return bytes(out)


def _human(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"
