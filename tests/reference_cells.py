"""Obviously-correct reference cells: one sample, one step, one equation per line.

Straight from the equations in :class:`lstm_trace.network.Cell`'s docstring, with plain
Python loops over samples and steps and no buffers, fusing or pre-scaling. They are slow
on purpose; the fast engine (:func:`lstm_trace.engine.run_direction`) must give the same
values. Activations are written out here too, so nothing is shared with the engine.

    >>> out = reference_direction(cell, x, reverse=False, mask=None)
    >>> out["forget_gate"].shape   # (batch, steps, units)
"""

from __future__ import annotations

import numpy as np

from lstm_trace.gates import gate_slices
from lstm_trace.network import QUANTITIES, Cell

ACTIVATIONS = {
    "tanh": np.tanh,
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "hard_sigmoid": lambda v: np.clip(v / 6.0 + 0.5, 0.0, 1.0),
    "hard_sigmoid_keras2": lambda v: np.clip(0.2 * v + 0.5, 0.0, 1.0),
    "relu": lambda v: np.maximum(v, 0.0),
    "linear": lambda v: v,
    "softsign": lambda v: v / (1.0 + np.abs(v)),
}


def _parts(cell: Cell) -> dict[str, dict[str, np.ndarray]]:
    """Per-gate kernel ``W``, recurrent kernel ``U``, bias ``b`` and recurrent bias ``rb``."""
    zeros = np.zeros(cell.gate_count * cell.units)
    bias = cell.bias if cell.bias is not None else zeros
    rbias = cell.recurrent_bias if cell.recurrent_bias is not None else zeros
    return {
        gate: {"W": cell.kernel[:, cols], "U": cell.recurrent_kernel[:, cols],
               "b": bias[cols], "rb": rbias[cols]}
        for gate, cols in gate_slices(cell.kind, cell.units).items()
    }


def lstm_step(cell: Cell, p: dict, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> dict:
    """One LSTM step of one sample (peepholes, forget_bias, clips and projection included)."""
    sigma, phi = ACTIVATIONS[cell.recurrent_activation], ACTIVATIONS[cell.activation]
    peep = cell.peepholes or {}
    p_i = peep.get("input_gate", 0.0)
    p_f = peep.get("forget_gate", 0.0)
    p_o = peep.get("output_gate", 0.0)
    P = p["input_gate"]
    i = sigma(x @ P["W"] + h @ P["U"] + P["b"] + p_i * c)
    P = p["forget_gate"]
    f = sigma(x @ P["W"] + h @ P["U"] + P["b"] + cell.forget_bias + p_f * c)
    P = p["candidate"]
    g = phi(x @ P["W"] + h @ P["U"] + P["b"])
    c_new = f * c + i * g
    if cell.cell_clip is not None:
        c_new = np.clip(c_new, -cell.cell_clip, cell.cell_clip)
    P = p["output_gate"]
    o = sigma(x @ P["W"] + h @ P["U"] + P["b"] + p_o * c_new)
    h_new = o * phi(c_new)
    if cell.projection is not None:
        h_new = h_new @ cell.projection
        if cell.proj_clip is not None:
            h_new = np.clip(h_new, -cell.proj_clip, cell.proj_clip)
    return {"input_gate": i, "forget_gate": f, "candidate": g, "output_gate": o,
            "cell": c_new, "hidden": h_new}


def gru_step(cell: Cell, p: dict, x: np.ndarray, h: np.ndarray) -> dict:
    """One GRU step of one sample, ``reset_after`` or not."""
    sigma, phi = ACTIVATIONS[cell.recurrent_activation], ACTIVATIONS[cell.activation]
    Z, R, H = p["update_gate"], p["reset_gate"], p["candidate"]
    z = sigma(x @ Z["W"] + Z["b"] + h @ Z["U"] + Z["rb"])
    r = sigma(x @ R["W"] + R["b"] + h @ R["U"] + R["rb"])
    if cell.reset_after:
        g = phi(x @ H["W"] + H["b"] + r * (h @ H["U"] + H["rb"]))
    else:
        g = phi(x @ H["W"] + H["b"] + (r * h) @ H["U"])
    h_new = z * h + (1 - z) * g
    return {"update_gate": z, "reset_gate": r, "candidate": g, "hidden": h_new}


def simple_rnn_step(cell: Cell, p: dict, x: np.ndarray, h: np.ndarray) -> dict:
    P = p["candidate"]
    return {"hidden": ACTIVATIONS[cell.activation](x @ P["W"] + h @ P["U"] + P["b"])}


def reference_direction(
    cell: Cell, x: np.ndarray, *, reverse: bool = False, mask: np.ndarray | None = None,
    initial_hidden: np.ndarray | None = None, initial_cell: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Every quantity at every input position, in float64; masked steps: gates 0, states carried."""
    x = np.asarray(x, dtype=np.float64)
    batch, steps, _ = x.shape
    p = _parts(cell)
    sizes = {q: cell.state_size if q == "hidden" else cell.units for q in QUANTITIES[cell.kind]}
    out = {q: np.zeros((batch, steps, n)) for q, n in sizes.items()}
    for b in range(batch):
        h = np.zeros(cell.state_size) if initial_hidden is None else np.array(initial_hidden[b], float)
        c = np.zeros(cell.units) if initial_cell is None else np.array(initial_cell[b], float)
        for t in (reversed(range(steps)) if reverse else range(steps)):
            if mask is not None and not mask[b, t]:
                out["hidden"][b, t] = h
                if cell.kind == "lstm":
                    out["cell"][b, t] = c
                continue
            if cell.kind == "lstm":
                step = lstm_step(cell, p, x[b, t], h, c)
                c = step["cell"]
            elif cell.kind == "gru":
                step = gru_step(cell, p, x[b, t], h)
            else:
                step = simple_rnn_step(cell, p, x[b, t], h)
            h = step["hidden"]
            for q, v in step.items():
                out[q][b, t] = v
    return out
