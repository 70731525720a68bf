"""ONNX protobuf messages, decoded with the project's wire decoder (no ``onnx`` package).

Only what a replay needs is read: ``ModelProto`` (``ir_version`` 1, ``graph`` 7,
``opset_import`` 8), ``GraphProto`` (``node`` 1, ``initializer`` 5, ``input`` 11,
``output`` 12), ``NodeProto`` (``input`` 1, ``output`` 2, ``name`` 3, ``op_type`` 4,
``attribute`` 5, ``domain`` 7), ``AttributeProto`` and ``TensorProto`` (field numbers
from ``onnx/onnx.proto``; they are frozen by the format). Graph attributes (``If``
branches, ``Loop``/``Scan`` bodies) are decoded as :class:`Graph` objects too, at most
16 levels deep.

Tensors hold their values in ``raw_data`` (little-endian bytes) or in a typed repeated
field (``float_data``, ``int32_data``, ``int64_data``, ``double_data``, ``uint64_data``),
or in an external file (``data_location = EXTERNAL`` with ``location``/``offset``/
``length``) that must lie inside the model's folder. Every declared size is compared with
the bytes present before an array is allocated.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import protobuf_wire as pw
from ..errors import LoadError

# TensorProto.DataType -> NumPy dtype (little-endian); FLOAT16/BFLOAT16 in int32_data as bits.
DTYPES: dict[int, np.dtype] = {
    1: np.dtype("<f4"), 2: np.dtype("u1"), 3: np.dtype("i1"), 4: np.dtype("<u2"),
    5: np.dtype("<i2"), 6: np.dtype("<i4"), 7: np.dtype("<i8"), 9: np.dtype("?"),
    10: np.dtype("<f2"), 11: np.dtype("<f8"), 12: np.dtype("<u4"), 13: np.dtype("<u8"),
}
BFLOAT16 = 16
DTYPE_NAMES = {
    1: "float", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    8: "string", 9: "bool", 10: "float16", 11: "double", 12: "uint32", 13: "uint64",
    14: "complex64", 15: "complex128", 16: "bfloat16",
}
# AttributeProto.AttributeType
_ATTR_FLOAT, _ATTR_INT, _ATTR_STRING, _ATTR_TENSOR = 1, 2, 3, 4
_ATTR_FLOATS, _ATTR_INTS, _ATTR_STRINGS = 6, 7, 8
_ATTR_GRAPH, _ATTR_GRAPHS = 5, 10
_MAX_SUBGRAPH_DEPTH = 16


@dataclass
class Node:
    """One ``NodeProto``: inputs/outputs are tensor names (``""`` = an omitted optional input)."""

    op_type: str
    name: str
    inputs: list[str]
    outputs: list[str]
    attributes: dict[str, object] = field(default_factory=dict)
    domain: str = ""

    def attr(self, name: str, default: object = None) -> object:
        return self.attributes.get(name, default)

    def input(self, k: int) -> str:
        """The ``k``-th input name, ``""`` when absent."""
        return self.inputs[k] if k < len(self.inputs) else ""

    def subgraphs(self) -> list[Graph]:
        """The graphs held by this node's attributes (an ``If``'s two branches...)."""
        out: list[Graph] = []
        for value in self.attributes.values():
            if isinstance(value, Graph):
                out.append(value)
            elif isinstance(value, list):
                out.extend(v for v in value if isinstance(v, Graph))
        return out


@dataclass
class ValueInfo:
    """A graph input or output: name, element type and shape (``None`` or a name per unknown dim)."""

    name: str
    elem_type: int = 0
    shape: tuple[int | str | None, ...] | None = None

    @property
    def dtype(self) -> np.dtype | None:
        return DTYPES.get(self.elem_type)


@dataclass
class Graph:
    """A ``GraphProto``: the model's graph, or a subgraph held by a node's graph attribute
    (``If`` branches, ``Loop``/``Scan`` bodies), whose nodes may read the enclosing
    graphs' tensors by name."""

    nodes: list[Node]
    initializers: dict[str, np.ndarray]
    inputs: list[ValueInfo]
    outputs: list[ValueInfo]
    name: str = ""

    def op_types(self) -> set[str]:
        """The op types of every node, those inside nested subgraphs included."""
        ops: set[str] = set()
        stack = [self]
        while stack:
            graph = stack.pop()
            for node in graph.nodes:
                ops.add(node.op_type)
                stack.extend(node.subgraphs())
        return ops


@dataclass
class Model:
    ir_version: int
    opsets: dict[str, int]
    graph: Graph
    producer: str = ""

    @property
    def opset(self) -> int:
        """The default (``ai.onnx``) domain's opset version."""
        return self.opsets.get("", self.opsets.get("ai.onnx", 1))


class TensorReader:
    """Turns ``TensorProto`` messages into arrays; external data only inside ``folder``."""

    def __init__(self, folder: Path, model_name: str):
        self.folder = folder.resolve()
        self.model_name = model_name

    def read(self, msg: pw.Message, what: str = "tensor") -> tuple[str, np.ndarray]:
        name = pw.get_string(msg, 8)
        label = f"{what} {name!r}" if name else what
        dims = [pw.to_int64(d) for d in pw.repeated_varints(msg, 1)]
        if any(d < 0 for d in dims):
            raise self._error(f"{label} declares a negative dimension {dims}")
        count = int(np.prod(dims, dtype=object)) if dims else 1
        data_type = pw.get_int(msg, 2, bits=32)
        dtype = DTYPES.get(data_type)
        if data_type == BFLOAT16:
            dtype = np.dtype("<u2")
        if dtype is None:
            kind = DTYPE_NAMES.get(data_type, f"data type {data_type}")
            raise self._error(f"{label} holds {kind} values, which lstm-trace does not read")
        nbytes = count * dtype.itemsize
        if pw.get_int(msg, 14, bits=32) == 1:  # data_location = EXTERNAL
            raw = self._external(msg, label, nbytes)
        elif pw.has_field(msg, 9):
            raw = msg[9][-1]  # bytes, or a view into the mapped file (no copy)
            if isinstance(raw, int):
                raise pw.ProtobufDecodeError("raw_data should be length-delimited but is a number")
        else:
            return name, self._typed(msg, label, dims, count, data_type, dtype)
        if len(raw) != nbytes:
            raise self._error(
                f"{label} declares shape {dims} of {DTYPE_NAMES[data_type]} ({nbytes} bytes) "
                f"but holds {len(raw)} bytes"
            )
        array = np.frombuffer(raw, dtype=dtype).reshape(dims)
        if data_type == BFLOAT16:
            return name, _bfloat16_to_float32(array)
        return name, array.astype(dtype.newbyteorder("="))

    def _typed(
        self, msg: pw.Message, label: str, dims: list[int], count: int, data_type: int,
        dtype: np.dtype,
    ) -> np.ndarray:
        if data_type == 1:
            values = _packed(msg, 4, "f", 4)
        elif data_type == 11:
            values = _packed(msg, 10, "d", 8)
        elif data_type == 7:
            values = np.array([pw.to_int64(v) for v in pw.repeated_varints(msg, 7)], dtype=np.int64)
        elif data_type in (12, 13):
            values = np.array(pw.repeated_varints(msg, 11), dtype=np.uint64)
        else:  # int32_data carries int32, int16, int8, uint16, uint8, bool, float16/bfloat16 bits
            values = np.array([pw.to_int32(v) for v in pw.repeated_varints(msg, 5)], dtype=np.int64)
        if values.size != count:
            raise self._error(
                f"{label} declares shape {dims} ({count} values) but holds {values.size} values"
            )
        if data_type == 10:
            values = values.astype(np.uint16).view(np.float16)
        elif data_type == BFLOAT16:
            return _bfloat16_to_float32(values.astype(np.uint16)).reshape(dims)
        return values.astype(dtype.newbyteorder("=")).reshape(dims)

    def _external(self, msg: pw.Message, label: str, nbytes: int) -> bytes:
        entries = {}
        for entry in pw.repeated_messages(msg, 13):
            entries[pw.get_string(entry, 1)] = pw.get_string(entry, 2)
        location = entries.get("location")
        if not location:
            raise self._error(f"{label} is stored externally but names no location")
        path = (self.folder / location).resolve()
        if not path.is_relative_to(self.folder) or os.path.isabs(location):
            raise self._error(
                f"{label} points to external data {location!r} outside the model's folder; "
                "lstm-trace only reads external data files beside the model"
            )
        try:
            offset = int(entries.get("offset", "0"))
            length = int(entries["length"]) if "length" in entries else None
        except ValueError:
            raise self._error(f"{label} has a non-numeric external data offset or length") from None
        if offset < 0 or (length is not None and length < 0):
            raise self._error(f"{label} has a negative external data offset or length")
        if length is not None and length != nbytes:
            raise self._error(
                f"{label} declares {nbytes} bytes for its shape but an external length of {length}"
            )
        try:
            size = path.stat().st_size
        except OSError:
            raise self._error(f"{label}: external data file {location!r} is missing") from None
        if offset + nbytes > size:
            raise self._error(
                f"{label} needs {nbytes} bytes at offset {offset} of {location!r}, "
                f"which holds only {size} bytes"
            )
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(nbytes)

    def _error(self, message: str) -> LoadError:
        return LoadError(f"{self.model_name}: {message}")


def _packed(msg: pw.Message, number: int, fmt: str, size: int) -> np.ndarray:
    """A repeated float/double field, packed or not."""
    parts: list[np.ndarray] = []
    for value in msg.get(number, []):
        if isinstance(value, bytes):
            if len(value) % size:
                raise pw.ProtobufDecodeError(f"packed field {number} has a partial value")
            parts.append(np.frombuffer(value, dtype=f"<{fmt}"))
        else:
            parts.append(np.frombuffer(value.to_bytes(size, "little"), dtype=f"<{fmt}"))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=f"<{fmt}")


def _bfloat16_to_float32(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _attribute(msg: pw.Message, tensors: TensorReader, depth: int) -> tuple[str, object]:
    name = pw.get_string(msg, 1)
    kind = pw.get_int(msg, 20, bits=32)
    if not kind:  # IR version 1 had no type field: infer from what is set
        for number, guess in ((2, _ATTR_FLOAT), (3, _ATTR_INT), (4, _ATTR_STRING), (5, _ATTR_TENSOR),
                              (7, _ATTR_FLOATS), (8, _ATTR_INTS), (9, _ATTR_STRINGS)):
            if pw.has_field(msg, number):
                kind = guess
                break
    if kind == _ATTR_FLOAT:
        raw = pw.get_fixed32(msg, 2)
        return name, float(np.frombuffer(raw.to_bytes(4, "little"), dtype="<f4")[0])
    if kind == _ATTR_INT:
        return name, pw.get_int(msg, 3)
    if kind == _ATTR_STRING:
        return name, pw.get_bytes(msg, 4).decode("utf-8", errors="replace")
    if kind == _ATTR_TENSOR:
        sub = pw.get_message(msg, 5)
        return name, tensors.read(sub or {}, f"attribute {name!r}")[1]
    if kind == _ATTR_FLOATS:
        return name, [float(v) for v in _packed(msg, 7, "f", 4)]
    if kind == _ATTR_INTS:
        return name, [pw.to_int64(v) for v in pw.repeated_varints(msg, 8)]
    if kind == _ATTR_STRINGS:
        return name, [v.decode("utf-8", errors="replace") for v in msg.get(9, []) if isinstance(v, bytes)]
    if kind == _ATTR_GRAPH:
        sub = pw.get_message(msg, 6)
        return name, None if sub is None else _graph(sub, tensors, depth + 1)
    if kind == _ATTR_GRAPHS:
        return name, [_graph(g, tensors, depth + 1) for g in pw.repeated_messages(msg, 11)]
    return name, None  # sparse tensors, type protos: not needed on the replayed path


def _node(msg: pw.Message, tensors: TensorReader, depth: int = 0) -> Node:
    attributes = dict(_attribute(a, tensors, depth) for a in pw.repeated_messages(msg, 5))
    return Node(
        op_type=pw.get_string(msg, 4), name=pw.get_string(msg, 3),
        inputs=pw.repeated_strings(msg, 1), outputs=pw.repeated_strings(msg, 2),
        attributes=attributes, domain=pw.get_string(msg, 7),
    )


def _value_info(msg: pw.Message) -> ValueInfo:
    info = ValueInfo(pw.get_string(msg, 1))
    type_proto = pw.get_message(msg, 2)
    tensor_type = pw.get_message(type_proto, 1) if type_proto else None
    if tensor_type is None:
        return info
    info.elem_type = pw.get_int(tensor_type, 1, bits=32)
    shape = pw.get_message(tensor_type, 2)
    if shape is not None:
        dims: list[int | str | None] = []
        for dim in pw.repeated_messages(shape, 1):
            if pw.has_field(dim, 1):
                dims.append(pw.get_int(dim, 1))
            elif pw.has_field(dim, 2):
                dims.append(pw.get_string(dim, 2))
            else:
                dims.append(None)
        info.shape = tuple(dims)
    return info


def _parse(view: memoryview, views: frozenset[int] = frozenset()) -> pw.Message:
    """:func:`~lstm_trace.loaders.protobuf_wire.parse_message` that keeps the LEN fields
    numbered in ``views`` as views into the buffer (the graph, initializers, raw_data:
    large weights are not copied on the way to their array); every other field as in
    ``parse_message``."""
    fields: pw.Message = {}
    end = len(view)
    pos = 0
    while pos < end:
        tag_pos = pos
        tag, pos = pw.decode_varint(view, pos, end)
        number, wire = tag >> 3, tag & 7
        value: object
        if number == 0:
            raise pw.ProtobufDecodeError(f"invalid field number 0 at byte {tag_pos}")
        if wire == pw.WIRE_VARINT:
            value, pos = pw.decode_varint(view, pos, end)
        elif wire == pw.WIRE_FIXED64:
            value, pos = pw.decode_fixed64(view, pos, end)
        elif wire == pw.WIRE_FIXED32:
            value, pos = pw.decode_fixed32(view, pos, end)
        elif wire == pw.WIRE_LEN:
            length, pos = pw.decode_varint(view, pos, end)
            if length > end - pos:
                raise pw.ProtobufDecodeError(
                    f"field {number} at byte {tag_pos} declares {length} bytes "
                    f"but only {end - pos} remain"
                )
            chunk = view[pos:pos + length]
            value = chunk if number in views else bytes(chunk)
            pos += length
        else:
            raise pw.ProtobufDecodeError(f"field {number} at byte {tag_pos} has wire type {wire}")
        fields.setdefault(number, []).append(value)  # type: ignore[arg-type]
    return fields


def _last_view(msg: pw.Message, number: int) -> memoryview | None:
    values = msg.get(number)
    if not values:
        return None
    if isinstance(values[-1], int):
        raise pw.ProtobufDecodeError(f"field {number} should be a message but is a number")
    return memoryview(values[-1])  # type: ignore[arg-type]


def read_model(path: Path) -> Model:
    """Decode the ``ModelProto`` in ``path`` (raises :class:`LoadError` for damaged files).

    The file is memory-mapped and weights go from the mapping straight into their arrays.
    """
    name = path.name
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise LoadError(f"{name}: the file is empty")
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except OSError as err:
        raise LoadError(f"{name}: cannot read ({err.strerror or err})") from None
    try:
        return _decode(memoryview(data), path)
    except pw.ProtobufDecodeError as err:
        raise LoadError(
            f"{name}: truncated or corrupt ONNX file ({err}); re-export the model"
        ) from None


def _graph(msg: pw.Message, tensors: TensorReader, depth: int) -> Graph:
    """A ``GraphProto`` (``depth``: how many subgraphs enclose it, 0 for the model's graph)."""
    if depth > _MAX_SUBGRAPH_DEPTH:
        raise tensors._error(f"subgraphs are nested more than {_MAX_SUBGRAPH_DEPTH} levels deep")
    initializers: dict[str, np.ndarray] = {}
    for value in msg.get(5, []):
        if isinstance(value, int):
            raise pw.ProtobufDecodeError("an initializer should be a message but is a number")
        tname, array = tensors.read(_parse(memoryview(value), frozenset({9})), "initializer")
        initializers[tname] = array
    return Graph(
        nodes=[_node(m, tensors, depth) for m in pw.repeated_messages(msg, 1)],
        initializers=initializers,
        inputs=[_value_info(m) for m in pw.repeated_messages(msg, 11)],
        outputs=[_value_info(m) for m in pw.repeated_messages(msg, 12)],
        name=pw.get_string(msg, 2),
    )


def _decode(view: memoryview, path: Path) -> Model:
    tensors = TensorReader(path.parent, path.name)
    model = _parse(view, frozenset({7}))
    graph_view = _last_view(model, 7)
    if graph_view is None:
        raise LoadError(f"{path.name}: ONNX model without a graph")
    graph = _parse(graph_view, frozenset({5}))
    opsets: dict[str, int] = {}
    for entry in pw.repeated_messages(model, 8):
        opsets[pw.get_string(entry, 1)] = pw.get_int(entry, 2)
    return Model(
        ir_version=pw.get_int(model, 1),
        opsets=opsets or {"": 1},
        graph=_graph(graph, tensors, 0),
        producer=" ".join(filter(None, (pw.get_string(model, 2), pw.get_string(model, 3)))),
    )


#: ``ModelProto`` fields and their wire types, for :func:`looks_like_model`.
_MODEL_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def looks_like_model(path: Path) -> bool:
    """Whether ``path`` starts like a ``ModelProto``: walks the top-level tags (skipping payloads).

    Needs an ``ir_version`` (field 1, a small varint) and a ``graph`` (field 7), every field
    a known ``ModelProto`` field of the right wire type. Never raises for foreign files.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            seen: set[int] = set()
            pos = 0
            for _ in range(64):
                if pos >= size:
                    break
                f.seek(pos)
                head = f.read(24)
                tag, p = pw.decode_varint(head, 0)
                number, wire = tag >> 3, tag & 7
                if _MODEL_FIELDS.get(number) != wire:
                    return False
                value, p = pw.decode_varint(head, p)
                if number == 1 and not 1 <= value <= 64:
                    return False
                seen.add(number)
                if {1, 7} <= seen:
                    return True  # a graph after an ir_version (even if cut short: read_model says so)
                pos += p + (value if wire == 2 else 0)
                if pos > size:
                    return False
            return False
    except (OSError, pw.ProtobufDecodeError):
        return False
