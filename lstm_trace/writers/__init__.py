"""Writers render a :class:`~lstm_trace.trace.Trace`; each output format is one module.

``write_trace(trace, fmt, output, **options)`` dispatches on ``fmt``:

- ``table`` (:mod:`.table`): rich tables for reading; ``samples``, ``steps``, ``units``,
  ``summary``, ``precision``, ``width``, ``color``.
- ``csv`` (:mod:`.csv`): the contract CSV; ``samples``, ``steps``, ``units``.
- ``npz`` (:mod:`.npz`): the contract keys; ``compress``, ``samples``, ``steps``, ``units``.
- ``json`` (:mod:`.json`): metadata and nested lists; ``samples``, ``steps``, ``units``,
  ``indent``.

``output`` is a path, or ``"-"``/``None`` for standard output (text formats only).
Files are written atomically: a failure leaves no partial file behind.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from ..trace import Trace

FORMATS = ("table", "csv", "npz", "json")
#: Formats that may be written to standard output.
TEXT_FORMATS = ("table", "csv", "json")
#: Output file suffixes and the format they imply.
FORMAT_BY_SUFFIX = {".csv": "csv", ".npz": "npz", ".json": "json", ".txt": "table"}


def writer(fmt: str) -> Callable[..., None]:
    """The ``write(trace, output, **options)`` function of format ``fmt``."""
    if fmt == "table":
        from .table import write
    elif fmt == "csv":
        from .csv import write
    elif fmt == "npz":
        from .npz import write
    elif fmt == "json":
        from .json import write
    else:
        raise ValueError(f"unknown output format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    return write


def write_trace(
    trace: Trace, fmt: str, output: str | os.PathLike[str] | None = None, **options: Any
) -> None:
    """Write ``trace`` in format ``fmt`` to ``output`` (``"-"``/``None``: stdout).

    Options set to ``None`` are ignored, so a caller may pass every option it has; an
    option the format does not take raises :class:`ValueError` naming the format.
    """
    write = writer(fmt)
    accepted = {
        name for name, p in inspect.signature(write).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    given = {name: value for name, value in options.items() if value is not None}
    unknown = sorted(set(given) - accepted)
    if unknown:
        raise ValueError(
            f"option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
            f"do{'' if len(unknown) > 1 else 'es'} not apply to --format {fmt}"
        )
    write(trace, output, **given)

