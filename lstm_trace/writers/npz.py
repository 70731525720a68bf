"""NPZ writer: the trace's contract keys and nothing else.

Each key ``<layer>/<quantity>`` or ``<layer>/<direction>/<quantity>`` is one ``.npy``
member holding a plain numeric array (``(batch, steps, units)``, ``mask``
``(batch, steps)`` bool), so the file loads with ``np.load(path, allow_pickle=False)``::

    with np.load("trace.npz", allow_pickle=False) as npz:
        forget = npz["lstm/forget_gate"]

Uncompressed by default (fast to write and to memory-map member by member);
``compress=True`` uses ``np.savez_compressed``. A ``samples``/``steps``/``units``
selection cuts every array to it (indices then count from 0 within the selection;
write CSV or JSON to keep the original indices). The file is written atomically.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..atomic import atomic_write, is_stdout
from ..selection import Selection
from ..trace import Trace
from ._common import pick


def arrays_to_write(
    trace: Trace, *, samples: Selection = None, steps: Selection = None, units: Selection = None
) -> dict[str, np.ndarray]:
    """The arrays an NPZ of ``trace`` holds, by contract key, after any selection."""
    selecting = any(s is not None for s in (samples, steps, units))
    picked = pick(trace, samples, steps, units) if selecting else None
    arrays: dict[str, np.ndarray] = {}
    for key, array in trace.items():
        array = np.asarray(array)
        if array.dtype.hasobject or array.dtype.kind not in "biuf":
            raise ValueError(f"trace array {key!r} has dtype {array.dtype}, not a plain number type")
        if picked is not None:
            index: tuple[np.ndarray, ...] = (picked.samples, picked.steps)
            if array.ndim == 3:
                index += (picked.units_for(array.shape[2]),)
            array = array[np.ix_(*index)]
        arrays[key] = np.ascontiguousarray(array)
    return arrays


def write(
    trace: Trace,
    output: str | os.PathLike[str] | None,
    *,
    compress: bool = False,
    samples: Selection = None,
    steps: Selection = None,
    units: Selection = None,
) -> None:
    """Write ``trace``'s arrays to the ``.npz`` file ``output``, atomically."""
    if is_stdout(output) and sys.stdout.isatty():
        raise ValueError("npz is a binary format and is not written to a terminal: "
                         "give an output file, e.g. -o trace.npz, or redirect stdout")
    arrays = arrays_to_write(trace, samples=samples, steps=steps, units=units)
    save = np.savez_compressed if compress else np.savez
    with atomic_write(output, "wb") as handle:
        save(handle, allow_pickle=False, **arrays)
