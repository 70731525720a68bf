"""A Keras recurrent layer's loop in a TF2 graph, recognised as a canonical LSTM, GRU or SimpleRNN.

A Keras ``LSTM`` / ``GRU`` / ``SimpleRNN`` (Keras 3 and tf_keras) traced by ``tf.function``
runs its cell in a ``While`` / ``StatelessWhile`` loop whose body is a library function, or,
after ``convert_variables_to_constants_v2(..., lower_control_flow=True)`` (the default), in
``Enter``/``Merge``/``Switch``/``NextIteration``/``Exit`` nodes of the main graph. Both are
read here as one :class:`Loop`: loop variables with an initial value outside the loop and a
next value computed by the body.

The body is read symbolically, without running anything: every tensor becomes an
expression over the loop's inputs (:class:`Var` a carried state, :class:`Step` the current
step of a sequence, :class:`Const` a weight), and matrix products with constants become
:class:`Linear` forms ``Σ operand · matrix + bias`` whose columns are followed through
``Split``, ``StridedSlice`` and sums. So each gate's own columns of the kernel ``W`` (the
operand is the step input ``x``), the recurrent kernel ``U`` (the operand is the carried
``h``) and the bias are read from the graph, whatever order the gates were fused in. The
cell is then recognised from the equations of its next states (``σ``, ``φ`` the
activations found on each gate)::

    LSTM        c' = f ⊙ c + i ⊙ g,  h' = o ⊙ φ(c'),      i, f, o = σ(x W + h U + b), g = φ(...)
    GRU         h' = z ⊙ h + (1 - z) ⊙ h̃,                 z, r = σ(x W + h U + b)
                h̃ = φ(x W_h + b_h + r ⊙ (h U_h + rb_h))    (reset_after)
                h̃ = φ(x W_h + (r ⊙ h) U_h + b_h)           (reset_after=False)
    SimpleRNN   h' = φ(x W + h U + b)

A mask wraps each next state in ``SelectV2(mask_t, new, old)``; the returned step output is
``SelectV2(mask_t, h', previous output)`` or ``SelectV2(mask_t, h', 0)``
(``zero_output_for_mask``). Whatever does not fit these equations raises
:class:`LoopError` with one line saying what was found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...gates import CANONICAL_ORDER
from ...network import Cell
from ..protobuf_wire import get_bool, get_int, get_message, get_string, repeated_varints, to_int32
from .meta_graph import ACTIVATION_OPS, MetaGraph, Tensor, _Graph, _Node, tensor_array

#: The loop plumbing of a lowered loop and the plain reads that hand a tensor on unchanged.
_IDENTITY_OPS = frozenset({"Identity", "Snapshot", "StopGradient", "Cast", "Enter"})
_WHILE_OPS = frozenset({"While", "StatelessWhile"})
#: Deepest expression followed (real cells need a few dozen ops; a longer chain is refused
#: before Python's recursion limit, about three frames per level, is reached).
_MAX_DEPTH = 200


class LoopError(ValueError):
    """A loop body that is not a Keras recurrent cell lstm-trace can replay (one line).

    ``depth``: how far the body matched before this (of several attempts, the deepest
    one's reason is the one to tell)."""

    def __init__(self, message: str, depth: int = 0) -> None:
        super().__init__(message)
        self.depth = depth


# ------------------------------------------------------------------ expressions


class Expr:
    """A tensor of the loop body, as an expression over the loop's inputs."""


@dataclass(eq=False)
class Var(Expr):
    """A loop variable carried from step to step (a state, the output so far)."""

    index: int


@dataclass(eq=False)
class Step(Expr):
    """The current step of a sequence the loop walks (``TensorListGetItem``): ``sequence``
    is the tensor (outside the loop) the steps were unstacked from."""

    graph: _Graph
    sequence: Tensor


@dataclass(eq=False)
class Sequence(Expr):
    """A tensor list unstacked from ``sequence`` (outside the loop)."""

    graph: _Graph
    sequence: Tensor


@dataclass(eq=False)
class Const(Expr):
    value: np.ndarray


@dataclass(eq=False)
class Linear(Expr):
    """``Σ operand · matrix + bias``: each term's operand is another expression (``x``, ``h``,
    ``r ⊙ h``), its matrix a constant; ``bias`` ``(width,)`` or ``None``."""

    terms: list[tuple[Expr, np.ndarray]]
    bias: np.ndarray | None = None

    @property
    def width(self) -> int:
        return int(self.terms[0][1].shape[1])

    def matrix(self, operand: Expr) -> np.ndarray | None:
        found = [m for e, m in self.terms if e is operand]
        return found[0] if len(found) == 1 else None

    def columns(self, cols: np.ndarray) -> Linear:
        bias = None if self.bias is None else self.bias[cols]
        return Linear([(e, m[:, cols]) for e, m in self.terms], bias)


@dataclass(eq=False)
class Op(Expr):
    """Any other op: ``act`` (``name`` the activation), ``mul``, ``add``, ``sub``, ``select``,
    ``setitem``, ``max``, ``min``, or ``?<op>`` for an op lstm-trace does not follow."""

    kind: str
    args: tuple[Expr, ...] = ()
    name: str = ""


# ------------------------------------------------------------------ loops


@dataclass
class LoopVar:
    index: int
    initial: tuple[_Graph, Tensor] | None  # outside the loop
    next: tuple[_Graph, Tensor] | None  # in the body
    final: tuple[_Graph, Tensor] | None  # outside the loop, after it
    invariant: bool = False


@dataclass
class Loop:
    """A while loop: its name, the graph it runs in, its body and its variables."""

    name: str
    outer: _Graph
    body: _Graph
    vars: list[LoopVar]
    #: Body tensors that read a loop variable: (node name, output index) -> var index.
    reads: dict[Tensor, int] = field(default_factory=dict)


def find_loops(meta: MetaGraph) -> list[Loop]:
    """Every ``While``/``StatelessWhile`` node (in any graph) and every lowered loop frame."""
    loops: list[Loop] = []
    for graph in meta.graphs.values():
        for node in graph.nodes.values():
            if node.op in _WHILE_OPS:
                loop = _functional_loop(meta, graph, node)
                if loop is not None:
                    loops.append(loop)
        loops.extend(_lowered_loops(graph))
    return loops


def _functional_loop(meta: MetaGraph, graph: _Graph, node: _Node) -> Loop | None:
    body_attr = get_message(node.attrs().get("body", {}), 10)
    body = meta.graphs.get(get_string(body_attr, 1)) if body_attr else None
    if body is None:
        return None
    loop = Loop(node.name, graph, body, [])
    by_position = {p: name for name, p in body.args.items()}
    for p, tensor in enumerate(node.inputs):
        nxt = body.outputs[p] if p < len(body.outputs) else None
        loop.vars.append(LoopVar(p, (graph, tensor), (body, nxt) if nxt else None, (graph, (node.name, p))))
        if p in by_position:
            loop.reads[(by_position[p], 0)] = p
    _mark_invariants(loop)
    return loop


def _lowered_loops(graph: _Graph) -> list[Loop]:
    """Loops of ``lower_control_flow``: ``Enter`` nodes of one ``frame_name``; a variable is a
    ``Merge(Enter, NextIteration)``, read in the body as ``Switch(merge, LoopCond):1`` and
    after the loop as ``Exit(Switch:0)``. Invariants are ``Enter`` nodes read directly."""
    frames: dict[str, list[_Node]] = {}
    for node in graph.nodes.values():
        if node.op in ("Enter", "RefEnter"):
            frame = node.attrs().get("frame_name", {})
            frames.setdefault(get_string(frame, 2), []).append(node)
    loops = []
    for frame, enters in frames.items():
        loop = Loop(frame, graph, graph, [])
        for enter in enters:
            if not enter.inputs:
                continue
            merges = graph.users((enter.name, 0), ("Merge", "RefMerge"))
            if not merges:
                continue  # a constant: read through Enter directly, as an outer tensor
            merge = merges[0]
            nxt = next((graph.nodes[t[0]] for t in merge.inputs
                        if t[0] in graph.nodes and graph.nodes[t[0]].op == "NextIteration"), None)
            var = LoopVar(len(loop.vars), (graph, enter.inputs[0]),
                          (graph, nxt.inputs[0]) if nxt is not None and nxt.inputs else None, None)
            for switch in graph.users((merge.name, 0), ("Switch", "RefSwitch")):
                loop.reads[(switch.name, 1)] = var.index
                for exit_ in graph.users((switch.name, 0), ("Exit", "RefExit")):
                    var.final = (graph, (exit_.name, 0))
            loop.vars.append(var)
        if loop.vars:
            _mark_invariants(loop)
            loops.append(loop)
    return loops


def _mark_invariants(loop: Loop) -> None:
    """A variable whose next value is its own read (through identities) never changes."""
    for var in loop.vars:
        if var.next is None:
            var.invariant = True
            continue
        graph, tensor = var.next
        for _ in range(_MAX_DEPTH):
            if tensor in loop.reads:
                var.invariant = loop.reads[tensor] == var.index
                break
            node = graph.nodes.get(tensor[0])
            if node is None or node.op not in _IDENTITY_OPS - {"Cast"} or not node.inputs:
                break
            tensor = node.inputs[0]


# ------------------------------------------------------------------ evaluation


def _int_attr(node: _Node, name: str, default: int = 0) -> int:
    value = node.attrs().get(name)
    return get_int(value, 3) if value else default


class _Reader:
    """Expressions of the tensors of one loop's body (memoised: one object per tensor)."""

    def __init__(self, meta: MetaGraph, loop: Loop) -> None:
        self.meta = meta
        self.loop = loop
        self.memo: dict[tuple[int, Tensor], Expr] = {}
        #: Names of the ``Const`` nodes the body reads (the layer's weights among them).
        self.constants: set[str] = set()

    def body(self, tensor: Tensor) -> Expr:
        return self.expr(self.loop.body, tensor, 0)

    def expr(self, graph: _Graph, tensor: Tensor, depth: int) -> Expr:
        key = (id(graph), tensor)
        if key not in self.memo:
            self.memo[key] = self._expr(graph, tensor, depth)
        return self.memo[key]

    def _expr(self, graph: _Graph, tensor: Tensor, depth: int) -> Expr:  # noqa: C901 - one op table
        if depth > _MAX_DEPTH:
            return Op("?deep")
        loop = self.loop
        if graph is loop.body and tensor in loop.reads:
            var = loop.vars[loop.reads[tensor]]
            if var.invariant and var.initial is not None:
                return self.expr(var.initial[0], var.initial[1], depth + 1)
            return Var(var.index)
        node = graph.nodes.get(tensor[0])
        if node is None:
            return Op("?missing")
        op, ins = node.op, node.inputs

        def sub(k: int) -> Expr:
            return self.expr(graph, ins[k], depth + 1)

        if op == "_Arg":  # an argument of a function called outside any loop of ours
            for caller_graph, caller, offset in self.meta.callers(graph.name):
                index = offset + graph.args.get(node.name, -1)
                if 0 <= index < len(caller.inputs):
                    return self.expr(caller_graph, caller.inputs[index], depth + 1)
            return Op("?arg")
        if op == "Const":
            self.constants.add(node.name)
            value = get_message(node.attrs().get("value", {}), 8)
            try:
                return Const(tensor_array(value)) if value is not None else Op("?const")
            except ValueError:
                return Op("?const")
        if op in _IDENTITY_OPS or op == "ReadVariableOp":
            return sub(0) if ins else Op("?" + op)
        if op in ("PartitionedCall", "StatefulPartitionedCall"):
            fn = self.meta.graphs.get(get_string(get_message(node.attrs().get("f", {}), 10) or {}, 1))
            if fn is not None and tensor[1] < len(fn.outputs) and fn.outputs[tensor[1]]:
                return self.expr(fn, fn.outputs[tensor[1]], depth + 1)
            return Op("?call")
        if op == "TensorListFromTensor":
            return Sequence(graph, ins[0])
        if op == "TensorListGetItem":
            listed = sub(0)
            return Step(listed.graph, listed.sequence) if isinstance(listed, Sequence) else Op("?getitem")
        if op == "TensorListSetItem":
            return Op("setitem", (sub(0), sub(2)))
        if op == "TensorListPushBack":  # a training graph's accumulator of intermediates
            return Op("pushback")
        if op in ("ZerosLike",):
            return Op("zeros")
        args = [sub(k) for k in range(len(ins))]
        if op in ACTIVATION_OPS and len(args) == 1:
            return Op("act", (args[0],), ACTIVATION_OPS[op])
        if all(isinstance(a, Const) for a in args):
            value = _fold(node, [a.value for a in args], tensor[1])
            return Const(value) if value is not None else Op("?" + op)
        if op == "MatMul" and len(args) == 2:
            if any(get_bool(node.attrs().get(t, {}), 5) for t in ("transpose_a", "transpose_b")):
                return Op("?MatMul(transposed)")
            a, w = args
            if isinstance(w, Const) and w.value.ndim == 2:
                return Linear([(a, w.value)])
            return Op("?MatMul")
        if op in ("BiasAdd", "Add", "AddV2"):
            return _add(args[0], args[1])
        if op == "Sub":
            return Op("sub", tuple(args))
        if op == "Mul":
            return Op("mul", tuple(args))
        if op in ("RealDiv", "Div", "TrueDiv"):
            return Op("div", tuple(args))
        if op in ("Maximum", "Minimum"):
            return Op(op[:3].lower(), tuple(args))
        if op in ("Select", "SelectV2"):
            return Op("select", tuple(args))
        if op == "Tile" and isinstance(args[0], Step):
            return args[0]  # a step of the mask, repeated over the units
        if op in ("Split", "SplitV", "StridedSlice"):
            return _slice_linear(node, args, tensor[1])
        return Op("?" + op)


def _add(a: Expr, b: Expr) -> Expr:
    if isinstance(b, Linear) and not isinstance(a, Linear):
        a, b = b, a
    if isinstance(a, Linear) and isinstance(b, Const) and b.value.shape == (a.width,):
        bias = b.value.astype(a.terms[0][1].dtype)
        return Linear(a.terms, bias if a.bias is None else a.bias + bias)
    if isinstance(a, Linear) and isinstance(b, Linear) and a.width == b.width:
        terms = list(a.terms)
        for operand, matrix in b.terms:
            same = [k for k, (e, _) in enumerate(terms) if e is operand]
            if same and terms[same[0]][1].shape != matrix.shape:
                return Op("add", (a, b))
            if same:
                terms[same[0]] = (operand, terms[same[0]][1] + matrix)
            else:
                terms.append((operand, matrix))
        biases = [x for x in (a.bias, b.bias) if x is not None]
        return Linear(terms, sum(biases) if biases else None)
    return Op("add", (a, b))


def _axis(value: np.ndarray, rank: int) -> int:
    axis = int(np.asarray(value).reshape(-1)[0])
    return axis + rank if axis < 0 else axis


def _strided_slice(node: _Node, x: np.ndarray, begin, end, strides) -> np.ndarray:
    """numpy's view of ``StridedSlice`` for the masks Keras uses (no ellipsis/new axis)."""
    if _int_attr(node, "ellipsis_mask") or _int_attr(node, "new_axis_mask"):
        raise ValueError("ellipsis or new axis")
    begin_mask, end_mask = _int_attr(node, "begin_mask"), _int_attr(node, "end_mask")
    shrink = _int_attr(node, "shrink_axis_mask")
    index: list = []
    for k, (b, e, s) in enumerate(zip(begin.tolist(), end.tolist(), strides.tolist(), strict=True)):
        if shrink >> k & 1:
            index.append(b)
        else:
            index.append(slice(None if begin_mask >> k & 1 else b, None if end_mask >> k & 1 else e, s))
    return x[tuple(index)]


def _fold(node: _Node, values: list[np.ndarray], output: int) -> np.ndarray | None:
    """The value of a shape/slicing op over constants (weights split or sliced by Keras)."""
    op = node.op
    try:
        if op == "Split":
            axis, x = values
            return np.split(x, _int_attr(node, "num_split"), axis=_axis(axis, x.ndim))[output]
        if op == "SplitV":
            x, sizes, axis = values
            return np.split(x, np.cumsum(sizes)[:-1], axis=_axis(axis, x.ndim))[output]
        if op == "StridedSlice":
            return _strided_slice(node, *values)
        if op == "Squeeze":
            dims = repeated_varints(get_message(node.attrs().get("squeeze_dims", {}), 1) or {}, 3)
            return np.squeeze(values[0], axis=tuple(to_int32(d) for d in dims) or None)
        if op == "Reshape":
            return values[0].reshape(values[1].astype(np.int64))
        if op == "ExpandDims":
            return np.expand_dims(values[0], _axis(values[1], values[0].ndim + 1))
        if op == "Unpack":
            return np.moveaxis(values[0], _int_attr(node, "axis"), 0)[output]
        if op == "Transpose":
            return np.transpose(values[0], values[1].astype(np.int64))
        if op in ("GatherV2", "Gather"):
            return np.take(values[0], values[1].astype(np.int64), axis=_axis(values[2], values[0].ndim)
                           if len(values) > 2 else 0)
        if op in ("ConcatV2",):
            return np.concatenate(values[:-1], axis=_axis(values[-1], values[0].ndim))
        if op in ("Add", "AddV2", "BiasAdd"):
            return values[0] + values[1]
        if op == "Mul":
            return values[0] * values[1]
        if op == "Sub":
            return values[0] - values[1]
        if op == "Neg":
            return -values[0]
    except (ValueError, IndexError, TypeError):
        return None
    return None


def _slice_linear(node: _Node, args: list[Expr], output: int) -> Expr:
    """Columns of a Linear form: ``Split``/``SplitV`` along the last axis, or a
    ``StridedSlice`` that keeps every row."""
    if node.op == "Split":
        axis, value = args
    elif node.op == "SplitV":
        value, sizes, axis = args
    else:
        value, axis = args[0], None
    if not isinstance(value, Linear):
        return Op("?" + node.op)
    width = value.width
    index = np.arange(width)[None, :]
    try:
        if node.op == "Split":
            if not isinstance(axis, Const) or _axis(axis.value, 2) != 1:
                return Op("?Split(axis)")
            cols = np.split(index, _int_attr(node, "num_split"), axis=1)[output]
        elif node.op == "SplitV":
            if not isinstance(axis, Const) or _axis(axis.value, 2) != 1 or not isinstance(sizes, Const):
                return Op("?SplitV(axis)")
            cols = np.split(index, np.cumsum(sizes.value)[:-1], axis=1)[output]
        else:
            if not all(isinstance(a, Const) for a in args[1:]):
                return Op("?StridedSlice")
            cols = _strided_slice(node, index, *(a.value for a in args[1:]))
    except (ValueError, IndexError):
        return Op("?" + node.op)
    if cols.ndim != 2 or cols.shape[0] != 1 or cols.size == 0:
        return Op("?" + node.op + "(rows)")
    return value.columns(cols[0])


# ------------------------------------------------------------------ recognition


@dataclass
class KerasLoop:
    """A recognised recurrent loop: its cell and how it walks and reads its sequence."""

    loop: Loop
    cell: Cell
    #: The sequence of steps ``x`` comes from, outside the loop (time-major, maybe reversed).
    steps: tuple[_Graph, Tensor]
    masked: bool
    zero_output_for_mask: bool
    #: The loop variable holding the step outputs (a tensor list), if any.
    outputs: LoopVar | None
    #: Names of the constants the loop reads (its weights among them).
    constants: set[str] = field(default_factory=set)
    #: The carried states (``h``, ``c``, a masked layer's previous output).
    states: list[LoopVar] = field(default_factory=list)
    #: Each cell (one; several for ``RNN(StackedRNNCells)``) with its own states, ``hidden``
    #: then (LSTM) ``cell``.
    stack: list[tuple[Cell, list[LoopVar]]] = field(default_factory=list)

    @property
    def cell_states(self) -> list[LoopVar]:
        """The states of every cell, in Keras's order (each cell's ``h``, then ``c``)."""
        return [var for _, own in self.stack for var in own]


def _unmask(e: Expr, var: int) -> tuple[Expr, Expr | None]:
    """``SelectV2(mask, new, old)`` -> (new, mask); anything else -> (e, None)."""
    if isinstance(e, Op) and e.kind == "select" and isinstance(e.args[2], Var) and e.args[2].index == var:
        return e.args[1], e.args[0]
    return e, None


def _scalar(e: Expr) -> float | None:
    return float(e.value.reshape(-1)[0]) if isinstance(e, Const) and e.value.size == 1 else None


def _op_with_scalar(e: Expr, kind: str) -> tuple[Expr, float] | None:
    """(other operand, constant) of ``kind(other, c)`` / ``kind(c, other)`` (``div``: c second)."""
    if not (isinstance(e, Op) and e.kind == kind and len(e.args) == 2):
        return None
    a, b = e.args
    if _scalar(b) is not None:
        return a, _scalar(b)
    if kind != "div" and _scalar(a) is not None:
        return b, _scalar(a)
    return None


def _hard_sigmoid(e: Expr) -> tuple[str, Expr] | None:
    """Keras 3 ``relu6(x + 3) / 6`` and Keras 2 / tf_keras ``clip(x * 0.2 + 0.5, 0, 1)``."""
    div = _op_with_scalar(e, "div")
    if div is not None and div[1] == 6.0 and isinstance(div[0], Op) and div[0].name == "relu6":
        shifted = _op_with_scalar(div[0].args[0], "add")
        if shifted is not None and shifted[1] == 3.0:
            return "hard_sigmoid", shifted[0]
    top = _op_with_scalar(e, "max")
    low = _op_with_scalar(top[0], "min") if top is not None and top[1] == 0.0 else None
    if low is not None and low[1] == 1.0:
        shifted = _op_with_scalar(low[0], "add")
        scaled = _op_with_scalar(shifted[0], "mul") if shifted and shifted[1] == np.float32(0.5) else None
        if scaled is not None and scaled[1] == np.float32(0.2):
            return "hard_sigmoid_keras2", scaled[0]
    return None


def _gate(e: Expr, what: str) -> tuple[str, Expr]:
    """(activation name, pre-activation) of ``act(pre)`` (one op, or a Keras hard sigmoid)."""
    if isinstance(e, Op) and e.kind == "act":
        return e.name, e.args[0]
    if isinstance(e, Linear):  # activation=None / "linear": no op at all
        return "linear", e
    hard = _hard_sigmoid(e)
    if hard is not None:
        return hard
    raise LoopError(f"{what} is {_describe(e)}, not an activation of the gate's sum")


def _describe(e: Expr) -> str:
    what = f"{e.kind.lstrip('?')} op" + (f" ({e.name})" if e.name else "") if isinstance(e, Op) \
        else type(e).__name__.lower()
    return f"{'an' if what[0] in 'aeiou' else 'a'} {what}"


def _mul_with(e: Expr, target: Expr) -> Expr | None:
    """The other factor of ``mul(other, target)`` / ``mul(target, other)``."""
    if isinstance(e, Op) and e.kind == "mul":
        a, b = e.args
        if _same(b, target):
            return a
        if _same(a, target):
            return b
    return None


def _same(a: Expr, b: Expr) -> bool:
    return a is b or (isinstance(a, Var) and isinstance(b, Var) and a.index == b.index)


def _is_input(e: Expr, source: Expr | None) -> bool:
    """Whether ``e`` is the cell's input: a step of the sequence, or (a stacked cell's) the
    new hidden state of the cell before it."""
    return isinstance(e, Step) if source is None else e is source


def _step_and_state(pre: Linear, state: Var, what: str, *, recurrent: Expr | None = None,
                    source: Expr | None = None) -> tuple[Expr, np.ndarray, np.ndarray]:
    """The input, ``W`` and ``U`` of ``x W + h U (+ b)`` (``recurrent``: the operand ``U``
    multiplies, ``h`` itself unless given; ``source``: see :func:`_is_input`)."""
    steps = [e for e, _ in pre.terms if _is_input(e, source)]
    if len(steps) != 1:
        raise LoopError(f"{what}: {len(steps)} step inputs multiply a kernel (expected 1)")
    target = recurrent if recurrent is not None else state
    u = [m for e, m in pre.terms if _same(e, target)]
    if len(u) != 1 or len(pre.terms) != 2:
        raise LoopError(f"{what}: its sum is not x·W + h·U (+ b) ({len(pre.terms)} matrix products)")
    return steps[0], pre.matrix(steps[0]), u[0]


def _linear(e: Expr, what: str) -> Linear:
    if not isinstance(e, Linear):
        raise LoopError(f"{what} is {_describe(e)}, not a sum of matrix products")
    return e


def _bias(pre: Linear, width: int, dtype) -> np.ndarray:
    return pre.bias if pre.bias is not None else np.zeros(width, dtype)


def recognise(meta: MetaGraph, loop: Loop) -> KerasLoop:
    """The cell of ``loop`` (raises :class:`LoopError` when it is not a Keras cell)."""
    reader = _Reader(meta, loop)
    nexts: dict[int, Expr] = {}
    try:
        for var in loop.vars:
            if not var.invariant and var.next is not None:
                nexts[var.index] = reader.body(var.next[1])
    except RecursionError:
        raise LoopError("its ops nest too deeply to be one cell") from None
    outputs = [i for i, e in nexts.items() if isinstance(e, Op) and e.kind == "setitem"]
    if len(outputs) > 1:
        raise LoopError(f"not a Keras recurrent layer's loop (it writes {len(outputs)} lists of "
                        "step outputs; a Keras layer writes 1)")
    # No list at all: a layer whose step outputs nothing reads (return_state only) loses it.
    out_var = outputs[0] if outputs else None
    written = nexts[out_var].args[1] if out_var is not None else None
    # Keras 3 carries a masked layer's previous output too: its next value is the output.
    masked_output = isinstance(written, Op) and written.kind == "select"
    states = [i for i, e in nexts.items()
              if i != out_var and not (masked_output and e is written) and _is_state(e)]
    attempts: list[LoopError] = []
    for build in (_lstm, _gru, _simple_rnn):
        try:
            found = build(states, nexts)
            if sorted(found[4]) != sorted(states):
                raise LoopError("it carries states the cell does not use", depth=9)
            return _checked(loop, reader, [found], states, written, out_var)
        except LoopError as err:
            attempts.append(err)
        except ValueError as err:  # weights whose shapes do not fit one cell
            attempts.append(LoopError(f"its weights do not fit one cell ({err})"))
    if len(states) >= 2:  # RNN(StackedRNNCells): several cells, each reading the one before
        try:
            return _checked(loop, reader, _stack(states, nexts), states, written, out_var)
        except LoopError as err:
            if len(states) > 2:
                raise LoopError(f"not a stack of LSTM, GRU or SimpleRNN cells ({err})") from None
    if len(states) == 2:
        why = f"as an LSTM: {attempts[0]}"
    elif len(states) == 1:
        why = f"as a GRU: {attempts[1]}; as a SimpleRNN: {attempts[2]}"
    else:
        why = "it carries no state"
    raise LoopError(f"not an LSTM, GRU or SimpleRNN cell ({why})")


def _stack(states: list[int], nexts: dict[int, Expr]) -> list[tuple]:
    """The cells of ``RNN(StackedRNNCells)``: the first reads the step, each next one the new
    hidden state of the one before; together they carry every state."""
    cells: list[tuple] = []
    remaining, source = list(states), None
    while remaining:
        errors = []
        for build in (_lstm, _gru, _simple_rnn):
            try:
                found = build(remaining, nexts, source)
                break
            except LoopError as err:
                errors.append(err)
            except ValueError as err:
                errors.append(LoopError(f"its weights do not fit one cell ({err})"))
        else:
            raise LoopError(f"cell {len(cells)}: {max(errors, key=lambda e: e.depth)}")
        cells.append(found)
        remaining = [i for i in remaining if i not in found[4]]
        source = found[3]
    return cells


def _checked(loop: Loop, reader: _Reader, cells: list[tuple], states: list[int],
             written: Expr | None, out_var: int | None) -> KerasLoop:
    """The recognised cells, once the step output is the last one's new ``h`` and every state
    and the output are masked alike."""
    cell, step, _, _, _ = cells[0]
    new_h = cells[-1][3]
    masks = [m for found in cells for m in found[2]]
    if any(bool(found[2]) != bool(masks) for found in cells):
        raise LoopError("some of its cells are masked and some are not", depth=9)
    zero_output = False
    out_new, out_mask = written if written is not None else new_h, None
    if isinstance(written, Op) and written.kind == "select":
        out_mask, out_new = written.args[0], written.args[1]
        other = written.args[2]
        zero_output = isinstance(other, Op) and other.kind == "zeros" or (
            isinstance(other, Const) and not other.value.any())
    if out_new is not new_h:
        raise LoopError("the step output is not the new hidden state", depth=9)
    mask_steps = {_mask_source(m) for m in [*masks, out_mask] if m is not None}
    if len(mask_steps) > 1 or (out_mask is not None and not masks):
        raise LoopError("the states and the output are not all masked by the same mask", depth=9)
    if not isinstance(step, Step):
        raise LoopError("its first cell does not read a step of a sequence", depth=9)
    return KerasLoop(
        loop, cell, (step.graph, step.sequence), bool(masks), zero_output,
        loop.vars[out_var] if out_var is not None else None, constants=reader.constants,
        states=[loop.vars[i] for i in states],
        stack=[(found[0], [loop.vars[i] for i in found[4]]) for found in cells],
    )


def _mask_source(e: Expr) -> object:
    return (id(e.graph), e.sequence) if isinstance(e, Step) else id(e)


def _is_state(e: Expr) -> bool:
    """A carried value computed by the cell: not a counter (int arithmetic), nor a list that
    a graph built for training pushes intermediates to for the gradient."""
    if isinstance(e, Op) and e.kind == "pushback":
        return False
    return not (isinstance(e, Op) and e.kind == "add"
                and any(isinstance(a, Const) and a.value.dtype.kind in "iu" for a in e.args))


def _lstm(states: list[int], nexts: dict[int, Expr], source: Expr | None = None):
    if len(states) < 2:
        raise LoopError(f"{len(states)} carried state(s), an LSTM has 2")
    errors = []
    for h_var in states:
        for c_var in states:
            if h_var == c_var:
                continue
            try:
                return _lstm_pair(h_var, c_var, nexts, source)
            except LoopError as err:
                errors.append(err)
    raise max(errors, key=lambda e: e.depth)  # the pairing of h and c that matched furthest


def _lstm_pair(h_var: int, c_var: int, nexts: dict[int, Expr], source: Expr | None):
    h_new, h_mask = _unmask(nexts[h_var], h_var)
    c_new, c_mask = _unmask(nexts[c_var], c_var)
    if not (isinstance(c_new, Op) and c_new.kind == "add"):
        raise LoopError("the new cell state is not f*c + i*g")
    keep = [a for a in c_new.args if _mul_with(a, Var(c_var)) is not None]
    if len(keep) != 1:
        raise LoopError("the new cell state does not multiply the old one by a forget gate")
    try:
        return _lstm_gates(h_var, c_var, h_new, h_mask, c_new, c_mask, keep[0], source)
    except LoopError as err:  # c' = f*c + ... matched: this pairing is the one to explain
        raise LoopError(str(err), depth=1) from None


def _lstm_gates(h_var: int, c_var: int, h_new: Expr, h_mask, c_new: Op, c_mask, keep: Expr,
                source: Expr | None):
    f = _mul_with(keep, Var(c_var))
    write = next(a for a in c_new.args if a is not keep)
    if not (isinstance(write, Op) and write.kind == "mul"):
        raise LoopError("the new cell state does not add i*g")
    i, g = write.args  # Keras: c = f * c_tm1 + i * activation(z_c)
    o = None
    if isinstance(h_new, Op) and h_new.kind == "mul":
        for a, b in (h_new.args, h_new.args[::-1]):
            if isinstance(b, Op) and b.kind == "act" and b.args[0] is c_new:
                o, out_act = a, b.name
            elif b is c_new:  # activation=None: h' = o * c'
                o, out_act = a, "linear"
    if o is None:
        raise LoopError("the new hidden state is not o*φ(c')")
    gates = {"input_gate": i, "forget_gate": f, "candidate": g, "output_gate": o}
    pre, acts = {}, {}
    for name, e in gates.items():
        acts[name], p = _gate(e, name.replace("_", " "))
        pre[name] = _linear(p, f"the {name.replace('_', ' ')}'s sum")
    step, *_ = _step_and_state(pre["input_gate"], Var(h_var), "input gate", source=source)
    parts = {n: _step_and_state(p, Var(h_var), n.replace("_", " "), source=source)
             for n, p in pre.items()}
    if any(s[0] is not step for s in parts.values()):
        raise LoopError("the gates read different step inputs")
    recurrent = {acts["input_gate"], acts["forget_gate"], acts["output_gate"]}
    if len(recurrent) != 1:
        raise LoopError("the input, forget and output gates use different activations "
                        f"({', '.join(sorted(recurrent))})")
    if acts["candidate"] != out_act:
        raise LoopError(f"the candidate uses {acts['candidate']} but the output uses {out_act}(c')")
    units = parts["input_gate"][2].shape[1]
    order = CANONICAL_ORDER["lstm"]
    dtype = parts["input_gate"][1].dtype
    cell = Cell(
        kind="lstm", units=units,
        kernel=np.concatenate([parts[n][1] for n in order], axis=1),
        recurrent_kernel=np.concatenate([parts[n][2] for n in order], axis=1),
        bias=np.concatenate([_bias(pre[n], units, dtype) for n in order]),
        activation=acts["candidate"], recurrent_activation=recurrent.pop(), layout="keras_lstm",
    )
    if (h_mask is None) != (c_mask is None):
        raise LoopError("only one of the two states is masked")
    return cell, step, [m for m in (h_mask, c_mask) if m is not None], h_new, [h_var, c_var]


def _one_state(build, states: list[int], nexts: dict[int, Expr], source: Expr | None, kind: str):
    """A one-state cell on one of ``states`` (the one that matches furthest explains a miss)."""
    if not states:
        raise LoopError(f"no carried state, a {kind} has 1")
    errors = []
    for h_var in states:
        try:
            return build(h_var, nexts, source)
        except LoopError as err:
            errors.append(err)
    raise max(errors, key=lambda e: e.depth)


def _gru(states: list[int], nexts: dict[int, Expr], source: Expr | None = None):
    return _one_state(_gru_on, states, nexts, source, "GRU")


def _gru_on(h_var: int, nexts: dict[int, Expr], source: Expr | None):
    h = Var(h_var)
    h_new, mask = _unmask(nexts[h_var], h_var)
    if not (isinstance(h_new, Op) and h_new.kind == "add"):
        raise LoopError("the new state is not z*h + (1-z)*h̃")
    keep = [a for a in h_new.args if _mul_with(a, h) is not None]
    if len(keep) != 1:
        raise LoopError("the new state does not multiply the old one by an update gate z")
    z = _mul_with(keep[0], h)
    blend = next(a for a in h_new.args if a is not keep[0])
    one_minus_z = candidate = None
    if isinstance(blend, Op) and blend.kind == "mul":
        for a, b in (blend.args, blend.args[::-1]):
            if isinstance(a, Op) and a.kind == "sub" and a.args[1] is z and isinstance(a.args[0], Const) \
                    and np.all(a.args[0].value == 1):
                one_minus_z, candidate = a, b
    if one_minus_z is None:
        raise LoopError("the new state does not add (1-z)*h̃")
    z_act, z_pre = _gate(z, "update gate")
    h_act, h_pre = _gate(candidate, "candidate")
    z_pre = _linear(z_pre, "the update gate's sum")
    step, wz, uz = _step_and_state(z_pre, h, "update gate", source=source)
    r = None
    if isinstance(h_pre, Linear):  # reset_after=False: φ(x W_h + (r ⊙ h) U_h + b_h)
        reset_after = False
        operands = [e for e, _ in h_pre.terms if not _is_input(e, source)]
        r = _mul_with(operands[0], h) if len(operands) == 1 else None
        if r is None:
            raise LoopError("the candidate's sum has no (r*h)·U term")
        _, wh, uh = _step_and_state(h_pre, h, "candidate", recurrent=operands[0], source=source)
        bh, rbh = h_pre.bias, None
    elif isinstance(h_pre, Op) and h_pre.kind == "add":  # φ(x W_h + b_h + r ⊙ (h U_h + rb_h))
        reset_after = True
        x_part = next((a for a in h_pre.args if isinstance(a, Linear)), None)
        gated = next((a for a in h_pre.args if a is not x_part), None)
        if x_part is None or not (isinstance(gated, Op) and gated.kind == "mul"):
            raise LoopError("the candidate's sum is not x·W + r*(h·U)")
        r, h_part = gated.args
        if isinstance(r, Linear):
            r, h_part = h_part, r
        if not isinstance(h_part, Linear) or len(x_part.terms) != 1 or len(h_part.terms) != 1 \
                or not _is_input(x_part.terms[0][0], source) or not _same(h_part.terms[0][0], h):
            raise LoopError("the candidate's sum is not x·W + r*(h·U)")
        wh, uh = x_part.terms[0][1], h_part.terms[0][1]
        bh, rbh = x_part.bias, h_part.bias
        if x_part.terms[0][0] is not step:
            raise LoopError("the gates read different step inputs")
    else:
        raise LoopError(f"the candidate's sum is {_describe(h_pre)}")
    r_act, r_pre = _gate(r, "reset gate")
    r_input, wr, ur = _step_and_state(_linear(r_pre, "the reset gate's sum"), h, "reset gate",
                                      source=source)
    if r_input is not step:
        raise LoopError("the gates read different step inputs")
    if z_act != r_act:
        raise LoopError(f"the update and reset gates use different activations ({z_act}, {r_act})")
    units = uz.shape[1]
    dtype = wz.dtype
    zero = np.zeros(units, dtype)
    bias = np.concatenate([_bias(z_pre, units, dtype), _bias(r_pre, units, dtype),
                           bh if bh is not None else zero])
    cell = Cell(
        kind="gru", units=units, kernel=np.concatenate([wz, wr, wh], axis=1),
        recurrent_kernel=np.concatenate([uz, ur, uh], axis=1), bias=bias,
        recurrent_bias=(np.concatenate([zero, zero, rbh if rbh is not None else zero])
                        if reset_after else None),
        reset_after=reset_after, activation=h_act, recurrent_activation=z_act, layout="keras_gru",
    )
    return cell, step, [mask] if mask is not None else [], h_new, [h_var]


def _simple_rnn(states: list[int], nexts: dict[int, Expr], source: Expr | None = None):
    return _one_state(_simple_rnn_on, states, nexts, source, "SimpleRNN")


def _simple_rnn_on(h_var: int, nexts: dict[int, Expr], source: Expr | None):
    h_new, mask = _unmask(nexts[h_var], h_var)
    act, pre = _gate(h_new, "the new state")
    pre = _linear(pre, "the new state's sum")
    step, w, u = _step_and_state(pre, Var(h_var), "SimpleRNN", source=source)
    cell = Cell(kind="simple_rnn", units=u.shape[1], kernel=w, recurrent_kernel=u,
                bias=_bias(pre, u.shape[1], w.dtype), activation=act, layout="simple_rnn")
    return cell, step, [mask] if mask is not None else [], h_new, [h_var]
