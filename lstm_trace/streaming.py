"""Traces of any size: the replay run in chunks of samples and of steps.

:func:`trace_chunks` runs the same replay as :func:`lstm_trace.engine.run`, one chunk at a
time, and yields :class:`TraceChunk` objects: the trace of samples ``[s0, s1)`` and steps
``[t0, t1)``. Samples are independent, so a block of samples is a replay of its own. Within
a block the steps run in consecutive chunks, each starting from the states (``h``, ``c``)
every replayed direction ended the previous chunk in, and from which samples had a used
step so far (for masks): the arrays equal those of one replay of the whole input.

A network streams in step chunks when every replayed layer works step by step: recurrent
layers, and upstream layers that map each step on its own (Embedding, Masking, Dense,
TimeDistributed, Activation, normalization over features, elementwise merges...). A
**reversed direction** (``Bidirectional``, ``go_backwards``) needs the last step first: it
runs over the step chunks from the end in a pass of its own, its records spilled to a
temporary file that the forward pass reads back (:mod:`lstm_trace.step_chunks`).
Convolutions and pooling over time, reshapes, states handed from one layer to another
(``return_state`` → ``initial_state``) and a reversed ConvLSTM are chunked **by samples
only**: each chunk holds whole sequences and memory grows with the sequence length (not
with the number of samples). :attr:`TraceSource.step_chunked` says which.

Chunk sizes come from a memory budget (:data:`DEFAULT_BUDGET` bytes of recorded arrays
per chunk) unless ``batch_size`` / ``chunk_steps`` are given.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import layers as L
from .engine import ReplayPlan, check_initial_state_batch, plan_replay, run_chunk
from .errors import OptionError
from .inputs import InputError
from .network import Network, RecurrentLayer
from .step_chunks import block_chunks, pass_count
from .trace import Trace, TracedLayer

#: Bytes of recorded arrays one chunk may hold when no size is given.
DEFAULT_BUDGET = 24 * 2**20
#: The fewest steps a step chunk has (fewer make the per-chunk overhead show).
MIN_CHUNK_STEPS = 64


@dataclass(frozen=True)
class TraceChunk:
    """The trace of samples ``[samples[0], samples[1])`` and steps ``[steps[0], steps[1])``.

    ``trace``'s arrays are ``(s1 - s0, t1 - t0, units)`` (``mask`` ``(s1 - s0, t1 - t0)``).
    """

    samples: tuple[int, int]
    steps: tuple[int, int]
    trace: Trace

    def step_counts(self) -> dict[str, int]:
        """Each traced layer's step count (:meth:`Trace.step_counts`)."""
        return self.trace.step_counts()

    @property
    def cells(self) -> int:
        """Sample-steps in this chunk (the unit of progress)."""
        return (self.samples[1] - self.samples[0]) * (self.steps[1] - self.steps[0])


@dataclass(frozen=True)
class KeyInfo:
    """Shape and dtype of one trace key over the whole input."""

    shape: tuple[int, ...]
    dtype: np.dtype


@dataclass
class TraceSource:
    """An iterable of :class:`TraceChunk` covering every sample and step of an input.

    Chunks come sample block by sample block, and within a block in step order. The
    metadata (``layers``, ``keys``) is known before the first chunk is written: the first
    chunk is computed on first access and handed out again by the iteration.
    """

    batch: int
    steps: int
    batch_size: int
    chunk_steps: int
    step_chunked: bool
    _make: Callable[[], Iterator[TraceChunk]] = field(repr=False)
    _first: TraceChunk | None = field(default=None, repr=False)
    _iterating: bool = field(default=False, repr=False)
    #: The first chunk's layers, key shapes and step counts (kept after it is handed out).
    _meta: tuple[tuple[TracedLayer, ...], dict[str, KeyInfo], dict[str, int]] | None = field(
        default=None, repr=False)
    #: Called with each chunk as it is handed out (progress bars).
    on_chunk: Callable[[TraceChunk], None] | None = field(default=None, repr=False)
    #: Passes over the input: 1, plus the backward (and input-spilling) passes of reversed
    #: directions when the steps are chunked (:func:`lstm_trace.step_chunks.pass_count`).
    passes: int = 1
    #: Called with the sample-steps each chunk of those extra passes covered.
    on_work: Callable[[int], None] | None = field(default=None, repr=False)

    def _peek(self) -> TraceChunk:
        if self._first is None:
            self._iter = self._make()
            self._first = next(self._iter)
            if not self.step_chunked:
                # A layer before the traced one may change the step count (pooling, strides,
                # padding, cropping): the trace has the steps of the first chunk, not INPUT's.
                self.steps = self._first.steps[1]
            self._describe(self._first.trace)
        return self._first

    def _describe(self, first: Trace) -> None:
        """Keep what the first chunk says about the whole trace, so that asking again after
        the iteration (the CLI's ``wrote`` line) does not replay the first chunk again."""
        # Unchunked in steps, each key has its own layer's steps (a seq2seq decoder's, or a
        # layer's after a pooling one, differ from the others').
        self._meta = (first.layers, {
            key: KeyInfo((self.batch, self.steps if self.step_chunked else a.shape[1],
                          *a.shape[2:]), a.dtype)
            for key, a in first.items()
        }, first.step_counts())

    def _metadata(self) -> tuple[tuple[TracedLayer, ...], dict[str, KeyInfo], dict[str, int]]:
        if self._meta is None:
            self._peek()
        assert self._meta is not None
        return self._meta

    @property
    def layers(self) -> tuple[TracedLayer, ...]:
        return self._metadata()[0]

    @property
    def keys(self) -> dict[str, KeyInfo]:
        """Every trace key with its full shape ``(batch, steps, units)`` and dtype, in trace order."""
        return dict(self._metadata()[1])

    def step_counts(self) -> dict[str, int]:
        """Each traced layer's step count (:meth:`Trace.step_counts`)."""
        return dict(self._metadata()[2])

    @property
    def cells(self) -> int:
        """Sample-steps in the whole input."""
        return self.batch * self.steps

    @property
    def single_chunk(self) -> bool:
        """Whether one chunk holds the whole trace."""
        return self.batch_size >= self.batch and self.chunk_steps >= self.steps

    def shapes(self) -> dict[str, np.ndarray]:
        """Each key mapped to a read-only array of its full shape and dtype that holds no
        memory (for code that only asks a trace for shapes)."""
        return {key: np.broadcast_to(np.zeros((), k.dtype), k.shape) for key, k in self.keys.items()}

    def __iter__(self) -> Iterator[TraceChunk]:
        if self._iterating:
            raise RuntimeError("a TraceSource can be iterated once")
        first = self._peek()
        self._iterating = True
        self._first = None
        self._emit(first)
        yield first
        for chunk in self._iter:
            self._emit(chunk)
            yield chunk

    def close(self) -> None:
        """Stop the replay and release what it holds now (the spill files of reversed
        directions), for a writer that fails or stops early; a source that is dropped does
        it when it is garbage-collected. (Explicit, not in a ``finally`` of ``__iter__``:
        clean-up run by the garbage collector would swallow a Ctrl-C landing in it.)"""
        self._first = None
        close = getattr(getattr(self, "_iter", None), "close", None)
        if close is not None:
            close()

    def _emit(self, chunk: TraceChunk) -> None:
        if self.on_chunk is not None:
            self.on_chunk(chunk)

    def _work(self, cells: int) -> None:
        if self.on_work is not None:
            self.on_work(cells)

    def to_trace(self) -> Trace:
        """All chunks assembled into one in-memory :class:`Trace` (for small inputs and tests)."""
        info = self.keys
        layers = self.layers
        arrays = {key: np.empty(k.shape, k.dtype) for key, k in info.items()}
        for chunk in self:
            (s0, s1), (t0, t1) = chunk.samples, chunk.steps
            for key, a in chunk.trace.items():
                arrays[key][s0:s1, t0:t1] = a
        return Trace(arrays, layers)

    @classmethod
    def from_trace(cls, trace: Trace) -> TraceSource:
        """A one-chunk source of an in-memory trace (so every writer takes either)."""
        chunk = TraceChunk((0, trace.batch), (0, trace.steps), trace)
        return cls(trace.batch, trace.steps, trace.batch, trace.steps, False,
                   lambda: iter([chunk]))


def trace_chunks(
    network: Network,
    x: np.ndarray,
    *,
    layers: Sequence[str] | None = None,
    layer_input: bool = False,
    initial_state: Mapping[str, np.ndarray] | None = None,
    dtype: str | np.dtype = "float32",
    batch_size: int | None = None,
    chunk_steps: int | None = None,
    budget: int = DEFAULT_BUDGET,
    validate_chunk: Callable[[np.ndarray, int, int], np.ndarray] | None = None,
) -> TraceSource:
    """The trace of ``x`` as a :class:`TraceSource`; options as :func:`lstm_trace.engine.run`.

    ``x`` may be a memory-mapped array (:func:`open_npy`): each chunk reads only its own
    part and releases its pages afterwards. ``batch_size`` is the number of samples per
    chunk, ``chunk_steps`` the number of steps (only for networks that stream in steps:
    :func:`step_streaming_blocker`); both default to what fits ``budget`` bytes of
    recorded arrays. ``validate_chunk(x_chunk, s0, t0)`` checks each input chunk before
    it is replayed and returns the array to replay (the CLI checks for NaN there).

        >>> source = trace_chunks(model, x, batch_size=8)
        >>> for chunk in source:
        ...     chunk.samples, chunk.steps, chunk.trace["lstm/hidden"].shape
    """
    plan = plan_replay(network, layers=layers, layer_input=layer_input,
                       initial_state=initial_state, dtype=dtype)
    if network.input_adapter is not None and not layer_input:
        # Graph inputs in the framework's own layout (ONNX): one chunk.
        trace, _ = run_chunk(plan, plan.prepare_input(x))
        return TraceSource.from_trace(trace)
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    shape = x.shape
    integer_input = x.dtype.kind in "iu"
    single = len(shape) == (1 if integer_input else 2)
    batch = 1 if single else int(shape[0])
    steps = int(shape[0] if single else shape[1])
    check_initial_state_batch(plan.initial_state, batch)
    if batch_size is not None and batch_size < 1:
        raise OptionError(f"--batch-size must be 1 or more, got {batch_size}")
    if chunk_steps is not None and chunk_steps < 1:
        raise OptionError(f"chunk_steps must be 1 or more, got {chunk_steps}")
    blocker = step_streaming_blocker(plan)
    per_cell = _bytes_per_cell(plan)
    if batch_size is None:
        if blocker is None:
            batch_size = min(batch, 256)
        else:
            batch_size = max(1, min(batch, budget // max(1, per_cell * steps)))
    batch_size = min(batch_size, batch)
    if blocker is not None:
        chunk_steps = steps
    elif chunk_steps is None:
        fit = budget // max(1, per_cell * batch_size)
        chunk_steps = steps if fit >= steps else max(MIN_CHUNK_STEPS, fit)
    chunk_steps = min(chunk_steps, steps)

    def make() -> Iterator[TraceChunk]:
        for s0 in range(0, batch, batch_size):
            s1 = min(batch, s0 + batch_size)
            block_plan = _for_samples(plan, s0, s1, batch)

            def read(t0: int, t1: int, s0: int = s0, s1: int = s1, block_plan: ReplayPlan = block_plan):
                part = _input_part(x, single, s0, s1, t0, t1)
                _release(x)
                if validate_chunk is not None:
                    part = validate_chunk(part, s0, t0)
                return block_plan.prepare_input(part)

            blocks = block_chunks(block_plan, read, s1 - s0, steps, chunk_steps, source._work)
            with contextlib.closing(blocks) as chunks:
                for (t0, t1), trace in chunks:
                    # Unchunked in steps, the chunk covers the trace's own steps (fewer or more
                    # than INPUT's after a pooling, strided, padding or cropping layer).
                    traced = (t0, t1) if chunk_steps < steps else (0, trace.steps)
                    yield TraceChunk((s0, s1), traced, trace)

    step_chunked = blocker is None and chunk_steps < steps
    source = TraceSource(batch, steps, batch_size, chunk_steps, step_chunked, make,
                         passes=pass_count(plan) if step_chunked else 1)
    return source


def _input_part(x: Any, single: bool, s0: int, s1: int, t0: int, t1: int) -> np.ndarray:
    """Samples ``[s0, s1)`` and steps ``[t0, t1)`` of ``x``, as an in-memory batch."""
    part = x[None, t0:t1] if single else x[s0:s1, t0:t1]
    return np.array(part, copy=True) if isinstance(x, np.memmap) else np.asarray(part)


def _release(x: Any) -> None:
    """Drop the pages of a memory-mapped input from this process (they stay in the page cache)."""
    mapped = getattr(x, "_mmap", None)
    if isinstance(mapped, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(mmap.MADV_DONTNEED)


def _for_samples(plan: ReplayPlan, s0: int, s1: int, batch: int) -> ReplayPlan:
    """``plan`` with per-sample initial states cut to samples ``[s0, s1)``."""
    if not plan.initial_state or (s0, s1) == (0, batch):
        return plan
    cut = {
        key: (v[s0:s1] if np.ndim(v) == 2 and np.shape(v)[0] == batch and batch > 1 else v)
        for key, v in plan.initial_state.items()
    }
    return ReplayPlan(**{**plan.__dict__, "initial_state": cut})


def _bytes_per_cell(plan: ReplayPlan) -> int:
    """Bytes a chunk holds per sample-step: recorded arrays, plus the replay's own buffers."""
    itemsize = plan.dtype.itemsize
    total = 0
    for layer in plan.layers[plan.start:plan.stop + 1]:
        if not isinstance(layer, RecurrentLayer):
            continue
        for d in layer.directions:
            cell = d.cell
            width = cell.gate_count * cell.units + cell.state_size
            width += cell.units if cell.kind == "lstm" else 0
            total += width * itemsize * (2 if layer.name in plan.wanted else 1)
    return max(total, 1)


# ------------------------------------------------------------------ what streams in steps

def step_streaming_blocker(plan: ReplayPlan) -> str | None:
    """Why ``plan`` cannot run in chunks of steps (``None``: it can)."""
    network = plan.network
    for index in range(plan.start, plan.stop + 1):
        layer = plan.layers[index]
        sources = network.sources(index)
        if any(":" in source for source in sources):
            return f"layer {layer.name!r} takes the final states of another layer"
        if isinstance(layer, RecurrentLayer):
            for d in layer.directions:
                if d.reverse and getattr(d.cell, "conv", None) is not None:
                    return f"layer {layer.name!r} (a ConvLSTM) runs backward in time"
                if layer.bidirectional and d.reverse != (d.name == "backward"):
                    return f"layer {layer.name!r} runs its {d.name} direction the other way"
            if layer.initial_state_from:
                return f"layer {layer.name!r} starts from states computed by other layers"
            if not layer.return_sequences and index != plan.stop:
                return f"layer {layer.name!r} hands on only its last output"
            continue
        if not _step_local(layer):
            return f"layer {layer.name!r} ({layer.class_name}) mixes steps"
    return None


def _step_local(layer: Any) -> bool:
    """Whether an upstream layer maps each step on its own (so it can run on a step chunk)."""
    if isinstance(layer, (L.Identity, L.Embedding, L.Masking, L.Dense, L.Activation,
                          L.TimeDistributed)):
        return True
    if isinstance(layer, (L.BatchNormalization, L.LayerNormalization)):
        axes = (layer.axis,) if isinstance(layer.axis, int) else tuple(layer.axis)
        return all(a == -1 or a >= 2 for a in axes)
    if isinstance(layer, L.Merge):
        return layer.op != "concatenate" or layer.axis == -1 or layer.axis >= 2
    return False


# ------------------------------------------------------------------ memory-mapped .npy

def open_npy(path: str | os.PathLike[str]) -> np.memmap:
    """Memory-map the ``.npy`` file ``path`` read-only, after checking its header.

    The header's shape and dtype must fit in the file: a header declaring more data than
    the file holds is refused (:class:`~lstm_trace.inputs.InputError`, one line) before anything is mapped.
    Arrays of Python objects are refused (nothing is ever unpickled).
    """
    name = os.fspath(path)
    fmt = np.lib.format
    try:
        with open(name, "rb") as handle:
            version = fmt.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = fmt.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, fortran, dtype = fmt.read_array_header_2_0(handle)
            else:
                shape, fortran, dtype = fmt._read_array_header(handle, version)
            offset = handle.tell()
            size = os.fstat(handle.fileno()).st_size
    except Exception as err:  # numpy's header parser: ValueError, SyntaxError, TokenError...
        detail = (str(err).strip().splitlines() or [""])[0][:100]
        raise InputError(f"{name}: cannot read the .npy header ({type(err).__name__}: {detail})") from None
    if dtype.hasobject:
        raise InputError(
            f"{name}: holds Python objects (a pickled object array), which lstm-trace never "
            "loads; save a numeric array instead"
        )
    needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + needed > size:
        raise InputError(
            f"{name}: the .npy header declares shape {tuple(shape)} {dtype} ({needed:,} bytes) "
            f"but the file holds {max(0, size - offset):,} bytes after its header; "
            "the file is truncated or corrupt"
        )
    if needed == 0:
        return np.zeros(shape, dtype)  # type: ignore[return-value]
    return np.load(name, mmap_mode="r", allow_pickle=False)
