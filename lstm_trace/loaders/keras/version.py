"""Reading the Keras version a file was written by."""

from __future__ import annotations

import re


def keras_major(version: str | None, default: int = 3) -> int:
    """The major version in a ``keras_version`` string (``'2.2.4-tf'`` -> 2), or ``default``."""
    if not version:
        return default
    match = re.match(r"\s*(\d+)", str(version))
    return int(match.group(1)) if match else default


def version_tuple(version: str | None) -> tuple[int, ...]:
    """``'2.2.4-tf'`` -> ``(2, 2, 4)``; unknown -> ``()``."""
    if not version:
        return ()
    return tuple(int(p) for p in re.findall(r"\d+", str(version))[:3])


def decode_attr(value: object) -> str | None:
    """HDF5 string attributes come back as ``bytes`` or ``str`` depending on the writer."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
