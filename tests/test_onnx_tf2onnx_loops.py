"""tf2onnx's ``Loop`` of a Keras ``SimpleRNN`` is read as the ``RNN`` node it computes and
traced against Keras's own output (atol 1e-5); loops of other cells stay refused.

The models (tests/builders/onnx_tf2onnx_loops.py) are tf_keras layers converted by tf2onnx:
``SimpleRNN`` with tanh, relu and ``go_backwards`` (tf2onnx reverses the sequence before
the loop, so the trace follows the loop's own order, as the Keras reference does), without
bias after a Dense layer; ``GRU(reset_after=False)`` and a masked SimpleRNN, whose loops
compute something else, are refused in one line naming the loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.onnx_tf2onnx_loops import CASES
from click.testing import CliRunner
from error_record import record_error

import lstm_trace
from lstm_trace.cli import main

TRACED = [c for c in CASES if c["traced"]]
REFUSED = [c for c in CASES if not c["traced"]]


@pytest.fixture(scope="session")
def loops():
    from conftest import build_fixtures

    return build_fixtures("onnx_tf2onnx_loops", legacy_keras=True)


@pytest.mark.parametrize("case", TRACED, ids=[c["name"] for c in TRACED])
def test_simple_rnn_loop_traces_like_keras(loops, case):
    d = loops / case["name"]
    network = lstm_trace.load(d / "model.onnx")
    (layer,) = network.recurrent_layers
    assert layer.kind == "simple_rnn" and "read as the RNN node" in layer.options["loop"]
    trace = network.trace(np.load(d / "x.npy"))
    reference = np.load(d / "reference.npy")
    err = float(np.abs(trace[f"{layer.name}/hidden"] - reference).max())
    record_error("ONNX tf2onnx exports vs Keras", f"{case['name']}/{layer.name}", err)
    assert err < 1e-5


@pytest.mark.parametrize("case", REFUSED, ids=[c["name"] for c in REFUSED])
def test_loops_of_other_cells_are_refused_in_one_line(loops, case):
    result = CliRunner().invoke(main, [str(loops / case["name"] / "model.onnx"),
                                       str(loops / case["name"] / "x.npy")])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert "no LSTM, GRU or RNN node" in line and "runs a body of" in line
    assert "not the simple RNN cell lstm-trace reads from a loop" in line


def test_the_loop_weights_are_named_as_stored(loops):
    network = lstm_trace.load(loops / "simple_rnn_tanh" / "model.onnx")
    cell = network.recurrent_layers[0].directions[0].cell
    assert cell.tensor_names["kernel"][0].endswith("simple_rnn_cell/MatMul/ReadVariableOp/resource:0ᵀ")
    assert cell.tensor_names["recurrent_kernel"][0].endswith("MatMul_1/ReadVariableOp/resource:0ᵀ")
    assert cell.parameter_count() == 3 * 4 + 4 * 4 + 4  # K, U, b: as Keras counts them
