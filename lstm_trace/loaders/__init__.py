"""Reading model files: :func:`load`, format detection, and the error boundary.

Formats are listed once, in :mod:`.registry`; this module only detects, opens and draws
the line between a bad file and a bug:

- a reader raises :class:`LoadError` (one line: what, where, what to do) for anything wrong
  with the file; decoders of container formats raise their own errors at the byte boundary
  (``OSError``, ``EOFError``, ``zipfile.BadZipFile``, ``zlib.error``, ``struct.error``,
  ``UnicodeDecodeError``, :class:`~.protobuf_wire.ProtobufDecodeError`...), which become a
  one-line "malformed file" :class:`LoadError` here;
- any other exception escaping a reader (``TypeError``, ``AttributeError``, ...) is a bug in
  lstm-trace and is left to propagate: the CLI reports it as a bug (exit 3).
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

from ..network import Network
from .errors import LoadError
from .options import LoadOptions
from .registry import FORMATS, Format, find_format, register_format

__all__ = ["FORMATS", "Format", "LoadError", "LoadOptions", "detect_format", "load", "register_format"]

#: What decoders raise for bytes that are not what the format promises. ``KeyError`` and
#: ``ValueError`` are h5py's and json's words for a missing object or a damaged value.
DAMAGE_ERRORS: tuple[type[BaseException], ...] = (
    EOFError, zipfile.BadZipFile, zlib.error, struct.error, UnicodeDecodeError, KeyError,
    ValueError, RecursionError,
    NotImplementedError,  # zipfile: a compression method or zip version that is not real
)


def detect_format(path: str | Path) -> str:
    """Name the format of ``path`` (a name from :data:`~.registry.FORMATS`), by content."""
    return find_format(Path(path)).name


def load(path: str | Path, options: LoadOptions | None = None, **overrides: object) -> Network:
    """Read a model file into a canonical :class:`~lstm_trace.network.Network`.

    Nothing stored in the file is executed and no framework is imported.
    ``overrides`` are :class:`LoadOptions` fields (``activation=...``, ``forget_bias=...``).
    """
    path = Path(path)
    options = replace(options or LoadOptions(), **overrides)  # type: ignore[arg-type]
    fmt = find_format(path)
    try:
        return fmt.open(path, options)
    except LoadError:
        raise
    except DAMAGE_ERRORS as err:
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise LoadError(
            f"{path.name}: malformed, corrupt or unsupported {fmt.description} file ({detail}); "
            "re-save it from the framework, or run with --debug for details"
        ) from None
    except OSError as err:
        raise LoadError(f"{path.name}: cannot read ({err.strerror or err})") from None
