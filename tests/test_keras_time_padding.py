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


# Found on a real model: dgaintel 2.3's domain_classifier_model.h5 (Embedding -> Conv1D ->
# MaxPooling1D -> LSTM) traced with -o trace.h5/.parquet/.csv/.json stopped with exit 3
# (the streamed writers sized every array by INPUT's steps, not the trace's).
STREAMED = ["trace.h5", "trace.parquet", "trace.csv", "trace.json", "trace.npz", "lstmvis"]


def read_hidden(path, layer: str, shape: tuple[int, ...]) -> np.ndarray:
    """``<layer>/hidden`` from any trace file the CLI writes, as ``(batch, steps, units)``."""
    import json

    import h5py
    import polars as pl

    if path.name == "lstmvis":
        with h5py.File(path / "states.h5") as f:
            return f[f"{layer}/hidden"][:].reshape(shape)
    if path.suffix == ".h5":
        with h5py.File(path) as f:
            return f[f"{layer}/hidden"][:]
    if path.suffix == ".npz":
        return np.load(path)[f"{layer}/hidden"]
    if path.suffix == ".json":
        return np.asarray(json.loads(path.read_text())["trace"][f"{layer}/hidden"], dtype=np.float32)
    table = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    table = table.filter(pl.col("layer") == layer).sort(["sample", "step", "unit"])
    return table["hidden"].to_numpy().astype(np.float32).reshape(shape)


@pytest.mark.parametrize("name", ["max_pooling_same", "zero_padding_int", "cropping_pair"])
@pytest.mark.parametrize("output", STREAMED)
def test_every_output_format_has_the_traced_steps_not_the_inputs(padding_models, name, output,
                                                                  tmp_path):
    from workflow_common import invoke

    _, out, cases = padding_models
    case = cases[name]
    reference = np.load(out / case["reference"])["hidden"]
    target = tmp_path / output
    args = ["--format", "lstmvis"] if output == "lstmvis" else []
    result = invoke(out / case["files"]["h5"], out / case["input"], "-o", target, *args)
    assert result.exit_code == 0, result.output
    batch, steps, units = reference.shape
    assert f"{batch} samples × {steps} steps × {units} units" in result.stderr
    hidden = read_hidden(target, "gru", reference.shape)
    assert float(np.max(np.abs(hidden - reference))) < ATOL


def test_layers_on_both_sides_of_a_pooling_are_traced_one_at_a_time(padding_models, tmp_path):
    from builders.keras_time_padding import ACROSS_POOLING
    from workflow_common import assert_user_error, invoke

    _, out, cases = padding_models
    case = cases[ACROSS_POOLING]
    model, x = out / case["files"]["h5"], out / case["input"]
    reference = np.load(out / case["reference"])["hidden"]
    for args in (["-o", tmp_path / "t.h5"], ["--format", "csv"], ["--format", "json"],
                 ["-o", tmp_path / "t.parquet"], ["--format", "table"], ["--summary"],
                 ["--format", "lstmvis", "-o", tmp_path / "lv"]):
        assert_user_error(invoke(model, x, *args),
                          "different step counts (lstm: 9 steps, gru: 5 steps)",
                          "write -o trace.npz", "--layer NAME")
    assert_user_error(invoke("plot", model, x, "-o", tmp_path / "p.png"), "different step counts")
    assert not list(tmp_path.iterdir())
    # The NPZ holds each layer's own steps; each layer alone goes to any format.
    result = invoke(model, x, "-o", tmp_path / "both.npz")
    assert result.exit_code == 0, result.output
    both = np.load(tmp_path / "both.npz")
    assert both["lstm/hidden"].shape[1] == 9
    assert float(np.max(np.abs(both["gru/hidden"] - reference))) < ATOL
    # Several sample chunks: each key is stored with its own layer's steps.
    result = invoke(model, x, "--batch-size", "1", "-o", tmp_path / "chunked.npz")
    assert result.exit_code == 0, result.output
    assert "5–9 steps" in result.stderr
    chunked = np.load(tmp_path / "chunked.npz")
    assert {k: chunked[k].shape for k in chunked.files} == {k: both[k].shape for k in both.files}
    assert float(np.max(np.abs(chunked["gru/hidden"] - reference))) < ATOL
    result = invoke(model, x, "--layer", "gru", "-o", tmp_path / "gru.h5")
    assert result.exit_code == 0, result.output
    assert float(np.max(np.abs(read_hidden(tmp_path / "gru.h5", "gru", reference.shape)
                               - reference))) < ATOL
    assert invoke(model, x, "--layer", "lstm", "-o", tmp_path / "lstm.csv").exit_code == 0
    assert invoke("stats", model, x).exit_code == 0
