"""Every command works on PyTorch files (the torch-trained sample model), and errors are one line."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from lstm_trace.cli import main
from lstm_trace.loaders.pytorch.safetensors import read_safetensors

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
MODELS = ["brackets_torch.pt", "brackets_torch.safetensors", "brackets_torch_script.pt"]
INPUT = str(SAMPLES / "brackets_input.npy")


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("model", MODELS)
def test_trace_writes_torch_states_as_npz(tmp_path, model):
    out = tmp_path / "trace.npz"
    result = invoke(SAMPLES / model, INPUT, "-o", out)
    assert result.exit_code == 0, result.output
    reference = np.load(SAMPLES / "brackets_torch_reference.npz")
    with np.load(out) as trace:
        assert sorted(trace.files) == sorted(f"lstm/l0/{q}" for q in (
            "input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden"))
        assert np.abs(trace["lstm/l0/cell"] - reference["cell"]).max() < 1e-5


def test_inspect_json_describes_the_module_and_its_head():
    result = invoke("inspect", SAMPLES / "brackets_torch_script.pt", "--format", "json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["source"] == "PyTorch TorchScript archive"
    recurrent, head = info["layers"]
    assert (recurrent["name"], recurrent["class_name"], recurrent["units"]) == ("lstm/l0", "LSTM", 8)
    assert recurrent["directions"][0]["gates"][0]["kernel"] == "lstm.weight_ih_l0[0:8]"
    assert (head["name"], head["class_name"], head["role"]) == ("depth", "Linear", "downstream")


def test_check_plot_and_stats_run_on_pytorch_files(tmp_path):
    golden = tmp_path / "golden.npz"
    assert invoke(SAMPLES / "brackets_torch.pt", INPUT, "-o", golden).exit_code == 0
    result = invoke("check", SAMPLES / "brackets_torch_script.pt", INPUT, "--golden", golden)
    assert result.exit_code == 0, result.output
    png = tmp_path / "gates.png"
    result = invoke("plot", SAMPLES / "brackets_torch.safetensors", INPUT, "-o", png)
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = invoke("stats", SAMPLES / "brackets_torch.pt", INPUT)
    assert result.exit_code == 0, result.output
    assert "forget_gate" in result.output


def test_extract_to_pytorch_gives_the_file_weights_back(tmp_path):
    out = tmp_path / "torch.npz"
    result = invoke("extract", SAMPLES / "brackets_torch.safetensors", "--to", "pytorch", "-o", out)
    assert result.exit_code == 0, result.output
    original, _ = read_safetensors(SAMPLES / "brackets_torch.safetensors")
    with np.load(out) as back:
        for name in ("weight_ih_l0", "weight_hh_l0"):
            np.testing.assert_array_equal(back[f"lstm/l0/{name}"], original[f"lstm.{name}"])
        np.testing.assert_allclose(back["lstm/l0/bias_ih_l0"] + back["lstm/l0/bias_hh_l0"],
                                   original["lstm.bias_ih_l0"] + original["lstm.bias_hh_l0"],
                                   atol=1e-6)


def test_extract_to_keras_refuses_a_projection_in_one_line(tmp_path):
    header = {}
    blobs = []
    offset = 0
    rng = np.random.default_rng(0)
    for name, shape in [("rnn.weight_ih_l0", (16, 3)), ("rnn.weight_hh_l0", (16, 2)),
                        ("rnn.weight_hr_l0", (2, 4))]:
        data = rng.standard_normal(shape).astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    path = _safetensors(tmp_path / "proj.safetensors", header, b"".join(blobs))
    result = invoke("extract", path, "--to", "keras", "-o", tmp_path / "k.npz")
    assert result.exit_code == 2
    assert "no projection" in result.output
    assert len(result.output.strip().splitlines()) == 1


def _safetensors(path: Path, header: dict, data: bytes) -> Path:
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def test_a_pytorch_file_without_recurrent_modules_is_a_clean_error(tmp_path):
    data = np.ones((3, 2), "<f4").tobytes()
    path = _safetensors(tmp_path / "linear.safetensors", {
        "fc.weight": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, len(data)]}}, data)
    result = invoke(path, INPUT)
    assert result.exit_code == 2
    assert result.output.startswith("error: ")
    assert "linear.safetensors: no nn.LSTM/GRU/RNN" in result.output
    assert "fc.weight" in result.output


@pytest.mark.parametrize("header, message", [
    ({"w": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 64]}}, "lie outside"),
    ({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 8]}}, "needs 16 bytes"),
    ({"w": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}, "does not read"),
])
def test_inconsistent_safetensors_headers_are_refused(tmp_path, header, message):
    path = _safetensors(tmp_path / "bad.safetensors", header, bytes(16))
    result = invoke("inspect", path)
    assert result.exit_code == 2
    assert message in result.output


def test_torch_files_are_told_apart_from_keras_zips_and_npz_by_content(tmp_path):
    from lstm_trace.loaders import LoadError, detect_format

    for name in MODELS:
        renamed = tmp_path / f"model-{name}.keras"  # the extension does not matter
        renamed.write_bytes((SAMPLES / name).read_bytes())
        assert detect_format(renamed) == "pytorch"
    assert detect_format(SAMPLES / "brackets.keras") == "keras"
    npz = tmp_path / "arrays.npz"
    np.savez(npz, weight_ih_l0=np.zeros((4, 2), np.float32))
    with pytest.raises(LoadError, match="not a model file"):
        detect_format(npz)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01K\x02\x86.")
    with pytest.raises(LoadError, match="not a model file"):
        detect_format(plain)
