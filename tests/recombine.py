"""Rebuild a framework's ``h`` and ``c`` from lstm-trace's recorded gates.

If the gates are right, the cell equations applied to them must give back the states
the framework computed. Works on input positions; ``reverse`` walks them backwards.
"""

from __future__ import annotations

import numpy as np


def _prev(arr: np.ndarray, t: int, reverse: bool, initial: np.ndarray) -> np.ndarray:
    steps = arr.shape[1]
    if reverse:
        return arr[:, t + 1] if t + 1 < steps else initial
    return arr[:, t - 1] if t > 0 else initial


def recombine_lstm(trace, prefix: str, *, reverse: bool = False, activation=np.tanh):
    """``c_t = f ⊙ c_{t-1} + i ⊙ g`` and ``h_t = o ⊙ φ(c_t)`` from the recorded gates."""
    i, f = trace[f"{prefix}/input_gate"], trace[f"{prefix}/forget_gate"]
    g, o = trace[f"{prefix}/candidate"], trace[f"{prefix}/output_gate"]
    cell = trace[f"{prefix}/cell"]
    zeros = np.zeros_like(cell[:, 0])
    c = np.empty_like(cell)
    for t in range(cell.shape[1]):
        c[:, t] = f[:, t] * _prev(cell, t, reverse, zeros) + i[:, t] * g[:, t]
    return o * activation(c), c


def recombine_gru(trace, prefix: str, *, reverse: bool = False):
    """``h_t = z ⊙ h_{t-1} + (1 - z) ⊙ h̃`` from the recorded gates."""
    z, g = trace[f"{prefix}/update_gate"], trace[f"{prefix}/candidate"]
    hidden = trace[f"{prefix}/hidden"]
    zeros = np.zeros_like(hidden[:, 0])
    h = np.empty_like(hidden)
    for t in range(hidden.shape[1]):
        h[:, t] = z[:, t] * _prev(hidden, t, reverse, zeros) + (1 - z[:, t]) * g[:, t]
    return h
