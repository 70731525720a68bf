"""A first read of an HDF5 file in a child process, where a damaged file cannot hang or crash us.

The HDF5 library (C, under h5py) can loop for ever on some damaged files — seen while
fuzzing: a Keras ``.h5`` with a few flipped bytes kept ``h5.attrs.get("model_config")``
busy for 20 minutes — and can crash on others. Inside the C call Python runs no signal
handler, so neither Ctrl-C nor ``timeout``'s SIGTERM would stop ``lstm-trace``, and a crash
would end it without a word.

So the CLI (:func:`enabled`) has each HDF5 file read once in a forked child before the loader
reads it: every attribute of every object and every dataset's values (a superset of what a
loader reads), within a deadline of :data:`BASE_SECONDS` plus the time to read the file at
:data:`MIN_BYTES_PER_SECOND`. A child that does not finish is killed and the file refused in
one line; a child killed by a signal (a crash) likewise. Whatever the child raises is
ignored: the loader's own read reports it. Only the CLI enables this: forking a process
whose other threads may hold locks (a library caller's) could deadlock the child.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import LoadError

BASE_SECONDS = 20.0
MIN_BYTES_PER_SECOND = 50e6
#: Datasets larger than this are not read by the child (their headers still are).
MAX_DATASET_BYTES = 1 << 30

_enabled = False


def enable(on: bool = True) -> None:
    """Turn the guard on (or off) for this process."""
    global _enabled
    _enabled = on


@contextlib.contextmanager
def enabled() -> Iterator[None]:
    """The guard on while the block runs (the CLI runs each command in one)."""
    before = _enabled
    enable(True)
    try:
        yield
    finally:
        enable(before)


def check(source: Path | bytes, where: str) -> None:
    """Read ``source`` (a path or the bytes of an HDF5 file) in a child; :class:`LoadError`
    if the HDF5 library does not finish reading it or crashes on it."""
    if not _enabled or not hasattr(os, "fork"):
        return
    size = len(source) if isinstance(source, bytes) else _size(source)
    deadline = BASE_SECONDS + size / MIN_BYTES_PER_SECOND
    pid = os.fork()
    if pid == 0:  # the child: read everything, then leave without any cleanup of the parent's
        code = 0
        try:
            _read_everything(source)
        except BaseException:  # noqa: BLE001 - the loader's own read reports errors
            code = 1
        os._exit(code)
    try:
        status = _wait(pid, deadline)
    except BaseException:  # Ctrl-C / SIGTERM while waiting: the child goes too
        _kill(pid)
        raise
    if status is None:
        raise LoadError(f"{where}: the HDF5 library did not finish reading this file in "
                        f"{deadline:.0f} s (it loops on some damaged files): the file is damaged; "
                        "re-save it from the framework")
    if os.WIFSIGNALED(status):
        name = signal.Signals(os.WTERMSIG(status)).name
        raise LoadError(f"{where}: the HDF5 library crashed reading this file ({name}): the file "
                        "is damaged; re-save it from the framework")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _wait(pid: int, deadline: float) -> int | None:
    """The child's wait status, or ``None`` after killing it at the deadline."""
    end = time.monotonic() + deadline
    try:  # Linux: wake up the moment the child ends
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        pause = 0.0005
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            left = end - time.monotonic()
            if left <= 0:
                _kill(pid)
                return None
            if fd is not None:
                select.select([fd], [], [], left)
            else:
                time.sleep(min(pause, left))
                pause = min(pause * 2, 0.05)
    finally:
        if fd is not None:
            os.close(fd)


def _kill(pid: int) -> None:
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _read_everything(source: Path | bytes) -> None:
    import h5py

    with h5py.File(io.BytesIO(source) if isinstance(source, bytes) else source, "r") as h5:
        _read_attributes(h5)

        def visit(_name: str, obj: object) -> None:
            _read_attributes(obj)
            if isinstance(obj, h5py.Dataset) and obj.size * obj.dtype.itemsize <= MAX_DATASET_BYTES:
                with contextlib.suppress(Exception):  # the loader's read reports it
                    obj[()]

        h5.visititems(visit)


def _read_attributes(obj: object) -> None:
    attrs = obj.attrs  # type: ignore[attr-defined]
    for key in list(attrs):
        with contextlib.suppress(Exception):  # the loader's read reports it
            attrs[key]
