"""Files lstm-trace does not read say what they are: arguments swapped, a TFLite model.

Found using real files: passing INPUT where MODEL goes gave "no known signature", and the
``ao-compensation-model`` package's ``gru_model_edge.tflite`` the same.
"""

from __future__ import annotations

import numpy as np
from click.testing import CliRunner

from lstm_trace.cli import main


def _error(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_swapped_npy_input_and_model(tmp_path):
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 3, 4), np.float32))
    assert "a NumPy .npy array: MODEL comes first, then INPUT" in _error(x, tmp_path / "model.h5")


def test_swapped_npz_input_and_model(tmp_path):
    x = tmp_path / "feeds.npz"
    np.savez(x, X=np.zeros((2, 3, 4), np.float32))
    assert "a NumPy .npz archive of X.npy: MODEL comes first, then INPUT" in _error("inspect", x)


def test_tflite_is_named(tmp_path):
    # The first bytes of a TFLite flatbuffer: a root offset, then the identifier "TFL3".
    path = tmp_path / "model.tflite"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    assert "a TensorFlow Lite flatbuffer, which lstm-trace does not read" in _error("inspect", path)
