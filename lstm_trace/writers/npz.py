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
import zipfile

import numpy as np

from ..atomic import atomic_write, is_stdout
from ..selection import Selection
from ..streaming import TraceSource
from ..trace import Trace
from ._common import pick
from ._spill import SpillStore

#: Bytes of one member copied from the spill file at a time.
_COPY_BYTES = 16 * 2**20


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
    _refuse_terminal(output)
    arrays = arrays_to_write(trace, samples=samples, steps=steps, units=units)
    save = np.savez_compressed if compress else np.savez
    with atomic_write(output, "wb") as handle:
        save(handle, allow_pickle=False, **arrays)


def _refuse_terminal(output: str | os.PathLike[str] | None) -> None:
    if is_stdout(output) and sys.stdout.isatty():
        raise ValueError("npz is a binary format and is not written to a terminal: "
                         "give an output file, e.g. -o trace.npz, or redirect stdout")


def write_source(
    source: TraceSource, output: str | os.PathLike[str] | None, *, compress: bool = False
) -> None:
    """Write every chunk of ``source`` to the ``.npz`` ``output``, member by member.

    A zip holds one member after another, so the chunks go to a temporary file first
    (:class:`~lstm_trace.writers._spill.SpillStore`, one region per key); then each key is
    copied into its ``.npy`` member a few megabytes at a time. The archive loads exactly
    like :func:`write`'s (``np.load(path, allow_pickle=False)``); memory stays flat.
    """
    _refuse_terminal(output)
    if source.single_chunk:
        (chunk,) = list(source)
        write(chunk.trace, output, compress=compress)
        return
    keys = source.keys
    fmt = np.lib.format
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with SpillStore(keys, source.batch) as store:
        for chunk in source:
            store.write_chunk(chunk, 0)
        with atomic_write(output, "wb") as handle, \
                zipfile.ZipFile(handle, "w", compression=method, allowZip64=True) as archive:
            for key, info in keys.items():
                key_steps = info.shape[1]  # a layer's own steps (layers may differ)
                per_sample = int(np.prod(info.shape[1:], dtype=np.int64)) * info.dtype.itemsize
                block = max(1, _COPY_BYTES // max(1, per_sample))
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    header = {"descr": fmt.dtype_to_descr(info.dtype), "fortran_order": False,
                              "shape": info.shape}
                    fmt.write_array_header_1_0(member, header)
                    if per_sample <= _COPY_BYTES:
                        for s0 in range(0, source.batch, block):
                            s1 = min(source.batch, s0 + block)
                            member.write(store.read(key, (s0, s1), (0, key_steps)).data)
                        continue
                    steps = max(1, _COPY_BYTES * key_steps // per_sample)
                    for s in range(source.batch):
                        for t0 in range(0, key_steps, steps):
                            t1 = min(key_steps, t0 + steps)
                            member.write(store.read(key, (s, s + 1), (t0, t1)).data)
