"""Write a file all at once or not at all.

:func:`atomic_write` hands out a temporary file in the destination's directory and
renames it over the destination only when the ``with`` block ends without an exception,
after flushing and ``fsync``-ing it. Whatever goes wrong (an exception, ``Ctrl-C``), the
destination keeps its old content (or stays absent) and no temporary file is left behind.

``path`` ``"-"`` or ``None`` means standard output (text modes; binary modes get
``sys.stdout.buffer``), which is written in place and never closed::

    with atomic_write("trace.csv", "w") as f:
        f.write("sample,layer,...\\n")
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


class OutputError(OSError):
    """The output path cannot be written (a directory, a missing directory, no permission)."""


#: Errors of the disk being written (full, quota, too large, failing): said with the path.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})
#: The modes :func:`atomic_write` accepts: a fresh file, text or binary.
MODES = ("w", "wt", "wb")


def is_stdout(path: str | os.PathLike[str] | None) -> bool:
    """Whether ``path`` means standard output (``None`` or ``"-"``)."""
    return path is None or (isinstance(path, str) and path == "-")


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str] | None,
    mode: str = "wb",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Yield a file object whose content replaces ``path`` only if the block succeeds.

    ``mode`` is ``"wb"`` (default), ``"w"`` or ``"wt"``. ``encoding`` and ``newline``
    apply to text modes. The new file gets the permissions a plain ``open`` would give
    (those of the file it replaces, else ``0o666`` less the umask).
    """
    if mode not in MODES:
        raise ValueError(f"atomic_write mode must be one of {MODES}, got {mode!r}")
    binary = "b" in mode
    if is_stdout(path):
        stream: IO[Any] = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return

    target = Path(os.fspath(path))  # type: ignore[arg-type]
    if target.is_dir():
        raise OutputError(f"{os.fspath(path)}: is a directory, not a file")
    if not target.parent.is_dir():
        raise OutputError(
            f"{os.fspath(path)}: cannot write, the directory {target.parent} does not exist"
        )
    try:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"{os.fspath(path)}: cannot write ({err.strerror or err})") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(
            fd, mode,
            encoding=None if binary else encoding,
            newline=None if binary else newline,
        ) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(err, OSError) and err.errno in _DISK_ERRNOS:
            raise OutputError(
                f"{os.fspath(path)}: cannot write ({err.strerror or err}); nothing was written"
            ) from err
        raise
    _fsync_directory(target.parent)


def _new_file_mode(target: Path) -> int:
    """The permission bits ``open(target, "w")`` would leave: keep the old file's, else umask's."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows opening a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it only if the block succeeds.

    For writers that open files by name (HDF5, Parquet) or fill a directory (LSTMVis,
    Zarr): the temporary file (or, with ``directory``, directory) is renamed over ``path``
    at the end; on any exception, ``Ctrl-C`` included, it is removed. A directory output
    may replace an empty directory, never a non-empty one.
    """
    import shutil

    name = os.fspath(path)
    target = Path(name)
    if not target.parent.is_dir():
        raise OutputError(f"{name}: cannot write, the directory {target.parent} does not exist")
    if directory:
        if target.exists() and not target.is_dir():
            raise OutputError(f"{name}: exists and is not a directory")
        if target.is_dir() and any(target.iterdir()):
            raise OutputError(f"{name}: the directory exists and is not empty; "
                              "remove it or choose another output directory")
    elif target.is_dir():
        raise OutputError(f"{name}: is a directory, not a file")
    try:
        if directory:
            tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
        else:
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            tmp = Path(tmp_name)
    except OSError as err:
        raise OutputError(f"{name}: cannot write ({err.strerror or err})") from None
    try:
        yield tmp
        if directory:
            umask = os.umask(0o022)
            os.umask(umask)
            os.chmod(tmp, 0o777 & ~umask)
        else:
            os.chmod(tmp, _new_file_mode(target))
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            if tmp.is_dir():
                shutil.rmtree(tmp)
            else:
                tmp.unlink()
        if isinstance(err, OSError) and err.errno in _DISK_ERRNOS:
            raise OutputError(f"{name}: cannot write ({err.strerror or err}); nothing was written") from err
        raise
    _fsync_directory(target.parent)
