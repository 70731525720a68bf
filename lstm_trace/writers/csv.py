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

Rows are built as NumPy character matrices (see :mod:`lstm_trace.writers._text`), a
block of samples at a time, so memory stays bounded and there is no loop per value.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import numpy as np

from ..atomic import atomic_write
from ..network import QUANTITIES
from ..selection import Selection
from ..trace import Trace, TracedLayer
from . import _text
from ._common import Picked, layer_width, pick

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
) -> np.ndarray | None:
    """The rows of one layer direction for some samples: ``(samples, steps, units, chars)``."""
    steps = picked.steps
    units = picked.units_for(layer_width(arrays))
    if not units.size:
        return None
    shape = (samples.size, steps.size, units.size)
    # Each piece: (character matrix, the axes of `shape` it varies along).
    pieces: list[tuple[np.ndarray, tuple[int, ...]]] = [
        (_text.int_chars(samples), (0,)),
        (_text.literal(f",{_field(layer.name)},{direction},"), ()),
        (_text.int_chars(steps), (1,)),
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
