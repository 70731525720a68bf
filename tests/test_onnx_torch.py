"""Models exported by torch.onnx.export: lstm-trace on the .onnx file matches torch itself.

nn.LSTM / nn.GRU / nn.RNN with batch_first both ways, bidirectional, two layers (two
recurrent nodes with Transpose/Reshape between them), and front layers exported as
Gather (Embedding), Gemm/MatMul + Relu (Linear), Conv + Tanh (Conv1d). References come
from torch in the builder's process (tests/builders/onnx_torch.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.onnx_torch import CASES, HIDDEN
from error_record import record_error

import lstm_trace

ATOL = 1e-5


@pytest.fixture(scope="session")
def onnx_torch():
    from conftest import build_fixtures

    return build_fixtures("onnx_torch")


def _manifest(directory, name):
    from conftest import load_manifest

    return next(c for c in load_manifest(directory) if c["name"] == name)


@pytest.mark.parametrize("name", [c["name"] for c in CASES])
def test_torch_export_matches_torch(onnx_torch, name):
    case = _manifest(onnx_torch, name)
    d = onnx_torch / name
    feeds = dict(np.load(d / "feeds.npz"))
    ref = dict(np.load(d / "reference.npz"))
    network = lstm_trace.load(d / "model.onnx")
    assert [layer.name for layer in network.recurrent_layers] == case["nodes"]
    trace = network.trace(feeds)
    dirs = ["forward", "backward"] if case["bidirectional"] else ["forward"]
    for k, node in enumerate(case["nodes"]):
        for direction in dirs:
            prefix = f"{node}/{direction}" if case["bidirectional"] else node
            hidden = trace[f"{prefix}/hidden"]
            assert hidden.shape == (2, 6, HIDDEN)
            record_error("ONNX torch exports vs torch", f"{name}/{prefix}/hidden",
                         float(np.abs(hidden - ref[f"hidden_{k}_{direction}"]).max()))
            np.testing.assert_allclose(hidden, ref[f"hidden_{k}_{direction}"], atol=ATOL,
                                       err_msg=f"{prefix}/hidden")
            if case["cell"] == "LSTM":
                cell = trace[f"{prefix}/cell"]
                record_error("ONNX torch exports vs torch", f"{name}/{prefix}/cell",
                             float(np.abs(cell - ref[f"cell_{k}_{direction}"]).max()))
                np.testing.assert_allclose(cell, ref[f"cell_{k}_{direction}"], atol=ATOL)
                o = trace[f"{prefix}/output_gate"]
                np.testing.assert_allclose(o * np.tanh(ref[f"cell_{k}_{direction}"]),
                                           ref[f"hidden_{k}_{direction}"], atol=ATOL)


def test_torch_export_zero_initial_states_need_no_wiring(onnx_torch):
    """torch exports h0 = zeros expanded to the batch: recognised as zeros, not replayed."""
    network = lstm_trace.load(onnx_torch / "lstm_bidirectional_2layers" / "model.onnx")
    assert all(not layer.initial_state_from for layer in network.recurrent_layers)


def test_layer_input_traces_the_second_node_alone(onnx_torch):
    d = onnx_torch / "lstm_seq_first_2layers"
    ref = dict(np.load(d / "reference.npz"))
    network = lstm_trace.load(d / "model.onnx")
    second = network.recurrent_layers[1].name
    trace = network.trace(ref["hidden_0_forward"], layers=[second], layer_input=True)
    np.testing.assert_allclose(trace[f"{second}/hidden"], ref["hidden_1_forward"], atol=ATOL)
