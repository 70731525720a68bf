"""CSV writer: one row per ``(sample, layer, direction, step, unit)``.

Contract (see DESIGN.md)::

    sample,layer,direction,step,unit,input_gate,forget_gate,candidate,output_gate,cell,hidden
    0,lstm,forward,0,0,0.5124312,0.47101748,-0.08821312,0.5390017,-0.04519932,-0.023301141

- ``direction`` is ``forward`` for a one-direction layer.
- The quantity columns are those of the traced cells in contract order; when layers of
  different kinds share a file they are the union (LSTM's six, then GRU's
  ``update_gate, reset_gate``, then ``mask`` if any layer is masked) and cells that do
  not apply are empty. A GRU-only file keeps the GRU order
  ``update_gate, reset_gate, candidate, hidden``.
- ``mask`` (``1``/``0``) has no unit axis; its value is repeated on every unit row.
- A layer direction has as many unit rows as its widest quantity; a narrower one (the
  projected ``hidden`` of a TF1 ``num_proj`` LSTM) leaves its cells empty past its width.
- Floats are the shortest text that reads back to the same value of the trace's dtype
  (float32: ``np.float32(s)`` gives the same bits); ``nan``, ``inf``, ``-inf`` as such.
- ``samples``, ``steps`` and ``units`` selections keep the original indices in the
  ``sample``, ``step`` and ``unit`` columns.

Streaming (:func:`write_source`): the rows of a :class:`~lstm_trace.streaming.TraceSource`
are written chunk by chunk in the contract's row order (:func:`~lstm_trace.writers._spill.row_pieces`
puts step chunks back in sample order through a temporary file). The text is made by
polars (its Rust float formatter writes the shortest round-trip digits, about ten times
faster than NumPy can), except for the few values whose *layout* polars writes unlike
``repr`` (``|x| < 1e-4``, float32 ``|x| >= 1e13``, NaN): those cells are rendered by
:mod:`lstm_trace.writers._text`, so the bytes equal the NumPy renderer's (:func:`render`),
which is also the fallback when polars is not installed.

:func:`render` builds rows as NumPy character matrices (see :mod:`lstm_trace.writers._text`),
a block of samples at a time, so memory stays bounded and there is no loop per value.
"""

from __future__ import annotations

import io
import os
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..network import QUANTITIES
from ..selection import Selection
from ..streaming import TraceSource
from ..trace import Trace, TracedLayer
from . import _text
from ._common import Picked, layer_width, pick
from ._spill import PIECE_ROWS, Piece, row_pieces

#: The columns every row starts with.
INDEX_COLUMNS = ("sample", "layer", "direction", "step", "unit")
#: Kinds in the order their quantities join a union of columns.
_KIND_ORDER = ("lstm", "gru", "simple_rnn")
#: Bytes of character matrix built at once (bounds memory for big traces).
_BLOCK_BYTES = 64 * 2**20


def quantity_columns(layers: Sequence[TracedLayer]) -> list[str]:
    """The quantity columns for ``layers``: the union, in contract order, ``mask`` last."""
    kinds = {layer.kind for layer in layers}
    columns: list[str] = []
    for kind in _KIND_ORDER + tuple(sorted(kinds - set(_KIND_ORDER))):
        if kind in kinds:
            columns += [q for q in QUANTITIES[kind] if q not in columns]
    if any(layer.masked for layer in layers):
        columns.append("mask")
    return columns


def header(trace: Trace) -> list[str]:
    """The full header of ``trace``'s CSV."""
    return [*INDEX_COLUMNS, *quantity_columns(trace.layers)]


def write(
    trace: Trace,
    output: str | os.PathLike[str] | None = None,
    *,
    samples: Selection = None,
    steps: Selection = None,
    units: Selection = None,
) -> None:
    """Write ``trace`` as CSV to ``output`` (a path, or ``"-"``/``None`` for stdout), atomically."""
    if samples is None and steps is None and units is None:
        write_source(TraceSource.from_trace(trace), output)
        return
    chunks = render(trace, samples=samples, steps=steps, units=units)
    with atomic_write(output, "w", newline="") as handle:
        for chunk in chunks:
            handle.write(chunk)


def render(
    trace: Trace,
    *,
    samples: Selection = None,
    steps: Selection = None,
    units: Selection = None,
) -> Iterator[str]:
    """The CSV text of ``trace`` in chunks (header first), for streaming."""
    columns = quantity_columns(trace.layers)
    yield ",".join([*INDEX_COLUMNS, *columns]) + "\n"
    picked = pick(trace, samples, steps, units)
    groups = [(layer, direction, arrays) for layer, direction, arrays in trace.rows()]
    if not groups or not picked.samples.size or not picked.steps.size:
        return
    row_bytes = 64 + 24 * len(columns)
    rows_per_sample = sum(
        picked.steps.size * picked.units_for(layer_width(arrays)).size for _, _, arrays in groups
    )
    block = max(1, _BLOCK_BYTES // max(1, rows_per_sample * row_bytes))
    for start in range(0, picked.samples.size, block):
        sample_block = picked.samples[start:start + block]
        matrices = [
            _block_chars(layer, direction, arrays, columns, sample_block, picked)
            for layer, direction, arrays in groups
        ]
        for s in range(sample_block.size):
            for matrix in matrices:
                if matrix is not None:
                    yield _text.squeeze(matrix[s])


def _block_chars(
    layer: TracedLayer,
    direction: str,
    arrays: dict[str, np.ndarray],
    columns: list[str],
    samples: np.ndarray,
    picked: Picked,
    *,
    sample_base: int = 0,
    step_base: int = 0,
) -> np.ndarray | None:
    """The rows of one layer direction for some samples: ``(samples, steps, units, chars)``.

    ``samples`` and ``picked.steps`` index ``arrays``; the ``sample`` and ``step`` columns
    say ``sample_base`` and ``step_base`` more (the position of a chunk's arrays).
    """
    steps = picked.steps
    units = picked.units_for(layer_width(arrays))
    if not units.size:
        return None
    shape = (samples.size, steps.size, units.size)
    # Each piece: (character matrix, the axes of `shape` it varies along).
    pieces: list[tuple[np.ndarray, tuple[int, ...]]] = [
        (_text.int_chars(samples + sample_base), (0,)),
        (_text.literal(f",{_field(layer.name)},{direction},"), ()),
        (_text.int_chars(steps + step_base), (1,)),
        (_text.literal(","), ()),
        (_text.int_chars(units), (2,)),
    ]
    for quantity in columns:
        pieces.append((_text.literal(","), ()))
        if quantity in arrays:
            pieces.append(_quantity_chars(arrays[quantity], samples, steps, units))
    pieces.append((_text.literal("\n"), ()))

    total = sum(chars.shape[-1] for chars, _ in pieces)
    out = np.zeros((*shape, total), dtype=np.uint8)
    offset = 0
    for chars, axes in pieces:
        width = chars.shape[-1]
        view = out[..., offset:offset + width]
        if axes == ():
            view[...] = chars
        elif axes == (0,):
            view[...] = chars[:, None, None, :]
        elif axes == (1,):
            view[...] = chars[None, :, None, :]
        elif axes == (2,):
            view[...] = chars[None, None, :, :]
        elif axes == (0, 1):
            view[...] = chars[:, :, None, :]
        else:  # (0, 1, 2), possibly only for the first units (a narrower array)
            view[:, :, : chars.shape[2]] = chars
        offset += width
    return out


def _quantity_chars(
    array: np.ndarray, samples: np.ndarray, steps: np.ndarray, units: np.ndarray
) -> tuple[np.ndarray, tuple[int, ...]]:
    """One quantity's cells. A narrower array fills only the unit rows it has."""
    if array.ndim == 2:  # mask: (batch, steps)
        values = array[np.ix_(samples, steps)]
        return _value_chars(values).reshape(samples.size, steps.size, -1), (0, 1)
    width = array.shape[2]
    have = units[units < width]
    if not have.size:
        return np.zeros(0, dtype=np.uint8), ()
    if have.size < units.size and not np.array_equal(have, units[: have.size]):
        # A unit list like [0, 9, 2] on a 4-wide array: cells at the units it has.
        inside = units < width
        values = _value_chars(array[np.ix_(samples, steps, units[inside])])
        chars = np.zeros((samples.size, steps.size, units.size, values.shape[-1]), dtype=np.uint8)
        chars[:, :, inside] = values.reshape(samples.size, steps.size, have.size, -1)
        return chars, (0, 1, 2)
    values = _value_chars(array[np.ix_(samples, steps, have)])
    return values.reshape(samples.size, steps.size, have.size, -1), (0, 1, 2)


def _value_chars(values: np.ndarray) -> np.ndarray:
    """Text of one array's values: shortest round-trip floats, ``1``/``0`` booleans, integers."""
    if values.dtype == np.bool_:
        return (values.reshape(-1, 1).astype(np.uint8) + ord("0"))
    if values.dtype.kind in "iu":
        text = values.ravel().astype("S24")
        width = max(1, int(np.char.str_len(text).max(initial=1)))
        return text.astype(f"S{width}").view(np.uint8).reshape(values.size, width)
    return _text.float_chars(values)


def _field(text: str) -> str:
    """A CSV field, quoted only when it must be (comma, quote or line break inside)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


# ------------------------------------------------------------------ streaming

#: Values from which polars writes the CSV: below, NumPy's formatter is done sooner than
#: polars is imported (about 0.1 s), so small traces (the sample model's) start as fast as before.
_POLARS_FROM = 200_000
#: float32 values polars writes with the same layout as ``repr``: ``1e-4 <= |x| < 1e13``
#: (float64: ``< 1e16``), with a margin; 0 and ±inf too. Everything else goes through
#: :mod:`._text`. Tests compare both renderers over every decade.
_POLARS_SAFE = {np.dtype(np.float32): (1.001e-4, 0.999e13), np.dtype(np.float64): (1.001e-4, 0.999e16)}


def polars_available() -> bool:
    """Whether the polars engine can be used (it is a dependency; a broken install falls back)."""
    try:
        import polars  # noqa: F401
    except ImportError:
        return False
    return True


def write_source(
    source: TraceSource, output: str | os.PathLike[str] | None = None, *, engine: str | None = None
) -> None:
    """Write every chunk of ``source`` as CSV to ``output`` (``"-"``/``None``: stdout), atomically.

    The bytes equal :func:`render`'s for the whole trace. ``engine`` is ``"polars"``,
    ``"numpy"`` or ``None`` (polars when installed and the trace holds at least
    :data:`_POLARS_FROM` values).
    """
    with atomic_write(output, "wb") as handle:
        write_behind(handle, render_source(source, engine=engine))


def write_behind(handle: Any, texts: Iterator[str | bytes | memoryview]) -> None:
    """Write ``texts`` to ``handle`` from a second thread, so the disk works while the next
    piece is formatted (polars and file writes both release the GIL). One piece waits at
    most; an error of either side (a full disk, a closed pipe, Ctrl-C) ends both and is
    raised here."""
    pending: queue.Queue[Any] = queue.Queue(maxsize=1)
    failure: list[BaseException] = []

    # Both sides wait with a timeout: a Ctrl-C that lands inside Queue.put after the item
    # went in but before the reader was woken would otherwise leave each thread waiting for
    # the other forever (seen: the CLI hung after SIGINT mid-CSV).
    def drain() -> None:
        while True:
            try:
                text = pending.get(timeout=0.1)
            except queue.Empty:
                continue
            if text is None:
                return
            if failure:
                continue
            try:
                handle.write(text.encode("utf-8") if isinstance(text, str) else text)
            except BaseException as err:  # handed to the caller below
                failure.append(err)

    writer = threading.Thread(target=drain, name="lstm-trace-csv-writer", daemon=True)
    writer.start()
    try:
        for text in texts:
            if failure:
                break
            pending.put(text)
    finally:
        while writer.is_alive():
            try:
                pending.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        writer.join()
    if failure:
        raise failure[0]


def render_source(source: TraceSource, *, engine: str | None = None) -> Iterator[bytes | memoryview]:
    """The CSV of ``source`` in pieces of UTF-8 text (header first), chunk by chunk."""
    if engine is None:
        values = sum(int(np.prod(info.shape)) for info in source.keys.values())
        fast = values >= _POLARS_FROM and polars_available()
        engine = "polars" if fast else "numpy"
    if engine not in ("polars", "numpy"):
        raise ValueError(f"unknown CSV engine {engine!r}; expected polars or numpy")
    columns = quantity_columns(source.layers)
    piece_text = _polars_piece if engine == "polars" else _numpy_piece
    yield (",".join([*INDEX_COLUMNS, *columns]) + "\n").encode()
    for piece in row_pieces(source, max_rows=PIECE_ROWS):
        yield from piece_text(piece, columns)


def _numpy_piece(piece: Piece, columns: list[str]) -> Iterator[bytes]:
    """A piece's rows by the NumPy renderer, a bounded block of steps at a time."""
    (s0, s1), (t0, t1) = piece.samples, piece.steps
    width = layer_width(piece.arrays) or 1
    row_bytes = 64 + 24 * len(columns)
    block = max(1, _BLOCK_BYTES // (row_bytes * width * (s1 - s0)))
    for a in range(0, t1 - t0, block):
        b = min(t1 - t0, a + block)
        arrays = {q: v[:, a:b] for q, v in piece.arrays.items()}
        picked = Picked(np.arange(s1 - s0), np.arange(b - a), None, width)
        matrix = _block_chars(piece.layer, piece.direction, arrays, columns, np.arange(s1 - s0),
                              picked, sample_base=s0, step_base=t0 + a)
        if matrix is not None:
            yield _text.squeeze(matrix).encode("utf-8")


def _polars_piece(piece: Piece, columns: list[str]) -> Iterator[bytes | memoryview]:
    """A piece's rows by polars (same text as the NumPy renderer).

    The rows holding a value whose ``repr`` layout polars does not share (:data:`_POLARS_SAFE`)
    are rendered by :mod:`._text` and spliced in between the runs of rows polars writes; a
    piece with many such rows goes to the NumPy renderer whole. polars writes into memory
    (a piece is a few megabytes of text); the caller writes the file, so disk-full and
    closed-pipe errors are Python's own ``OSError``s.
    """
    import polars as pl

    (s0, s1), (t0, t1) = piece.samples, piece.steps
    ns, nt = s1 - s0, t1 - t0
    width = layer_width(piece.arrays)
    if not width or not ns or not nt:
        return
    n = ns * nt * width
    names = f"{_field(piece.layer.name)},{piece.direction}"
    data: list[Any] = []  # columns backed by NumPy arrays
    exprs: list[Any] = []  # every column in CSV order (the header is written separately)
    if ns == 1:
        exprs.append(pl.lit(f"{s0},{names}").alias("_sample_names"))
    else:
        data.append(pl.Series("sample", np.repeat(np.arange(s0, s1, dtype=np.int64), nt * width)))
        exprs += [pl.col("sample"), pl.lit(names).alias("_names")]
    data.append(pl.Series("step", np.tile(np.repeat(np.arange(t0, t1, dtype=np.int64), width), ns)))
    data.append(pl.Series("unit", np.tile(np.arange(width, dtype=np.int64), ns * nt)))
    exprs += [pl.col("step"), pl.col("unit")]
    odd = np.zeros(n, dtype=bool)  # rows polars would lay out unlike repr
    for q in columns:
        values = piece.arrays.get(q)
        if values is None:
            exprs.append(pl.lit(None, dtype=pl.Float32).alias(q))
            continue
        if values.ndim == 2:  # mask, repeated on every unit row
            data.append(pl.Series(q, np.repeat(values.reshape(-1).astype(np.uint8), width)))
            exprs.append(pl.col(q))
            continue
        have = values.shape[2]
        if have < width:  # a narrower array (projected hidden): blank past its width
            padded = np.zeros((ns, nt, width), values.dtype)
            padded[:, :, :have] = values
            values = padded
        flat = values.reshape(-1)
        odd |= _unlike_repr(flat)
        data.append(pl.Series(q, flat))
        expr = pl.col(q)
        exprs.append(pl.when(pl.col("unit") < have).then(expr).alias(q) if have < width else expr)
    rows = np.flatnonzero(odd)
    if rows.size > max(64, n // 50):
        yield from _numpy_piece(piece, columns)
        return
    buffer = io.BytesIO()
    pl.DataFrame(data).select(exprs).write_csv(
        buffer, include_header=False, quote_style="never", line_terminator="\n", null_value="")
    text = buffer.getbuffer()
    if not rows.size:
        yield text
        return
    # Splice the odd rows' own lines in place of polars' (line r ends at the r-th newline).
    ends = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == 10) + 1
    start = 0
    for row, line in zip(rows, _row_texts(piece, columns, rows, width, names), strict=True):
        begin = int(ends[row - 1]) if row else 0
        yield text[start:begin]
        yield line
        start = int(ends[row])
    yield text[start:]


def _unlike_repr(flat: np.ndarray) -> np.ndarray:
    """Where polars' float text would differ from ``repr``'s layout (see :data:`_POLARS_SAFE`)."""
    low, high = _POLARS_SAFE.get(flat.dtype, (np.inf, 0.0))
    with np.errstate(invalid="ignore"):
        mag = np.abs(flat)
        return ((mag < low) & (mag != 0)) | ((mag >= high) & (mag != np.inf)) | np.isnan(flat)


def _row_texts(piece: Piece, columns: list[str], rows: np.ndarray, width: int, names: str) -> list[bytes]:
    """The CSV lines of some rows of a piece (row ``r`` is sample, step, unit in C order)."""
    (s0, _), (t0, t1) = piece.samples, piece.steps
    i, rest = np.divmod(rows, (t1 - t0) * width)
    j, k = np.divmod(rest, width)
    cells: list[list[str]] = []
    for q in columns:
        values = piece.arrays.get(q)
        if values is None:
            cells.append([""] * rows.size)
        elif values.ndim == 2:
            cells.append(["1" if v else "0" for v in values[i, j]])
        else:
            inside = k < values.shape[2]
            text = [""] * rows.size
            chars = _value_chars(values[i[inside], j[inside], k[inside]])
            for where, row in zip(np.flatnonzero(inside), chars, strict=True):
                text[where] = bytes(row[row != 0]).decode("ascii")
            cells.append(text)
    return [
        (f"{s0 + i[r]},{names},{t0 + j[r]},{k[r]}," + ",".join(column[r] for column in cells) + "\n").encode()
        for r in range(rows.size)
    ]
