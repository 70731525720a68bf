"""``inspect`` counts the whole model as Keras does, and says why a layer is not replayed.

Parameter counts are checked against Keras's own ``model.count_params()`` recorded by the
fixture builders (Keras 3 and tf_keras, ``.keras`` and ``.h5``): layers before the
recurrent ones, the recurrent layers, and heads after them (which lstm-trace never runs).
"""

from __future__ import annotations

import json

import pytest
from builders.activation_layers import CASES
from conftest import build_fixtures
from workflow_common import invoke

import lstm_trace
from lstm_trace.inspect import describe
from lstm_trace.layers import Unsupported
from lstm_trace.loaders.keras.spec import KerasContext, LayerSpec
from lstm_trace.loaders.keras.upstream import convert_upstream
from lstm_trace.loaders.options import LoadOptions


@pytest.fixture(scope="session")
def act3():
    return build_fixtures("activation_layers")


@pytest.fixture(scope="session")
def act2():
    return build_fixtures("activation_layers", legacy_keras=True)


def _cases(directory):
    return json.loads((directory / "manifest.json").read_text())["cases"]


def test_sample_model_counts_489_like_keras():
    """The bundled model: LSTM(8) on 6 features (480) and a Dense(1) head (9)."""
    result = invoke("inspect", "sample_models/brackets.keras")
    assert result.exit_code == 0, result.output
    assert "parameters: 489 (480 in recurrent layers, 9 in other layers)" in result.stdout
    head = next(line for line in result.stdout.splitlines() if "│ depth" in line)
    assert "│ 9 " in head and "not needed" in head


@pytest.mark.parametrize("fixture", ["act3", "act2"])
def test_every_file_counts_what_keras_counts(request, fixture):
    directory = request.getfixturevalue(fixture)
    checked = 0
    for spec in _cases(directory):
        for file in spec["files"].values():
            info = describe(lstm_trace.load(directory / file))
            assert info["parameters"] == spec["parameters"], (file, info["parameters"])
            assert info["recurrent_parameters"] == spec["lstm_parameters"], file
            assert info["other_parameters"] == spec["parameters"] - spec["lstm_parameters"]
            head = next(layer for layer in info["layers"] if layer["name"] == "head")
            assert head["role"] == "downstream" and head["parameters"] == 5 * 2 + 2
            checked += 1
    assert checked >= len([c for c in CASES.values() if fixture[-1] in c[3]])


def test_prelu_alpha_counts_as_parameters(act3):
    spec = next(c for c in _cases(act3) if c["name"] == "prelu_per_step")
    info = describe(lstm_trace.load(act3 / spec["files"]["keras"]))
    act = next(layer for layer in info["layers"] if layer["name"] == "act")
    assert act["parameters"] == 7 * 4  # alpha: (steps, features) without shared axes
    assert act["replayable"] and act["reason"] is None


def _convert(class_name, config=None):
    ctx = KerasContext(3, LoadOptions(), [], "test")
    return convert_upstream(LayerSpec("layer", class_name, config or {}), [], ctx)


@pytest.mark.parametrize(("class_name", "why"), [
    ("Lambda", "holds code"),
    ("MyCustomLayer", "custom layer's code is not in the file"),
    ("MultiHeadAttention", "attention layer"),
    ("TextVectorization", "preprocessing layer works on raw data"),
    ("RandomFlip", "active only in training"),
    ("Conv1DTranspose", "does not replay this layer class yet"),
    ("SeparableConv2D", "does not replay this layer class yet"),
])
def test_every_unreplayable_layer_has_a_reason(class_name, why):
    layer = _convert(class_name)
    assert isinstance(layer, Unsupported)
    assert why in layer.reason
    assert len(layer.reason) < 120  # it goes into a one-line error


def test_inspect_prints_the_reason_for_each_unreplayable_layer():
    keras3_layers = build_fixtures("keras_layers")
    entry = next(c for c in _cases(keras3_layers) if c["name"] == "unsupported_upstream")
    result = invoke("inspect", keras3_layers / entry["files"]["keras"])
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ deconv"))
    assert "NO" in row
    assert "  deconv: not replayable: lstm-trace does not replay this layer class yet; see " \
           "docs/keras-layers.md for the replayed ones" in result.stdout
