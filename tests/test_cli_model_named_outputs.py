"""An output named like a model file (``-o w.pt``) is refused unless --format says so.

Found while using ``extract --to pytorch -o w.pt`` on a real model: the file was an .npz
of weights named ``.pt``, which ``torch.load`` (and lstm-trace itself) cannot read as a
model. ``--to onnx -o layer.onnx`` does write a model and is unaffected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_trace.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def _run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(("args", "name", "good"), [
    (["extract", SAMPLES / "brackets.keras", "--to", "pytorch"], "w.pt", "w.npz"),
    (["extract", SAMPLES / "brackets.keras", "--to", "keras"], "w.keras", "w.npz"),
    (["trace", SAMPLES / "brackets.keras", SAMPLES / "brackets_input.npy"], "t.onnx", "t.txt"),
])
def test_model_named_output_is_refused(tmp_path, args, name, good):
    out = tmp_path / name
    result = _run(*args, "-o", out)
    assert result.exit_code == 2, result.output
    assert not out.exists()
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "is a model file's extension" in lines[0] and f"name it {good}" in lines[0], lines[0]


def test_format_keeps_the_name(tmp_path):
    out = tmp_path / "w.pt"
    result = _run("extract", SAMPLES / "brackets.keras", "--to", "pytorch", "-f", "npz", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.exists()


def test_extract_to_onnx_still_writes_a_model(tmp_path):
    out = tmp_path / "layer.onnx"
    result = _run("extract", SAMPLES / "brackets.keras", "--to", "onnx", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
