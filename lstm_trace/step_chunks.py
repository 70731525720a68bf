"""One block of samples replayed in chunks of steps, reversed directions included.

Forward directions run the chunks in order, each from the states the previous chunk
ended in (:func:`lstm_trace.engine.run_chunk` with a :class:`~lstm_trace.engine.Carry`).
A reversed direction (``Bidirectional``'s backward layer, ``go_backwards``) consumes the
last step first, so it runs in passes of its own before the forward one:

1. **Its input, chunk by chunk from the end.** When only step-local layers (Embedding,
   Masking, Dense...) come before it, they run again on each input chunk (the input is
   memory-mapped: reading chunk ``k`` from the end is cheap). When recurrent layers come
   before it, a forward pass over those layers writes the layer's input (and mask) to a
   spill file first, and the backward pass reads it back from there.
2. **The backward pass.** The chunks run from the last to the first, each reversed
   direction starting from the states it ended the later chunk in (the initial state
   for the last chunk), and from whether the sample had a used step later (Keras's zeros
   before a masked ``go_backwards`` sequence's first used step). Its recorded quantities
   (when the layer is traced) and what it hands on to the next layer (at the positions
   the next layer reads them: input positions for ``Bidirectional``, processing order
   for ``go_backwards``) go to a spill file: :class:`ReversedRecords`.
3. **The forward pass** runs every layer chunk by chunk as for a forward-only network;
   a reversed direction is not run again but read from its spill for the chunk's steps
   (``run_chunk(..., given=...)``), merged with the forward direction as in one replay.

Each layer with a reversed direction adds one backward pass and, when recurrent layers
come before it, one forward pass over those layers (a stack of ``n`` bidirectional
layers runs its forward directions up to ``n`` times). Spills are unnamed temporary
files in ``TMPDIR`` (:class:`~lstm_trace.writers._spill.SpillStore`: ``pwrite``/``preadv``,
the page cache holds them, not the process) that the operating system removes when they
are closed or the process ends in any way; they are closed as soon as a pass is done with
them, on error and on ``Ctrl-C``/SIGTERM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import numpy as np

from .engine import (
    Carry,
    DirectionResult,
    ReplayPlan,
    _returned_output,
    check_float_input,
    layer_input_chunk,
    run_chunk,
    run_layer,
)
from .keys import trace_key
from .network import Direction, RecurrentLayer
from .trace import Trace

#: ``read(t0, t1)``: steps ``[t0, t1)`` of the block's input, prepared for the engine.
ReadPart = Callable[[int, int], Any]
#: Called with the sample-steps each chunk of a backward or input-spilling pass covered.
Progress = Callable[[int], None]


def reversed_layers(plan: ReplayPlan) -> list[int]:
    """Indices of the replayed recurrent layers that have a reversed direction."""
    return [
        index for index in range(plan.start, plan.stop + 1)
        if isinstance(plan.layers[index], RecurrentLayer)
        and any(d.reverse for d in plan.layers[index].directions)
    ]


def pass_count(plan: ReplayPlan) -> int:
    """Passes over the steps of a block when they run in chunks: the forward one, one
    backward pass per layer with a reversed direction, and one forward pass spilling the
    input of each such layer that has recurrent layers before it."""
    return 1 + sum(2 if _recurrent_before(plan, index) else 1 for index in reversed_layers(plan))


def _recurrent_before(plan: ReplayPlan, index: int) -> bool:
    """Whether a recurrent layer is replayed before ``plan.layers[index]`` (then its input
    is spilled by a forward pass; else it is recomputed from INPUT chunk by chunk)."""
    return any(isinstance(other, RecurrentLayer) for other in plan.layers[plan.start:index])


def hands_on_in_processing_order(layer: RecurrentLayer, direction: Direction) -> bool:
    """Whether the sequence ``direction`` hands on is in processing order (mirrored input
    positions): a ``go_backwards`` layer's, not ``Bidirectional``'s backward one nor a
    stacked cell's (as :func:`lstm_trace.engine._returned_output`)."""
    if layer.bidirectional and direction.name == "backward":
        return not direction.reverse
    if layer.feeds_stacked_cell:
        return False
    return direction.reverse


def block_chunks(
    plan: ReplayPlan, read: ReadPart, samples: int, steps: int, chunk_steps: int,
    progress: Progress | None = None,
) -> Iterator[tuple[tuple[int, int], Trace]]:
    """The trace of one block of ``samples`` samples, chunk of steps by chunk of steps.

    ``plan`` is cut to the block (initial states); ``read(t0, t1)`` reads its input.
    Yields ``((t0, t1), trace)`` in step order. With one chunk of all steps (short inputs,
    and networks that do not stream in steps) it is one replay: no pass, no spill.
    ``progress`` is told the sample-steps of each chunk the passes before the forward one
    replay (the yielded chunks are the forward pass's progress).
    """
    if chunk_steps >= steps:
        trace, _ = run_chunk(plan, read(0, steps))
        yield (0, steps), trace
        return
    borders = [(t0, min(steps, t0 + chunk_steps)) for t0 in range(0, steps, chunk_steps)]
    spills: dict[str, ReversedRecords] = {}
    try:
        for index in reversed_layers(plan):
            records = _backward_pass(plan, index, read, borders, spills, samples, steps,
                                     progress or (lambda cells: None))
            if records is not None:
                spills[plan.layers[index].name] = records
        carry: Carry | None = None
        for t0, t1 in borders:
            given = {name: r.given(t0, t1) for name, r in spills.items()}
            trace, carry = run_chunk(plan, read(t0, t1), carry, given=given)
            yield (t0, t1), trace
    finally:
        for records in spills.values():
            records.close()


class ReversedRecords:
    """What the reversed directions of one layer computed over a block of samples, in a
    spill file: the recorded quantities (``record``) at input positions, what each hands
    on to the next layer (``hand_on``) at the positions the next layer reads, and the
    final states (in memory: one row per sample)."""

    def __init__(self, layer: RecurrentLayer, samples: int, steps: int, *, record: bool,
                 hand_on: bool):
        self.layer = layer
        self.samples, self.steps = samples, steps
        self.record, self.hand_on = record, hand_on
        self.directions = [d for d in layer.directions if d.reverse]
        self.finals: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
        self._quantities: dict[str, list[str]] = {}
        self._store: Any = None

    def _open(self, results: Mapping[str, DirectionResult], returned: Mapping[str, np.ndarray]) -> None:
        from .streaming import KeyInfo
        from .writers._spill import SpillStore

        keys: dict[str, KeyInfo] = {}
        for d in self.directions:
            arrays = results[d.name].arrays if self.record else {}
            self._quantities[d.name] = list(arrays)
            for q, a in arrays.items():
                keys[f"{d.name}/{q}"] = KeyInfo((self.samples, self.steps, *a.shape[2:]), a.dtype)
            if self.hand_on:
                a = returned[d.name]
                keys[f"{d.name}:returned"] = KeyInfo((self.samples, self.steps, *a.shape[2:]), a.dtype)
        self._store = SpillStore(keys, self.samples)

    def write(self, t0: int, t1: int, results: Mapping[str, DirectionResult],
              returned: Mapping[str, np.ndarray]) -> None:
        """Store the results of steps ``[t0, t1)`` (records) and the returned sequences."""
        if self._store is None:
            self._open(results, returned)
        for d in self.directions:
            for q in self._quantities[d.name]:
                self._store.write(f"{d.name}/{q}", 0, t0, results[d.name].arrays[q])
            if self.hand_on:
                at = self.steps - t1 if hands_on_in_processing_order(self.layer, d) else t0
                self._store.write(f"{d.name}:returned", 0, at, returned[d.name])

    def given(self, t0: int, t1: int, *, records: bool = True) -> dict[str, tuple[DirectionResult, Any]]:
        """Each reversed direction's result over steps ``[t0, t1)`` and the returned
        sequence the next layer reads there, for ``run_chunk(..., given=...)``."""
        out = {}
        span = ((0, self.samples), (t0, t1))
        for d in self.directions:
            arrays = ({q: self._store.read(f"{d.name}/{q}", *span) for q in self._quantities[d.name]}
                      if records else {})
            hidden, cell = self.finals[d.name]
            hand_on = self._store.read(f"{d.name}:returned", *span) if self.hand_on else None
            out[d.name] = (DirectionResult(arrays, hidden, cell), hand_on)
        return out

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None


class _CapturedInput:
    """A layer's input (and mask) over a block of samples, in a spill file."""

    def __init__(self, samples: int, steps: int, x: np.ndarray, mask: np.ndarray | None):
        from .streaming import KeyInfo
        from .writers._spill import SpillStore

        keys = {"x": KeyInfo((samples, steps, *x.shape[2:]), x.dtype)}
        if mask is not None:
            keys["mask"] = KeyInfo((samples, steps), np.dtype(bool))
        self.samples = samples
        self.masked = mask is not None
        self._store = SpillStore(keys, samples)

    def write(self, t0: int, x: np.ndarray, mask: np.ndarray | None) -> None:
        if (mask is not None) != self.masked:
            raise RuntimeError("a layer's input is masked in some step chunks only")
        self._store.write("x", 0, t0, x)
        if mask is not None:
            self._store.write("mask", 0, t0, mask.astype(bool, copy=False))

    def read(self, t0: int, t1: int) -> tuple[np.ndarray, np.ndarray | None]:
        span = ((0, self.samples), (t0, t1))
        return self._store.read("x", *span), self._store.read("mask", *span) if self.masked else None

    def close(self) -> None:
        self._store.close()


def _read_from_the_end(read: ReadPart, borders: list[tuple[int, int]], t0: int, t1: int) -> Any:
    """``read(t0, t1)`` in a backward pass. If reading fails (a NaN the input check found),
    the chunks before it are read first, in order: the error names the first bad value, as
    a forward-only replay's would, not the last."""
    try:
        return read(t0, t1)
    except Exception:
        for a, b in borders:
            if a >= t0:
                break
            read(a, b)
        raise


def _capture_input(
    plan: ReplayPlan, index: int, read: ReadPart, borders: list[tuple[int, int]],
    spills: Mapping[str, ReversedRecords], samples: int, steps: int, progress: Progress,
) -> _CapturedInput | None:
    """A forward pass over the layers before ``index``, storing the input it receives
    (``None``: the input does not reach the layer)."""
    carry: Carry | None = None
    captured: _CapturedInput | None = None
    try:
        for t0, t1 in borders:
            given = {name: r.given(t0, t1, records=False) for name, r in spills.items()}
            got, carry = layer_input_chunk(plan, index, read(t0, t1), carry, given=given)
            if got is None:
                return None
            x, mask = got
            if captured is None:
                captured = _CapturedInput(samples, steps, x, mask)
            captured.write(t0, x, mask)
            progress(samples * (t1 - t0))
    except BaseException:
        if captured is not None:
            captured.close()
        raise
    return captured


def _backward_pass(
    plan: ReplayPlan, index: int, read: ReadPart, borders: list[tuple[int, int]],
    spills: Mapping[str, ReversedRecords], samples: int, steps: int, progress: Progress,
) -> ReversedRecords | None:
    """Run the reversed directions of ``plan.layers[index]`` over the chunks from the last
    to the first, into a :class:`ReversedRecords` (``None``: the input does not reach it)."""
    layer: RecurrentLayer = plan.layers[index]
    backward = replace(layer, directions=[d for d in layer.directions if d.reverse])
    runs_before = _recurrent_before(plan, index)
    captured = (_capture_input(plan, index, read, borders, spills, samples, steps, progress)
                if runs_before else None)
    if runs_before and captured is None:
        return None
    records = ReversedRecords(layer, samples, steps, record=layer.name in plan.wanted,
                              hand_on=index < plan.stop)
    try:
        state: Mapping[str, np.ndarray] = plan.initial_state
        seen_after: np.ndarray | None = None  # a used step after the chunk, by sample
        result = None
        for t0, t1 in reversed(borders):
            if captured is not None:
                x, mask = captured.read(t0, t1)
            else:
                got, _ = layer_input_chunk(plan, index, _read_from_the_end(read, borders, t0, t1))
                if got is None:
                    records.close()
                    return None
                x, mask = got
            check_float_input(layer, x)
            result = run_layer(backward, x, mask=mask, initial_state=state, need_output=False)
            returned = {
                d.name: _returned_output(layer, d, result.directions[d.name], mask, seen_after)
                for d in backward.directions
            } if records.hand_on else {}
            records.write(t0, t1, result.directions, returned)
            progress(samples * (t1 - t0))
            state = {
                trace_key(prefix, q): final
                for prefix, d in backward.trace_prefixes()
                for q, final in (("hidden", result.directions[d.name].final_hidden),
                                 ("cell", result.directions[d.name].final_cell))
                if final is not None
            }
            if mask is not None:
                used = mask.any(axis=1)
                seen_after = used if seen_after is None else seen_after | used
        assert result is not None
        records.finals = {d.name: (result.directions[d.name].final_hidden,
                                   result.directions[d.name].final_cell)
                          for d in backward.directions}
    except BaseException:
        records.close()
        raise
    finally:
        if captured is not None:
            captured.close()
    return records
