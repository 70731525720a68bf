"""tf_keras models converted by tf2onnx: lstm-trace on the .onnx file matches Keras.

tf2onnx writes each Keras LSTM / GRU as an ONNX node, between Transpose/Squeeze glue,
zero initial states expanded to the batch, and a ReverseSequence for ``go_backwards``
(tests/builders/onnx_tf2onnx.py). Each node's hidden state (directions concatenated) is
the Keras layer's own output at every step.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.onnx_tf2onnx import CASES
from error_record import record_error

import lstm_trace


@pytest.fixture(scope="session")
def onnx_tf2onnx():
    from conftest import build_fixtures

    return build_fixtures("onnx_tf2onnx", legacy_keras=True)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_tf2onnx_model_matches_keras(onnx_tf2onnx, case):
    d = onnx_tf2onnx / case["name"]
    reference = np.load(d / "reference.npz")
    network = lstm_trace.load(d / "model.onnx")
    assert len(network.recurrent_layers) == len(case["layers"])
    trace = network.trace(np.load(d / "x.npy"))
    for k, layer in enumerate(network.recurrent_layers):
        got = np.concatenate([trace[f"{prefix}/hidden"] for prefix, _ in layer.trace_prefixes()], -1)
        expected = reference[f"layer_{k}"]
        record_error("ONNX tf2onnx exports vs Keras", f"{case['name']}/{layer.name}",
                     float(np.abs(got - expected).max()))
        np.testing.assert_allclose(got, expected, atol=1e-5, err_msg=layer.name)
