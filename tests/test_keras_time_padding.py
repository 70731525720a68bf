"""``ZeroPadding1D`` and ``Cropping1D`` before a recurrent layer are replayed as Keras runs them.

Found on a real model: the ``ao-compensation-model`` package ships GRU models whose GRU
reads ``Conv1D -> BatchNormalization -> ZeroPadding1D -> AveragePooling1D``; lstm-trace
refused them. The fixtures (tests/builders/keras_time_padding.py) rebuild that shape with
random weights in Keras 3 and tf_keras; the GRU's input and every step's output are
compared with the framework's (atol 1e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.keras_time_padding import CASES
from error_record import record_error

import lstm_trace

ATOL = 1e-5


@pytest.fixture(scope="session", params=["keras3", "keras2"])
def padding_models(request):
    from conftest import build_fixtures, load_manifest

    out = build_fixtures("keras_time_padding", legacy_keras=request.param == "keras2")
    return request.param, out, {c["name"]: c for c in load_manifest(out)}


@pytest.mark.parametrize("name", list(CASES))
def test_gru_after_time_padding_matches_keras(padding_models, name):
    version, out, cases = padding_models
    case = cases[name]
    x = np.load(out / case["input"])
    reference = np.load(out / case["reference"])
    assert case["files"], name
    for fmt, file in case["files"].items():
        trace = lstm_trace.load(out / file).trace(x)
        hidden = trace["gru/hidden"]
        assert hidden.shape == reference["hidden"].shape, (fmt, hidden.shape)
        err = float(np.max(np.abs(hidden - reference["hidden"])))
        record_error("Keras time padding layers", f"{version}/{name}/{fmt}", err)
        assert err < ATOL, (fmt, err)


def test_inspect_describes_the_padding(padding_models):
    _, out, cases = padding_models
    model = lstm_trace.load(out / cases["padding_then_cropping"]["files"]["h5"])
    described = {layer.name: layer.describe() for layer in model.layers if hasattr(layer, "describe")}
    assert described["pad_0"] == "ZeroPadding1D (zero-pads 1 steps before, 2 after)"
    assert described["pad_1"] == "Cropping1D (crops 2 steps before, 2 after)"
