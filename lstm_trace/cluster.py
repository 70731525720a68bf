"""The trace on a Dask cluster: lazy dask arrays, and a Zarr store written by the workers.

``pip install 'lstm-trace[dask]'`` (dask, distributed, zarr). Samples are independent, so
the input is split by samples only: each block of whole sequences is replayed by a worker
(the same engine, :func:`lstm_trace.engine.run`) and its arrays become the blocks of the
trace's dask arrays.

    >>> import dask.array as da, lstm_trace
    >>> from lstm_trace.cluster import trace_dask
    >>> model = lstm_trace.load("model.keras")
    >>> x = da.from_zarr("corpus.zarr")                 # (batch, steps, features), any size
    >>> trace = trace_dask(model, x)                    # {key: lazy dask array}
    >>> trace["lstm/forget_gate"].mean(axis=(0, 1)).compute()   # reduced on the cluster

``lstm-trace MODEL INPUT --scheduler tcp://HOST:8786 -o OUT.zarr`` (:func:`trace_to_zarr`)
writes every key as a Zarr array at its trace-key path (``lstm/hidden``), computed and
written by the workers, into a temporary store renamed to ``OUT.zarr`` once complete.
INPUT is an ``.npy`` (memory-mapped by each worker) or a Zarr array; like any Dask job
that reads and writes files, INPUT and OUT must be on storage every worker sees (a shared
file system), and the workers need lstm-trace installed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .network import Network

#: Seconds to wait for the scheduler before giving up.
CONNECT_TIMEOUT = 10

MISSING_DASK = ("--scheduler needs dask, distributed and zarr, which are not installed: "
                "pip install 'lstm-trace[dask]'")


def require_dask() -> None:
    """Raise ``ImportError`` with the install hint when the dask extra is missing."""
    try:
        import dask.array  # noqa: F401
        import distributed  # noqa: F401
        import zarr  # noqa: F401
    except ImportError:
        raise ImportError(MISSING_DASK) from None


def _replay_block(network: Network, block: np.ndarray, options: dict[str, Any],
                  check: tuple[str, int, bool] | None = None) -> dict[str, np.ndarray]:
    """One block of samples, replayed on a worker: every key's (samples, steps, ...) array.

    ``check`` ``(input name, first sample, integer ids)``: the block's values are checked
    first, as the local path checks each chunk (NaN, infinities, negative or fractional
    ids: :class:`~lstm_trace.inputs.InputError` naming the sample, step and feature)."""
    block = np.asarray(block)
    if check is not None:
        from .stream_output import check_values

        name, start, integer_ids = check
        check_values(block, start, 0, name, integer_ids)
    trace = network.trace(block, **options)
    return {key: np.ascontiguousarray(a) for key, a in trace.items()}


def _layout(network: Network, x: Any, options: dict[str, Any]) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Each key's shape past (batch, steps) and dtype, from a replay of one step of one sample."""
    probe = np.asarray(x[:1, :1])
    return {key: (a.shape[2:], a.dtype) for key, a in _replay_block(network, probe, options).items()}


def trace_dask(
    network: Network,
    x: Any,
    *,
    layers: Sequence[str] | None = None,
    layer_input: bool = False,
    initial_state: Mapping[str, np.ndarray] | None = None,
    dtype: str = "float32",
    samples_per_block: int | None = None,
    input_name: str = "INPUT",
    integer_ids: bool | None = None,
) -> dict[str, Any]:
    """The trace of the dask array ``x`` ``(batch, steps, features)`` (token ids
    ``(batch, steps)``) as lazy dask arrays ``(batch, steps, units)`` by trace key.

    ``x`` is rechunked to blocks of whole sequences (``samples_per_block`` samples, default
    the block size of ``x``'s first axis); nothing runs until the arrays are computed or
    stored. Options as :func:`lstm_trace.engine.run` (``initial_state`` arrays with a batch
    axis are cut per block).

    Each worker checks its block's values before the replay, like the local path: NaN or
    infinite features (and negative or fractional token ids when ``integer_ids``; default:
    ``x`` holds integers) fail the computation with an
    :class:`~lstm_trace.inputs.InputError` naming ``input_name``, the sample, step and feature.
    """
    import dask
    import dask.array as da

    x = _whole_sequences(x, samples_per_block)
    options: dict[str, Any] = {"layers": list(layers) if layers else None, "layer_input": layer_input,
                               "dtype": dtype}
    if integer_ids is None:
        integer_ids = np.dtype(x.dtype).kind in "iu"
    layout = _layout(network, x, {**options, "initial_state": _cut(initial_state, 0, 1, x.shape[0])})
    batch, steps = int(x.shape[0]), int(x.shape[1])
    blocks: dict[str, list[Any]] = {key: [] for key in layout}
    net = dask.delayed(network, pure=True)
    start = 0
    for size, part in zip(x.chunks[0], x.to_delayed().ravel(), strict=True):
        state = _cut(initial_state, start, start + size, batch)
        result = dask.delayed(_replay_block, pure=True)(net, part, {**options, "initial_state": state},
                                                         (input_name, start, integer_ids))
        for key, (rest, kind) in layout.items():
            blocks[key].append(da.from_delayed(result[key], shape=(size, steps, *rest), dtype=kind))
        start += size
    return {key: da.concatenate(parts, axis=0) for key, parts in blocks.items()}


def _whole_sequences(x: Any, samples_per_block: int | None) -> Any:
    """``x`` rechunked to blocks of whole sequences (``samples_per_block`` samples each)."""
    if x.ndim not in (2, 3):
        raise ValueError(f"expected (batch, steps, features) or token ids (batch, steps), got {x.shape}")
    if samples_per_block is not None:
        x = x.rechunk({0: samples_per_block})
    return x.rechunk({i: -1 for i in range(1, x.ndim)})


def _check_block(block: np.ndarray, check: tuple[str, int, bool]) -> None:
    from .stream_output import check_values

    name, start, integer_ids = check
    check_values(np.asarray(block), start, 0, name, integer_ids)


def check_input(x: Any, *, samples_per_block: int | None = None, input_name: str = "INPUT",
                integer_ids: bool | None = None) -> None:
    """Check every block of ``x`` on the cluster (as :func:`trace_dask`'s workers do) and
    raise the first block's :class:`~lstm_trace.inputs.InputError` before anything is written."""
    import dask

    x = _whole_sequences(x, samples_per_block)
    if integer_ids is None:
        integer_ids = np.dtype(x.dtype).kind in "iu"
    starts = np.cumsum((0, *x.chunks[0][:-1]))
    checks = [dask.delayed(_check_block, pure=True)(part, (input_name, int(start), integer_ids))
              for start, part in zip(starts, x.to_delayed().ravel(), strict=True)]
    dask.compute(*checks)


def _cut(state: Mapping[str, np.ndarray] | None, s0: int, s1: int, batch: int) -> dict | None:
    if not state:
        return None
    return {k: (v[s0:s1] if np.ndim(v) == 2 and np.shape(v)[0] == batch and batch > 1 else v)
            for k, v in state.items()}


def open_input(path: str | os.PathLike[str], samples_per_block: int | None = None) -> Any:
    """INPUT as a dask array read by the workers: a Zarr array, or an ``.npy`` that each
    worker memory-maps for its own block (header checked first)."""
    import dask.array as da

    from .streaming import open_npy

    name = os.fspath(path)
    if os.path.isdir(name):
        return da.from_zarr(name)
    mapped = open_npy(name)
    block = samples_per_block or max(1, min(mapped.shape[0], 2**26 // max(1, mapped[0].nbytes)))
    return da.from_array(_NpyFile(name, mapped.shape, mapped.dtype), chunks=(block, *mapped.shape[1:]),
                         asarray=True, fancy=False)


class _NpyFile:
    """An array-like over an ``.npy`` file that maps it afresh wherever it is sliced, so a
    dask graph ships a path, not the data."""

    def __init__(self, path: str, shape: tuple[int, ...], dtype: np.dtype):
        self.path, self.shape, self.dtype, self.ndim = path, tuple(shape), np.dtype(dtype), len(shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r", allow_pickle=False)[index])


def trace_to_zarr(
    network: Network,
    x: Any,
    output: str | os.PathLike[str],
    *,
    scheduler: str | None = None,
    **options: Any,
) -> dict[str, tuple[int, ...]]:
    """Compute :func:`trace_dask` on the cluster at ``scheduler`` (``None``: the current
    client) and write it as the Zarr store ``output``, one array per trace key; atomically
    (a temporary store beside ``output``, renamed when every block is written). The input's
    values are checked on the cluster first (:func:`check_input`), so a bad input leaves
    nothing behind. Returns each key's shape."""
    import dask.array as da
    import zarr
    from distributed import Client

    from .atomic import atomic_path

    arrays = trace_dask(network, x, **options)
    client = Client(scheduler, timeout=CONNECT_TIMEOUT) if scheduler else None
    try:
        # Input errors first, before any block is written: a failed store returns while other
        # workers may still be writing blocks into the temporary store it then removes.
        check_input(x, **{k: options[k] for k in ("samples_per_block", "input_name", "integer_ids")
                          if k in options})
        with atomic_path(output, directory=True) as tmp:
            root = zarr.open_group(str(tmp), mode="w")
            targets = []
            for key, array in arrays.items():
                chunks = tuple(c[0] for c in array.chunks)
                targets.append(root.create_array(key, shape=array.shape, dtype=array.dtype,
                                                 chunks=chunks))
            da.store(list(arrays.values()), targets, lock=False)
    finally:
        if client is not None:
            client.close()
    return {key: tuple(a.shape) for key, a in arrays.items()}
