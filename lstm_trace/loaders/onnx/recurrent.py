"""ONNX ``LSTM``, ``GRU`` and ``RNN`` nodes as canonical recurrent layers.

Weights (``D`` directions, hidden size ``H``, input size ``I``; opsets 1 to 22 agree)::

    LSTM  W [D, 4H, I]  R [D, 4H, H]  B [D, 8H] = [Wb, Rb]  P [D, 3H]   gates i, o, f, c
    GRU   W [D, 3H, I]  R [D, 3H, H]  B [D, 6H] = [Wb, Rb]              gates z, r, h
    RNN   W [D, H, I]   R [D, H, H]   B [D, 2H] = [Wb, Rb]

The canonical kernel is ``W[d]ᵀ`` re-fused in canonical gate order, the bias ``Wb + Rb``
(a GRU keeps ``Rb`` apart: ``linear_before_reset=1`` is Keras's ``reset_after=True`` form
with ``recurrent_bias = Rb``; ``0`` applies ``Rb_h`` after ``(r ⊙ h) R_hᵀ``, Keras's
``reset_after=False`` form, with ``Rb`` added likewise). Peepholes ``P`` are ``i, o, f``.

Attributes: ``activations`` (``f, g, h`` for an LSTM, ``f, g`` for a GRU, ``f`` for an RNN,
one set per direction) with ``activation_alpha``/``activation_beta`` consumed in order by
the activations that take them (as onnxruntime does), ``clip`` (every gate's
pre-activation, :attr:`~lstm_trace.network.Cell.gate_clip`), ``input_forget``
(:attr:`~lstm_trace.network.Cell.coupled_input_forget`), ``direction``, ``layout``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...activations import parametric_name
from ...cells import CELL_KINDS
from ...gates import LAYOUTS, reorder_gates
from ...network import Cell, Direction, RecurrentLayer
from .proto import Node

RECURRENT_OPS = {"LSTM": "lstm", "GRU": "gru", "RNN": "simple_rnn"}
#: Activation slots per direction and their defaults.
DEFAULT_ACTIVATIONS = {
    "LSTM": ("Sigmoid", "Tanh", "Tanh"), "GRU": ("Sigmoid", "Tanh"), "RNN": ("Tanh",),
}
#: ONNX activation name (lower case) -> (canonical name, parameters it consumes, defaults).
ACTIVATIONS: dict[str, tuple[str, tuple[str, ...], tuple[float, ...]]] = {
    "relu": ("relu", (), ()),
    "tanh": ("tanh", (), ()),
    "sigmoid": ("sigmoid", (), ()),
    "softsign": ("softsign", (), ()),
    "softplus": ("softplus", (), ()),
    "affine": ("affine", ("alpha", "beta"), (1.0, 0.0)),
    "leakyrelu": ("leaky_relu", ("alpha",), (0.01,)),
    "thresholdedrelu": ("thresholded_relu", ("alpha",), (1.0,)),
    "scaledtanh": ("scaled_tanh", ("alpha", "beta"), (1.0, 1.0)),
    "hardsigmoid": ("hard_sigmoid", ("alpha", "beta"), (0.2, 0.5)),
    "elu": ("elu", ("alpha",), (1.0,)),
}
DIRECTIONS = ("forward", "reverse", "bidirectional")


class NodeError(ValueError):
    """A recurrent node whose attributes or weights do not fit the ONNX specification."""


def int_attr(node: Node, name: str, default: int) -> int:
    value = node.attr(name, default)
    if not isinstance(value, int):
        raise NodeError(f"attribute {name} is {value!r}, expected an integer")
    return value


def float_attr(node: Node, name: str) -> float | None:
    value = node.attr(name)
    if value is None:
        return None
    if not isinstance(value, (int, float)):
        raise NodeError(f"attribute {name} is {value!r}, expected a number")
    return float(value)


def floats_attr(node: Node, name: str) -> list[float]:
    values = node.attr(name) or []
    if not isinstance(values, list) or not all(isinstance(v, (int, float)) for v in values):
        raise NodeError(f"attribute {name} is {values!r}, expected numbers")
    return [float(v) for v in values]


def node_directions(node: Node) -> str:
    direction = node.attr("direction", "forward")
    if direction not in DIRECTIONS:
        raise NodeError(f"direction {direction!r} (expected forward, reverse or bidirectional)")
    return str(direction)


def activation_names(node: Node, count: int) -> list[list[str]]:
    """Canonical activation names per direction, parameters attached (onnxruntime's rules)."""
    slots = DEFAULT_ACTIVATIONS[node.op_type]
    given = node.attr("activations")
    if given is not None and not isinstance(given, list):
        raise NodeError(f"attribute activations is {given!r}, expected a list of names")
    names = [str(a) for a in given] if given else list(slots) * count
    if len(names) == len(slots) and count == 2:
        names = names * 2
    if len(names) != len(slots) * count:
        raise NodeError(
            f"{len(names)} activations given, expected {len(slots) * count} "
            f"({', '.join(slots)} per direction)"
        )
    alphas = floats_attr(node, "activation_alpha")
    betas = floats_attr(node, "activation_beta")
    out: list[str] = []
    for onnx_name in names:
        spec = ACTIVATIONS.get(onnx_name.lower())
        if spec is None:
            raise NodeError(
                f"activation {onnx_name!r} is not an ONNX RNN activation "
                f"({', '.join(sorted(ACTIVATIONS))})"
            )
        canonical, params, defaults = spec
        values: dict[str, float] = {}
        for param, default in zip(params, defaults, strict=True):
            source = alphas if param == "alpha" else betas
            values[param] = float(source.pop(0)) if source else default
        out.append(parametric_name(canonical, **values) if params else canonical)
    k = len(slots)
    return [out[d * k:(d + 1) * k] for d in range(count)]


def recurrent_layer(
    node: Node, name: str, const: Callable[[int], np.ndarray | None], opset: int,
) -> RecurrentLayer:
    """The canonical layer of a recurrent node; ``const(k)`` is input ``k`` as a constant."""
    op = node.op_type
    kind = RECURRENT_OPS[op]
    G = CELL_KINDS[RECURRENT_OPS[op]].gate_count
    direction = node_directions(node)
    D = 2 if direction == "bidirectional" else 1
    W, R = const(1), const(2)
    if W is None or R is None:
        raise NodeError("W and R must be initializers or constants")
    W = np.asarray(W, dtype=np.float32) if W.dtype != np.float64 else W
    R = np.asarray(R, dtype=W.dtype)
    if W.ndim != 3 or W.shape[0] != D or W.shape[1] % G:
        raise NodeError(f"W has shape {W.shape}, expected [{D}, {G}*hidden_size, input_size]")
    H = int_attr(node, "hidden_size", W.shape[1] // G)
    I = W.shape[2]
    if W.shape != (D, G * H, I) or R.shape != (D, G * H, H):
        raise NodeError(
            f"W {W.shape} / R {R.shape} do not fit hidden_size {H}: expected "
            f"[{D}, {G * H}, {I}] and [{D}, {G * H}, {H}]"
        )
    B = const(3) if node.input(3) else None
    if node.input(3) and B is None:
        raise NodeError("B must be an initializer or a constant")
    if B is not None and B.shape != (D, 2 * G * H):
        raise NodeError(f"B has shape {B.shape}, expected [{D}, {2 * G * H}]")
    P = None
    if op == "LSTM" and node.input(7):
        P = const(7)
        if P is None:
            raise NodeError("P (peepholes) must be an initializer or a constant")
        if P.shape != (D, 3 * H):
            raise NodeError(f"P has shape {P.shape}, expected [{D}, {3 * H}]")
    clip = float_attr(node, "clip")
    layout = int_attr(node, "layout", 0)
    if layout not in (0, 1):
        raise NodeError(f"layout {layout} (expected 0 or 1)")
    activations = activation_names(node, D)
    order = LAYOUTS["onnx"][RECURRENT_OPS[op]]
    directions = []
    for d in range(D):
        kernel = reorder_gates(W[d].T, order, kind)
        recurrent = reorder_gates(R[d].T, order, kind)
        bias = recurrent_bias = None
        if B is not None:
            wb, rb = B[d, :G * H].astype(W.dtype), B[d, G * H:].astype(W.dtype)
            if op == "GRU":
                bias, recurrent_bias = reorder_gates(wb, order, kind), reorder_gates(rb, order, kind)
            else:
                bias = reorder_gates(wb + rb, order, kind)
        names = activations[d]
        options: dict[str, object] = {
            "recurrent_activation": names[0] if op != "RNN" else "sigmoid",
            "activation": names[1] if op != "RNN" else names[0],
        }
        if op == "LSTM":
            if names[2] != names[1]:
                options["output_activation"] = names[2]
            if P is not None:
                p = P[d].astype(W.dtype)
                options["peepholes"] = {
                    "input_gate": p[:H], "output_gate": p[H:2 * H], "forget_gate": p[2 * H:],
                }
            options["coupled_input_forget"] = bool(int_attr(node, "input_forget", 0))
        if op == "GRU":
            options["reset_after"] = bool(int_attr(node, "linear_before_reset", 0))
            options["recurrent_bias"] = recurrent_bias
        names: dict[str, tuple[str, ...]] = {
            "kernel": (f"{node.input(1)}[{d}]",), "recurrent_kernel": (f"{node.input(2)}[{d}]",)}
        if B is not None:
            wb_name, rb_name = f"{node.input(3)}[{d}, :{G * H}]", f"{node.input(3)}[{d}, {G * H}:]"
            if op == "GRU":
                names["bias"], names["recurrent_bias"] = (wb_name,), (rb_name,)
            else:
                names["bias"] = (wb_name, rb_name)
        cell = Cell(
            kind=kind, units=H, kernel=kernel, recurrent_kernel=recurrent, bias=bias,
            gate_clip=clip, layout=order, tensor_names=names,
            **options,
        )
        reverse = direction == "reverse" or d == 1
        directions.append(Direction("backward" if d == 1 else "forward", cell, reverse))
    return RecurrentLayer(
        name=name, directions=directions, bidirectional=D == 2, merge_mode=None,
        return_sequences=True, class_name=op, zero_output_for_mask=True,
        options={"direction": direction, "layout": layout, "opset": opset},
    )
