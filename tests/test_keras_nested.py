"""Nested models (a Sequential or Functional model used as a layer) trace like flat ones."""

from __future__ import annotations

import numpy as np
import pytest
from builders.keras_nested import CASES
from conftest import build_fixtures, load_manifest
from error_record import record_error
from recombine import recombine_lstm

import lstm_trace

ATOL = 1e-5


@pytest.fixture(scope="session")
def nested3():
    return build_fixtures("keras_nested")


@pytest.fixture(scope="session")
def nested2():
    return build_fixtures("keras_nested", legacy_keras=True)


def _check(directory, name: str, fmt: str, traced: list[str], family: str) -> None:
    case = next(c for c in load_manifest(directory) if c["name"] == name)
    assert fmt in case["files"], f"{name}: the builder wrote no {fmt} file"
    network = lstm_trace.load(directory / case["files"][fmt])
    x = np.load(directory / case["input"])
    trace = network.trace(x)
    reference = np.load(directory / case["reference"])
    assert [layer.name for layer in network.recurrent_layers] == traced
    for key in reference.files:
        err = np.abs(trace[key] - reference[key]).max()
        assert err < ATOL, key
        record_error(family, f"{name}/{fmt}", err)
    for layer in network.recurrent_layers:
        if layer.kind == "lstm":
            h, c = recombine_lstm(trace, layer.name)
            assert np.abs(h - reference[f"{layer.name}/hidden"]).max() < ATOL
            assert np.abs(c - reference[f"{layer.name}/cell"]).max() < ATOL


@pytest.mark.parametrize("fmt", ["keras", "h5"])
@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_keras3_nested_models_match_keras(nested3, case, fmt):
    _check(nested3, case["name"], fmt, case["traced"], "Keras 3 nested models")


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_keras2_nested_models_match_keras(nested2, case):
    _check(nested2, case["name"], "h5", case["traced"], "tf_keras nested models")


def test_inner_layer_with_a_clashing_name_is_prefixed_by_its_submodel(nested3):
    network = lstm_trace.load(nested3 / "functional_in_sequential_name_clash.keras")
    assert network.layer("sub/lstm").kind == "lstm"
    assert network.layer("lstm").input_size == 3
