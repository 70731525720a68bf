"""Facts about TF1 RNN cells read from a ``.meta`` graph file, without TensorFlow.

A TF1 checkpoint stores variables only. The numbers a cell was *built* with
(``forget_bias``, ``activation``, ``cell_clip``, ``proj_clip``) live in the graph,
which ``tf.compat.v1.train.Saver.save`` writes beside it as ``<prefix>.meta``: a
serialized ``MetaGraphDef``. This module reads that graph with the protobuf wire
decoder and recognises each cell's computation starting from its kernel variable.
Nothing in the graph is executed; only node names, op types, edges and the values
of scalar ``Const`` nodes are read.

Protos used (``tensorflow/core/protobuf/meta_graph.proto``, ``core/framework/*.proto``)::

    MetaGraphDef { GraphDef graph_def = 2; }
    GraphDef     { repeated NodeDef node = 1; FunctionDefLibrary library = 2; }
    NodeDef      { string name = 1; string op = 2; repeated string input = 3;
                   map<string, AttrValue> attr = 5; }
    FunctionDefLibrary { repeated FunctionDef function = 1; }
    FunctionDef  { OpDef signature = 1; repeated NodeDef node_def = 3; map<string, string> ret = 4; }
    OpDef        { string name = 1; repeated ArgDef input_arg = 2; repeated ArgDef output_arg = 3; }
    ArgDef       { string name = 1; }
    AttrValue    { bytes s = 2; int64 i = 3; float f = 4; bool b = 5;
                   TensorProto tensor = 8; NameAttrList func = 10; }
    TensorProto  { DataType dtype = 1; bytes tensor_content = 4; repeated float float_val = 5;
                   repeated double double_val = 6; repeated int32 int_val = 7;
                   repeated int64 int64_val = 10; repeated bool bool_val = 11;
                   repeated int32 half_val = 13; }

The patterns recognised are the ops TF's cells emit (``rnn_cell_impl`` / tf_keras
``legacy_cells``); ``c`` is the cell state, ``split:k`` the k-th gate block of the
fused ``[x, h] · kernel + bias`` in TF1 order ``i, j, f, o``::

    forget_bias   Add(split:2, Const)                     the Const
    activation    <op>(split:1)                           Tanh, Relu, ... of the candidate j
    cell_clip     Maximum(Minimum(c, Const), Const)       c = Add(Mul(.., act(j)), ..)
    proj_clip     Maximum(Minimum(MatMul(m, projection/kernel), Const), Const)

GRU and basic RNN cells give their activation as ``<op>(BiasAdd(MatMul([x, r*h],
candidate/kernel)))``. The monolithic ops (``LSTMBlockCell``, ``BlockLSTM``) carry
``forget_bias``, ``cell_clip`` and ``use_peephole`` as node attributes. Graphs from
TF 2 graph mode put loop bodies (``dynamic_rnn``) in library functions; a function
argument is traced back to the caller's input, so a kernel read inside a ``While``
body still resolves to its variable. TF 1.x graphs (``Enter``/``Switch`` loops) need
no such step.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..protobuf_wire import (
    Message,
    ProtobufDecodeError,
    decode_packed_fixed32,
    decode_packed_fixed64,
    get_bool,
    get_bytes,
    get_int,
    get_message,
    get_string,
    get_uint,
    parse_message,
    repeated_messages,
    repeated_strings,
    repeated_varints,
    to_int32,
)

VARIABLE_OPS = frozenset({"VarHandleOp", "VariableV2", "Variable"})
#: Ops that hand their first input through unchanged (reads, loop plumbing).
PASS_THROUGH = frozenset({
    "Identity", "ReadVariableOp", "Enter", "RefEnter", "Switch", "RefSwitch", "Snapshot",
    "StopGradient",
})
ADD_OPS = frozenset({"Add", "AddV2"})
#: Function-calling ops: attribute naming the function, and how many leading inputs
#: are not passed to it (``If``'s condition).
CALL_ATTRS: dict[str, tuple[tuple[str, ...], int]] = {
    "While": (("body", "cond"), 0),
    "StatelessWhile": (("body", "cond"), 0),
    "If": (("then_branch", "else_branch"), 1),
    "StatelessIf": (("then_branch", "else_branch"), 1),
    "PartitionedCall": (("f",), 0),
    "StatefulPartitionedCall": (("f",), 0),
}
#: Unary ops a cell may apply as its activation, by canonical activation name.
ACTIVATION_OPS: dict[str, str] = {
    "Tanh": "tanh", "Relu": "relu", "Relu6": "relu6", "Elu": "elu", "Selu": "selu",
    "Softplus": "softplus", "Softsign": "softsign", "Sigmoid": "sigmoid", "Exp": "exponential",
    "Identity": "linear",
}
#: Ops between a graph input and a cell's ``concat([x, h])`` that carry the sequence (or
#: one step of it), and the input index that does: how an RNN driver splits its input.
STEP_INPUT_OPS: dict[str, int] = {
    "ConcatV2": 0, "Concat": 1, "Unpack": 0, "Transpose": 0, "TensorListGetItem": 0,
    "TensorListFromTensor": 0, "TensorArrayReadV3": 2, "TensorArrayScatterV3": 2,
}
#: Monolithic LSTM ops and the input index of their weight matrix ``w``.
BLOCK_LSTM_OPS: dict[str, int] = {"LSTMBlockCell": 3, "BlockLSTM": 4, "BlockLSTMV2": 4}

_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_BFLOAT16, _DT_HALF = 1, 2, 3, 9, 14, 19
_MAX_DEPTH = 64
#: A partitioned variable's pieces are separate variables ``<name>/part_<k>``.
_PART = re.compile(r"^(.*)/part_\d+$")

Tensor = tuple[str, int]  # (node name, output index)


class MetaGraphError(ValueError):
    """The ``.meta`` file is not a readable MetaGraphDef."""


@dataclass
class CellFacts:
    """What the graph says about one cell. ``None``: the graph does not say.

    ``cell_clip`` / ``proj_clip`` are ``None`` when the graph applies no clip (the
    cell was found, so absence is a fact). ``layout`` is set when a monolithic op fixes
    a gate order other than TF1's ``i, j, f, o`` (``BlockLSTMV2``: ``i, f, j, o``).
    """

    forget_bias: float | None = None
    activation: str | None = None
    cell_clip: float | None = None
    proj_clip: float | None = None
    op: str | None = None
    layout: str | None = None
    #: Unary op names found where an activation should be but that lstm-trace cannot name.
    unknown_activation: str | None = None


@dataclass
class _Node:
    name: str
    op: str
    inputs: list[Tensor]
    raw_attrs: list[bytes]
    _attrs: dict[str, Message] | None = None

    def attrs(self) -> dict[str, Message]:
        if self._attrs is None:
            attrs: dict[str, Message] = {}
            for raw in self.raw_attrs:
                entry = parse_message(raw)
                attrs[get_string(entry, 1)] = get_message(entry, 2) or {}
            self._attrs = attrs
        return self._attrs


@dataclass
class _Graph:
    """The main graph (``name`` "") or one library function's body."""

    name: str
    nodes: dict[str, _Node] = field(default_factory=dict)
    args: dict[str, int] = field(default_factory=dict)  # function argument -> position
    #: A function's results in output order (``FunctionDef.ret`` of each ``output_arg``).
    outputs: list[Tensor | None] = field(default_factory=list)
    consumers: dict[Tensor, list[_Node]] = field(default_factory=dict)

    def add(self, node: _Node) -> None:
        self.nodes[node.name] = node
        for tensor in node.inputs:
            self.consumers.setdefault(tensor, []).append(node)

    def users(self, tensor: Tensor, ops: Iterable[str] | None = None) -> list[_Node]:
        found = self.consumers.get(tensor, [])
        if ops is None:
            return list(found)
        wanted = set(ops)
        return [n for n in found if n.op in wanted]


def _parse_ref(ref: str, in_function: bool) -> Tensor | None:
    """``name``, ``name:1`` (graph) or ``node:output_arg:1`` (function) -> (node, index)."""
    if ref.startswith("^"):
        return None  # control dependency, not data
    parts = ref.split(":")
    if len(parts) == 1:
        return parts[0], 0
    try:
        return parts[0], int(parts[-1])
    except ValueError:
        return (parts[0], 0) if in_function else None


def _node(msg: Message, in_function: bool) -> _Node:
    inputs = [t for t in (_parse_ref(r, in_function) for r in repeated_strings(msg, 3)) if t]
    raw_attrs = [v for v in msg.get(5, []) if isinstance(v, bytes)]
    return _Node(get_string(msg, 1), get_string(msg, 2), inputs, raw_attrs)


def _scalar(tensor: Message) -> float | None:
    """The value of a one-element TensorProto, or ``None``."""
    dtype = get_uint(tensor, 1)
    content = get_bytes(tensor, 4)
    values: list[float] = []
    if content:
        fmt = {_DT_FLOAT: "<f", _DT_DOUBLE: "<d", _DT_INT32: "<i", _DT_INT64: "<q", _DT_HALF: "<e"}
        if dtype in fmt and len(content) == struct.calcsize(fmt[dtype]):
            return float(struct.unpack(fmt[dtype], content)[0])
        if dtype == _DT_BFLOAT16 and len(content) == 2:
            return float(struct.unpack("<f", b"\0\0" + content)[0])
        return None
    if dtype == _DT_FLOAT:
        for raw in tensor.get(5, []):
            values += decode_packed_fixed32(raw, "f") if isinstance(raw, bytes) else [
                struct.unpack("<f", struct.pack("<I", raw))[0]]
    elif dtype == _DT_DOUBLE:
        for raw in tensor.get(6, []):
            values += decode_packed_fixed64(raw, "d") if isinstance(raw, bytes) else [
                struct.unpack("<d", struct.pack("<Q", raw))[0]]
    elif dtype in (_DT_INT32, _DT_INT64):
        values = [to_int32(v) for v in repeated_varints(tensor, 7)]
    elif dtype in (_DT_HALF, _DT_BFLOAT16):
        bits = repeated_varints(tensor, 13)
        if bits:
            raw = struct.pack("<H", bits[0] & 0xFFFF)
            return float(struct.unpack("<e", raw)[0] if dtype == _DT_HALF
                         else struct.unpack("<f", b"\0\0" + raw)[0])
    # A Const with one stored value is a splat: every element has it.
    return float(values[0]) if len(values) >= 1 else None


#: TensorProto dtypes a weight can have: NumPy dtype, and the repeated field of its values.
_TENSOR_DTYPES: dict[int, tuple[str, int]] = {
    _DT_FLOAT: ("<f4", 5), _DT_DOUBLE: ("<f8", 6), _DT_HALF: ("<f2", 13), _DT_BFLOAT16: ("<u2", 13),
}
#: Largest tensor (elements) a graph constant may declare: a guard against hostile shapes.
MAX_TENSOR_ELEMENTS = 1 << 31
#: Largest tensor filled from fewer stored values (TF's splat: the last value repeats).
MAX_SPLAT_ELEMENTS = 1 << 24


def tensor_shape(tensor: Message) -> tuple[int, ...] | None:
    """The shape of a ``TensorProto`` (``tensor_shape = 2 { repeated Dim dim = 2 { int64
    size = 1 } }``), or ``None`` when a dimension is unknown."""
    shape = get_message(tensor, 2) or {}
    dims = tuple(get_int(d, 1) for d in repeated_messages(shape, 2))
    return None if any(d < 0 for d in dims) else dims


def tensor_value(tensor: Message) -> np.ndarray:
    """A floating-point ``TensorProto`` as a float32 array (float64 stays float64).

    Values are in ``tensor_content`` (raw little-endian bytes) or in the typed repeated
    field; fewer values than elements is TF's splat: the last value repeats. Raises
    ``ValueError`` for other dtypes or a content that does not fit the shape.
    """
    dtype = get_uint(tensor, 1)
    shape = tensor_shape(tensor)
    if dtype not in _TENSOR_DTYPES or shape is None:
        raise ValueError(f"not a floating-point tensor of known shape (dtype #{dtype})")
    count = int(np.prod(shape, dtype=np.int64))
    if count > MAX_TENSOR_ELEMENTS:
        raise ValueError(f"tensor shape {shape} is too large")
    np_dtype, values_field = _TENSOR_DTYPES[dtype]
    content = get_bytes(tensor, 4)
    if content:
        flat = np.frombuffer(content, dtype=np_dtype)
        if flat.size != count:
            raise ValueError(f"tensor_content holds {flat.size} values for shape {shape}")
    else:
        if values_field == 13:
            flat = np.array([v & 0xFFFF for v in repeated_varints(tensor, 13)], dtype="<u2")
        else:
            kind = "f" if dtype == _DT_FLOAT else "d"
            values: list = []
            for raw in tensor.get(values_field, []):
                if isinstance(raw, bytes):
                    values += (decode_packed_fixed32 if kind == "f" else decode_packed_fixed64)(raw, kind)
                else:
                    width = "<I" if kind == "f" else "<Q"
                    values.append(struct.unpack("<" + kind, struct.pack(width, raw))[0])
            flat = np.array(values, dtype=np_dtype)
        if flat.size > count or (flat.size == 0 and count):
            raise ValueError(f"tensor holds {flat.size} values for shape {shape}")
        if flat.size < count:
            if count > MAX_SPLAT_ELEMENTS:  # a few bytes must not become gigabytes
                raise ValueError(f"tensor of shape {shape} stores only {flat.size} values")
            flat = np.concatenate([flat, np.full(count - flat.size, flat[-1], flat.dtype)])
    if dtype == _DT_BFLOAT16:
        flat = (flat.astype(np.uint32) << 16).view(np.float32)
    elif dtype == _DT_HALF:
        flat = flat.astype(np.float32)
    return flat.astype(flat.dtype.newbyteorder("="), copy=True).reshape(shape)


_INT_DTYPES: dict[int, tuple[str, int]] = {_DT_INT32: ("<i4", 7), _DT_INT64: ("<i8", 10), 10: ("?", 11)}


def tensor_array(tensor: Message) -> np.ndarray:
    """A ``TensorProto`` of floats (as :func:`tensor_value`), int32/int64 or bool as an array.

    Integer and bool tensors are the small index, shape and mask constants of a graph
    (split axes, slice bounds, ``perm``), limited to :data:`MAX_SPLAT_ELEMENTS` elements.
    """
    dtype = get_uint(tensor, 1)
    shape = tensor_shape(tensor)
    if shape is None:
        raise ValueError("tensor of unknown shape")
    count = int(np.prod(shape, dtype=np.int64))
    if not any(f in tensor for f in (4, 5, 6, 7, 10, 11, 13)) and count <= MAX_SPLAT_ELEMENTS:
        # No value stored at all: every element has the proto default, zero.
        kinds = {_DT_FLOAT: np.float32, _DT_DOUBLE: np.float64, _DT_HALF: np.float32,
                 _DT_BFLOAT16: np.float32, _DT_INT32: np.int32, _DT_INT64: np.int64, 10: np.bool_}
        if dtype in kinds:
            return np.zeros(shape, kinds[dtype])
    if dtype not in _INT_DTYPES:
        return tensor_value(tensor)
    if count > MAX_SPLAT_ELEMENTS:
        raise ValueError(f"tensor shape {shape} is too large")
    np_dtype, values_field = _INT_DTYPES[dtype]
    content = get_bytes(tensor, 4)
    if content:
        flat = np.frombuffer(content, dtype=np_dtype)
    else:
        raw = repeated_varints(tensor, values_field)
        if dtype == _DT_INT32:
            raw = [to_int32(v) for v in raw]
        elif dtype == _DT_INT64:
            raw = [v - (1 << 64) if v >= 1 << 63 else v for v in raw]
        flat = np.array(raw, dtype=np_dtype)
        if 0 < flat.size < count:
            flat = np.concatenate([flat, np.full(count - flat.size, flat[-1], flat.dtype)])
    if flat.size != count:
        raise ValueError(f"tensor holds {flat.size} values for shape {shape}")
    return flat.astype(flat.dtype.newbyteorder("="), copy=True).reshape(shape)


def _float_attr(node: _Node, name: str) -> float | None:
    value = node.attrs().get(name)
    if not value or 4 not in value:
        return None
    raw = value[4][-1]
    return struct.unpack("<f", struct.pack("<I", raw))[0] if isinstance(raw, int) else None


class MetaGraph:
    """A parsed ``MetaGraphDef``: nodes of the main graph and of every library function."""

    def __init__(self, data: bytes, source: str = "", *, frozen: bool = False) -> None:
        """Parse a serialized ``MetaGraphDef`` (``frozen``: a bare ``GraphDef`` whose
        variables were turned into ``Const`` nodes, which then count as the variables)."""
        self.source = source
        self.variable_ops = VARIABLE_OPS | {"Const"} if frozen else VARIABLE_OPS
        try:
            message = parse_message(data)
            graph_def = message if frozen else get_message(message, 2)
            if graph_def is None:
                raise MetaGraphError(f"{source}: no graph_def in the MetaGraphDef")
            self.graph_def = graph_def
            main = _Graph("")
            for msg in repeated_messages(graph_def, 1):
                main.add(_node(msg, in_function=False))
            self.graphs: dict[str, _Graph] = {"": main}
            library = get_message(graph_def, 2) or {}
            for fn in repeated_messages(library, 1):
                signature = get_message(fn, 1) or {}
                body = _Graph(get_string(signature, 1))
                for position, arg in enumerate(repeated_messages(signature, 2)):
                    name = get_string(arg, 1)
                    body.args[name] = position
                    body.nodes[name] = _Node(name, "_Arg", [], [])
                for msg in repeated_messages(fn, 3):
                    body.add(_node(msg, in_function=True))
                ret = {get_string(e, 1): get_string(e, 2) for e in repeated_messages(fn, 4)}
                body.outputs = [_parse_ref(ret[name], True) if name in ret else None
                                for name in (get_string(a, 1) for a in repeated_messages(signature, 3))]
                self.graphs[body.name] = body
        except ProtobufDecodeError as err:
            kind = "GraphDef" if frozen else "MetaGraphDef"
            raise MetaGraphError(f"{source}: not a readable {kind} ({err})") from None
        self._callers = self._find_callers()
        self._matmuls = self._index_matmuls()
        self._blocks = self._index_block_ops()

    def callers(self, function: str) -> list[tuple[_Graph, _Node, int]]:
        """The nodes that call library function ``function``: (graph, node, offset of the
        first input passed to it)."""
        return list(self._callers.get(function, []))

    @classmethod
    def open(cls, path: str | Path) -> MetaGraph:
        try:
            data = Path(path).read_bytes()
        except OSError as err:
            raise MetaGraphError(f"{path}: cannot read ({err.strerror or err})") from None
        return cls(data, str(path))

    # -- indexing -----------------------------------------------------------------

    def _find_callers(self) -> dict[str, list[tuple[_Graph, _Node, int]]]:
        callers: dict[str, list[tuple[_Graph, _Node, int]]] = {}
        for graph in self.graphs.values():
            for node in graph.nodes.values():
                if node.op in self.graphs:  # a function called by name
                    callers.setdefault(node.op, []).append((graph, node, 0))
                    continue
                spec = CALL_ATTRS.get(node.op)
                if spec is None:
                    continue
                names, offset = spec
                for attr in names:
                    func = get_message(node.attrs().get(attr, {}), 10)
                    if func is not None:
                        callers.setdefault(get_string(func, 1), []).append((graph, node, offset))
        return callers

    def _index_matmuls(self) -> dict[str, list[tuple[_Graph, _Node]]]:
        """Forward ``MatMul(x, variable)`` nodes by variable (gradient matmuls skipped)."""
        index: dict[str, list[tuple[_Graph, _Node]]] = {}
        for graph in self.graphs.values():
            if "_grad_" in graph.name:
                continue
            for node in graph.nodes.values():
                if node.op != "MatMul" or len(node.inputs) < 2 or _is_gradient(node):
                    continue
                attrs = node.attrs()
                if any(get_bool(attrs.get(t, {}), 5) for t in ("transpose_a", "transpose_b")):
                    continue
                variable = self.variable(graph, node.inputs[1])
                if variable is not None:
                    index.setdefault(variable, []).append((graph, node))
        return index

    def _index_block_ops(self) -> dict[str, _Node]:
        index: dict[str, _Node] = {}
        for graph in self.graphs.values():
            for node in graph.nodes.values():
                position = BLOCK_LSTM_OPS.get(node.op)
                if position is None or len(node.inputs) <= position:
                    continue
                variable = self.variable(graph, node.inputs[position])
                if variable is not None:
                    index.setdefault(variable, node)
        return index

    def variables(self) -> list[str]:
        """Variable names of the main graph in creation order (partitioned ones once)."""
        names = [_PART.sub(r"\1", n.name) for n in self.graphs[""].nodes.values()
                 if n.op in self.variable_ops]
        return list(dict.fromkeys(names))

    def constants(self) -> list[tuple[str, Message, list[str]]]:
        """Every ``Const`` of the main graph: its name, ``TensorProto`` and the op types
        of the nodes that read it."""
        main = self.graphs[""]
        found = []
        for node in main.nodes.values():
            if node.op != "Const":
                continue
            tensor = get_message(node.attrs().get("value", {}), 8)
            if tensor is not None:
                found.append((node.name, tensor, [n.op for n in main.users((node.name, 0))]))
        return found

    def time_major_inputs(self) -> list[str]:
        """Placeholders an RNN driver unstacks along their first axis as they are, with no
        transpose before: ``dynamic_rnn(..., time_major=True)`` inputs ``(steps, batch, ...)``.

        ``dynamic_rnn`` splits its input into steps with ``TensorListFromTensor`` (TF 2
        graphs) or ``TensorArrayScatterV3`` (TF 1.x); a batch-major input reaches it through
        a ``Transpose``."""
        main = self.graphs[""]
        found: list[str] = []
        for node in main.nodes.values():
            position = {"TensorListFromTensor": 0, "TensorArrayScatterV3": 2}.get(node.op)
            if position is None or len(node.inputs) <= position:
                continue
            source = main.nodes.get(node.inputs[position][0])
            depth = 0
            while source is not None and source.op in PASS_THROUGH and source.inputs \
                    and depth < _MAX_DEPTH:
                source = main.nodes.get(source.inputs[0][0])
                depth += 1
            if source is not None and source.op in ("Placeholder", "PlaceholderV2"):
                found.append(source.name)
        return list(dict.fromkeys(found))

    def input_placeholder(self, kernel: str) -> str | None:
        """The graph input (``Placeholder``) whose steps the cell of ``kernel`` reads as its
        ``x``, or ``None`` when it reads something else (another RNN's output, other ops).

        Followed from the ``x`` half of the cell's ``concat([x, h]) · kernel`` back through
        the ops that split a sequence into steps (``Unpack`` of a static RNN; the tensor
        lists or arrays and the transpose of a ``dynamic_rnn``, into the loop's function
        arguments)."""
        for graph, matmul in self._matmuls.get(kernel, []):
            found = self._placeholder_of(graph, matmul.inputs[0], 0)
            if found is not None:
                return found
        return None

    def _placeholder_of(self, graph: _Graph, tensor: Tensor, depth: int) -> str | None:
        node = graph.nodes.get(tensor[0])
        if node is None or depth > _MAX_DEPTH:
            return None
        if node.op in ("Placeholder", "PlaceholderV2"):
            return node.name
        if node.op == "_Arg":
            for caller_graph, source in self._through_arg(graph, node, depth):
                found = self._placeholder_of(caller_graph, source, depth + 1)
                if found is not None:
                    return found
            return None
        position = 0 if node.op in PASS_THROUGH else STEP_INPUT_OPS.get(node.op)
        if position is None or len(node.inputs) <= position:
            return None
        return self._placeholder_of(graph, node.inputs[position], depth + 1)

    # -- resolving tensors --------------------------------------------------------

    def _through_arg(self, graph: _Graph, node: _Node, depth: int):  # -> Iterator[(graph, tensor)]
        position = graph.args.get(node.name)
        if position is None:
            return
        for caller_graph, caller, offset in self._callers.get(graph.name, []):
            index = offset + position
            if index < len(caller.inputs) and depth < _MAX_DEPTH:
                yield caller_graph, caller.inputs[index]

    def variable(self, graph: _Graph, tensor: Tensor, depth: int = 0) -> str | None:
        """The variable a tensor reads, following reads, loop plumbing and function args."""
        node = graph.nodes.get(tensor[0])
        if node is None or depth > _MAX_DEPTH:
            return None
        if node.op in self.variable_ops:
            return node.name
        if node.op in PASS_THROUGH and node.inputs:
            return self.variable(graph, node.inputs[0], depth + 1)
        if node.op == "ConcatV2" and len(node.inputs) > 2:
            # A partitioned variable is read as the concatenation of its parts.
            parts = {self.variable(graph, t, depth + 1) for t in node.inputs[:-1]}
            bases = {m.group(1) for p in parts if p and (m := _PART.match(p))}
            if len(bases) == 1 and None not in parts and len(parts) == len(node.inputs) - 1:
                return bases.pop()
            return None
        if node.op == "_Arg":
            for caller_graph, source in self._through_arg(graph, node, depth):
                found = self.variable(caller_graph, source, depth + 1)
                if found is not None:
                    return found
        return None

    def constant(self, graph: _Graph, tensor: Tensor, depth: int = 0) -> float | None:
        """The value of a scalar constant tensor, or ``None``."""
        node = graph.nodes.get(tensor[0])
        if node is None or depth > _MAX_DEPTH:
            return None
        if node.op == "Const":
            value = node.attrs().get("value")
            tensor_msg = get_message(value, 8) if value else None
            return _scalar(tensor_msg) if tensor_msg is not None else None
        if node.op in PASS_THROUGH | {"Cast"} and node.inputs:
            return self.constant(graph, node.inputs[0], depth + 1)
        if node.op == "_Arg":
            for caller_graph, source in self._through_arg(graph, node, depth):
                found = self.constant(caller_graph, source, depth + 1)
                if found is not None:
                    return found
        return None

    def _other_constant(self, graph: _Graph, node: _Node, this: Tensor) -> float | None:
        for tensor in node.inputs:
            if tensor != this:
                return self.constant(graph, tensor)
        return None

    def _clip_after(self, graph: _Graph, tensor: Tensor) -> float | None:
        """``c`` of ``clip_by_value(t, -c, c)`` applied to ``tensor``, or ``None``."""
        for low in graph.users(tensor, ("Minimum",)):
            high = self._other_constant(graph, low, tensor)
            if high is None:
                continue
            for top in graph.users((low.name, 0), ("Maximum",)):
                if self._other_constant(graph, top, (low.name, 0)) is not None:
                    return high
        return None

    def _gate_blocks(self, graph: _Graph, matmul: _Node) -> _Node | None:
        """The ``Split`` of ``[x, h] · W (+ b)`` into gate blocks."""
        source = (matmul.name, 0)
        for add in graph.users(source, ADD_OPS | {"BiasAdd"}):
            source = (add.name, 0)
            break
        for split in graph.users(source, ("Split", "SplitV")):
            return split
        return None

    def _activation_of(self, graph: _Graph, tensor: Tensor, facts: CellFacts) -> _Node | None:
        for user in graph.users(tensor):
            if user.op in ACTIVATION_OPS:
                facts.activation = ACTIVATION_OPS[user.op]
                return user
        users = [u.op for u in graph.users(tensor) if len(u.inputs) == 1]
        if users:
            facts.unknown_activation = users[0]
        return None

    # -- per-cell facts -----------------------------------------------------------

    def lstm_facts(self, kernel: str, projection: str | None = None) -> CellFacts | None:
        """Facts of a TF1 LSTM cell (BasicLSTMCell, LSTMCell, LSTMBlock*Cell) by its kernel."""
        block = self._blocks.get(kernel)
        if block is not None:
            return self._block_facts(block)
        for graph, matmul in self._matmuls.get(kernel, []):
            split = self._gate_blocks(graph, matmul)
            if split is None:
                continue
            facts = CellFacts(op="MatMul")
            # Split(axis, value) outputs the gate blocks i, j, f, o as outputs 0..3.
            for add in graph.users((split.name, 2), ADD_OPS):
                value = self._other_constant(graph, add, (split.name, 2))
                if value is not None:
                    facts.forget_bias = value
                    break
            act = self._activation_of(graph, (split.name, 1), facts)
            if act is not None:
                for mul in graph.users((act.name, 0), ("Mul",)):
                    for new_c in graph.users((mul.name, 0), ADD_OPS):
                        clip = self._clip_after(graph, (new_c.name, 0))
                        if clip is not None:
                            facts.cell_clip = clip
            if projection is not None:
                for proj_graph, proj in self._matmuls.get(projection, []):
                    if proj_graph is graph:
                        facts.proj_clip = self._clip_after(graph, (proj.name, 0))
                        if facts.proj_clip is not None:
                            break
            return facts
        return None

    def _block_facts(self, node: _Node) -> CellFacts:
        attrs = node.attrs()
        clip = _float_attr(node, "cell_clip")
        facts = CellFacts(
            op=node.op,
            # BlockLSTMV2 has no forget_bias attribute: it adds none.
            forget_bias=_float_attr(node, "forget_bias") if node.op != "BlockLSTMV2" else 0.0,
            activation="tanh",
            # A negative cell_clip means no clipping.
            cell_clip=clip if clip is not None and clip > 0 else None,
        )
        if node.op == "BlockLSTMV2":
            facts.layout = "keras_lstm"  # gate blocks i, f, ci, o
        if "use_peephole" in attrs:
            facts.op = f"{node.op}(use_peephole={get_bool(attrs['use_peephole'], 5)})"
        return facts

    def activation_facts(self, kernel: str) -> CellFacts | None:
        """Facts of a cell whose ``act(x · W + b)`` is its output (BasicRNNCell, GRU candidate)."""
        for graph, matmul in self._matmuls.get(kernel, []):
            source = (matmul.name, 0)
            for add in graph.users(source, ADD_OPS | {"BiasAdd"}):
                source = (add.name, 0)
                break
            facts = CellFacts(op="MatMul")
            self._activation_of(graph, source, facts)
            if facts.activation is not None or facts.unknown_activation is not None:
                return facts
        return None


def _is_gradient(node: _Node) -> bool:
    return node.name.startswith("gradients") or "/gradients" in node.name
