"""ONNX refusals say what the graph holds and what to do instead.

Found on real models: ddddocr's ``common_old.onnx`` (an onnxruntime ``DynamicQuantizeLSTM``)
was refused with a bare list of ops; now the message says it is a quantized LSTM with int8
weights that lstm-trace does not read and points to the float model. And the refusal of
a front op (pythainlp's ``TopK``, before TopK was replayed) said "INPUT being that node's
input", which reads as the blocking op's input: it now names the recurrent node's own X.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import build_fixtures

from lstm_trace.cli import main


@pytest.fixture(scope="module")
def refusals():
    return build_fixtures("onnx_refusals")


def _one_error_line(args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize("command", [[], ["inspect"], ["extract"]])
def test_dynamic_quantize_lstm_is_named_as_a_quantized_lstm(refusals, command, tmp_path):
    model = refusals / "quantized_lstm.onnx"
    args = [*command, model]
    if not command:
        args.append(refusals / "x.npy")
    elif command == ["extract"]:
        args += ["-o", tmp_path / "w.npz"]
    line = _one_error_line(args)
    assert "quantized LSTM (DynamicQuantizeLSTM node 'lstm_quant'" in line
    assert "int8 weights" in line
    assert "trace the float model it was quantized from" in line
    assert "its ops:" not in line
    assert not (tmp_path / "w.npz").exists()


def test_front_refusal_names_the_recurrent_nodes_input():
    onnx_files = build_fixtures("onnx_files")
    line = _one_error_line([onnx_files / "unsupported_front.onnx", onnx_files / "feeds.npz"])
    assert ("pass --layer encoder --layer-input with INPUT being the X input of the recurrent "
            "node 'encoder' itself (not the input of node 'front' (Erf))") in line
    assert "that node's input" not in line
