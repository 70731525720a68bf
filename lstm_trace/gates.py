"""Gate orders as data, and the one function that splits fused tensors by gate.

Frameworks fuse the per-gate matrices of a cell into one tensor whose last axis
holds the gates side by side, each ``units`` wide, in a framework-specific order.
Every loader describes its layout with a name from :data:`GATE_ORDERS` and calls
:func:`split_gates`; the canonical network keeps gates fused in
:data:`CANONICAL_ORDER` (see :func:`fuse_gates`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .cells import CELL_KINDS

#: Canonical gate names per cell kind, in the order the canonical network fuses them.
CANONICAL_ORDER: dict[str, tuple[str, ...]] = {name: kind.gates for name, kind in CELL_KINDS.items()}

#: Fused layouts of the frameworks, as canonical gate names in storage order.
GATE_ORDERS: dict[str, tuple[str, ...]] = {
    # Keras (2 and 3) LSTM / CuDNNLSTM: i, f, c, o
    "keras_lstm": ("input_gate", "forget_gate", "candidate", "output_gate"),
    # TF1 BasicLSTMCell / LSTMCell / LSTMBlockCell: i, j (candidate), f, o
    "tf1_lstm": ("input_gate", "candidate", "forget_gate", "output_gate"),
    # PyTorch nn.LSTM: i, f, g, o
    "torch_lstm": ("input_gate", "forget_gate", "candidate", "output_gate"),
    # ONNX LSTM: i, o, f, c
    "onnx_lstm": ("input_gate", "output_gate", "forget_gate", "candidate"),
    # Keras GRU / CuDNNGRU: z, r, h
    "keras_gru": ("update_gate", "reset_gate", "candidate"),
    # ONNX GRU: z, r, h
    "onnx_gru": ("update_gate", "reset_gate", "candidate"),
    # TF1 GRUCell gates/kernel: r, u (the candidate lives in its own kernel)
    "tf1_gru_gates": ("reset_gate", "update_gate"),
    # PyTorch nn.GRU: r, z, n
    "torch_gru": ("reset_gate", "update_gate", "candidate"),
    "simple_rnn": ("candidate",),
    # TF1 BasicRNNCell: one kernel over [x, h]
    "tf1_rnn": ("candidate",),
    # Keras 1 stores one W, U, b per gate, LSTM in the order i, c, f, o
    "keras1_lstm": ("input_gate", "candidate", "forget_gate", "output_gate"),
    "keras1_gru": ("update_gate", "reset_gate", "candidate"),
}

#: The layout (a key of :data:`GATE_ORDERS`) each framework stores each cell kind in.
LAYOUTS: dict[str, dict[str, str]] = {
    "keras": {"lstm": "keras_lstm", "gru": "keras_gru", "simple_rnn": "simple_rnn"},
    "keras1": {"lstm": "keras1_lstm", "gru": "keras1_gru", "simple_rnn": "simple_rnn"},
    "torch": {"lstm": "torch_lstm", "gru": "torch_gru", "simple_rnn": "simple_rnn"},
    "onnx": {"lstm": "onnx_lstm", "gru": "onnx_gru", "simple_rnn": "simple_rnn"},
}


def split_gates(tensor: np.ndarray, order: str, axis: int = -1) -> dict[str, np.ndarray]:
    """Split a fused tensor into ``{gate name: slice}`` following a layout of :data:`GATE_ORDERS`.

    The axis must be a whole multiple of the number of gates in the layout; each
    gate gets an equal, contiguous block of it.
    """
    names = GATE_ORDERS[order]
    size = tensor.shape[axis]
    if size % len(names):
        raise ValueError(
            f"cannot split an axis of {size} into {len(names)} gates ({order} layout)"
        )
    parts = np.split(tensor, len(names), axis=axis)
    return dict(zip(names, parts, strict=True))


def fuse_gates(parts: Mapping[str, np.ndarray], kind: str, axis: int = -1) -> np.ndarray:
    """Concatenate per-gate slices in the canonical order of ``kind``."""
    return np.concatenate([parts[name] for name in CANONICAL_ORDER[kind]], axis=axis)


def reorder_gates(tensor: np.ndarray, order: str, kind: str, axis: int = -1) -> np.ndarray:
    """Re-fuse a tensor stored in a framework layout into the canonical order of ``kind``."""
    return fuse_gates(split_gates(tensor, order, axis=axis), kind, axis=axis)


def gate_slices(kind: str, units: int) -> dict[str, slice]:
    """Column slices of each gate in a canonical fused tensor of a ``kind`` cell."""
    return {
        name: slice(k * units, (k + 1) * units)
        for k, name in enumerate(CANONICAL_ORDER[kind])
    }


def storage_slices(order: str, units: int) -> dict[str, slice]:
    """Column slices of each gate in a framework's fused tensor (for ``inspect``)."""
    return {name: slice(k * units, (k + 1) * units) for k, name in enumerate(GATE_ORDERS[order])}
