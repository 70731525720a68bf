"""Parquet writer: the CSV's tidy table in one Parquet file.

Columns, in the CSV's order: ``sample``, ``step``, ``unit`` (int64), ``layer``,
``direction`` (strings), then the quantities (float32, empty cells null) and ``mask``
(boolean) — exactly the CSV header ``sample,layer,direction,step,unit,<quantities>``.
Rows come in the CSV's order. Read it with pandas, polars, pyarrow or DuckDB::

    pandas.read_parquet("trace.parquet")
    polars.scan_parquet("trace.parquet").filter(pl.col("layer") == "lstm")

polars writes it (it is the CSV engine too, a core dependency): the trace's pieces are
handed to polars' streaming Parquet sink one at a time, so memory stays flat.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..atomic import atomic_path, is_stdout
from ..errors import OptionError
from ..streaming import TraceSource
from ..trace import Trace
from ._spill import PIECE_ROWS, Piece, row_pieces
from .csv import INDEX_COLUMNS, quantity_columns


def write(trace: Trace, output: str | os.PathLike[str] | None) -> None:
    """Write the in-memory ``trace`` to the Parquet file ``output``."""
    write_source(TraceSource.from_trace(trace), output)


def schema(columns: list[str]) -> dict[str, Any]:
    """The polars schema of the table with these quantity ``columns``."""
    import polars as pl

    types: dict[str, Any] = {"sample": pl.Int64, "layer": pl.String, "direction": pl.String,
                             "step": pl.Int64, "unit": pl.Int64}
    for q in columns:
        types[q] = pl.Boolean if q == "mask" else pl.Float32
    return {name: types[name] for name in (*INDEX_COLUMNS, *columns)}


def write_source(source: TraceSource, output: str | os.PathLike[str] | None) -> None:
    """Write every chunk of ``source`` to the Parquet file ``output``, atomically."""
    import polars as pl
    from polars.io.plugins import register_io_source

    if is_stdout(output):
        raise OptionError("parquet is a binary file format: give an output file, e.g. -o trace.parquet")
    columns = quantity_columns(source.layers)
    types = schema(columns)
    failure: list[BaseException] = []

    def frames(with_columns: list[str] | None, predicate: Any, n_rows: int | None,
               batch_size: int | None) -> Iterator[Any]:
        try:
            for piece in row_pieces(source, max_rows=PIECE_ROWS):
                frame = _frame(pl, piece, columns, types)
                if with_columns is not None:
                    frame = frame.select(with_columns)
                if predicate is not None:
                    frame = frame.filter(predicate)
                yield frame
        except BaseException as err:  # re-raised below with its own type (Ctrl-C, TraceError...)
            failure.append(err)
            raise

    table = register_io_source(frames, schema=pl.Schema(types))
    with atomic_path(output) as tmp:
        try:
            table.sink_parquet(tmp)
        except BaseException:
            if failure:
                raise failure[0] from None
            raise
        if failure:
            raise failure[0]


def _frame(pl: Any, piece: Piece, columns: list[str], types: dict[str, Any]) -> Any:
    """One piece's rows as a polars DataFrame of the table's schema."""
    (s0, s1), (t0, t1) = piece.samples, piece.steps
    ns, nt = s1 - s0, t1 - t0
    width = max((a.shape[2] for a in piece.arrays.values() if a.ndim == 3), default=0)
    unit = np.tile(np.arange(width, dtype=np.int64), ns * nt)
    data: dict[str, Any] = {
        "sample": np.repeat(np.arange(s0, s1, dtype=np.int64), nt * width),
        "step": np.tile(np.repeat(np.arange(t0, t1, dtype=np.int64), width), ns),
        "unit": unit,
    }
    for q in columns:
        values = piece.arrays.get(q)
        if values is None:
            continue
        if values.ndim == 2:
            data[q] = np.repeat(values.reshape(-1).astype(bool), width)
            continue
        have = values.shape[2]
        if have == width:
            data[q] = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
            continue
        flat = np.zeros((ns, nt, width), np.float32)
        flat[:, :, :have] = values
        data[q] = pl.select(pl.when(pl.lit(unit) < have).then(pl.Series(q, flat.reshape(-1)))).to_series()
    frame = pl.DataFrame({k: pl.Series(k, v) if not isinstance(v, pl.Series) else v.alias(k)
                          for k, v in data.items()})
    constants = {"layer": piece.layer.name, "direction": piece.direction}
    return frame.select([
        pl.lit(constants[name], dtype=types[name]).alias(name) if name in constants
        else pl.col(name) if name in data else pl.lit(None, dtype=types[name]).alias(name)
        for name in types
    ])
