"""``extract --to onnx``: the written model, run by onnxruntime, reproduces the source framework.

Keras layers (.keras) and PyTorch modules (state dict .pt) are built in the builder's
process (tests/builders/onnx_export.py) with their own outputs; here lstm-trace writes
the ONNX model with its own protobuf encoder, and onnxruntime (a test dependency, the
oracle) runs it: Y must equal the framework's output at every step (atol 1e-5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from builders.onnx_export import CASES, UNITS
from click.testing import CliRunner
from error_record import record_error

from lstm_trace.cli import main

ATOL = 1e-5
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def onnx_export():
    from conftest import build_fixtures

    return build_fixtures("onnx_export")


def _export(model, output, *extra):
    result = CliRunner().invoke(main, ["extract", str(model), "--to", "onnx", "-o", str(output),
                                       *extra])
    assert result.exit_code == 0, result.output
    return result


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_extracted_onnx_model_reproduces_the_framework(onnx_export, tmp_path, case):
    import onnxruntime as ort
    d = onnx_export / case["name"]
    out = tmp_path / "layer.onnx"
    result = _export(d / ("model.keras" if case["source"] == "keras" else "model.pt"), out,
                     *case.get("cli", []))
    assert "wrote" in result.output
    x = np.load(d / "x.npy")  # (batch, steps, features)
    expected = np.load(d / "output.npy")  # (batch, steps, D*units)
    y = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"X": x.transpose(1, 0, 2)})[0]  # (steps, D, batch, units)
    got = np.concatenate([y[:, d].transpose(1, 0, 2) for d in range(y.shape[1])], axis=-1)
    if case["options"].get("go_backwards"):
        got = got[:, ::-1]  # Keras returns a go_backwards sequence in processing order
    assert got.shape == expected.shape
    record_error("extract --to onnx vs framework", case["name"], float(np.abs(got - expected).max()))
    np.testing.assert_allclose(got, expected, atol=ATOL)


def test_gru_linear_before_reset_follows_reset_after(onnx_export, tmp_path):
    from lstm_trace.loaders.onnx.proto import read_model

    for name, flag in (("keras_gru_reset_after", 1), ("keras_gru_reset_before", 0)):
        _export(onnx_export / name / "model.keras", tmp_path / f"{name}.onnx")
        node = read_model(tmp_path / f"{name}.onnx").graph.nodes[0]
        assert node.attributes["linear_before_reset"] == flag
        assert node.attributes["hidden_size"] == UNITS


def test_extracted_model_traces_like_its_source(onnx_export, tmp_path):
    """The written file is read back by lstm-trace: same gates as the source model."""
    import lstm_trace

    d = onnx_export / "keras_bidirectional_lstm"
    _export(d / "model.keras", tmp_path / "m.onnx")
    x = np.load(d / "x.npy")
    source = lstm_trace.load(d / "model.keras").trace(x)
    again = lstm_trace.load(tmp_path / "m.onnx").trace(x.transpose(1, 0, 2))
    assert set(again) == set(source)
    for key in source:
        np.testing.assert_allclose(again[key], source[key], atol=ATOL, err_msg=key)


def test_onnx_model_goes_to_a_file(onnx_export):
    result = CliRunner().invoke(main, ["extract", str(onnx_export / "keras_lstm" / "model.keras"),
                                       "--to", "onnx", "-o", "-"])
    assert result.exit_code == 2 and "give -o FILE.onnx" in result.output


def _layer(name, **cell_options):
    from lstm_trace.network import Cell, Direction, RecurrentLayer

    rng = np.random.default_rng(0)
    cell = Cell(kind="lstm", units=2, kernel=rng.standard_normal((3, 8)),
                recurrent_kernel=rng.standard_normal((2, 8)), **cell_options)
    return RecurrentLayer(name, [Direction("forward", cell)])


@pytest.mark.parametrize("options, phrase", [
    ({"activation": "selu"}, "cannot use the activation 'selu'"),
    ({"cell_clip": 3.0}, "not the cell state (cell_clip)"),
    ({"projection": np.ones((2, 2))}, "no projection"),
])
def test_what_onnx_cannot_express_is_refused(options, phrase):
    from lstm_trace.export_onnx import onnx_node
    from lstm_trace.extract import ExportError

    with pytest.raises(ExportError, match=phrase.replace("(", r"\(").replace(")", r"\)")):
        onnx_node(_layer("a", **options))


def test_one_layer_per_model_file():
    from lstm_trace.export_onnx import to_onnx
    from lstm_trace.extract import ExportError
    from lstm_trace.network import Network

    network = Network([_layer("a"), _layer("b")])
    with pytest.raises(ExportError, match="choose one with --layer"):
        to_onnx(network)
    assert to_onnx(network, ["b"]).name == "b"


def test_tf1_frozen_graph_gru_exported_reproduces_tensorflow(tmp_path):
    """The TF1 sample's GRUCell (reset before the matmul) as ONNX, against TensorFlow's outputs;
    its LSTMCell has cell_clip, which an ONNX node cannot express."""
    import onnxruntime as ort

    import lstm_trace

    samples = ROOT / "sample_models"
    model = samples / "tf1_frozen.pb"
    network = lstm_trace.load(model)
    lstm, gru = (layer.name for layer in network.recurrent_layers)
    refused = CliRunner().invoke(main, ["extract", str(model), "--to", "onnx", "--layer", lstm,
                                        "-o", str(tmp_path / "lstm.onnx")])
    assert refused.exit_code == 2 and "cell_clip" in refused.output
    _export(model, tmp_path / "gru.onnx", "--layer", gru)
    x = np.load(samples / "tf1_input.npy")
    gru_input = network.trace(x, layers=[lstm])[f"{lstm}/hidden"]  # checked against TF elsewhere
    y = ort.InferenceSession(str(tmp_path / "gru.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"X": gru_input.transpose(1, 0, 2)})[0][:, 0].transpose(1, 0, 2)
    expected = np.load(samples / "tf1_reference.npz")["outputs"]
    record_error("extract --to onnx vs framework", "tf1_frozen/gru", float(np.abs(y - expected).max()))
    np.testing.assert_allclose(y, expected, atol=ATOL)
