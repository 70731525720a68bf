"""Frozen TensorFlow graphs (a ``GraphDef`` ``.pb``) of TF1 RNN cells or Keras layers, read
without TensorFlow.

A graph frozen by TF2 (``convert_variables_to_constants_v2`` of a Keras model's concrete
function) runs each Keras ``LSTM``/``GRU``/``SimpleRNN`` as a loop; those loops are recognised
from their ops (:mod:`.tf.keras_loop`) and laid out as the model's layers
(:mod:`.tf.keras_frozen`). Otherwise the graph is taken as a TF1 graph, as follows.

``tf.compat.v1.graph_util.convert_variables_to_constants`` (and ``freeze_graph``) turn
every variable of a TF1 graph into a ``Const`` node of the same name and write the
``GraphDef``: the usual deployment file of TF1 models. There is no checkpoint; the
weights are the constants' tensors, and the graph that uses them is all there.

The cells are found as in a TF1 checkpoint (:mod:`.tf1_checkpoint`), from the constants
that were variables (those read through an ``Identity`` named after them: ``kernel/read``,
``kernel/Read/ReadVariableOp``): ``rnn/basic_lstm_cell/kernel``, ``.../gru_cell/gates/kernel``,
MultiRNNCell ``cell_<k>`` scopes, ``fw``/``bw`` of ``bidirectional_dynamic_rnn``, partitioned
kernels (``kernel/part_<k>``, concatenated along their first axis as the cell does). The
numbers the cells were built with (``forget_bias``, ``cell_clip``, ``proj_clip``, the
activation) are read from the ops that use the weights (:mod:`.tf.meta_graph`), in the main
graph (static RNNs, TF 1.x ``while`` loops) or in the loop-body functions of TF 2 graphs.
Trace keys are the cells' scopes. INPUT is ``(batch, steps, features)`` even when the graph
itself is time-major.

``GraphDef { repeated NodeDef node = 1; FunctionDefLibrary library = 2; }``,
``NodeDef { string name = 1; string op = 2; ... }``: a file is taken as a GraphDef when it
opens with a node whose name and op type read as TensorFlow names.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..network import Network
from .errors import LoadError
from .options import LoadOptions
from .protobuf_wire import ProtobufDecodeError, decode_varint
from .tf.keras_frozen import keras_network
from .tf.keras_loop import find_loops
from .tf.meta_graph import MetaGraph, MetaGraphError, tensor_shape, tensor_value
from .tf1_checkpoint import WeightSource, build_tf1_network, find_cells

#: Files the SavedModel loader reads (a SavedModel proto, not a GraphDef).
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
_NODE_NAME = re.compile(rb"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")
_OP_NAME = re.compile(rb"^[A-Z][A-Za-z0-9_]*$")
_PART = re.compile(r"^(.*)/part_(\d+)$")
_HEAD_BYTES = 4096
_FLOAT_DTYPES = {1, 2, 14, 19}  # DT_FLOAT, DT_DOUBLE, DT_BFLOAT16, DT_HALF


def _read_string(head: bytes, pos: int, tag: int) -> tuple[bytes, int] | None:
    if pos >= len(head) or head[pos] != tag:
        return None
    length, pos = decode_varint(head, pos + 1)
    if length == 0 or pos + length > len(head):
        return None
    return head[pos:pos + length], pos + length


def match(path: Path) -> bool:
    """A file that opens as a ``GraphDef``: its first field a ``NodeDef`` whose ``name`` and
    ``op`` are TensorFlow names (``rnn/lstm_cell/kernel``, ``Const``).

    A SavedModel's ``saved_model.pb`` (a ``SavedModel`` proto), a ``.meta`` (a
    ``MetaGraphDef``, whose first field holds no op name) and an ONNX ``ModelProto`` (first
    field a varint) do not match.
    """
    if not path.is_file() or path.name in SAVED_MODEL_FILES:
        return False
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    if not head or head[0] != 0x0A:  # field 1, wire type 2: a NodeDef
        return False
    try:
        _, pos = decode_varint(head, 1)
        name = _read_string(head, pos, 0x0A)  # NodeDef.name
        if name is None:
            return False
        op = _read_string(head, name[1], 0x12)  # NodeDef.op
    except ProtobufDecodeError:
        return False
    return op is not None and bool(_NODE_NAME.match(name[0])) and bool(_OP_NAME.match(op[0]))


def open(path: Path, options: LoadOptions) -> Network:  # noqa: A001 - the registry's verb
    """The canonical Network of the TF1 RNN cells of a frozen GraphDef."""
    try:
        graph = MetaGraph(path.read_bytes(), path.name, frozen=True)
    except MetaGraphError as err:
        raise LoadError(
            f"{err}; the file is truncated or not a frozen TensorFlow graph"
        ) from None
    shapes, tensors = _weights(graph, path.name)
    try:
        tf1_cells = bool(find_cells(shapes))
    except LoadError:  # names of TF1 cells on other shapes: Keras's own lstm/lstm_cell/kernel
        tf1_cells = False
    keras = keras_network(graph, path.name, tf1_cells=tf1_cells, weights=shapes)
    if keras is not None:
        return keras
    cache: dict[str, np.ndarray] = {}

    def read(name: str) -> np.ndarray:
        if name not in cache:
            parts = tensors[name]
            try:
                arrays = [tensor_value(t) for t in parts]
            except ValueError as err:
                raise LoadError(f"{path.name}: constant {name!r} cannot be read ({err})") from None
            cache[name] = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        return cache[name]

    weights = WeightSource(
        shapes=shapes, read=read, graph=graph, graph_name=path.name,
        source=f"frozen TF graph {path.name}", what="frozen TF graph",
        no_graph=f"not found in {path.name}",
        between=f"the ops between separate RNNs in {path.name} are not replayed",
    )
    try:
        return build_tf1_network(weights, options, [], name=path.name)
    except LoadError as err:
        if "no recognisable RNN cell" not in str(err):
            raise
        loops = "" if find_loops(graph) else (
            "; this graph has no while loop at all (a Keras layer built with unroll=True has "
            "none: its steps are copies of the cell, which lstm-trace does not read)")
        raise LoadError(f"{err}; lstm-trace reads frozen graphs of TF1 tf.nn.rnn_cell cells and "
                        f"of Keras LSTM/GRU/SimpleRNN layers (their while loops){loops}") from None


def _weights(graph: MetaGraph, name: str) -> tuple[dict[str, tuple[int, ...]], dict[str, list]]:
    """The graph's weight constants: ``name -> shape`` and ``name -> [TensorProto, ...]``.

    Weights are the floating-point constants of rank 1 or more that were variables: freezing
    turns a variable into a ``Const`` and its reads (``kernel/read``, ``ReadVariableOp``) into
    ``Identity`` nodes. A graph whose weights are read without one (raw ops fed straight
    from ``get_variable``) offers every floating-point constant but fills (``tf.zeros``:
    one stored value for many elements).
    Partitioned variables (``<name>/part_<k>``) become one weight, parts in ``k`` order.
    """
    candidates = []
    for const, tensor, readers in graph.constants():
        shape = tensor_shape(tensor)
        if shape is None or not shape or tensor.get(1, [0])[-1] not in _FLOAT_DTYPES:
            continue
        candidates.append((const, tensor, shape, "Identity" in readers))
    if any(c[3] for c in candidates):
        candidates = [c for c in candidates if c[3]]
    else:
        candidates = [c for c in candidates if not _is_fill(c[1], c[2])]
    parts: dict[str, list[tuple[int, object, tuple[int, ...]]]] = {}
    for const, tensor, shape, _ in candidates:
        m = _PART.match(const)
        key, index = (m.group(1), int(m.group(2))) if m else (const, 0)
        parts.setdefault(key, []).append((index, tensor, shape))
    shapes: dict[str, tuple[int, ...]] = {}
    tensors: dict[str, list] = {}
    for key, pieces in parts.items():
        pieces.sort(key=lambda p: p[0])
        first = pieces[0][2]
        if any(p[2][1:] != first[1:] for p in pieces):
            raise LoadError(f"{name}: the parts of {key!r} have shapes that do not concatenate "
                            f"({', '.join(str(p[2]) for p in pieces)})")
        shapes[key] = (sum(p[2][0] for p in pieces), *first[1:])
        tensors[key] = [p[1] for p in pieces]
    return shapes, tensors


def _is_fill(tensor: dict, shape: tuple[int, ...]) -> bool:
    """A constant of many elements stored as one value (TF's splat: ``tf.zeros``, ``tf.ones``)."""
    if 4 in tensor:  # tensor_content holds every element
        return False
    stored = sum(len(v) // 4 if isinstance(v, bytes) else 1 for f in (5, 6, 13) for v in tensor.get(f, []))
    return int(np.prod(shape)) > 1 and stored <= 1
