"""Putting chunks back in the order a file wants them, without holding them in memory.

A :class:`~lstm_trace.streaming.TraceSource` hands out chunks of samples × steps, but most
formats are written sample by sample (CSV, Parquet, LSTMVis) or key by key (JSON, NPZ).
:class:`SpillStore` keeps arrays of some samples in a temporary file (raw, C order, one
region per key) written with ``pwrite`` and read back with ``preadv``: the operating
system's page cache holds them, not this process, so memory stays flat.

:func:`row_pieces` yields :class:`Piece` objects in the row order of the CSV contract
(sample, then layer and direction, then step, then unit): straight from the chunks when
they hold whole sequences, through a :class:`SpillStore` of one sample block when the
source runs in step chunks.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from ..streaming import KeyInfo, TraceChunk, TraceSource
from ..trace import TracedLayer


class SpillStore:
    """Arrays of ``samples`` samples for each key of ``keys``, in a temporary file.

    Key ``k`` of shape ``(batch, steps, *rest)`` takes a region of
    ``samples * steps * prod(rest)`` items; sample ``s`` (counted from the store's first
    sample) and step ``t`` are at ``((s * steps) + t) * prod(rest)`` items into it.
    """

    def __init__(self, keys: Mapping[str, KeyInfo], samples: int, directory: str | None = None):
        self.keys = dict(keys)
        self.samples = samples
        self._file = tempfile.TemporaryFile(prefix="lstm-trace-spill-", dir=directory)  # noqa: SIM115
        self._fd = self._file.fileno()
        self._base: dict[str, int] = {}
        offset = 0
        for key, info in self.keys.items():
            self._base[key] = offset
            offset += samples * int(np.prod(info.shape[1:], dtype=np.int64)) * info.dtype.itemsize

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SpillStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _offset(self, key: str, sample: int, step: int) -> tuple[int, int]:
        info = self.keys[key]
        row = int(np.prod(info.shape[2:], dtype=np.int64)) * info.dtype.itemsize
        steps = info.shape[1]
        return self._base[key] + (sample * steps + step) * row, row

    def write(self, key: str, sample: int, step: int, values: np.ndarray) -> None:
        """Store ``values`` ``(samples, steps, *rest)`` from (store) sample ``sample``, step ``step``."""
        info = self.keys[key]
        values = values.astype(info.dtype, copy=False)
        full_steps = values.shape[1] == info.shape[1]
        if full_steps and values.flags.c_contiguous:
            offset, _ = self._offset(key, sample, 0)
            _pwrite_all(self._fd, memoryview(values).cast("B"), offset)
            return
        for i in range(values.shape[0]):
            offset, _ = self._offset(key, sample + i, step)
            _pwrite_all(self._fd, memoryview(np.ascontiguousarray(values[i])).cast("B"), offset)

    def write_chunk(self, chunk: TraceChunk, first_sample: int) -> None:
        """Store every array of ``chunk``; ``first_sample`` is the store's sample 0 in the source."""
        for key, values in chunk.trace.items():
            self.write(key, chunk.samples[0] - first_sample, chunk.steps[0], values)

    def read(self, key: str, samples: tuple[int, int], steps: tuple[int, int]) -> np.ndarray:
        """The stored ``(s1 - s0, t1 - t0, *rest)`` array of (store) samples and steps."""
        info = self.keys[key]
        (s0, s1), (t0, t1) = samples, steps
        out = np.empty((s1 - s0, t1 - t0, *info.shape[2:]), info.dtype)
        if (t0, t1) == (0, info.shape[1]):
            offset, _ = self._offset(key, s0, 0)
            _pread_all(self._fd, memoryview(out).cast("B"), offset)
            return out
        for i in range(s1 - s0):
            offset, _ = self._offset(key, s0 + i, t0)
            _pread_all(self._fd, memoryview(out[i]).cast("B"), offset)
        return out


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        n = os.pwrite(fd, data, offset)
        data, offset = data[n:], offset + n


def _pread_all(fd: int, out: memoryview, offset: int) -> None:
    while out:
        n = os.preadv(fd, [out], offset)
        if n <= 0:
            raise OSError("the temporary spill file is shorter than what was written to it")
        out, offset = out[n:], offset + n


#: Rows of a piece of whole sequences, at most (one sample's rows at least): bounds the
#: memory a writer spends turning a piece into text or a table.
PIECE_ROWS = 2**18


@dataclass(frozen=True)
class Piece:
    """Rows of one layer direction for samples ``[s0, s1)`` and steps ``[t0, t1)``.

    ``arrays`` maps each quantity to ``(s1 - s0, t1 - t0, units)`` (``mask``: no unit axis).
    A piece's rows are contiguous in CSV order: it holds one sample, or whole sequences
    of a trace with a single layer direction.
    """

    layer: TracedLayer
    direction: str
    samples: tuple[int, int]
    steps: tuple[int, int]
    arrays: dict[str, np.ndarray]


def groups(
    layers: tuple[TracedLayer, ...], keys: Mapping[str, object]
) -> list[tuple[TracedLayer, str, list[str]]]:
    """Each ``(layer, direction, quantities present)`` in trace order."""
    return [
        (layer, direction, [q for q in layer.quantities if layer.key(direction, q) in keys])
        for layer in layers
        for direction in layer.directions
    ]


def row_pieces(
    source: TraceSource, *, max_steps: int | None = None, max_rows: int | None = None
) -> Iterator[Piece]:
    """The source's arrays as :class:`Piece` objects in CSV row order.

    ``max_steps`` bounds the steps of a piece read back from a spill (default: the
    source's ``chunk_steps``); ``max_rows`` the rows of a piece of whole sequences (at
    least one sample's).
    """
    parts = groups(source.layers, source.keys)
    single = len(parts) == 1
    if not source.step_chunked:
        for chunk in source:
            yield from _chunk_pieces(chunk, parts, whole=single, max_rows=max_rows)
        return
    keys = source.keys
    step = max_steps or source.chunk_steps
    store: SpillStore | None = None
    try:
        for chunk in source:
            s0, s1 = chunk.samples
            if single and s1 - s0 == 1:
                yield from _chunk_pieces(chunk, parts, whole=True)
                continue
            if store is None:
                store = SpillStore(keys, source.batch_size)
            store.write_chunk(chunk, s0)
            if chunk.steps[1] < source.steps:
                continue
            for i in range(s1 - s0):  # the block is complete: its rows in order
                for layer, direction, quantities in parts:
                    for t0 in range(0, source.steps, step):
                        t1 = min(source.steps, t0 + step)
                        arrays = {q: store.read(layer.key(direction, q), (i, i + 1), (t0, t1))
                                  for q in quantities}
                        yield Piece(layer, direction, (s0 + i, s0 + i + 1), (t0, t1), arrays)
    finally:
        if store is not None:
            store.close()


def _chunk_pieces(
    chunk: TraceChunk, parts: list, *, whole: bool, max_rows: int | None = None
) -> Iterator[Piece]:
    """Pieces of a chunk that holds whole sequences (or one sample): blocks of samples
    (``max_rows`` rows at most) for a single layer direction, else sample by sample."""
    (s0, s1), steps = chunk.samples, chunk.steps
    trace = chunk.trace
    if whole:
        layer, direction, quantities = parts[0]
        arrays = {q: trace[layer.key(direction, q)] for q in quantities}
        per_sample = (steps[1] - steps[0]) * max((a.shape[2] for a in arrays.values() if a.ndim == 3),
                                                 default=1)
        block = s1 - s0 if max_rows is None else max(1, max_rows // max(1, per_sample))
        for a in range(0, s1 - s0, block):
            b = min(s1 - s0, a + block)
            yield Piece(layer, direction, (s0 + a, s0 + b), steps,
                        {q: v[a:b] for q, v in arrays.items()})
        return
    for i in range(s1 - s0):
        for layer, direction, quantities in parts:
            yield Piece(layer, direction, (s0 + i, s0 + i + 1), steps,
                        {q: trace[layer.key(direction, q)][i:i + 1] for q in quantities})
