"""LSTM traces of Keras 3 and Keras 2 files match the framework at every step (atol 1e-5).

Each layer's ``hidden``/``cell`` are compared with the framework's cell stepped one input
at a time, its gates recombined into them, and its ``hidden`` with the layer's own output.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.keras_lstm import CASES
from error_record import record_error
from recombine import recombine_lstm

import lstm_trace
from lstm_trace.activations import get_activation

ATOL = 1e-5
KERAS3_FORMATS = ["keras", "h5", "weights_h5"]
KERAS2_FORMATS = ["h5", "weights_h5", "keras"]
WEIGHTS_ONLY_NEEDS_OPTIONS = {"hard_sigmoid", "relu_linear", "elu_softsign", "selu_swish",
                              "gelu_softplus", "exponential", "stacked"}


def _case(directory, name):
    from conftest import load_manifest

    return next(c for c in load_manifest(directory) if c["name"] == name)


def _options_for(case_spec: dict, fmt: str, keras_major: int, directory) -> dict:
    """Weights-only files carry no activations: pass them as a user would.

    Layers with different activations cannot be described by --activation; the user
    passes the model's own config (``model.to_json()``) with ``--config`` instead.
    """
    if fmt != "weights_h5" or case_spec["name"] not in WEIGHTS_ONLY_NEEDS_OPTIONS:
        return {}
    opts = case_spec["layers"][0][1]
    if len({tuple(sorted(o.items())) for _, o in case_spec["layers"]}) > 1:
        return {"config_path": str(directory / _case(directory, case_spec["name"])["files"]["json"])}
    out = {}
    if "activation" in opts:
        out["activation"] = opts["activation"]
    if "recurrent_activation" in opts:
        ra = opts["recurrent_activation"]
        keras2_hard = ra == "hard_sigmoid" and keras_major == 2
        out["recurrent_activation"] = "hard_sigmoid_keras2" if keras2_hard else ra
    return out


def check_case(directory, spec: dict, fmt: str, keras_major: int) -> float:
    case = _case(directory, spec["name"])
    options = _options_for(spec, fmt, keras_major, directory)
    network = lstm_trace.load(directory / case["files"][fmt], **options)
    x = np.load(directory / case["input"])
    trace = network.trace(x)
    reference = np.load(directory / case["reference"])
    names = [layer.name for layer in network.recurrent_layers]
    assert len(names) == len(case["layers"])
    family = f"{'Keras 3' if keras_major == 3 else 'tf_keras'} LSTM"
    worst = 0.0
    for name, keras_name, (_, layer_options) in zip(names, case["layers"], spec["layers"], strict=True):
        if fmt != "weights_h5" or "config_path" in options:
            assert name == keras_name
        for q in ("hidden", "cell"):
            err = np.abs(trace[f"{name}/{q}"] - reference[f"{keras_name}/{q}"]).max()
            assert err < ATOL, (name, q, err)
            record_error(family, f"{spec['name']}/{fmt}", err)
            worst = max(worst, err)
        # The stepped cell (the reference above) is the layer Keras runs: its own output.
        output = reference[f"{keras_name}/__output__"]
        hidden = trace[f"{name}/hidden"]
        if not layer_options.get("return_sequences", True):
            hidden = hidden[:, -1]
        assert output.shape == hidden.shape, (name, output.shape)
        assert np.abs(hidden - output).max() < ATOL, name
        cell = network.layer(name).directions[0].cell
        h, c = recombine_lstm(trace, name, activation=get_activation(cell.activation))
        assert np.abs(c - reference[f"{keras_name}/cell"]).max() < ATOL
        assert np.abs(h - reference[f"{keras_name}/hidden"]).max() < ATOL
        for q in ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden"):
            assert trace[f"{name}/{q}"].shape[:2] == x.shape[:2]
            assert trace[f"{name}/{q}"].dtype == np.float32
    return worst


@pytest.mark.parametrize("fmt", KERAS3_FORMATS)
@pytest.mark.parametrize("spec", CASES, ids=[c["name"] for c in CASES])
def test_keras3_lstm_matches_keras(keras3_lstm_fixtures, spec, fmt):
    check_case(keras3_lstm_fixtures, spec, fmt, keras_major=3)


@pytest.mark.parametrize("fmt", KERAS2_FORMATS)
@pytest.mark.parametrize("spec", CASES, ids=[c["name"] for c in CASES])
def test_keras2_lstm_matches_keras(keras2_lstm_fixtures, spec, fmt):
    check_case(keras2_lstm_fixtures, spec, fmt, keras_major=2)


def test_keras2_and_keras3_hard_sigmoid_differ(keras2_lstm_fixtures, keras3_lstm_fixtures):
    """The two Keras versions define hard_sigmoid differently; each file gets its own."""
    k2 = lstm_trace.load(keras2_lstm_fixtures / "hard_sigmoid.h5")
    k3 = lstm_trace.load(keras3_lstm_fixtures / "hard_sigmoid.keras")
    assert k2.recurrent_layers[0].directions[0].cell.recurrent_activation == "hard_sigmoid_keras2"
    assert k3.recurrent_layers[0].directions[0].cell.recurrent_activation == "hard_sigmoid"


def test_float64_replay_is_close_to_float32(keras3_lstm_fixtures):
    network = lstm_trace.load(keras3_lstm_fixtures / "basic.keras")
    x = np.load(keras3_lstm_fixtures / "basic_input.npy")
    t32 = network.trace(x)
    t64 = network.trace(x, dtype="float64")
    key = "basic_lstm_0/hidden"
    assert t64[key].dtype == np.float64
    assert np.abs(t64[key] - t32[key]).max() < 1e-5
