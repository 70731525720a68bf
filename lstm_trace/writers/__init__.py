"""Writers render a :class:`~lstm_trace.trace.Trace`; each output format is one module.

``write_trace(trace, fmt, output, **options)`` dispatches on ``fmt``:

- ``table`` (:mod:`.table`): rich tables for reading; ``samples``, ``steps``, ``units``,
  ``summary``, ``precision``, ``width``, ``color``.
- ``csv`` (:mod:`.csv`): the contract CSV; ``samples``, ``steps``, ``units``.
- ``npz`` (:mod:`.npz`): the contract keys; ``compress``, ``samples``, ``steps``, ``units``.
- ``json`` (:mod:`.json`): metadata and nested lists; ``samples``, ``steps``, ``units``,
  ``indent``.

- ``h5`` (:mod:`.h5`): one HDF5 dataset per key.
- ``parquet`` (:mod:`.parquet`): the CSV's tidy table.
- ``lstmvis`` (:mod:`.lstmvis`): a project directory for LSTMVis; ``token_ids``, ``vocab``.

``write_source(source, fmt, output, **options)`` writes a
:class:`~lstm_trace.streaming.TraceSource` chunk by chunk (every format but ``table``),
with memory that does not grow with the input.

``output`` is a path, or ``"-"``/``None`` for standard output (text formats only).
Files are written atomically: a failure leaves no partial file behind.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

from ..streaming import TraceSource
from ..trace import Trace, require_one_step_count

FORMATS = ("table", "csv", "npz", "json", "h5", "parquet", "lstmvis")
#: Formats :func:`write_source` writes chunk by chunk.
STREAMING_FORMATS = ("csv", "json", "npz", "h5", "parquet", "lstmvis")
#: Formats that may be written to standard output.
TEXT_FORMATS = ("table", "csv", "json")
#: Output file suffixes and the format they imply.
FORMAT_BY_SUFFIX = {".csv": "csv", ".npz": "npz", ".json": "json", ".txt": "table",
                    ".h5": "h5", ".hdf5": "h5", ".parquet": "parquet"}


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
    elif fmt == "h5":
        from .h5 import write
    elif fmt == "parquet":
        from .parquet import write
    elif fmt == "lstmvis":
        from .lstmvis import write
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
    if fmt != "npz":
        require_one_step_count(trace, f"--format {fmt}")
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



def write_source(
    source: TraceSource, fmt: str, output: str | os.PathLike[str] | None = None, **options: Any
) -> None:
    """Write ``source`` chunk by chunk in format ``fmt`` (one of :data:`STREAMING_FORMATS`)."""
    if fmt == "csv":
        from .csv import write_source as write
    elif fmt == "json":
        from .json import write_source as write
    elif fmt == "npz":
        from .npz import write_source as write
    elif fmt == "h5":
        from .h5 import write_source as write
    elif fmt == "parquet":
        from .parquet import write_source as write
    elif fmt == "lstmvis":
        from .lstmvis import write_source as write
    else:
        raise ValueError(f"--format {fmt} is not written in chunks; choose one of: "
                         f"{', '.join(STREAMING_FORMATS)}")
    if fmt != "npz":
        require_one_step_count(source, f"--format {fmt}")
    write(source, output, **{k: v for k, v in options.items() if v is not None})
