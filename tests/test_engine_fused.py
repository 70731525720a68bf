"""The fused NumPy LSTM loop (compiled kernels off) equals the general loop and the plain equations.

The framework tests cover the fused loop on real Keras files (most of their LSTMs use
sigmoid/tanh); these tests pin it against the general loop (to the float ulp) and against a
short, obviously-correct reference step, on shapes and options the fixtures do not vary.
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_trace import engine, step_loops
from lstm_trace.network import Cell

LSTM_QUANTITIES = ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")


def random_cell(units: int, features: int, dtype: str, seed: int, state: int | None = None,
                **options) -> Cell:
    """Random weights with saturating but not chaotic gates (std ∝ 1/√fan-in)."""
    rng = np.random.default_rng(seed)
    state = state or units
    return Cell(
        kind="lstm", units=units,
        kernel=rng.normal(0, 1.2 / np.sqrt(features), (features, 4 * units)).astype(dtype),
        recurrent_kernel=rng.normal(0, 1.2 / np.sqrt(state), (state, 4 * units)).astype(dtype),
        bias=rng.normal(0, 0.5, 4 * units).astype(dtype), **options,
    )


def reference_lstm(cell: Cell, x: np.ndarray, h: np.ndarray, c: np.ndarray, reverse: bool) -> dict:
    """The LSTM equations, one step at a time, with σ(z) = 1 / (1 + e^{-z}), in float64."""
    u = cell.units
    W, U = cell.kernel.astype(np.float64), cell.recurrent_kernel.astype(np.float64)
    b = cell.bias.astype(np.float64)
    h, c = h.astype(np.float64), c.astype(np.float64)
    out = {q: np.zeros(x.shape[:2] + (u,)) for q in LSTM_QUANTITIES}
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    for t in steps:
        z = x[:, t].astype(np.float64) @ W + h @ U + b
        i = 1 / (1 + np.exp(-z[:, :u]))
        f = 1 / (1 + np.exp(-z[:, u:2 * u]))
        g = np.tanh(z[:, 2 * u:3 * u])
        o = 1 / (1 + np.exp(-z[:, 3 * u:]))
        c = f * c + i * g
        h = o * np.tanh(c)
        for q, v in zip(LSTM_QUANTITIES, (i, f, g, o, c, h), strict=True):
            out[q][:, t] = v
    return out


def run_both(cell: Cell, x: np.ndarray, monkeypatch, **kwargs):
    """The fused NumPy loop and the general one (compiled kernels off: tests/test_kernels.py)."""
    assert step_loops.lstm_fusable(cell, kwargs.get("mask"))
    monkeypatch.setattr(engine, "sequence_kernel", lambda *args: None)
    fused = engine.run_direction(cell, x, **kwargs)
    with monkeypatch.context() as m:
        m.setattr(step_loops, "lstm_fusable", lambda cell, mask: False)
        general = engine.run_direction(cell, x, **kwargs)
    return fused, general


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(("units", "batch", "steps"), [(1, 1, 1), (7, 5, 13), (32, 3, 40)])
def test_fused_lstm_loop_equals_general_loop_and_equations(monkeypatch, dtype, reverse, units, batch, steps):
    cell = random_cell(units, 3, dtype, seed=units + steps)
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (batch, steps, 3)).astype(dtype)
    h0 = rng.normal(0, 0.5, (batch, units)).astype(dtype)
    c0 = rng.normal(0, 0.5, (batch, units)).astype(dtype)
    fused, general = run_both(cell, x, monkeypatch, reverse=reverse, initial_hidden=h0, initial_cell=c0)
    reference = reference_lstm(cell, x, h0, c0, reverse)
    tolerance = 1e-5 if dtype == "float32" else 1e-12
    for q in LSTM_QUANTITIES:
        a, b = fused.arrays[q], general.arrays[q]
        assert a.dtype == b.dtype == np.dtype(dtype) and a.shape == b.shape == (batch, steps, units)
        # ½-scaling is exact; only the step-major input projection may round a sum one ulp
        # differently, and that difference must stay at the ulp level.
        eps = np.finfo(dtype).eps
        np.testing.assert_allclose(a, b, rtol=4 * eps, atol=4 * eps)
        np.testing.assert_allclose(a, reference[q], rtol=0, atol=tolerance)
    np.testing.assert_allclose(fused.final_hidden, general.final_hidden, rtol=4 * eps, atol=4 * eps)
    np.testing.assert_allclose(fused.final_cell, general.final_cell, rtol=4 * eps, atol=4 * eps)
    if steps:
        last = 0 if reverse else -1
        np.testing.assert_array_equal(fused.final_hidden, fused.arrays["hidden"][:, last])


def test_fused_loop_does_not_change_its_inputs(monkeypatch):
    monkeypatch.setattr(engine, "sequence_kernel", lambda *args: None)
    cell = random_cell(5, 2, "float32", seed=3)
    kernel, recurrent = cell.kernel.copy(), cell.recurrent_kernel.copy()
    x = np.random.default_rng(0).normal(size=(2, 6, 2)).astype(np.float32)
    h0 = np.ones((2, 5), np.float32)
    engine.run_direction(cell, x, initial_hidden=h0)
    np.testing.assert_array_equal(cell.kernel, kernel)
    np.testing.assert_array_equal(cell.recurrent_kernel, recurrent)
    np.testing.assert_array_equal(h0, 1)


@pytest.mark.parametrize("options", [
    {"recurrent_activation": "hard_sigmoid"},
    {"activation": "relu"},
    {"cell_clip": 3.0},
    {"peepholes": {"input_gate": np.ones(4, np.float32)}},
    {"projection": np.ones((4, 2), np.float32), "state": 2},
])
def test_cells_the_fused_loop_does_not_cover_take_the_general_loop(options):
    cell = random_cell(4, 3, "float32", seed=0, **options)
    assert not step_loops.lstm_fusable(cell, None)


def test_masked_input_takes_the_general_loop():
    cell = random_cell(4, 3, "float32", seed=0)
    assert step_loops.lstm_fusable(cell, None)
    assert not step_loops.lstm_fusable(cell, np.ones((1, 3), bool))
