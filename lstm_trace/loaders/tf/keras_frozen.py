"""The Keras layers of a frozen TF2 graph (``convert_variables_to_constants_v2``) as a Network.

Each recurrent loop is recognised by :mod:`.keras_loop`; this module lays the loops out as
Keras layers, with the names, directions and order the model had:

- **Names** are the loops' name scopes (``sequential/lstm/while``; tf_keras puts its LSTM and
  GRU loops under ``<layer>/PartitionedCall``). The layer is the last scope component, a
  ``Bidirectional`` wrapper the component above ``forward_<x>`` / ``backward_<x>``. Keras 3
  opens every layer's name scope twice (to build, then to call), so TensorFlow uniquifies
  the call scope: ``sequential_1/lstm_1/lstm_cell_1``. Such a graph is recognised by those
  scopes (:func:`_keras3_evidence`), and one ``_<n>`` is taken off each component
  (``lstm_1`` -> ``lstm``, ``lstm_1_1`` -> ``lstm_1``).
- **Direction**: a loop that unstacks ``ReverseV2(transpose(x))`` walks backwards
  (``go_backwards``, a Bidirectional's backward layer).
- **Order and inputs**: each layer's input (the tensor its loop's ``transpose`` reads) is
  followed back to the graph input or to another layer's output (``transpose`` of the
  stacked step outputs; a Bidirectional's ``concat``/``add``/``mul`` of its two directions),
  replaying on the way the layers lstm-trace knows from their ops: ``Masking``
  (``NotEqual``/``Any``/``SelectV2``, or tf_keras's ``Mul`` by the cast mask), ``Dense``
  (``Tensordot`` ``MatMul`` + ``BiasAdd`` + an activation), ``Embedding`` (``GatherV2`` of a
  constant). Anything else stops the walk with a layer lstm-trace cannot replay, and the
  layer after it needs ``--layer-input``.
"""

from __future__ import annotations

import re

import numpy as np

from ...layers import Dense, Embedding, Masking, Unsupported, UpstreamLayer
from ...network import Direction, Network, RecurrentLayer
from ..errors import LoadError
from ..protobuf_wire import get_message
from .keras_loop import KerasLoop, Loop, LoopError, find_loops, recognise
from .meta_graph import ACTIVATION_OPS, MetaGraph, Tensor, _Graph, _Node, tensor_array

_PASS = frozenset({"Identity", "Snapshot", "StopGradient"})
_CELL_SCOPE = re.compile(r"(?:^|/)([A-Za-z0-9_]*cell(?:_\d+)*)/")
_SUFFIX = re.compile(r"_\d+$")
_CALL = re.compile(r"^(?:Stateful)?PartitionedCall(?:_\d+)?$")
_MAX_WALK = 200


class _Walk:
    """Following tensors of the main graph (and of inlined call functions) back and forth."""

    def __init__(self, meta: MetaGraph) -> None:
        self.meta = meta
        self.constants: set[str] = set()  # the Const nodes read as weights of replayed layers

    def back(self, graph: _Graph, tensor: Tensor) -> tuple[_Graph, Tensor, _Node | None]:
        """Through identities and function arguments to the op that made ``tensor``."""
        for _ in range(_MAX_WALK):
            node = graph.nodes.get(tensor[0])
            if node is None:
                return graph, tensor, None
            if node.op in _PASS and node.inputs:
                tensor = node.inputs[0]
                continue
            if node.op == "_Arg":
                callers = self.meta.callers(graph.name)
                position = graph.args.get(node.name, -1)
                if len(callers) == 1 and 0 <= callers[0][2] + position < len(callers[0][1].inputs):
                    graph, tensor = callers[0][0], callers[0][1].inputs[callers[0][2] + position]
                    continue
            return graph, tensor, node
        return graph, tensor, None

    def users(self, graph: _Graph, tensor: Tensor, ops: set[str]) -> list[tuple[_Graph, _Node]]:
        """Consumers of ``tensor`` of the given ops, looking through identities."""
        found, todo, seen = [], [tensor], set()
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            for user in graph.users(t):
                if user.op in ops:
                    found.append((graph, user))
                elif user.op in _PASS:
                    todo.append((user.name, 0))
        return found

    def const(self, graph: _Graph, tensor: Tensor, depth: int = 0) -> np.ndarray | None:
        """The value of a constant (or a ``ConcatV2`` of constants: Tensordot's ``perm``)."""
        graph, tensor, node = self.back(graph, tensor)
        if node is not None and node.op == "ConcatV2" and len(node.inputs) > 1 and depth < 4:
            parts = [self.const(graph, t, depth + 1) for t in node.inputs]
            if any(p is None for p in parts) or parts[-1].size != 1:
                return None
            try:
                return np.concatenate(parts[:-1], axis=int(parts[-1].reshape(-1)[0]))
            except ValueError:
                return None
        if node is None or node.op != "Const":
            return None
        self.constants.add(node.name)
        value = get_message(node.attrs().get("value", {}), 8)
        try:
            return tensor_array(value) if value is not None else None
        except ValueError:
            return None


def _scope(meta: MetaGraph, loop: Loop) -> str:
    name = loop.name
    if loop.outer.name:  # a loop inside a called function: named after the call
        callers = meta.callers(loop.outer.name)
        if callers:
            name = f"{callers[0][1].name}/{name}"
    name = re.sub(r"/while(?:_\d+)?$", "", name)
    # Function calls inlined by the freezer name no layer: a serving signature's
    # StatefulPartitionedCall/..., tf_keras's <layer>/PartitionedCall/while.
    parts = [p for p in name.split("/") if not _CALL.match(p)]
    return "/".join(parts) or name


def _keras3_evidence(meta: MetaGraph, loop: Loop) -> bool:
    """Whether a loop's scopes are Keras 3's double-entered ones (``False``: tf_keras's, or
    cannot tell).

    Keras 3 builds, then calls, each layer under its name scope in the same graph, so every
    call scope is uniquified: the layer's (``tagger_1/encoder_1``) and the cell's inside the
    loop (``lstm_cell_1``; LSTM, GRU and SimpleRNN name their cells ``lstm_cell``...). tf_keras
    enters each once: its cells run under ``simple_rnn_cell`` or under no cell scope at all
    (the fused ``standard_lstm`` / ``standard_gru`` functions)."""
    prefix = "" if loop.body is not loop.outer else loop.name + "/"
    cells = {m.group(1) for n in loop.body.nodes if n.startswith(prefix)
             and (m := _CELL_SCOPE.search(n[len(prefix):]))}
    if not cells or any(not _SUFFIX.search(c) for c in cells):
        return False
    return all(_SUFFIX.search(c) for c in _scope(meta, loop).split("/"))


def _written_by_keras3(meta: MetaGraph, loops: list[Loop]) -> bool:
    """Keras 3 when some loop shows its scopes and no loop shows tf_keras's."""
    evidence = [_keras3_evidence(meta, loop) for loop in loops]
    return any(evidence) and all(evidence)


def _keras_name(component: str, keras3: bool) -> str:
    return _SUFFIX.sub("", component) if keras3 else component


class _Layer:
    """One Keras recurrent layer: its RecurrentLayer (several, ``<name>/cell_<k>``, for an
    ``RNN(StackedRNNCells)``), the tensor it reads and the sequence it returns."""

    def __init__(self, name: str, layer: RecurrentLayer, inputs: tuple[_Graph, Tensor],
                 output: tuple[_Graph, Tensor] | None, rest: list[RecurrentLayer] | None = None
                 ) -> None:
        self.name, self.layer, self.input, self.output = name, layer, inputs, output
        self.rest = rest or []

    @property
    def last(self) -> RecurrentLayer:
        """The RecurrentLayer whose output is the Keras layer's."""
        return self.rest[-1] if self.rest else self.layer


def keras_network(meta: MetaGraph, file: str, *, tf1_cells: bool,
                  weights: dict[str, tuple[int, ...]] | None = None) -> Network | None:
    """The Network of a frozen graph's Keras recurrent loops, or ``None`` when it has none
    (a TF1 graph, whose cells are found from their variables' names instead).

    ``tf1_cells``: the graph's constants name TF1 cells (``rnn/lstm_cell/kernel``); then
    loops that are not Keras cells are TF1 ``dynamic_rnn`` loops, not an error. ``weights``:
    the constants that were variables (name -> shape); those no replayed layer reads (a
    dense head after the last recurrent layer) are listed in ``Network.unexplained``.
    """
    loops = find_loops(meta)
    recognised: list[KerasLoop] = []
    refused: list[tuple[Loop, LoopError]] = []
    for loop in loops:
        try:
            recognised.append(recognise(meta, loop))
        except LoopError as err:
            refused.append((loop, err))
    if refused and (recognised or not tf1_cells):
        loop, err = refused[0]
        scope = _scope(meta, loop)
        layer = _keras_name(scope.rsplit("/", 1)[-1], _written_by_keras3(meta, [loop]))
        raise LoadError(f"{file}: the loop of layer {layer!r} ({scope}) is {err}; lstm-trace "
                        "reads the loops of Keras LSTM, GRU and SimpleRNN layers (with dropout "
                        "and recurrent_dropout 0)")
    if not recognised:
        return None
    walk = _Walk(meta)
    keras3 = _written_by_keras3(meta, [k.loop for k in recognised])
    directions: dict[str, list[tuple[str, KerasLoop, tuple[_Graph, Tensor], bool]]] = {}
    for k in recognised:
        scope = [_keras_name(c, keras3) for c in _scope(meta, k.loop).split("/")]
        graph, tensor, node = walk.back(*k.steps)
        reverse = False
        if node is not None and node.op == "ReverseV2":
            reverse = True
            graph, tensor, node = walk.back(graph, node.inputs[0])
        perm = walk.const(graph, node.inputs[1]) if node is not None and node.op == "Transpose" else None
        if perm is None or perm.tolist()[:2] != [1, 0]:
            raise LoadError(f"{file}: the loop of {'/'.join(scope)!r} does not read a batch-major "
                            "sequence through a transpose; lstm-trace reads Keras layers' loops")
        bidi = len(scope) >= 2 and re.match(r"^(forward|backward)_", scope[-1])
        key = "/".join(scope[:-1]) if bidi else "/".join(scope)
        direction = bidi.group(1) if bidi else "forward"
        source = walk.back(graph, node.inputs[0])
        directions.setdefault(key, []).append((direction, k, source[:2], reverse))
    layers = [_layer(walk, key, found, file) for key, found in directions.items()]
    _unique_names(layers)
    _wire_initial_states(walk, layers, directions, file)
    network = _assemble(walk, layers, keras3, file)
    used = walk.constants.union(*(k.constants for k in recognised))
    network.unexplained = [f"{name} {shape}" for name, shape in (weights or {}).items()
                           if name not in used]
    return network


def _zeros(walk: _Walk, graph: _Graph, tensor: Tensor) -> bool:
    """Whether a loop's initial state is zeros (``tf.zeros``: ``Fill(shape, 0)``, a zero
    constant, ``ZerosLike``), as for every Keras layer without ``initial_state``."""
    graph, tensor, node = walk.back(graph, tensor)
    if node is None:
        return False
    if node.op == "ZerosLike":
        return True
    if node.op == "Fill" and len(node.inputs) == 2:
        value = walk.const(graph, node.inputs[1])
        return value is not None and not value.any()
    value = walk.const(graph, tensor)
    return value is not None and not value.any()


def _wire_initial_states(walk: _Walk, layers: list[_Layer], directions: dict, file: str) -> None:
    """``initial_state=`` wiring: a loop that starts from another layer's final states (the
    final values of that loop's ``h``/``c``, Keras outputs ``<layer>:1``, ``:2``...) reads them
    from there (:attr:`RecurrentLayer.initial_state_from`); zeros need nothing; any other
    start is refused, never replaced by zeros."""
    finals: dict[Tensor, str] = {}
    loops_of = {layer.name: found for layer, found in zip(layers, directions.values(), strict=True)}
    for layer in layers:
        if layer.rest:
            continue  # a stack's cells are layers of their own: not Keras's output numbering
        found = sorted(loops_of[layer.name], key=lambda f: f[0] != "forward")
        k = 1
        for _, loop, _, _ in found:
            for var in loop.cell_states:
                if var.final is not None:
                    finals[walk.back(*var.final)[1]] = f"{layer.name}:{k}"
                k += 1
    for layer in layers:
        found = sorted(loops_of[layer.name], key=lambda f: f[0] != "forward")
        sources: list[str | None] = []
        for _, loop, _, _ in found:
            for var in loop.cell_states:
                if var.initial is None or _zeros(walk, *var.initial):
                    sources.append(None)
                else:
                    sources.append(finals.get(walk.back(*var.initial)[1], "?"))
        others = [v for _, loop, _, _ in found for v in loop.states if v not in loop.cell_states]
        if "?" in sources or any(v.initial is None or not _zeros(walk, *v.initial) for v in others):
            raise LoadError(f"{file}: layer {layer.name!r} starts from states the graph computes "
                            "(initial_state=...) in a way lstm-trace does not follow; trace it "
                            "with --initial-state")
        if any(sources):
            if not all(sources):
                raise LoadError(f"{file}: layer {layer.name!r} starts from another layer's states "
                                "for some of its states only; trace it with --initial-state")
            if layer.rest:
                raise LoadError(f"{file}: layer {layer.name!r} (RNN(StackedRNNCells)) starts from "
                                "another layer's states; trace it with --initial-state")
            layer.layer.initial_state_from = tuple(sources)


def _sequence_output(walk: _Walk, k: KerasLoop) -> tuple[_Graph, Tensor] | None:
    """``transpose(TensorListStack(outputs))``: the returned sequence (processing order)."""
    if k.outputs is None or k.outputs.final is None:
        return None
    graph, tensor = k.outputs.final
    for g, stack in walk.users(graph, tensor, {"TensorListStack"}):
        for g2, transpose in walk.users(g, (stack.name, 0), {"Transpose"}):
            return g2, (transpose.name, 0)
    return None


def _layer(walk: _Walk, key: str, found: list, file: str) -> _Layer:
    name = key.rsplit("/", 1)[-1]
    if len(found) == 1:
        direction, k, inputs, reverse = found[0]
        output = _sequence_output(walk, k)
        stacked = len(k.stack) > 1
        cells = [RecurrentLayer(
            name=f"{name}/cell_{i}" if stacked else name,
            directions=[Direction("forward", cell, reverse=reverse)],
            return_sequences=output is not None or i < len(k.stack) - 1,
            class_name=f"RNN(StackedRNNCells) {_KINDS[cell.kind]}Cell" if stacked else _class(k),
            zero_output_for_mask=k.zero_output_for_mask,
            # A stacked cell hands its outputs on step by step, in input positions.
            feeds_stacked_cell=i < len(k.stack) - 1,
        ) for i, (cell, _) in enumerate(k.stack)]
        return _Layer(name, cells[0], inputs, output, cells[1:])
    if any(len(k.stack) > 1 for _, k, _, _ in found):
        raise LoadError(f"{file}: {name!r} is a Bidirectional RNN(StackedRNNCells), which "
                        "lstm-trace does not read")
    by_direction = {d: (k, inputs, reverse) for d, k, inputs, reverse in found}
    if len(found) != 2 or set(by_direction) != {"forward", "backward"}:
        raise LoadError(f"{file}: {key!r} has {len(found)} loops named forward_/backward_; expected "
                        "the two of one Bidirectional layer")
    (fw, fw_in, fw_rev), (bw, bw_in, bw_rev) = by_direction["forward"], by_direction["backward"]
    if fw_rev or not bw_rev or fw_in[1] != bw_in[1]:
        raise LoadError(f"{file}: the two loops of {key!r} are not a Bidirectional layer's (the "
                        "backward one must walk the same input backwards)")
    merge, output = _bidirectional_merge(walk, fw, bw)
    layer = RecurrentLayer(
        name=name, directions=[Direction("forward", fw.cell), Direction("backward", bw.cell, reverse=True)],
        bidirectional=True, merge_mode=merge, return_sequences=output is not None,
        class_name=f"Bidirectional({_class(fw)})",
    )
    return _Layer(name, layer, fw_in, output)


_KINDS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}


def _class(k: KerasLoop) -> str:
    return _KINDS[k.cell.kind]


def _bidirectional_merge(walk: _Walk, fw: KerasLoop, bw: KerasLoop) -> tuple[str | None, tuple | None]:
    """The merge mode and merged output of a Bidirectional (``concat(fw, reverse(bw))``...)."""
    f_out, b_out = _sequence_output(walk, fw), _sequence_output(walk, bw)
    if f_out is None or b_out is None:
        return "concat", None
    graph = f_out[0]
    flipped = [(g, (n.name, 0)) for g, n in walk.users(*b_out, {"ReverseV2"})]
    for g, node in walk.users(*f_out, {"ConcatV2", "AddV2", "Add", "Mul"}):
        others = {walk.back(g, t)[1] for t in node.inputs}
        if not any(t[1] in others for t in flipped):
            continue
        mode = {"ConcatV2": "concat", "Mul": "mul"}.get(node.op, "sum")
        output = (graph, (node.name, 0))
        if mode == "sum":
            for g2, scale in walk.users(graph, (node.name, 0), {"Mul", "RealDiv"}):
                factor = [walk.const(g2, t) for t in scale.inputs if t != (node.name, 0)]
                if factor and factor[0] is not None and np.allclose(
                        factor[0], 0.5 if scale.op == "Mul" else 2.0):
                    mode, output = "ave", (g2, (scale.name, 0))
        return mode, output
    return None, None


def _unique_names(layers: list[_Layer]) -> None:
    seen: dict[str, int] = {}
    for layer in layers:
        seen[layer.name] = seen.get(layer.name, 0) + 1
    for layer in layers:
        if seen[layer.name] > 1:
            raise LoadError(f"two recurrent layers of the graph are named {layer.name!r}; lstm-trace "
                            "cannot tell their trace keys apart")


def _assemble(walk: _Walk, layers: list[_Layer], keras3: bool, file: str) -> Network:
    outputs = {out[1]: layer for layer in layers if (out := layer.output) is not None}
    chains: dict[str, tuple[list[UpstreamLayer], str | None]] = {}
    placeholders: dict[str, str] = {}  # layer -> the graph input its chain starts from
    for layer in layers:
        chains[layer.name] = _upstream(walk, layer, outputs, keras3, placeholders)
    main_graph = walk.meta.graphs[""]
    read = set(placeholders.values())
    # INPUT feeds the graph's first input that a layer reads (Keras creates inputs in order).
    model_input = next((n for n in main_graph.nodes if n in read), None)
    ordered: list[RecurrentLayer | UpstreamLayer] = []
    inbound: dict[str, tuple[str, ...]] = {}
    done: set[str] = set()
    notes: list[str] = []

    def emit(layer: _Layer) -> None:
        if layer.name in done:
            return
        done.add(layer.name)
        upstream, source = chains[layer.name]
        # The layers it reads: its input's, and those whose final states it starts from.
        for name in (source, *(s.split(":")[0] for s in layer.layer.initial_state_from)):
            if name:
                emit(next(x for x in layers if x.name == name))
        source = next(x for x in layers if x.name == source).last.name if source else None
        first = upstream[0].name if upstream else layer.layer.name
        previous = ordered[-1].name if ordered else None
        wanted = (source,) if source else ()
        other_input = placeholders.get(layer.name, model_input) != model_input and not source
        if other_input:
            wanted = (f"<graph input {placeholders[layer.name]}>",)
            notes.append(f"{layer.name}: reads the graph input {placeholders[layer.name]!r}, not "
                         f"{model_input!r}: trace it with --layer {layer.layer.name} --layer-input "
                         "and that input")
        if (previous or None) != (source or None) or other_input:
            inbound[first] = wanted
        ordered.extend(upstream)
        ordered.append(layer.layer)
        ordered.extend(layer.rest)

    for layer in layers:
        emit(layer)
    first = ordered[0]
    if isinstance(first, Embedding):
        input_shape: tuple[int | None, ...] = (None,)
        dtype = "int32"
    else:
        size = None
        for layer in ordered:  # Masking keeps the size: the first layer that has one says it
            if isinstance(layer, (RecurrentLayer, Dense)):
                size = layer.input_size if isinstance(layer, RecurrentLayer) else layer.kernel.shape[0]
                break
            if not isinstance(layer, Masking):
                break
        input_shape, dtype = (None, size), "float32"
    return Network(layers=ordered, source=f"frozen TF graph {file} "
                   f"({'Keras 3' if keras3 else 'tf_keras'} layers)",
                   input_shape=input_shape, input_dtype=dtype, notes=notes, inbound=inbound)


def _node_layer_name(node: _Node, keras3: bool) -> str:
    parts = node.name.split("/")
    name = parts[-2] if len(parts) >= 2 else parts[-1]
    if name in ("Tensordot",) and len(parts) >= 3:
        name = parts[-3]
    return _keras_name(name, keras3)


def _upstream(walk: _Walk, layer: _Layer, outputs: dict, keras3: bool,
              placeholders: dict[str, str]) -> tuple[list[UpstreamLayer], str | None]:
    """The layers replayed before ``layer`` (in order) and the recurrent layer it reads
    (``None``: a graph input, then named in ``placeholders[layer.name]``)."""
    chain: list[UpstreamLayer] = []
    graph, tensor = layer.input
    for _ in range(_MAX_WALK):
        graph, tensor, node = walk.back(graph, tensor)
        if tensor in outputs:
            return chain[::-1], outputs[tensor].name
        if node is None:
            break
        if node.op in ("Placeholder", "PlaceholderV2"):
            placeholders[layer.name] = node.name
            return chain[::-1], None
        step = _masking(walk, graph, node) or _dense(walk, graph, node) or _embedding(walk, graph, node)
        if step is None:
            break
        kind, params, source = step
        name = _node_layer_name(node, keras3)
        if kind == "masking":
            chain.append(Masking(name=name, class_name="Masking", mask_value=params))
        elif kind == "dense":
            kernel, bias, activation = params
            chain.append(Dense(name=name, class_name="Dense", kernel=kernel, bias=bias,
                               activation=activation))
        else:
            embeddings, ids = params
            mask_zero = any(walk.const(g, n.inputs[1]) is not None and not walk.const(g, n.inputs[1]).any()
                            for g, n in walk.users(graph, ids, {"NotEqual"}))
            chain.append(Embedding(name=name, class_name="Embedding", embeddings=embeddings,
                                   mask_zero=mask_zero))
        graph, tensor = source
    what = f"{node.op} node {node.name!r}" if node is not None else f"tensor {tensor[0]!r}"
    chain.append(Unsupported(
        name=f"<graph before {layer.name}>", class_name="TF graph",
        reason=f"the {what} is not a layer lstm-trace replays (Masking, Dense, Embedding)",
    ))
    return chain[::-1], None


def _masking(walk: _Walk, graph: _Graph, node: _Node):
    """Keras 3 ``SelectV2(any(x != v), x, 0)``; tf_keras ``x * cast(any(x != v))``."""
    if node.op in ("SelectV2", "Select") and len(node.inputs) == 3:
        cond, data = node.inputs[0], node.inputs[1]
    elif node.op == "Mul" and len(node.inputs) == 2:
        cond, data = node.inputs[1], node.inputs[0]
        g, t, cast = walk.back(graph, cond)
        if cast is None or cast.op != "Cast":
            cond, data = node.inputs[0], node.inputs[1]
            g, t, cast = walk.back(graph, cond)
            if cast is None or cast.op != "Cast":
                return None
        cond = cast.inputs[0]
    else:
        return None
    g, t, any_ = walk.back(graph, cond)
    if any_ is None or any_.op != "Any":
        return None
    g, t, ne = walk.back(g, any_.inputs[0])
    if ne is None or ne.op != "NotEqual":
        return None
    value = walk.const(g, ne.inputs[1])
    if value is None or value.size != 1 or walk.back(g, ne.inputs[0])[1] != walk.back(graph, data)[1]:
        return None
    return "masking", float(value.reshape(-1)[0]), (graph, data)


def _dense(walk: _Walk, graph: _Graph, node: _Node):
    """``act(Reshape(MatMul(Reshape(x), W)) + b)`` (a Keras ``Dense`` on a sequence)."""
    activation = "linear"
    if node.op in ACTIVATION_OPS and node.op != "Identity":
        activation = ACTIVATION_OPS[node.op]
        graph, _, node = walk.back(graph, node.inputs[0])
        if node is None:
            return None
    bias = None
    if node.op in ("BiasAdd", "AddV2", "Add"):
        bias = walk.const(graph, node.inputs[1])
        if bias is None or bias.ndim != 1:
            return None
        graph, _, node = walk.back(graph, node.inputs[0])
        if node is None:
            return None
    if node.op == "Reshape":
        graph, _, node = walk.back(graph, node.inputs[0])
    if node is None or node.op != "MatMul":
        return None
    kernel = walk.const(graph, node.inputs[1])
    if kernel is None or kernel.ndim != 2 or kernel.dtype.kind != "f":
        return None
    source = node.inputs[0]
    for _ in range(3):  # Tensordot: Reshape(Transpose(x, identity perm))
        g, t, inner = walk.back(graph, source)
        if inner is None or inner.op not in ("Reshape", "Transpose"):
            break
        if inner.op == "Transpose":
            perm = walk.const(g, inner.inputs[1])
            if perm is None or perm.tolist() != list(range(perm.size)):
                return None
        source = inner.inputs[0]
    if bias is not None and bias.shape != (kernel.shape[1],):
        return None
    return "dense", (kernel, bias, activation), (graph, source)


def _embedding(walk: _Walk, graph: _Graph, node: _Node):
    if node.op not in ("GatherV2", "ResourceGather", "Gather"):
        return None
    table = walk.const(graph, node.inputs[0])
    axis = walk.const(graph, node.inputs[2]) if len(node.inputs) > 2 else np.zeros(())
    if table is None or table.ndim != 2 or axis is None or int(axis) != 0:
        return None
    ids = node.inputs[1]
    for _ in range(2):
        g, t, inner = walk.back(graph, ids)
        if inner is not None and inner.op == "Cast":
            ids = inner.inputs[0]
        elif inner is not None and inner.op == "SelectV2" and len(inner.inputs) == 3:
            ids = inner.inputs[2]  # Keras 3: where(ids < 0, ids + vocabulary, ids)
    return "embedding", (table, walk.back(graph, ids)[1]), (graph, ids)
