"""Activation layers in front of an LSTM (LeakyReLU, PReLU, ReLU, ELU, Softmax,
ThresholdedReLU) are replayed in NumPy and match Keras 3 and tf_keras.

The models are built by the frameworks (``tests/builders/activation_layers.py``, cached);
each test traces the saved file through the CLI and compares the LSTM's hidden and cell
states with the framework's (float32, atol 1e-5), and the replayed activation layer's
output with what Keras fed the LSTM.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders.activation_layers import CASES
from conftest import build_fixtures
from workflow_common import invoke

import lstm_trace
from lstm_trace.layers import ReLU, Unsupported
from lstm_trace.loaders.keras.spec import KerasContext, LayerSpec
from lstm_trace.loaders.keras.upstream import convert_upstream
from lstm_trace.loaders.options import LoadOptions
from lstm_trace.network import RecurrentLayer

ATOL = 1e-5


@pytest.fixture(scope="session")
def act3():
    return build_fixtures("activation_layers")


@pytest.fixture(scope="session")
def act2():
    return build_fixtures("activation_layers", legacy_keras=True)


PARAMS = [("act3", name, fmt) for name, spec in CASES.items() if "3" in spec[3]
          for fmt in ("keras", "h5")]
PARAMS += [("act2", name, "h5") for name, spec in CASES.items() if "2" in spec[3]]


def _case(directory, name):
    cases = json.loads((directory / "manifest.json").read_text())["cases"]
    return next(c for c in cases if c["name"] == name)


def _upstream_output(network, x):
    """Replay the layers before the LSTM, as the engine does for a plain chain."""
    mask = None
    for layer in network.layers:
        if isinstance(layer, RecurrentLayer):
            return x, mask
        x, mask = layer.apply(x, mask)
    raise AssertionError("no recurrent layer")


@pytest.mark.parametrize(("fixture", "name", "fmt"), PARAMS)
def test_activation_layer_before_lstm_matches_keras(request, fixture, name, fmt, tmp_path):
    directory = request.getfixturevalue(fixture)
    spec = _case(directory, name)
    model = directory / spec["files"][fmt]
    x = np.load(directory / spec["input"])
    reference = np.load(directory / spec["reference"])

    out = tmp_path / "t.npz"
    result = invoke(model, directory / spec["input"], "-f", "npz", "-o", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as trace:
        hidden_err = np.abs(trace["lstm/hidden"] - reference["hidden"]).max()
        cell_err = np.abs(trace["lstm/cell"] - reference["cell"]).max()
        if spec["masked"]:
            np.testing.assert_array_equal(trace["lstm/mask"][:, 0], True)
            assert not trace["lstm/mask"].all()
    assert hidden_err < ATOL and cell_err < ATOL, (hidden_err, cell_err)

    network = lstm_trace.load(model)
    act = network.layer("act")
    assert act.replayable and act.class_name == spec["class_name"]
    replayed, _ = _upstream_output(network, x)
    assert np.abs(replayed - reference["__input__"]).max() < ATOL
    # Not a trivial case: the layer changes its input (negative side, clip or normalisation).
    dense_in = network.layer("masking").apply(x, None)[0] if spec["masked"] else x
    dense_out, _ = network.layer("dense").apply(dense_in, None)
    assert np.abs(replayed - dense_out).max() > 0.05


def _convert(class_name, config, weights=(), keras_major=3):
    ctx = KerasContext(keras_major, LoadOptions(), [], "test")
    return convert_upstream(LayerSpec("act", class_name, config), list(weights), ctx)


def test_leaky_relu_reads_negative_slope_and_keras2_alpha():
    assert _convert("LeakyReLU", {"negative_slope": 0.1}).negative_slope == 0.1
    assert _convert("LeakyReLU", {"alpha": 0.2}, keras_major=2).negative_slope == 0.2
    assert _convert("LeakyReLU", {}).negative_slope == 0.3  # the default of both versions


@pytest.mark.parametrize(("class_name", "config", "reason"), [
    ("ReLU", {"threshold": -1.0}, "threshold=-1.0 is below 0"),
    ("ReLU", {"max_value": "big"}, "max_value='big' is not a number"),
    ("LeakyReLU", {"negative_slope": None}, "negative_slope=None"),
    ("Softmax", {"axis": 0}, "batch axis"),
])
def test_odd_configs_are_unsupported_with_the_reason(class_name, config, reason):
    layer = _convert(class_name, config)
    assert isinstance(layer, Unsupported)
    assert reason in layer.reason


def test_prelu_alpha_of_another_length_is_a_clear_error():
    layer = _convert("PReLU", {}, [np.full((7, 4), 0.1, np.float32)])
    with pytest.raises(ValueError, match=r"alpha of shape \(7, 4\) does not fit input \(2, 9, 4\)"):
        layer.apply(np.ones((2, 9, 4), np.float32), None)


def test_relu_formula_at_the_kinks():
    """f(x) = min(x, m) for x > θ, s·(x - θ) below; values at and around the kinks."""
    layer = ReLU("r", "ReLU", max_value=1.5, negative_slope=0.1, threshold=0.4)
    x = np.array([-1.0, 0.0, 0.4, 0.5, 1.5, 2.0], np.float32)
    y, _ = layer.apply(x, None)
    np.testing.assert_allclose(y, [-0.14, -0.04, 0.0, 0.5, 1.5, 1.5], atol=1e-7)
