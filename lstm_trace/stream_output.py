"""Trace an input file straight into an output file, in chunks: what ``lstm-trace MODEL
INPUT --format csv|json|npz|h5|parquet|lstmvis -o OUT`` runs.

- INPUT ``.npy`` files are memory-mapped (:func:`lstm_trace.streaming.open_npy`, header
  checked against the file size first) and checked chunk by chunk as they are replayed;
  ``.npz`` and ``.csv`` inputs are read whole (a zip member and a text table cannot be
  mapped), then streamed the same way.
- The trace runs in chunks (:func:`lstm_trace.streaming.trace_chunks`; ``batch_size``
  samples at a time, steps chunked by the memory budget) and each chunk goes straight to
  the writer.
- Progress: a rich progress bar on stderr (sample-steps done, rate, time left) when stderr
  is a terminal and ``quiet`` is false; nothing otherwise.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .errors import OptionError
from .inputs import InputError, detect_format, read_input, validate_input
from .network import Network
from .streaming import TraceChunk, TraceSource, open_npy, trace_chunks


def open_input(
    path: str | os.PathLike[str], *, key: str | None, features: int | None, integer_ids: bool
) -> tuple[np.ndarray, Any]:
    """INPUT as an array the chunked replay can take, and a per-chunk check (or ``None``).

    A ``.npy`` is memory-mapped: its shape and dtype are validated here from a zero-size
    stand-in (so the messages are :func:`~lstm_trace.inputs.validate_input`'s own), its
    values (finite, whole non-negative ids) chunk by chunk by the returned check.
    """
    name = os.fspath(path)
    if key is not None or detect_format(path) != "npy" or integer_ids and _npy_dtype(path).kind == "f":
        return validate_input(read_input(path, key=key), features=features,
                              integer_ids=integer_ids, path=path), None
    x = open_npy(path)
    if not isinstance(x, np.memmap):  # empty: let the usual validation say so
        return validate_input(x, features=features, integer_ids=integer_ids, path=path), None
    check_shape(x, path, features=features, integer_ids=integer_ids)

    def check(part: np.ndarray, s0: int, t0: int) -> np.ndarray:
        check_values(part, s0, t0, name, integer_ids)
        if integer_ids:
            return part.astype(np.int64, copy=False)
        return part if part.dtype.kind == "f" else part.astype(np.float64)

    return x, check


def check_shape(x: Any, path: str | os.PathLike[str], *, features: int | None, integer_ids: bool) -> None:
    """Refuse an array-like of the wrong shape or dtype without reading its data.

    The ordinary validation says what is wrong, on a stand-in of the same shape and dtype
    that holds nothing (a broadcast zero), so the messages are those of small inputs.
    """
    if not _plausible(x, features, integer_ids):
        validate_input(np.broadcast_to(np.zeros((), x.dtype), x.shape), features=features,
                       integer_ids=integer_ids, path=path)


def _npy_dtype(path: str | os.PathLike[str]) -> np.dtype:
    return open_npy(path).dtype


def _plausible(x: np.ndarray, features: int | None, integer_ids: bool) -> bool:
    """Whether ``x``'s shape and dtype are what :func:`validate_input` accepts (cheap: no data read)."""
    if 0 in x.shape:
        return False
    if integer_ids:
        return x.dtype.kind in "iuf" and x.ndim in (1, 2)
    return (x.dtype.kind in "biuf" and x.ndim in (2, 3)
            and (features is None or x.shape[-1] == features))


def check_values(part: np.ndarray, s0: int, t0: int, name: str, integer_ids: bool) -> None:
    """NaN/inf in features, negative or fractional token ids: one line with the position
    (``part`` is samples ``s0...`` and steps ``t0...`` of the input ``name``)."""
    if part.dtype.kind == "f":
        bad = ~np.isfinite(part)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            b, t = where[0] + s0, where[1] + t0
            raise InputError(f"{name}: expected finite numbers, found {float(part[where])!r} at "
                             f"sample {b}, step {t}" + (f", feature {where[2]}" if len(where) > 2 else ""))
    if integer_ids:
        wrong = part < 0 if part.dtype.kind in "iu" else part != np.round(part)
        if wrong.any():
            where = tuple(int(i) for i in np.argwhere(wrong)[0])
            value = part[where].item()
            what = "a negative id" if part.dtype.kind in "iu" or value < 0 else "a fractional id"
            raise InputError(f"{name}: expected integer token ids, found {what} {value!r} at "
                             f"sample {where[0] + s0}, step {where[1] + t0}")


def write_stream(
    network: Network,
    input_path: str | os.PathLike[str],
    fmt: str,
    output: str,
    *,
    features: int | None = None,
    integer_ids: bool = False,
    input_key: str | None = None,
    layers: Sequence[str] | None = None,
    layer_input: bool = False,
    initial_state: Mapping[str, np.ndarray] | None = None,
    dtype: str = "float32",
    batch_size: int | None = None,
    quiet: bool = False,
    vocab: Sequence[str] | None = None,
    options: Mapping[str, Any] | None = None,
) -> TraceSource:
    """Trace INPUT through ``network`` into ``output`` in format ``fmt``, chunk by chunk.

    Returns the (consumed) source, whose ``batch``, ``steps`` and ``keys`` describe what
    was written.
    """
    from .writers import STREAMING_FORMATS, write_source

    if fmt not in STREAMING_FORMATS:
        raise OptionError(f"--format {fmt} is not written in chunks; streaming formats: "
                         f"{', '.join(STREAMING_FORMATS)}")
    if network.input_adapter is not None and not layer_input:  # ONNX: as onnxruntime is fed
        x, check = network.input_adapter.read(os.fspath(input_path), key=input_key), None
    else:
        x, check = open_input(input_path, key=input_key, features=features, integer_ids=integer_ids)
    source = trace_chunks(network, x, layers=layers, layer_input=layer_input,
                          initial_state=initial_state, dtype=dtype, batch_size=batch_size,
                          validate_chunk=check)
    extra = dict(options or {})
    if fmt == "lstmvis":
        extra["inputs"] = x
        extra["vocab"] = vocab
        extra.setdefault("name", os.path.basename(os.fspath(output).rstrip("/")) or "lstm-trace")
    elif vocab is not None:
        raise OptionError("--vocab applies to --format lstmvis (and plot), not to --format " + fmt)
    try:
        with progress(source, quiet=quiet):
            write_source(source, fmt, output, **extra)
    finally:
        source.close()  # a writer that failed before iterating: the replay's spills go now
    return source


@contextmanager
def progress(source: TraceSource, *, quiet: bool = False) -> Iterator[None]:
    """Show a progress bar of ``source``'s chunks on stderr, if it is a terminal and not ``quiet``."""
    if quiet or not _stderr_is_terminal():
        yield
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("tracing"), BarColumn(), MofNCompleteColumn(), TextColumn("sample-steps"),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=Console(file=sys.stderr), transient=True,
    )
    # Reversed directions replay the steps in passes of their own before the forward one:
    # each pass counts (sample-steps times passes).
    task = bar.add_task("trace", total=source.cells * source.passes, rate="")

    def advance_by(cells: int) -> None:
        bar.advance(task, cells)
        speed = bar.tasks[0].speed
        if speed:
            bar.update(task, rate=f"{speed:,.0f}/s")

    def advance(chunk: TraceChunk) -> None:
        advance_by(chunk.cells)

    source.on_chunk = advance
    source.on_work = advance_by
    with bar:
        yield


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
