"""JSON writer: layer metadata plus every trace array as nested lists.

Schema (``version`` 1)::

    {
      "format": "lstm-trace",
      "version": 1,
      "layers": [
        {"name": "lstm", "kind": "lstm", "directions": ["forward"],
         "bidirectional": false, "masked": false,
         "units": 64, "output_units": 64,
         "quantities": ["input_gate", ..., "hidden"],
         "keys": ["lstm/input_gate", ..., "lstm/hidden"]}
      ],
      "shape": {"batch": 2, "steps": 300},
      "selection": {"samples": null, "steps": null, "units": null},
      "trace": {"lstm/input_gate": [[[0.51, ...], ...], ...], ...}
    }

- ``layers`` lists the traced layers in order. ``units`` is the cell width (the gates);
  ``output_units`` is the width of ``hidden`` (smaller for a projected TF1 LSTM).
  ``quantities`` includes ``mask`` for a masked layer; ``keys`` are the layer's keys in
  ``trace``, which are the contract keys (DESIGN.md).
- ``shape`` is the batch and step count of the arrays in ``trace``.
- ``selection`` gives, for each axis, the original indices the arrays hold when a
  ``samples``/``steps``/``units`` selection was applied, else ``null``. With a unit
  selection an array narrower than some selected unit (``hidden`` of a projected LSTM)
  holds only the selected units it has, in selection order.
- ``trace`` maps each key to nested lists ``[sample][step][unit]``; ``mask`` is
  ``[sample][step]`` of ``true``/``false``.
- Floats are the shortest decimal that reads back to the same value of the trace's
  dtype: ``np.asarray(value, dtype=np.float32)`` gives back the exact float32 bits.
- **NaN and ±infinity are written as ``null``** (JSON has no literal for them);
  ``np.asarray(value, dtype=np.float32)`` turns ``null`` back into ``nan`` (the sign of an
  infinity is lost).

The arrays are rendered with vectorised character matrices (:mod:`lstm_trace.writers._text`);
the file is valid JSON (RFC 8259) and written atomically.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from ..atomic import atomic_write
from ..selection import Selection
from ..streaming import TraceSource
from ..trace import Trace
from . import _text
from ._common import pick
from ._spill import SpillStore

FORMAT = "lstm-trace"
VERSION = 1


def write(
    trace: Trace,
    output: str | os.PathLike[str] | None = None,
    *,
    samples: Selection = None,
    steps: Selection = None,
    units: Selection = None,
    indent: int | None = None,
) -> None:
    """Write ``trace`` as JSON to ``output`` (a path, or ``"-"``/``None`` for stdout), atomically.

    ``indent`` indents the metadata (the arrays stay one line per key).
    """
    with atomic_write(output, "w", newline="") as handle:
        for chunk in render(trace, samples=samples, steps=steps, units=units, indent=indent):
            handle.write(chunk)


def render(
    trace: Trace,
    *,
    samples: Selection = None,
    steps: Selection = None,
    units: Selection = None,
    indent: int | None = None,
) -> list[str]:
    """The JSON text of ``trace`` in chunks."""
    picked = pick(trace, samples, steps, units)
    head = {
        "format": FORMAT,
        "version": VERSION,
        "layers": [_layer_info(trace, layer) for layer in trace.layers],
        "shape": {"batch": int(picked.samples.size), "steps": int(picked.steps.size)},
        "selection": {
            "samples": None if samples is None else picked.samples.tolist(),
            "steps": None if steps is None else picked.steps.tolist(),
            "units": None if units is None else picked.units_for(picked.max_width).tolist(),
        },
    }
    text = json.dumps(head, indent=indent)
    chunks = [text[:-1] + ', "trace": {']
    for n, (key, array) in enumerate(trace.items()):
        index: tuple[np.ndarray, ...] = (picked.samples, picked.steps)
        if array.ndim == 3:
            index += (picked.units_for(array.shape[2]),)
        chunks.append(("," if n else "") + "\n" + json.dumps(key) + ": ")
        chunks.append(nested_list(np.asarray(array)[np.ix_(*index)]))
    chunks.append("\n}}\n")
    return chunks


def _layer_info(trace: Trace, layer: Any) -> dict[str, Any]:
    keys = [
        layer.key(direction, q)
        for direction in layer.directions
        for q in layer.quantities
        if layer.key(direction, q) in trace
    ]
    widths = {q: trace[layer.key(layer.directions[0], q)].shape[-1]
              for q in layer.quantities if q != "mask" and layer.key(layer.directions[0], q) in trace}
    gate_widths = [w for q, w in widths.items() if q != "hidden"]
    output_units = widths.get("hidden")
    return {
        "name": layer.name,
        "kind": layer.kind,
        "directions": list(layer.directions),
        "bidirectional": layer.bidirectional,
        "masked": layer.masked,
        "units": int(max(gate_widths)) if gate_widths else output_units,
        "output_units": output_units,
        "quantities": list(layer.quantities),
        "keys": keys,
    }


def write_source(
    source: TraceSource, output: str | os.PathLike[str] | None = None, *, indent: int | None = None
) -> None:
    """Write every chunk of ``source`` as JSON (the same text :func:`write` gives the whole trace).

    The JSON nests each key's values ``[sample][step][unit]``, key after key, so chunks are
    kept in a temporary file (:class:`~lstm_trace.writers._spill.SpillStore`) until the
    last one is in, then each key is rendered part by part: memory stays flat.
    """
    if source.single_chunk:
        (chunk,) = list(source)
        write(chunk.trace, output, indent=indent)
        return
    keys = source.keys
    shaped = source.shapes()
    head = {
        "format": FORMAT,
        "version": VERSION,
        "layers": [_layer_info(shaped, layer) for layer in source.layers],
        "shape": {"batch": source.batch, "steps": source.steps},
        "selection": {"samples": None, "steps": None, "units": None},
    }
    with SpillStore(keys, source.batch) as store:
        for chunk in source:
            store.write_chunk(chunk, 0)
        with atomic_write(output, "w", newline="") as handle:
            handle.write(json.dumps(head, indent=indent)[:-1] + ', "trace": {')
            for n, (key, info) in enumerate(keys.items()):
                handle.write(("," if n else "") + "\n" + json.dumps(key) + ": ")
                for s in range(source.batch):
                    for t0 in range(0, source.steps, source.chunk_steps):
                        t1 = min(source.steps, t0 + source.chunk_steps)
                        part = store.read(key, (s, s + 1), (t0, t1))
                        handle.write(nested_list(part, offset=(s, t0), shape=info.shape))
            handle.write("\n}}\n")


def nested_list(
    array: np.ndarray, *, offset: tuple[int, ...] = (), shape: tuple[int, ...] | None = None
) -> str:
    """JSON text of ``array`` as nested lists (floats shortest round-trip, non-finite ``null``).

    With ``shape`` and ``offset`` (indices of ``array[0, 0, ...]`` in an array of that
    shape, missing axes 0), the text is the part of the whole array's text that
    ``array``'s values take: brackets open where an axis starts, close where it ends.
    """
    if array.ndim == 0:
        return nested_list(array.reshape(1))[1:-1]
    if array.size == 0:
        return json.dumps(array.tolist())
    if array.dtype == np.bool_:
        values = np.zeros((array.size, 5), dtype=np.uint8)
        values[array.ravel()] = _text.literal("true\0")
        values[~array.ravel()] = _text.literal("false")
    elif array.dtype.kind in "iu":
        values = _text.int_chars(array)
    else:
        values = _text.float_chars(array, nonfinite="null")
    full = array.shape if shape is None else tuple(shape)
    d = len(full)
    start = np.zeros(d, dtype=np.int64)
    start[:len(offset)] = offset
    # Brackets around each value: "[" opens every axis whose index is 0 from this axis
    # inward; "]" closes every axis at its last index from the innermost outward; a comma
    # follows every value but the very last.
    idx = np.indices(array.shape).reshape(d, -1) + start[:, None]
    shape = full
    first = idx == 0
    last = idx == np.array(shape)[:, None] - 1
    opens = np.cumprod(first[::-1], axis=0)[::-1]  # opens[a]: axes a..d-1 all at 0
    closes = np.cumprod(last[::-1], axis=0)  # closes[j]: innermost j+1 axes at their end
    pre = np.where(opens.T, ord("["), 0).astype(np.uint8)  # (n, d)
    post = np.zeros((array.size, d + 1), dtype=np.uint8)
    post[:, :d] = np.where(closes.T, ord("]"), 0)
    post[:, d] = np.where(closes[-1], 0, ord(","))
    return _text.squeeze(np.concatenate([pre, values, post], axis=1))

