"""HDF5 writer: one dataset per trace key, written chunk by chunk.

Dataset paths are the contract keys (``lstm/hidden``, ``bidirectional/backward/cell``;
each ``/`` is an HDF5 group), with the NPZ's shapes and dtypes: ``(batch, steps, units)``
floats, ``mask`` ``(batch, steps)`` booleans. The root's attributes say what the file is::

    format   "lstm-trace"
    version  1
    layers   the JSON writer's "layers" list, as JSON text

Read it with h5py (``h5py.File(path)["lstm/hidden"][0, :10]``) or any HDF5 tool. Each
chunk of the trace is written into its place in contiguous datasets as it comes, so
memory stays flat; the file appears at ``output`` only once complete (temporary file,
then rename). h5py is a core dependency (it also reads Keras files).
"""

from __future__ import annotations

import json
import os

from ..atomic import atomic_path, is_stdout
from ..errors import OptionError
from ..streaming import TraceSource
from ..trace import Trace

FORMAT = "lstm-trace"
VERSION = 1


def write(trace: Trace, output: str | os.PathLike[str] | None) -> None:
    """Write the in-memory ``trace`` to the HDF5 file ``output``."""
    write_source(TraceSource.from_trace(trace), output)


def write_source(source: TraceSource, output: str | os.PathLike[str] | None) -> None:
    """Write every chunk of ``source`` to the HDF5 file ``output``, atomically."""
    import h5py

    from .json import _layer_info

    if is_stdout(output):
        raise OptionError("h5 is a binary file format: give an output file, e.g. -o trace.h5")
    keys = source.keys
    shaped = source.shapes()
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["format"] = FORMAT
        f.attrs["version"] = VERSION
        f.attrs["layers"] = json.dumps([_layer_info(shaped, layer) for layer in source.layers])
        datasets = {key: f.create_dataset(key, shape=info.shape, dtype=info.dtype)
                    for key, info in keys.items()}
        for chunk in source:
            (s0, s1), (t0, t1) = chunk.samples, chunk.steps
            for key, values in chunk.trace.items():
                datasets[key][s0:s1, t0:t1] = values
