"""An ONNX graph as a :class:`~lstm_trace.network.Network`.

Every ``LSTM``/``GRU``/``RNN`` node, at the top level or inside ``If`` branches, becomes a
:class:`~lstm_trace.network.RecurrentLayer` named after the node (``<op_type>_<k>`` when it
has no name; ``<If>/<then|else>/<name>`` when two branches hold nodes of one name). What
feeds it is replayed by :class:`~.glue.OnnxOps` upstream layers, each holding the small op
subgraph from the graph inputs (and the outputs of earlier recurrent nodes) to one tensor:

- ``<node>/X``: the node's input ``X``, handed to the engine as ``(batch, steps,
  features)`` (``layout=0`` nodes take ``(steps, batch, features)``), with the mask of
  ``sequence_lens`` (step ``t`` of sample ``b`` is used when ``t < sequence_lens[b]``);
- ``<node>/initial_h/<direction>`` and ``<node>/initial_c/<direction>``: initial states
  that are not provably zero, wired in through ``RecurrentLayer.initial_state_from``.

Constants (initializers, ``Constant`` nodes and everything computed from them alone,
``If`` outputs whose condition is constant included) are folded at load time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...network import Network
from ..errors import LoadError
from .feeds import OnnxInputs, type_text
from .glue import OnnxOps, RecurrentSource, TensorSource, input_key
from .loops import simple_rnn_loop
from .ops import OPS, run_node
from .proto import DTYPE_NAMES, Graph, Model, Node
from .recurrent import RECURRENT_OPS, NodeError, recurrent_layer
from .replay import if_label, truth
from .scopes import LOOP_OPS, Branch, Scope, branch_graph, flatten, is_if

WEIGHT_INPUTS = (1, 2, 3, 7)  # W, R, B, P of LSTM/GRU/RNN
#: onnxruntime's quantized recurrent ops (int8 weights with scales): refused with a pointer
#: to the float model.
QUANTIZED_RECURRENT_OPS = frozenset({"DynamicQuantizeLSTM"})

#: Ops through which an all-zero constant stays all zeros (initial states made of zeros).
_ZERO_PRESERVING = {"Expand", "Tile", "Identity", "Cast", "Reshape", "Unsqueeze", "Squeeze",
                    "Transpose", "Flatten", "Slice", "Gather"}


class GraphBuilder:
    """Walks a decoded model and builds the Network (constants folded, glue collected).

    The graph and its ``If`` branches are one flat list of nodes (:mod:`.scopes`); every
    ``LSTM``/``GRU``/``RNN`` node of it is a layer, except those in a branch whose
    condition is a constant that does not choose it. A branch whose condition depends on
    the inputs is chosen when the trace runs: the glue layers feeding a node inside one
    first evaluate the conditions of the branches enclosing it (``OnnxOps.guards``) and
    raise :class:`~lstm_trace.layers.BranchNotTaken` when the input does not take it.
    """

    def __init__(self, model: Model, name: str):
        self.model = model
        self.name = name
        self.graph = model.graph
        self.opset = model.opset
        self.flat = flatten(self.graph, frozenset(RECURRENT_OPS))
        self.initializers = self.flat.initializers
        self.inputs = [i for i in self.graph.inputs if i.name not in self.graph.initializers]
        self.input_names = {i.name for i in self.inputs}
        self.producer = self.flat.producer
        self._order = {id(n): k for k, n in enumerate(self.flat.nodes)}
        self._const: dict[str, np.ndarray | None] = {}
        self.layer_names: dict[int, str] = {}  # id(node) -> layer name
        self.used_nodes: set[int] = set()
        #: Graph input -> which If condition it decides (for the "also needs" message).
        self.chooses: dict[str, str] = {}
        #: id(RNN node read from a Loop) -> (the Loop node, the tensor of its step count).
        self.loops: dict[int, tuple[Node, str]] = {}
        self.loop_names: dict[int, dict[str, tuple[str, ...]]] = {}
        self._read_loops()

    def _read_loops(self) -> None:
        """Loops that are a simple RNN cell over a sequence (tf2onnx's Keras SimpleRNN)
        become the ``RNN`` node they compute, in the loop's place (:mod:`.loops`)."""
        count = 0
        for node in list(self.flat.nodes):
            if node.op_type != "Loop" or node.domain not in ("", "ai.onnx"):
                continue
            name = node.name or f"Loop_{count}"
            count += 1
            try:
                found = simple_rnn_loop(node, self.const, name)
            except (ValueError, TypeError, IndexError):  # a malformed body: not that cell
                found = None
            if found is None:
                continue
            self.initializers.update(found.initializers)
            for tensor in found.initializers:
                self._const.pop(tensor, None)
            rnn = found.node
            self.flat.nodes.insert(self.flat.nodes.index(node), rnn)
            self.flat.scopes[id(rnn)] = self.flat.scope(node)
            self.loops[id(rnn)] = (node, found.steps)
            self.loop_names[id(rnn)] = found.tensor_names
        self._order = {id(n): k for k, n in enumerate(self.flat.nodes)}

    # ---------------------------------------------------------------- constants

    def const(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it depends on no graph input (folded), else ``None``.

        An ``If`` output is constant when its condition is and the chosen branch's output
        is. A node inside a branch that fails on its constants is left to the replay (the
        branch may never be taken).
        """
        if not name:
            return None
        if name in self._const:
            return self._const[name]
        self._const[name] = None  # cycles resolve to "not constant"
        value: np.ndarray | None = None
        if name in self.initializers:
            value = self.initializers[name]
        elif name in self.producer and name not in self.input_names:
            node, k = self.producer[name]
            if is_if(node):
                branch = self.static_branch(node)
                if branch is not None and k < len(branch.outputs):
                    value = self.const(branch.outputs[k].name)
            elif node.op_type not in RECURRENT_OPS and node.op_type in OPS:
                args = [self.const(i) if i else None for i in node.inputs]
                if all(a is not None for a, i in zip(args, node.inputs, strict=True) if i):
                    try:
                        outs = run_node(node, args, self.opset)
                    except ValueError as err:
                        if not self.flat.scope(node):
                            raise LoadError(f"{self.name}: {err}") from None
                        outs = []
                    value = outs[k] if k < len(outs) else None
                    if value is not None:
                        self.used_nodes.add(id(node))
        self._const[name] = value
        return value

    def static_branch(self, node: Node) -> Graph | None:
        """The branch an ``If`` node takes whatever the inputs (its condition is constant)."""
        cond = self.const(node.input(0))
        if cond is None:
            return None
        try:
            return branch_graph(node, truth(cond, if_label(node)))
        except ValueError as err:
            raise LoadError(f"{self.name}: {err}") from None

    def dynamic_branches(self, node: Node) -> list[Branch] | None:
        """The branches enclosing ``node`` that the inputs choose; ``None`` if it never runs."""
        dynamic = []
        for branch in self.flat.scope(node):
            cond = self.const(branch.cond)
            if cond is None:
                dynamic.append(branch)
                continue
            try:
                taken = truth(cond, f"If {branch.node!r}")
            except ValueError as err:
                raise LoadError(f"{self.name}: {err}") from None
            if taken != branch.then:
                return None
        return dynamic

    def is_zero(self, name: str) -> bool:
        """Whether ``name`` is all zeros whatever the inputs (zeros expanded to a dynamic shape)."""
        value = self.const(name)
        if value is not None:
            return value.dtype.kind in "biuf" and not np.any(value)
        if name not in self.producer:
            return False
        node, k = self.producer[name]
        if is_if(node):  # zeros whichever branch the inputs choose
            chosen = self.static_branch(node)
            branches = [chosen] if chosen is not None else \
                [branch_graph(node, True), branch_graph(node, False)]
            return all(b is not None and k < len(b.outputs) and self.is_zero(b.outputs[k].name)
                       for b in branches)
        if node.op_type == "ConstantOfShape":
            fill = node.attr("value")
            return fill is None or not np.any(fill)
        if node.op_type in _ZERO_PRESERVING:
            return self.is_zero(node.inputs[0])
        if node.op_type == "Concat":
            return all(self.is_zero(i) for i in node.inputs if i)
        return False

    def _mark_upstream(self, tensor: str) -> None:
        """Count every node computing ``tensor`` as used (it feeds a recurrent node)."""
        stack, seen = [tensor], set()
        while stack:
            name = stack.pop()
            if name in seen or name not in self.producer:
                continue
            seen.add(name)
            node, _ = self.producer[name]
            if node.op_type in RECURRENT_OPS:
                continue
            self.used_nodes.add(id(node))
            stack.extend(i for i in node.inputs if i)

    # ---------------------------------------------------------------- glue

    def glue(
        self, targets: list[str], feeds: str, scope: Scope = ()
    ) -> tuple[list[Node], dict[str, np.ndarray], list, tuple[str, ...], str]:
        """Nodes, constants, sources and source names computing ``targets``; the blocker if any.

        ``scope``: the branches enclosing the fed node. Through an ``If`` whose condition
        depends on the inputs, both branches are collected (the replay computes the one
        taken); a node that cannot be replayed is a blocker only where it always runs
        for the fed node (at its level or an enclosing one), else an error if it runs.
        """
        needed: list[Node] = []
        needed_ids: set[int] = set()
        seen: set[str] = set()
        constants: dict[str, np.ndarray] = {}
        graph_inputs: list[str] = []
        recurrent: list[Node] = []
        blocker = ""
        stack = [t for t in targets if t]
        while stack:
            tensor = stack.pop()
            if tensor in seen:
                continue
            seen.add(tensor)
            value = self.const(tensor)
            if value is not None:
                constants[tensor] = value
                continue
            if tensor in self.input_names:
                graph_inputs.append(tensor)
                continue
            if tensor not in self.producer:
                raise LoadError(f"{self.name}: tensor {tensor!r} feeding {feeds!r} is produced by no node")
            node, k = self.producer[tensor]
            if node.op_type in RECURRENT_OPS:
                if node not in recurrent:
                    recurrent.append(node)
                continue
            if is_if(node):
                stack.append(node.input(0))
                chosen = self.static_branch(node)
                branches = [chosen] if chosen is not None else \
                    [branch_graph(node, True), branch_graph(node, False)]
                stack.extend(b.outputs[k].name for b in branches
                             if b is not None and k < len(b.outputs))
            else:
                stack.extend(i for i in node.inputs if i)
            if id(node) in needed_ids:
                continue
            needed.append(node)
            needed_ids.add(id(node))
            self.used_nodes.add(id(node))
            if self.always_runs_with(node, scope) and not is_if(node) and (
                    node.op_type not in OPS or node.domain not in ("", "ai.onnx")):
                label = f"node {node.name!r} ({node.op_type})" if node.name else f"a {node.op_type} node"
                blocker = blocker or label
        needed.sort(key=lambda n: self._order[id(n)])
        recurrent.sort(key=lambda n: self._order[id(n)])
        position = {i.name: k for k, i in enumerate(self.inputs)}
        graph_inputs.sort(key=position.__getitem__)
        sources: list = [TensorSource(n) for n in graph_inputs]
        keys: list[str] = [input_key(n) for n in graph_inputs]
        for node in recurrent:
            layer = self.layer_names.get(id(node))
            if layer is None:
                raise LoadError(f"{self.name}: recurrent node feeding {feeds!r} comes after it")
            D = 2 if node.attr("direction", "forward") == "bidirectional" else 1
            has_cell = node.op_type == "LSTM"
            outputs = tuple((node.outputs + ["", "", ""])[:3])
            source = RecurrentSource(
                outputs=outputs, directions=D,  # type: ignore[arg-type]
                lone_reverse=node.attr("direction", "forward") == "reverse",
                has_cell=has_cell, layout=int(node.attr("layout", 0)),
            )
            sources.append(source)
            keys += [layer] + [f"{layer}:{k}" for k in range(1, source.width)]
        return needed, constants, sources, tuple(keys), blocker

    def always_runs_with(self, node: Node, scope: Scope) -> bool:
        """Whether ``node`` runs whenever a node in ``scope`` does: the branches around it
        whose conditions depend on the inputs enclose that node too."""
        def dynamic(branches: Scope) -> Scope:
            return tuple(b for b in branches if self.const(b.cond) is None)

        own, theirs = dynamic(self.flat.scope(node)), dynamic(scope)
        return own == theirs[:len(own)]

    def ops_layer(
        self, name: str, feeds: str, targets: list[str], guards: list[Branch] = (),  # type: ignore[assignment]
        scope: Scope = (), **kwargs: object,
    ) -> tuple[OnnxOps, tuple[str, ...]]:
        """The glue layer computing ``targets`` (after checking ``guards``) and its source names."""
        conds = [b.cond for b in guards]
        for branch in guards:
            for source in self.glue([branch.cond], feeds)[3]:
                if source.startswith("input:"):
                    self.chooses.setdefault(source[len("input:"):],
                                            f"the branch of If {branch.node!r}")
        nodes, constants, sources, keys, blocker = self.glue([*targets, *conds], feeds, scope)
        layer = OnnxOps(
            name=name, class_name="ONNX ops", nodes=nodes, constants=constants, sources=sources,
            opset=self.opset, blocker=blocker, feeds=feeds, target=targets[0],
            producer=self.producer, guards=[(b.cond, b.then, str(b)) for b in guards],
            **kwargs,  # type: ignore[arg-type]
        )
        return layer, keys

    # ---------------------------------------------------------------- network

    def recurrent_nodes(self) -> list[tuple[Node, list[Branch]]]:
        """The recurrent nodes that may run, each with the branches the inputs choose."""
        found = [n for n in self.flat.nodes
                 if n.op_type in RECURRENT_OPS and n.domain in ("", "ai.onnx")]
        runs = [(n, self.dynamic_branches(n)) for n in found]
        live = [(n, guards) for n, guards in runs if guards is not None]
        if live:
            return live
        if found:
            where = "; ".join(f"{n.op_type} node {n.name!r} in the "
                              f"{' > '.join(map(str, self.flat.scope(n)))}" for n in found[:3])
            raise LoadError(
                f"{self.name}: the ONNX graph's recurrent nodes lie only in If branches whose "
                f"constant conditions never choose them ({where})")
        quantized = [n for n in self.flat.nodes if n.op_type in QUANTIZED_RECURRENT_OPS]
        if quantized:
            node = quantized[0]
            label = f"{node.op_type} node {node.name!r}" if node.name else f"a {node.op_type} node"
            raise LoadError(
                f"{self.name}: the graph's recurrent layer is a quantized LSTM ({label}, "
                f"onnxruntime's {node.domain or 'com.microsoft'} op with int8 weights), which "
                "lstm-trace does not read; trace the float model it was quantized from (the "
                ".onnx before onnxruntime.quantization.quantize_dynamic, or the framework's model)"
            )
        ops = sorted({n.op_type for n in self.flat.nodes})
        inside = ""
        if self.flat.in_loops:
            kinds = sorted({op for op, _ in self.flat.in_loops})
            places = sorted({where for _, where in self.flat.in_loops})
            inside = (f"; its {', '.join(kinds)} nodes are inside the {', '.join(places[:3])}, "
                      "run once per iteration, which lstm-trace does not trace (it traces "
                      "LSTM, GRU and RNN nodes of the graph and of If branches)")
        loops = [n for n in self.flat.nodes if n.op_type in LOOP_OPS]
        if loops and not inside:
            loop = loops[0]
            body = sorted(set().union(*(g.op_types() for g in loop.subgraphs())))
            label = f"{loop.op_type} node {loop.name!r}" if loop.name else f"a {loop.op_type} node"
            inside = (f"; {label} runs a body of {', '.join(body[:10])}"
                      f"{', ...' if len(body) > 10 else ''} once per step: a recurrent layer "
                      "unrolled into plain ops, not the simple RNN cell lstm-trace reads from "
                      "a loop (tf2onnx writes Keras GRU(reset_after=False) and masked layers "
                      "so); trace the Keras model itself")
        raise LoadError(
            f"{self.name}: the ONNX graph has no LSTM, GRU or RNN node "
            f"(its ops: {', '.join(ops) or 'none'}){inside}"
        )

    def build(self) -> Network:
        recurrent_nodes = self.recurrent_nodes()
        counters: dict[str, int] = {}
        base: list[str] = []
        for node, _ in recurrent_nodes:
            k = counters.get(node.op_type, 0)
            counters[node.op_type] = k + 1
            base.append(node.name or f"{node.op_type}_{k}")
        taken: set[str] = set()
        for (node, _), name in zip(recurrent_nodes, base, strict=True):
            scope = self.flat.scope(node)
            if scope and base.count(name) > 1:  # one name in two branches: say which branch
                name = f"{scope[-1].node}/{scope[-1].side}/{name}"
            while name in taken:
                name += "_"
            taken.add(name)
            self.layer_names[id(node)] = name
        layers: list = []
        inbound: dict[str, tuple[str, ...]] = {}
        needed_inputs: set[str] = set()
        float16 = any(i.elem_type == 10 for i in self.inputs)

        def add(layer: OnnxOps, keys: tuple[str, ...]) -> None:
            inbound[layer.name] = keys
            needed_inputs.update(k[len("input:"):] for k in keys if k.startswith("input:"))
            layers.append(layer)

        for node, guards in recurrent_nodes:
            name = self.layer_names[id(node)]
            scope = self.flat.scope(node)
            fed = [node.input(k) for k in WEIGHT_INPUTS
                   if node.input(k) in self.input_names and self.const(node.input(k)) is None]
            if fed:  # as in ONNX's own node tests
                raise LoadError(
                    f"{self.name}: {node.op_type} node {name!r}: its weights {', '.join(fed)} "
                    "are graph inputs, fed at run time; lstm-trace reads weights stored in the "
                    "file: store them as initializers")
            weights = self.const(node.input(1))
            float16 = float16 or (weights is not None and weights.dtype == np.float16)
            try:
                layer = recurrent_layer(node, name, lambda k, n=node: self.const(n.input(k)), self.opset)
            except NodeError as err:
                raise LoadError(f"{self.name}: {node.op_type} node {name!r}: {err}") from None
            loop, steps = self.loops.get(id(node), (None, ""))
            if loop is not None:
                layer.options["loop"] = (f"Loop {loop.name!r} read as the RNN node it computes "
                                         "(tf2onnx's Keras SimpleRNN)")
                layer.directions[0].cell.tensor_names = self.loop_names[id(node)]
                self.used_nodes.add(id(loop))
            if scope:
                layer.options["branch"] = " > ".join(map(str, scope))
                self.used_nodes.update(id(self.flat.ifs[b.node]) for b in scope if b.node in self.flat.ifs)
            layout = int(layer.options["layout"])  # type: ignore[call-overload]
            if not node.input(0):
                raise LoadError(f"{self.name}: {node.op_type} node {name!r} has no input X")
            x_layer, x_keys = self.ops_layer(
                f"{name}/X", name, [node.input(0), node.input(4), steps], guards, scope,
                result="sequence", layout=layout, sequence_lens=node.input(4), steps=steps,
            )
            add(x_layer, x_keys)
            state_sources: list[str] = []
            state_names = ["initial_h", "initial_c"] if node.op_type == "LSTM" else ["initial_h"]
            given = {s: node.input(5 + k) for k, s in enumerate(state_names)}
            wired = {s: t for s, t in given.items() if t and not self.is_zero(t)}
            for tensor in given.values():
                if tensor and tensor not in wired.values():
                    self._mark_upstream(tensor)  # zeros made to the batch's shape: not "after"
            if wired:
                for d, direction in enumerate(layer.directions):
                    for state in state_names:
                        units = direction.cell.units
                        lname = f"{name}/{state}/{direction.name}"
                        if state in wired:
                            glue, keys = self.ops_layer(lname, name, [wired[state]], guards, scope,
                                                       result="state", layout=layout, direction=d,
                                                       units=units)
                            add(glue, (x_layer.name, *keys))
                        else:
                            add(OnnxOps(name=lname, class_name="ONNX ops", result="zeros",
                                        units=units, feeds=name), (x_layer.name,))
                        state_sources.append(lname)
                layer.initial_state_from = tuple(state_sources)
            inbound[name] = (x_layer.name,)
            layers.append(layer)
            self.used_nodes.add(id(node))
        main = self.inputs[0] if self.inputs else None
        downstream = []
        for node in self.graph.nodes:
            if id(node) not in self.used_nodes and node.op_type != "Constant":
                downstream.append((node.name or node.op_type, node.op_type))
        producer = f", {self.model.producer}" if self.model.producer else ""
        fed = ", ".join(f"{i.name} {type_text(i)}" for i in self.inputs)
        fed = fed.replace("[", "(").replace("]", ")")  # (tables read [...] as markup)
        fed = f"; graph input{'s' if len(self.inputs) > 1 else ''} {fed}" if fed else ""
        network = Network(
            layers=layers, inbound=inbound,
            source=f"ONNX model (IR {self.model.ir_version}, opset {self.opset}{producer}){fed}",
            input_shape=None if main is None or main.shape is None else
            tuple(d if isinstance(d, int) and d > 0 else None for d in main.shape),
            input_dtype=DTYPE_NAMES.get(main.elem_type, "float32") if main else "float32",
            downstream=downstream,
        )
        if float16:
            network.notes.append(FLOAT16_NOTE)
        if main is not None:
            ordered = tuple(i.name for i in self.inputs if i.name in needed_inputs)
            network.input_adapter = OnnxInputs(self.inputs, ordered, self.chooses)
        return network


#: Said once for a model with float16 weights or graph inputs.
FLOAT16_NOTE = (
    "float16 weights and inputs are widened to float32 and traced in float32 (--dtype "
    "float64 for more), as onnxruntime's CPU provider computes float16 LSTM, GRU and RNN "
    "nodes, rounding only their outputs back to float16"
)


def build_network(model: Model, path: Path) -> Network:
    return GraphBuilder(model, path.name).build()
