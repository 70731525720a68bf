"""The committed sample model: it loads, its trace matches Keras, and one unit counts depth."""

from __future__ import annotations

import json

import numpy as np
import pytest
from builders.sample_reference import INPUTS, MODEL, SAMPLES
from click.testing import CliRunner
from conftest import build_fixtures
from error_record import record_error
from recombine import recombine_lstm

import lstm_trace
from lstm_trace.cli import main

ATOL = 1e-5
FORMATS = ["brackets.keras", "brackets.h5"]
TRAINING = json.loads((SAMPLES / "training.json").read_text())


@pytest.fixture(scope="module")
def reference():
    directory = build_fixtures(
        "sample_reference", inputs=(MODEL, *INPUTS.values()), timeout=600,
    )
    return dict(np.load(directory / "reference.npz"))


def true_depth(x: np.ndarray) -> np.ndarray:
    """Nesting depth after each step, from the one-hot input itself: #"(" - #")" so far."""
    tokens = TRAINING["tokens"]
    return np.cumsum(x[..., tokens.index("(")] - x[..., tokens.index(")")], axis=-1)


def test_sample_files_are_consistent():
    x = np.load(SAMPLES / "brackets_input.npy")
    batch = np.load(SAMPLES / "brackets_batch.npy")
    assert x.dtype == batch.dtype == np.float32
    assert x.ndim == 2 and batch.ndim == 3 and x.shape[1] == batch.shape[2] == 6
    assert 20 <= x.shape[0] <= 30
    assert (x.sum(-1) == 1).all() and (batch.sum(-1) == 1).all(), "one-hot rows"
    csv = np.loadtxt(SAMPLES / "brackets_input.csv", delimiter=",", skiprows=1)
    header = (SAMPLES / "brackets_input.csv").read_text().splitlines()[0].split(",")
    assert header == TRAINING["feature_names"]
    np.testing.assert_array_equal(csv, x)
    vocab = (SAMPLES / "brackets_vocab.txt").read_text().splitlines()
    assert vocab == [TRAINING["tokens"][k] for k in x.argmax(-1)]
    assert "".join(vocab) == TRAINING["sample"]


@pytest.mark.parametrize("filename", FORMATS)
def test_sample_model_loads_as_one_lstm8_on_six_features(filename):
    network = lstm_trace.load(SAMPLES / filename)
    assert [layer.name for layer in network.recurrent_layers] == ["lstm"]
    cell = network.recurrent_layers[0].directions[0].cell
    assert (cell.kind, cell.units, cell.input_size) == ("lstm", 8, 6)
    assert (cell.activation, cell.recurrent_activation) == ("tanh", "sigmoid")
    assert network.notes == []


def test_keras_and_h5_sample_models_hold_the_same_weights():
    a, b = (lstm_trace.load(SAMPLES / f).recurrent_layers[0].directions[0].cell for f in FORMATS)
    for name in ("kernel", "recurrent_kernel", "bias"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("which", sorted(INPUTS))
@pytest.mark.parametrize("filename", FORMATS)
def test_sample_trace_matches_keras_at_every_step(reference, filename, which):
    network = lstm_trace.load(SAMPLES / filename)
    trace = network.trace(np.load(INPUTS[which]))
    for q in ("hidden", "cell"):
        err = np.abs(trace[f"lstm/{q}"] - reference[f"{which}/{q}"]).max()
        assert err < ATOL, (q, err)
        record_error("sample model", f"{filename}/{which}", err)
    np.testing.assert_allclose(trace["lstm/hidden"], reference[f"{which}/__output__"], atol=ATOL)
    h, c = recombine_lstm(trace, "lstm")
    np.testing.assert_allclose(c, reference[f"{which}/cell"], atol=ATOL)
    np.testing.assert_allclose(h, reference[f"{which}/hidden"], atol=ATOL)


def test_sample_model_is_actually_trained(reference):
    """Keras's own prediction of the committed model, rounded, is the true depth."""
    for which, path in INPUTS.items():
        x = np.load(path)
        depth = true_depth(x).reshape(-1)
        prediction = reference[f"{which}/__prediction__"].reshape(-1)
        np.testing.assert_array_equal(np.rint(prediction), depth)


def test_a_cell_unit_counts_nesting_depth():
    x = np.load(INPUTS["batch"])
    trace = lstm_trace.load(SAMPLES / "brackets.keras").trace(x)
    cell = trace["lstm/cell"]
    depth = true_depth(x).reshape(-1)
    corr = [abs(np.corrcoef(cell[..., u].reshape(-1), depth)[0, 1]) for u in range(cell.shape[-1])]
    assert max(corr) > 0.9, corr


def test_demo_command_prints_the_sample_trace():
    """`make demo`'s command, through the CLI."""
    result = CliRunner().invoke(
        main, [str(MODEL), str(INPUTS["input"]), "--format", "table", "--units", "0:8"],
    )
    assert result.exit_code == 0, result.output
    assert "lstm/forget_gate" in result.output and "lstm/cell" in result.output


def test_csv_sample_input_traces_like_the_npy(tmp_path):
    out_npy, out_csv = tmp_path / "a.npz", tmp_path / "b.npz"
    for source, out in ((INPUTS["input"], out_npy), (SAMPLES / "brackets_input.csv", out_csv)):
        result = CliRunner().invoke(main, [str(MODEL), str(source), "-o", str(out)])
        assert result.exit_code == 0, result.output
    with np.load(out_npy) as a, np.load(out_csv) as b:
        assert sorted(a.files) == sorted(b.files)
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
