"""A recurrent layer as a standalone ONNX model: one ``LSTM``/``GRU``/``RNN`` node.

Written with a small protobuf encoder of its own (no ``onnx`` package): a ``ModelProto``
(IR 8, opset 14) whose graph takes ``X`` ``[steps, batch, input_size]`` (``layout=0``, as
onnxruntime feeds a bare node) and returns ``Y``, ``Y_h`` (and ``Y_c``). The canonical
weights are laid out as ONNX stores them::

    LSTM  W [D, 4H, I]  R [D, 4H, H]  B [D, 8H] = [Wb, Rb]  P [D, 3H]   gates i, o, f, c
    GRU   W [D, 3H, I]  R [D, 3H, H]  B [D, 6H] = [Wb, Rb]              gates z, r, h
    RNN   W [D, H, I]   R [D, H, H]   B [D, 2H] = [Wb, Rb]

An LSTM's ``forget_bias`` is folded into ``Wb``; a GRU with ``reset_after=True`` gets
``linear_before_reset=1`` (its second bias is ``Rb``), one with ``reset_after=False`` gets
``linear_before_reset=0``. Activations, ``gate_clip`` (``clip``) and
``coupled_input_forget`` (``input_forget``) become attributes. What ONNX nodes cannot
express (projections, cell clipping, activations outside the ONNX list) raises
:class:`~lstm_trace.extract.ExportError`.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .extract import ExportError, select_layers
from .gates import CANONICAL_ORDER
from .network import Cell, Network, RecurrentLayer

OPSET = 14
IR_VERSION = 8
ONNX_ORDER = {
    "lstm": ("input_gate", "output_gate", "forget_gate", "candidate"),
    "gru": ("update_gate", "reset_gate", "candidate"),
    "simple_rnn": ("candidate",),
}
OP_TYPE = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}
#: Canonical activation -> (ONNX name, alpha, beta); parametric names are parsed.
_PLAIN = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "softsign": "Softsign",
          "softplus": "Softplus"}
_PARAMETRIC = {"affine": "Affine", "scaled_tanh": "ScaledTanh", "hard_sigmoid": "HardSigmoid",
               "leaky_relu": "LeakyRelu", "thresholded_relu": "ThresholdedRelu", "elu": "Elu"}
_FIXED = {"linear": ("Affine", 1.0, 0.0), "hard_sigmoid_keras2": ("HardSigmoid", 0.2, 0.5),
          "hard_sigmoid": ("HardSigmoid", 1 / 6, 0.5), "elu": ("Elu", 1.0, None)}


# ------------------------------------------------------------------ protobuf encoding

def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _int(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _bytes(number: int, payload: bytes | str) -> bytes:
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def _tensor(name: str, array: np.ndarray) -> bytes:
    """``TensorProto``: dims 1, data_type 2 (FLOAT 1), name 8, raw_data 9."""
    array = np.ascontiguousarray(array, dtype="<f4")
    dims = b"".join(_int(1, d) for d in array.shape)
    return dims + _int(2, 1) + _bytes(8, name) + _bytes(9, array.tobytes())


def _attribute(name: str, value: object) -> bytes:
    """``AttributeProto``: name 1, f 2, i 3, s 4, floats 7, strings 9, type 20."""
    out = _bytes(1, name)
    if isinstance(value, float):
        return out + _float(2, value) + _int(20, 1)
    if isinstance(value, int):
        return out + _int(3, value) + _int(20, 2)
    if isinstance(value, str):
        return out + _bytes(4, value) + _int(20, 3)
    items = list(value)  # type: ignore[call-overload]
    if all(isinstance(v, str) for v in items):
        return out + b"".join(_bytes(9, v) for v in items) + _int(20, 8)
    return out + _bytes(7, struct.pack(f"<{len(items)}f", *items)) + _int(20, 6)


def _value_info(name: str, dims: list[int | str]) -> bytes:
    """``ValueInfoProto`` of a float tensor; a ``str`` dim is symbolic (``dim_param``)."""
    shape = b"".join(_bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in dims)
    tensor_type = _int(1, 1) + _bytes(2, shape)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


# ------------------------------------------------------------------ weights and attributes

def _onnx_rows(matrix: np.ndarray, kind: str, units: int) -> np.ndarray:
    """Canonical ``(in, G*units)`` columns -> ONNX ``(G*units, in)`` rows in ONNX gate order."""
    cols = {g: matrix[:, k * units:(k + 1) * units] for k, g in enumerate(CANONICAL_ORDER[kind])}
    return np.concatenate([cols[g] for g in ONNX_ORDER[kind]], axis=1).T


def _onnx_vector(vector: np.ndarray, kind: str, units: int) -> np.ndarray:
    return _onnx_rows(vector[None, :], kind, units)[:, 0]


def _activation(name: str, where: str) -> tuple[str, float | None, float | None]:
    if name in _PLAIN:
        return _PLAIN[name], None, None
    if name in _FIXED:
        return _FIXED[name]
    match = re.match(r"^([a-z_]+)\((.*)\)$", name.replace(" ", ""))
    if match and match.group(1) in _PARAMETRIC:
        params = dict(item.split("=") for item in match.group(2).split(",") if item)
        alpha = float(params["alpha"]) if "alpha" in params else None
        beta = float(params["beta"]) if "beta" in params else None
        return _PARAMETRIC[match.group(1)], alpha, beta
    raise ExportError(
        f"{where}: ONNX recurrent nodes cannot use the activation {name!r} (they know Sigmoid, "
        "Tanh, Relu, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, "
        "Softsign, Softplus)"
    )


def _check(cell: Cell, where: str) -> None:
    if cell.projection is not None:
        raise ExportError(f"{where}: ONNX LSTM nodes have no projection (num_proj / proj_size)")
    if cell.cell_clip is not None:
        raise ExportError(
            f"{where}: ONNX's clip bounds the gate pre-activations, not the cell state (cell_clip)"
        )


@dataclass
class OnnxNode:
    """One exported layer: the node's inputs, attributes and the notes a user needs."""

    name: str
    op_type: str
    initializers: dict[str, np.ndarray]
    attributes: dict[str, object]
    outputs: list[str]
    input_size: int
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in self.attributes.items())
        return f"ONNX {self.op_type}({attrs})"


def onnx_node(layer: RecurrentLayer) -> OnnxNode:
    """The ONNX form of ``layer`` (raises :class:`ExportError` for what ONNX cannot express)."""
    where = f"layer {layer.name!r}"
    directions = layer.directions
    cells = [d.cell for d in directions]
    for cell in cells:
        _check(cell, where)
    first = cells[0]
    kind, H = first.kind, first.units
    if layer.bidirectional:
        if len(directions) != 2 or directions[0].reverse or not directions[1].reverse:
            raise ExportError(f"{where}: ONNX's bidirectional nodes run forward, then backward")
        direction = "bidirectional"
    else:
        direction = "reverse" if directions[0].reverse else "forward"
    if len({(c.kind, c.units, c.input_size, c.reset_after, c.gate_clip, c.coupled_input_forget)
            for c in cells}) > 1:
        raise ExportError(f"{where}: the two directions differ in a way one ONNX node cannot hold")
    dtype = np.float32
    G = len(CANONICAL_ORDER[kind])
    W = np.stack([_onnx_rows(c.kernel, kind, H) for c in cells]).astype(dtype)
    R = np.stack([_onnx_rows(c.recurrent_kernel, kind, H) for c in cells]).astype(dtype)
    biases = []
    for c in cells:
        wb = np.zeros(G * H) if c.bias is None else np.array(c.bias, dtype=np.float64)
        if kind == "lstm" and c.forget_bias:
            wb[H:2 * H] += c.forget_bias  # canonical forget columns
        rb = np.zeros(G * H) if c.recurrent_bias is None else np.asarray(c.recurrent_bias)
        biases.append(np.concatenate([_onnx_vector(wb, kind, H), _onnx_vector(rb, kind, H)]))
    inits = {"W": W, "R": R, "B": np.stack(biases).astype(dtype)}
    if kind == "lstm" and any(c.peepholes for c in cells):
        zero = np.zeros(H)
        inits["P"] = np.stack([
            np.concatenate([(c.peepholes or {}).get(g, zero)
                            for g in ("input_gate", "output_gate", "forget_gate")])
            for c in cells]).astype(dtype)
    attrs: dict[str, object] = {"hidden_size": H, "direction": direction}
    slots = {"lstm": lambda c: [c.recurrent_activation, c.activation, c.hidden_activation],
             "gru": lambda c: [c.recurrent_activation, c.activation],
             "simple_rnn": lambda c: [c.activation]}[kind]
    names, alphas, betas = [], [], []
    for c in cells:
        for act in slots(c):
            onnx_name, alpha, beta = _activation(act, where)
            names.append(onnx_name)
            if alpha is not None:
                alphas.append(alpha)
            if beta is not None:
                betas.append(beta)
    defaults = {"lstm": ["Sigmoid", "Tanh", "Tanh"], "gru": ["Sigmoid", "Tanh"],
                "simple_rnn": ["Tanh"]}[kind] * len(cells)
    if names != defaults:
        attrs["activations"] = names
        if alphas:
            attrs["activation_alpha"] = alphas
        if betas:
            attrs["activation_beta"] = betas
    if first.gate_clip is not None:
        attrs["clip"] = float(first.gate_clip)
    if kind == "lstm" and first.coupled_input_forget:
        attrs["input_forget"] = 1
    if kind == "gru":
        attrs["linear_before_reset"] = int(first.reset_after)
    outputs = ["Y", "Y_h"] + (["Y_c"] if kind == "lstm" else [])
    notes = []
    if layer.bidirectional and layer.merge_mode is not None:
        notes.append(f"{layer.name}: Y is [steps, 2, batch, {H}] (forward, backward in input "
                     f"positions); the source merged the directions with merge_mode="
                     f"{layer.merge_mode!r}")
    if direction == "reverse":
        notes.append(f"{layer.name}: ONNX's reverse direction returns Y in input positions "
                     "(a Keras go_backwards layer returns Y[::-1], processing order)")
    return OnnxNode(layer.name, OP_TYPE[kind], inits, attrs, outputs, first.input_size, notes)


def model_bytes(node: OnnxNode) -> bytes:
    """The serialized ``ModelProto`` of one node taking ``X [steps, batch, input_size]``."""
    inputs = ["X", "W", "R", "B"] + (["", "", "", "P"] if "P" in node.initializers else [])
    proto_node = (
        b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in node.outputs)
        + _bytes(3, node.name) + _bytes(4, node.op_type)
        + b"".join(_bytes(5, _attribute(k, v)) for k, v in node.attributes.items())
    )
    D = 2 if node.attributes["direction"] == "bidirectional" else 1
    H = int(node.attributes["hidden_size"])  # type: ignore[call-overload]
    out_dims: dict[str, list[int | str]] = {
        "Y": ["steps", D, "batch", H], "Y_h": [D, "batch", H], "Y_c": [D, "batch", H]}
    graph = (
        _bytes(1, proto_node) + _bytes(2, "lstm_trace_export")
        + b"".join(_bytes(5, _tensor(k, v)) for k, v in node.initializers.items())
        + _bytes(11, _value_info("X", ["steps", "batch", node.input_size]))
        + b"".join(_bytes(12, _value_info(o, out_dims[o])) for o in node.outputs)
    )
    return (
        _int(1, IR_VERSION) + _bytes(2, "lstm-trace") + _bytes(3, __version__) + _bytes(7, graph)
        + _bytes(8, _bytes(1, "") + _int(2, OPSET))
    )


def to_onnx(network: Network, layers: Iterable[str] | None = None) -> OnnxNode:
    """The one selected recurrent layer of ``network`` as an :class:`OnnxNode`."""
    selected = select_layers(network, layers)
    if len(selected) != 1:
        names = ", ".join(layer.name for layer in selected)
        raise ExportError(
            f"--to onnx writes one layer per model file; choose one with --layer ({names})"
        )
    return onnx_node(selected[0])
