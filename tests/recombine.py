"""Rebuild a framework's ``h`` and ``c`` from lstm-trace's recorded gates.

If the gates are right, the cell equations applied to them must give back the states
the framework computed. Works on input positions; ``reverse`` walks them backwards.
``mask`` (batch, steps) marks the steps the layer used: on the others the states carry
over, as in Keras. ``initial_hidden`` / ``initial_cell`` are the states before the first
processed step (zeros by default).
"""

from __future__ import annotations

import numpy as np


def _prev(arr: np.ndarray, t: int, reverse: bool, initial: np.ndarray) -> np.ndarray:
    steps = arr.shape[1]
    if reverse:
        return arr[:, t + 1] if t + 1 < steps else initial
    return arr[:, t - 1] if t > 0 else initial


def previous_states(states: np.ndarray, *, reverse: bool = False,
                    initial: np.ndarray | None = None) -> np.ndarray:
    """The state each step started from: ``states`` shifted by one step in processing order."""
    initial = np.zeros_like(states[:, 0]) if initial is None else initial
    out = np.empty_like(states)
    for t in range(states.shape[1]):
        out[:, t] = _prev(states, t, reverse, initial)
    return out


def _carry(new: np.ndarray, prev: np.ndarray, mask: np.ndarray | None, t: int) -> np.ndarray:
    if mask is None:
        return new
    return np.where(mask[:, t, None], new, prev)


def recombine_lstm(trace, prefix: str, *, reverse: bool = False, activation=np.tanh,
                   mask: np.ndarray | None = None, initial_hidden: np.ndarray | None = None,
                   initial_cell: np.ndarray | None = None):
    """``c_t = f ⊙ c_{t-1} + i ⊙ g`` and ``h_t = o ⊙ φ(c_t)`` from the recorded gates."""
    i, f = trace[f"{prefix}/input_gate"], trace[f"{prefix}/forget_gate"]
    g, o = trace[f"{prefix}/candidate"], trace[f"{prefix}/output_gate"]
    cell, hidden = trace[f"{prefix}/cell"], trace[f"{prefix}/hidden"]
    c0 = np.zeros_like(cell[:, 0]) if initial_cell is None else initial_cell
    h0 = np.zeros_like(hidden[:, 0]) if initial_hidden is None else initial_hidden
    c = np.empty_like(cell)
    h = np.empty_like(hidden)
    for t in range(cell.shape[1]):
        c_prev = _prev(cell, t, reverse, c0)
        h_prev = _prev(hidden, t, reverse, h0)
        c_new = f[:, t] * c_prev + i[:, t] * g[:, t]
        c[:, t] = _carry(c_new, c_prev, mask, t)
        h[:, t] = _carry(o[:, t] * activation(c_new), h_prev, mask, t)
    return h, c


def recombine_gru(trace, prefix: str, *, reverse: bool = False,
                  mask: np.ndarray | None = None, initial_hidden: np.ndarray | None = None):
    """``h_t = z ⊙ h_{t-1} + (1 - z) ⊙ h̃`` from the recorded gates."""
    z, g = trace[f"{prefix}/update_gate"], trace[f"{prefix}/candidate"]
    hidden = trace[f"{prefix}/hidden"]
    h0 = np.zeros_like(hidden[:, 0]) if initial_hidden is None else initial_hidden
    h = np.empty_like(hidden)
    for t in range(hidden.shape[1]):
        h_prev = _prev(hidden, t, reverse, h0)
        h[:, t] = _carry(z[:, t] * h_prev + (1 - z[:, t]) * g[:, t], h_prev, mask, t)
    return h


def gru_candidate_from_reset(trace, prefix: str, x: np.ndarray, keras_weights: list[np.ndarray],
                             *, reset_after: bool, activation, reverse: bool = False,
                             initial_hidden: np.ndarray | None = None) -> np.ndarray:
    """The GRU candidate ``h̃`` recomputed from the recorded reset gate and Keras's own weights.

    ``keras_weights`` are ``cell.get_weights()`` in Keras layout (gates ``z, r, h``), so this
    checks the reset gate without going through lstm-trace's weight conversion::

        h̃ = φ(x W_h + b_h + r ⊙ (h U_h + rb_h))      reset_after
        h̃ = φ(x W_h + b_h + (r ⊙ h) U_h)             not reset_after
    """
    kernel, recurrent = keras_weights[0], keras_weights[1]
    units = recurrent.shape[0]
    w_h, u_h = kernel[:, 2 * units:], recurrent[:, 2 * units:]
    b_h = rb_h = np.zeros(units, np.float32)
    if len(keras_weights) > 2:
        bias = keras_weights[2]
        if bias.ndim == 2:
            b_h, rb_h = bias[0, 2 * units:], bias[1, 2 * units:]
        else:
            b_h = bias[2 * units:]
    r = trace[f"{prefix}/reset_gate"]
    h_prev = previous_states(trace[f"{prefix}/hidden"], reverse=reverse, initial=initial_hidden)
    xw = x @ w_h + b_h
    if reset_after:
        return activation(xw + r * (h_prev @ u_h + rb_h))
    return activation(xw + (r * h_prev) @ u_h)
