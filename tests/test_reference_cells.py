"""The fast engine equals the obviously-correct per-sample, per-step cells of
``tests/reference_cells.py`` on random canonical cells: every LSTM option (peepholes,
projection, clips, forget_bias), both GRU variants, SimpleRNN; with masks, reverse
directions and initial states. (The framework checks are in the Keras/TF tests; this
one guards the engine's speed tricks against the equations.)
"""

from __future__ import annotations

import numpy as np
import pytest
from reference_cells import reference_direction

from lstm_trace.engine import run_direction
from lstm_trace.network import Cell

UNITS, FEATURES, BATCH, STEPS = 5, 3, 4, 7


def _cell(kind: str, rng: np.random.Generator, **options) -> Cell:
    width = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind] * UNITS
    proj = options.pop("num_proj", None)
    return Cell(
        kind=kind, units=UNITS,
        kernel=rng.normal(0, 0.7, (FEATURES, width)),
        recurrent_kernel=rng.normal(0, 0.7, (proj or UNITS, width)),
        bias=None if options.pop("no_bias", False) else rng.normal(0, 0.5, width),
        projection=None if proj is None else rng.normal(0, 0.7, (UNITS, proj)),
        **options,
    )


CASES = {
    "lstm": ("lstm", {}),
    "lstm_no_bias_relu": ("lstm", {"no_bias": True, "activation": "relu"}),
    "lstm_hard_sigmoid_k2": ("lstm", {"recurrent_activation": "hard_sigmoid_keras2"}),
    "lstm_hard_sigmoid_k3": ("lstm", {"recurrent_activation": "hard_sigmoid"}),
    "lstm_forget_bias": ("lstm", {"forget_bias": 1.0}),
    "lstm_cell_clip": ("lstm", {"cell_clip": 0.3}),
    "lstm_projection_clip": ("lstm", {"num_proj": 3, "proj_clip": 0.2}),
    "lstm_peepholes": ("lstm", {"peepholes": True}),
    "lstm_everything": ("lstm", {"peepholes": True, "num_proj": 2, "cell_clip": 0.5,
                                 "proj_clip": 0.4, "forget_bias": 1.0}),
    "gru_reset_after": ("gru", {"reset_after": True, "recurrent_bias": True}),
    "gru_reset_after_one_bias": ("gru", {"reset_after": True}),
    "gru_reset_before": ("gru", {"reset_after": False}),
    "gru_softsign_hard_sigmoid": ("gru", {"reset_after": False, "activation": "softsign",
                                          "recurrent_activation": "hard_sigmoid"}),
    "simple_rnn": ("simple_rnn", {}),
    "simple_rnn_relu_no_bias": ("simple_rnn", {"activation": "relu", "no_bias": True}),
}


def make_cell(name: str, seed: int = 0) -> Cell:
    kind, options = CASES[name]
    options = dict(options)
    rng = np.random.default_rng(seed)
    width = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind] * UNITS
    if options.pop("recurrent_bias", False):
        options["recurrent_bias"] = rng.normal(0, 0.5, width)
    if options.pop("peepholes", False):
        options["peepholes"] = {g: rng.normal(0, 0.5, UNITS)
                                for g in ("input_gate", "forget_gate", "output_gate")}
    return _cell(kind, rng, **options)


def _inputs(cell: Cell, seed: int, masked: bool, initial: bool):
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(0, 1, (BATCH, STEPS, FEATURES))
    mask = None
    if masked:
        mask = np.ones((BATCH, STEPS), bool)
        mask[1, -3:] = False  # right padding
        mask[2, :2] = False  # left padding
        mask[3, [1, 4]] = False  # holes
    h0 = rng.normal(0, 0.5, (BATCH, cell.state_size)) if initial else None
    c0 = rng.normal(0, 0.5, (BATCH, cell.units)) if initial and cell.kind == "lstm" else None
    return x, mask, h0, c0


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("initial", [False, True], ids=["zeros", "initial"])
@pytest.mark.parametrize("name", list(CASES))
def test_engine_matches_reference_cell(name, reverse, masked, initial):
    cell = make_cell(name)
    x, mask, h0, c0 = _inputs(cell, 0, masked, initial)
    expected = reference_direction(cell, x, reverse=reverse, mask=mask,
                                   initial_hidden=h0, initial_cell=c0)
    # float64: the same equations give the same numbers to rounding.
    got = run_direction(cell.astype(np.float64), x, reverse=reverse, mask=mask,
                        initial_hidden=h0, initial_cell=c0)
    for q, want in expected.items():
        np.testing.assert_allclose(got.arrays[q], want, rtol=0, atol=1e-12, err_msg=q)
    # float32, as traced by default: within float32 rounding.
    got32 = run_direction(cell.astype(np.float32), x.astype(np.float32), reverse=reverse,
                          mask=mask, initial_hidden=h0, initial_cell=c0)
    for q, want in expected.items():
        np.testing.assert_allclose(got32.arrays[q], want, rtol=0, atol=2e-5, err_msg=q)
    # The final states are those after the last processed step.
    last = 0 if reverse else STEPS - 1
    np.testing.assert_allclose(got.final_hidden, expected["hidden"][:, last], atol=1e-12)
    if cell.kind == "lstm":
        np.testing.assert_allclose(got.final_cell, expected["cell"][:, last], atol=1e-12)
    if mask is not None:
        np.testing.assert_array_equal(got.arrays["mask"], mask)
