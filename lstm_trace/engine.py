"""The engine's driver: replays a network's canonical cells over sequences, recording every gate.

Roles, as in Keras and Flax: a *cell* knows one step (its equations in
:class:`~lstm_trace.network.Cell`, its NumPy step loop in :mod:`lstm_trace.step_loops`, the
reference); a *kernel* owns a whole sequence of one direction for speed
(:mod:`lstm_trace.kernels`, tested against those loops); this module is the *driver*:
:func:`run_direction` owns time, direction, masks and initial states and picks a kernel or
the loops, :func:`run_layer` composes one or two directions into a layer (Bidirectional
merge, Keras's returned sequence), and :func:`run` / :func:`run_chunk` walk a
:class:`~lstm_trace.network.Network` (upstream layers, wired initial states, chunks of
samples and steps carrying states).

Every recorded array is indexed by *input position*: for a reversed direction the value
at ``t`` is the state right after consuming ``x[t]``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from . import step_loops
from .kernels import sequence_kernel
from .keys import trace_key
from .layers import BranchNotTaken, LayerReplayError, UpstreamLayer
from .network import Cell, Direction, Network, RecurrentLayer
from .trace import Trace, TracedLayer

MERGE_MODES = ("concat", "sum", "mul", "ave", None)


class TraceError(ValueError):
    """The input or options do not fit the network (shape, layer name, initial state)."""


@dataclass
class DirectionResult:
    """Recorded quantities of one direction (input-position order) and its final states."""

    arrays: dict[str, np.ndarray]
    final_hidden: np.ndarray
    final_cell: np.ndarray | None


def run_direction(
    cell: Cell,
    x: np.ndarray,
    *,
    reverse: bool = False,
    mask: np.ndarray | None = None,
    initial_hidden: np.ndarray | None = None,
    initial_cell: np.ndarray | None = None,
) -> DirectionResult:
    """Replay one cell over ``x`` ``(batch, steps, features)``; ``cell`` and ``x`` share a dtype.

    On a masked step (``mask[b, t]`` false) the states carry over unchanged, as in Keras;
    the gates recorded there are 0.
    """
    batch, steps, _ = x.shape
    dtype = x.dtype
    units = cell.units
    h = _initial(initial_hidden, batch, cell.state_size, dtype)
    c = _initial(initial_cell, batch, units, dtype) if cell.kind == "lstm" else None
    kernel = sequence_kernel(cell, dtype, batch, steps)
    if kernel is not None:  # compiled whole-sequence kernel: gates 0 on masked steps itself
        out, h, c_final = kernel(x, mask, h, c, reverse)
        if mask is not None:
            out["mask"] = mask.copy()
        return DirectionResult(out, h, c_final)
    out, h, c_final = step_loops.run_sequence(cell, x, mask, h, c, reverse)
    if mask is not None:
        skipped = ~mask.astype(bool)
        for q in out:
            if q not in ("hidden", "cell"):
                out[q][skipped] = 0  # assigned, not multiplied: no -0.0 from negative gates
        out["mask"] = mask.copy()
    return DirectionResult(out, h, c_final)


def _initial(value: np.ndarray | None, batch: int, size: int, dtype: np.dtype) -> np.ndarray:
    if value is None:
        return np.zeros((batch, size), dtype=dtype)
    return np.ascontiguousarray(np.broadcast_to(value, (batch, size)), dtype=dtype)


@dataclass
class LayerResult:
    """What a recurrent layer hands to the next layer, and what it recorded."""

    #: ``None`` when the caller said no later layer needs it (``run_layer(need_output=False)``).
    output: np.ndarray | tuple[np.ndarray, np.ndarray] | None
    mask: np.ndarray | None
    directions: dict[str, DirectionResult]


def run_layer(
    layer: RecurrentLayer,
    x: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    initial_state: Mapping[str, np.ndarray] | None = None,
    seen: np.ndarray | None = None,
    need_output: bool = True,
    given: Mapping[str, tuple[DirectionResult, np.ndarray | None]] | None = None,
) -> LayerResult:
    """Run every direction of ``layer`` and merge their outputs as Keras does.

    A reversed direction's returned sequence is in processing order (Keras
    ``go_backwards``); ``Bidirectional`` flips its backward sequence back to input
    positions, zeroes masked steps, then merges with ``merge_mode``. ``seen`` ``(batch,)``
    continues a masked forward sequence: whether each sample had a used step before ``x``.
    Without ``need_output`` (no later layer reads it) the merged output is not built:
    ``LayerResult.output`` is ``None`` and only the recorded quantities and final states are.
    ``given`` maps a direction name to its result and returned output (``None`` without
    ``need_output``) computed elsewhere: that direction is not run (a reversed direction
    replayed beforehand over step chunks, :mod:`lstm_trace.step_chunks`).
    """
    initial_state = initial_state or {}
    results: dict[str, DirectionResult] = {}
    returned: list[np.ndarray] = []
    for prefix, direction in layer.trace_prefixes():
        cell = direction.cell
        if given is not None and direction.name in given:
            results[direction.name], hand_on = given[direction.name]
            if need_output:
                returned.append(hand_on)
            continue
        initial = tuple(initial_state.get(trace_key(prefix, state)) for state in ("hidden", "cell"))
        if getattr(cell, "conv", None) is not None:  # a ConvLSTM: its own step loop
            res = _run_conv_direction(layer, direction, x, mask, initial)
            results[direction.name] = res
            if need_output:
                returned.append(cell.conv.from_channels_last(
                    _returned_output(layer, direction, res, mask),
                    time_axis=layer.return_sequences))
            continue
        if x.ndim != 3 or x.shape[-1] != cell.input_size:
            raise TraceError(
                f"layer {layer.name!r} expects input (batch, steps, {cell.input_size}), "
                f"got {tuple(x.shape)}"
            )
        res = run_direction(
            cell, x, reverse=direction.reverse, mask=mask,
            initial_hidden=initial[0], initial_cell=initial[1],
        )
        results[direction.name] = res
        if need_output:
            returned.append(_returned_output(layer, direction, res, mask, seen))
    output: np.ndarray | tuple[np.ndarray, np.ndarray] | None
    if not need_output:
        output = None
    elif not layer.bidirectional:
        output = returned[0]
    else:
        output = merge(returned[0], returned[1], layer.merge_mode)
    out_mask = mask if layer.return_sequences else None
    return LayerResult(output, out_mask, results)


def _run_conv_direction(
    layer: RecurrentLayer, direction: Direction, x: np.ndarray, mask: np.ndarray | None,
    initial: tuple[np.ndarray | None, np.ndarray | None],
) -> DirectionResult:
    """One direction of a ConvLSTM layer (:mod:`lstm_trace.conv_lstm`), masks as in Keras."""
    from .conv_lstm import run_conv_lstm

    try:
        arrays, h, c = run_conv_lstm(direction.cell, x, reverse=direction.reverse, mask=mask,
                                     initial_hidden=initial[0], initial_cell=initial[1])
    except ValueError as err:
        raise TraceError(f"layer {layer.name!r} {err}") from None
    if mask is not None:
        skipped = ~mask.astype(bool)
        for q in arrays:
            if q not in ("hidden", "cell"):
                arrays[q][skipped] = 0
        arrays["mask"] = mask.copy()
    return DirectionResult(arrays, h, c)


def _returned_output(
    layer: RecurrentLayer, direction: Direction, res: DirectionResult, mask: np.ndarray | None,
    seen_before: np.ndarray | None = None,
) -> np.ndarray:
    """What the layer hands on for one direction, in Keras's order and with Keras's zeros.

    On a masked step Keras repeats the previous *output*, starting from zeros: that is the
    carried state, except before the first used step, where it is 0 even when an initial
    state was given. ``zero_output_for_mask`` (forced by ``Bidirectional``) gives 0 on
    every masked step. A reversed direction returns its sequence in processing order,
    except for a ``StackedRNNCells`` cell, whose outputs the next cell consumes step by step.
    """
    seen = None
    if mask is not None and not layer.feeds_stacked_cell:
        order = mask[:, ::-1] if direction.reverse else mask
        seen = np.logical_or.accumulate(order, axis=1)
        seen = seen[:, ::-1] if direction.reverse else seen
        if seen_before is not None:
            seen = seen | seen_before[:, None]
    if not layer.return_sequences:
        if seen is None:
            return res.final_hidden
        return res.final_hidden * _over_units(seen.any(axis=1), res.final_hidden.ndim)
    seq = res.arrays["hidden"]
    if seen is not None:
        zero_masked = layer.bidirectional or layer.zero_output_for_mask
        seq = seq * _over_units(mask if zero_masked else seen, seq.ndim)
    if layer.bidirectional and direction.name == "backward":
        # Bidirectional flips the backward output back to input positions before merging.
        return seq if direction.reverse else seq[:, ::-1]
    if layer.feeds_stacked_cell:
        return seq
    return seq[:, ::-1] if direction.reverse else seq


def _over_units(mask: np.ndarray, ndim: int) -> np.ndarray:
    """``mask`` with trailing axes added to broadcast over an ``ndim`` array (units, a
    ConvLSTM's grid positions and filters)."""
    return mask.reshape(mask.shape + (1,) * (ndim - mask.ndim))


def merge(
    a: np.ndarray, b: np.ndarray, mode: str | None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Combine the two directions' outputs like Keras ``Bidirectional(merge_mode=...)``."""
    if mode == "concat":
        return np.concatenate([a, b], axis=-1)
    if mode == "sum":
        return a + b
    if mode == "mul":
        return a * b
    if mode == "ave":
        return (a + b) / a.dtype.type(2)
    if mode is None:
        return a, b
    raise ValueError(f"unknown merge_mode {mode!r} (expected one of {MERGE_MODES})")


@dataclass
class ReplayPlan:
    """Everything about a replay that does not depend on the input: made once, run per chunk.

    ``layers`` are the network's layers with every recurrent cell already cast to ``dtype``;
    ``start``/``stop`` bound the layers replayed; ``wanted`` the recurrent layers recorded.
    """

    network: Network
    layers: list
    wanted: set[str]
    explicit: bool
    start: int
    stop: int
    layer_input: bool
    initial_state: dict[str, np.ndarray]
    dtype: np.dtype

    def prepare_input(
        self, x: np.ndarray | Mapping[str, np.ndarray]
    ) -> np.ndarray | dict[str, np.ndarray]:
        """``x`` as the engine takes it: floats cast to ``dtype``, a single sequence made batch 1.

        A network with an ``input_adapter`` (ONNX graph inputs) takes ``x`` as its framework
        is fed, or a mapping of input names to arrays; the adapter checks them and names the
        engine's sources.
        """
        if self.network.input_adapter is not None and not self.layer_input:
            return self.network.input_adapter.feeds(x, self.dtype)
        x = np.asarray(x)
        integer_input = x.dtype.kind in "iu"
        if not integer_input:
            x = x.astype(self.dtype, copy=False)
        if x.ndim == 2 and not integer_input or x.ndim == 1 and integer_input:
            x = x[None]
        return x


@dataclass
class Carry:
    """What one chunk of steps hands to the next: the states every replayed direction ended
    in (``<prefix>/hidden``, ``<prefix>/cell`` by layer name) and, for masked layers, which
    samples have had a used step so far (Keras outputs 0 on masked steps before that)."""

    states: dict[str, dict[str, np.ndarray]]
    seen: dict[str, np.ndarray]


def plan_replay(
    network: Network,
    *,
    layers: Iterable[str] | None = None,
    layer_input: bool = False,
    initial_state: Mapping[str, np.ndarray] | None = None,
    dtype: str | np.dtype = "float32",
) -> ReplayPlan:
    """Check the options of :func:`run` against ``network`` and prepare the layers to replay."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TraceError(f"--dtype must be a float type, got {dtype}")
    if not network.recurrent_layers:
        raise TraceError("the model has no recurrent layer to trace")
    wanted = _select(network, layers)
    positions = [i for i, layer in enumerate(network.layers) if layer.name in wanted]
    initial_state = dict(initial_state or {})
    _check_initial_state(network, initial_state)
    cast = [
        replace(layer, directions=[Direction(d.name, d.cell.astype(dtype), d.reverse)
                                   for d in layer.directions])
        if isinstance(layer, RecurrentLayer) else layer
        for layer in network.layers
    ]
    return ReplayPlan(
        network=network, layers=cast, wanted=wanted, explicit=bool(layers),
        start=positions[0] if layer_input else 0, stop=positions[-1], layer_input=layer_input,
        initial_state=initial_state, dtype=dtype,
    )


def run(
    network: Network,
    x: np.ndarray,
    *,
    layers: Iterable[str] | None = None,
    layer_input: bool = False,
    initial_state: Mapping[str, np.ndarray] | None = None,
    dtype: str | np.dtype = "float32",
) -> Trace:
    """Replay ``x`` through ``network`` and record the selected recurrent layers.

    ``x`` is ``(batch, steps, features)`` (or ``(steps, features)``, batch 1), or integer
    token ids ``(batch, steps)`` for a model that starts with an Embedding. ``layers``
    names the recurrent layers to record (default: all that ``x`` reaches: in a model
    with several inputs, ``x`` is the first one). Layers after the last recorded one are
    not run. With ``layer_input`` ``x`` is the first recorded layer's own input.
    ``initial_state`` maps ``<layer>[/<direction>]/hidden`` (and ``/cell``) to
    ``(batch, units)`` or ``(units,)`` arrays.

    For inputs too large for memory, :func:`lstm_trace.streaming.trace_chunks` runs the
    same replay in chunks of samples and steps.
    """
    plan = plan_replay(network, layers=layers, layer_input=layer_input,
                       initial_state=initial_state, dtype=dtype)
    prepared = plan.prepare_input(x)
    if isinstance(prepared, np.ndarray):
        check_initial_state_batch(plan.initial_state, prepared.shape[0])
    trace, _ = run_chunk(plan, prepared)
    return trace


#: Results of directions computed beforehand, by layer name and direction name: each a
#: :class:`DirectionResult` of the chunk's steps and the direction's returned output there.
Given = Mapping[str, Mapping[str, tuple[DirectionResult, np.ndarray | None]]]


def run_chunk(
    plan: ReplayPlan, x: np.ndarray, carry: Carry | None = None, *, given: Given | None = None
) -> tuple[Trace, Carry]:
    """Replay one chunk ``x`` (prepared by :meth:`ReplayPlan.prepare_input`) and record it.

    Without ``carry`` the chunk starts the sequences (initial states as given or wired in
    the model); with the :class:`Carry` of the chunk of steps just before, it continues
    them, so running the steps in consecutive chunks records exactly what one run records.
    Only forward directions can continue (a reversed one starts at the last step): the
    results of reversed directions over these steps, computed beforehand from the end
    (:mod:`lstm_trace.step_chunks`), come in ``given`` and are not run again.
    """
    walk = _walk_chunk(plan, x, carry, given, plan.stop + 1)
    network = plan.network
    traced, not_taken = walk.traced, walk.not_taken
    missing = [name for name in plan.wanted if name not in {t.name for t in traced}]
    if missing and not plan.explicit and traced:
        # A model with several inputs: trace what the given input reaches.
        missing = []
    if missing and all(name in not_taken for name in missing):
        raise TraceError("; ".join(f"layer {name!r} does not run for this input: it lies in "
                                   f"{not_taken[name]}" for name in sorted(missing)))
    if missing:
        raise TraceError(
            f"layer {', '.join(map(repr, missing))} is not reached from the given input; "
            "trace it on its own with --layer NAME --layer-input"
        )
    order = {layer.name: i for i, layer in enumerate(network.layers)}
    traced.sort(key=lambda t: order[t.name])
    return Trace(walk.arrays, traced), walk.carry


def layer_input_chunk(
    plan: ReplayPlan, index: int, x: np.ndarray, carry: Carry | None = None, *,
    given: Given | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray | None] | None, Carry]:
    """The input and mask ``plan.layers[index]`` receives for the chunk ``x``: the layers
    before it replayed as :func:`run_chunk` does (``None``: the input does not reach it)."""
    walk = _walk_chunk(plan, x, carry, given, index)
    layer = plan.layers[index]
    sources = plan.network.sources(index) or ("",)
    if any(source not in walk.values for source in sources):
        return None, walk.carry
    if len(sources) != 1:
        raise TraceError(f"recurrent layer {layer.name!r} has {len(sources)} inputs")
    return walk.values[sources[0]], walk.carry


@dataclass
class _Walk:
    """What replaying a chunk through some layers left: outputs by layer name, recorded
    arrays, the layers recorded, the carry for the next chunk, and the layers in a model
    branch this input does not take (with why)."""

    values: dict[str, tuple[np.ndarray | tuple, np.ndarray | None]]
    arrays: dict[str, np.ndarray]
    traced: list[TracedLayer]
    carry: Carry
    not_taken: dict[str, str]


def _walk_chunk(
    plan: ReplayPlan, x: np.ndarray, carry: Carry | None, given: Given | None, end: int
) -> _Walk:
    """Replay layers ``plan.start`` up to (not including) ``end`` on the chunk ``x``.

    Every replayed layer's output is built except the last replayed one's when ``end`` is
    past ``plan.stop`` (nothing reads it)."""
    network = plan.network
    dtype = plan.dtype
    start, stop = plan.start, plan.stop
    # Outputs by layer name ("" is the model input), each with its mask.
    values: dict[str, tuple[np.ndarray | tuple, np.ndarray | None]] = {}
    if isinstance(x, Mapping):
        # Named inputs fed as the framework feeds them (ONNX graph inputs).
        values.update((k, (v, None)) for k, v in x.items())
    elif plan.layer_input:
        for source in network.sources(start) or ("",):
            values[source] = (x, None)
    else:
        values[""] = (x, None)
    arrays: dict[str, np.ndarray] = {}
    traced: list[TracedLayer] = []
    carried = Carry({}, {})
    not_taken: dict[str, str] = {}  # layers in a model branch this input does not take: why
    given = given or {}
    for index in range(start, min(end, stop + 1)):
        layer = plan.layers[index]
        sources = network.sources(index) or ("",)
        if any(source not in values for source in sources):
            why = next((not_taken[s] for s in sources if s in not_taken), None)
            if why is not None:
                not_taken[layer.name] = why
            continue  # on a branch the given input does not reach
        inputs = [values[source] for source in sources]
        if isinstance(layer, UpstreamLayer):
            try:
                values[layer.name] = _apply_upstream(layer, inputs, dtype)
            except BranchNotTaken as err:
                not_taken[layer.name] = str(err)
            continue
        if len(inputs) != 1:
            raise TraceError(f"recurrent layer {layer.name!r} has {len(inputs)} inputs")
        lx, mask = inputs[0]
        check_float_input(layer, lx)
        if carry is None:
            state = _wired_initial_state(layer, plan.initial_state, values)
            seen = None
        else:
            state, seen = carry.states[layer.name], carry.seen.get(layer.name)
        # The last replayed layer's merged output is read by no one: not built (it is a copy
        # of whole sequences, as costly as a masked layer's step loop at small sizes).
        result = run_layer(layer, lx, mask=mask, initial_state=state, seen=seen,
                           need_output=index < stop or end <= stop, given=given.get(layer.name))
        carried.states[layer.name] = {
            trace_key(prefix, q): final
            for prefix, direction in layer.trace_prefixes()
            for q, final in (("hidden", result.directions[direction.name].final_hidden),
                             ("cell", result.directions[direction.name].final_cell))
            if final is not None
        }
        if mask is not None:
            used = mask.any(axis=1)
            carried.seen[layer.name] = used if seen is None else seen | used
        if layer.name in plan.wanted:
            for prefix, direction in layer.trace_prefixes():
                for q, arr in result.directions[direction.name].arrays.items():
                    arrays[trace_key(prefix, q)] = arr
            traced.append(TracedLayer.from_layer(layer, masked=mask is not None))
        if result.output is not None:
            for k, value in enumerate(_keras_outputs(layer, result)):
                values[f"{layer.name}:{k}" if k else layer.name] = value
    return _Walk(values, arrays, traced, carried, not_taken)


def check_float_input(layer: RecurrentLayer, x: np.ndarray) -> None:
    """A recurrent layer takes float features, never token ids."""
    if x.dtype.kind != "f":
        raise TraceError(
            f"layer {layer.name!r} needs float features but the input holds integers; "
            "integer token ids need a model that starts with an Embedding"
        )


def _keras_outputs(
    layer: RecurrentLayer, result: LayerResult
) -> list[tuple[np.ndarray | tuple, np.ndarray | None]]:
    """The layer's outputs as Keras numbers them, each with its mask.

    ``[output]`` (``[forward, backward]`` for ``merge_mode=None``), then the final states
    Keras returns with ``return_state``: ``hidden`` (and ``cell``) of each direction.
    """
    if isinstance(result.output, tuple):
        outputs = [(part, result.mask) for part in result.output]
    else:
        outputs = [(result.output, result.mask)]
    for direction in layer.directions:
        res = result.directions[direction.name]
        outputs.append((res.final_hidden, None))
        if res.final_cell is not None:
            outputs.append((res.final_cell, None))
    return outputs


def _wired_initial_state(
    layer: RecurrentLayer, given: Mapping[str, np.ndarray], values: Mapping[str, tuple]
) -> Mapping[str, np.ndarray]:
    """Initial states: those given for this layer, else those the model wires in, if reached."""
    prefixes = layer.trace_prefixes()
    if not layer.initial_state_from or any(
        key.startswith(f"{prefix}/") for key in given for prefix, _ in prefixes
    ):
        return given
    keys = [trace_key(prefix, q) for prefix, d in prefixes
            for q in (("hidden", "cell") if d.cell.kind == "lstm" else ("hidden",))]
    missing = [src for src in layer.initial_state_from if src not in values]
    if missing:
        producers = sorted({src.split(":")[0] or "the model input" for src in missing})
        raise TraceError(
            f"layer {layer.name!r} starts from states computed by {', '.join(producers)} "
            "(Keras initial_state=...), which the given input does not reach; pass them "
            f"with --initial-state FILE.npz (keys {', '.join(keys)})"
        )
    if len(keys) != len(layer.initial_state_from):
        raise TraceError(
            f"layer {layer.name!r} gets {len(layer.initial_state_from)} initial states from "
            f"the model but needs {len(keys)} ({', '.join(keys)})"
        )
    return {**given, **{key: values[src][0] for key, src in zip(keys, layer.initial_state_from,
                                                                strict=True)}}


def _apply_upstream(
    layer: UpstreamLayer, inputs: list[tuple], dtype: np.dtype
) -> tuple[np.ndarray | tuple, np.ndarray | None]:
    try:
        if len(inputs) == 1:
            x, mask = layer.apply(*inputs[0])
        else:
            x, mask = layer.apply_many([v for v, _ in inputs], [m for _, m in inputs])
    except LayerReplayError:
        raise
    except ValueError as err:
        raise TraceError(f"layer {layer.name!r} ({layer.class_name}): {err}") from None
    if x.dtype.kind == "f" and x.dtype != dtype:
        x = x.astype(dtype)
    return x, mask


def _select(network: Network, layers: Iterable[str] | None) -> set[str]:
    names = [layer.name for layer in network.recurrent_layers]
    if layers is None:
        return set(names)
    wanted = set(layers)
    if not wanted:
        return set(names)
    unknown = sorted(wanted - set(names))
    if unknown:
        raise TraceError(
            f"no recurrent layer named {', '.join(map(repr, unknown))}; "
            f"the model's recurrent layers are: {', '.join(names)}"
        )
    return wanted


def check_initial_state_batch(state: Mapping[str, np.ndarray], batch: int) -> None:
    """Each initial state is one row for every sample, ``(batch, units)``, or one for all."""
    for key, value in state.items():
        rows = np.shape(value)[0] if np.ndim(value) == 2 else 1
        if rows not in (1, batch):
            raise TraceError(
                f"initial state {key!r} has {rows} rows but INPUT has {batch} samples; give "
                "one row per sample, or a single row for all"
            )


def _check_initial_state(network: Network, state: Mapping[str, np.ndarray]) -> None:
    sizes: dict[str, int] = {}
    for layer in network.recurrent_layers:
        for prefix, direction in layer.trace_prefixes():
            sizes[trace_key(prefix, "hidden")] = direction.cell.state_size
            if direction.cell.kind == "lstm":
                sizes[trace_key(prefix, "cell")] = direction.cell.units
    for key, value in state.items():
        if key not in sizes:
            raise TraceError(
                f"initial state key {key!r} matches no layer state; expected keys like "
                f"{', '.join(sorted(sizes)[:4])}"
            )
        if np.shape(value)[-1:] != (sizes[key],) or np.ndim(value) > 2:
            raise TraceError(
                f"initial state {key!r} must be (batch, {sizes[key]}) or ({sizes[key]},), "
                f"got {np.shape(value)}"
            )
