"""ONNX traces through the streamed writers: every format, and layers of different lengths.

Found on real models: g2p-id-py 0.4.2's tf2onnx decoder and ddddocr 1.6.1's CRNN wrote
every format, but the command line took an ONNX graph input's batch axis for a ConvLSTM
grid (``input_grid_rank``), so ONNX traces bypassed the streamed writers; sent through
them, ``--format lstmvis`` stopped with exit 3 on the graph inputs fed by name. The
fixtures are onnx_files' (tests/builders/onnx_files.py): an LSTM node against onnxruntime,
and a seq2seq whose decoder (4 steps) starts from the encoder's (6 steps) final states.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from lstm_trace.cli import main


@pytest.fixture(scope="module")
def onnx_files():
    from conftest import build_fixtures

    return build_fixtures("onnx_files")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("output", ["t.csv", "t.json", "t.npz", "t.h5", "t.parquet", "lv"])
def test_onnx_trace_in_every_output_format(onnx_files, tmp_path, output):
    args = ["--format", "lstmvis"] if output == "lv" else []
    result = run(onnx_files / "lstm.onnx", onnx_files / "feeds.npz", "-o", tmp_path / output, *args)
    assert result.exit_code == 0, result.output
    assert "wrote " in result.stderr
    if output == "lv":
        with h5py.File(tmp_path / "lv" / "states.h5") as f:
            assert len(f.keys())
        assert (tmp_path / "lv" / "words.dict").read_text().startswith("t0 0")


def test_onnx_layers_of_different_lengths_in_the_npz(onnx_files, tmp_path):
    result = run(onnx_files / "seq2seq.onnx", onnx_files / "seq2seq_feeds.npz", "-o", tmp_path / "t.npz")
    assert result.exit_code == 0, result.output
    assert "2 samples × 4–6 steps" in result.stderr
    trace = np.load(tmp_path / "t.npz")
    assert trace["encoder/hidden"].shape[1] == 6 and trace["decoder/hidden"].shape[1] == 4
    y = np.load(onnx_files / "seq2seq_reference.npy")
    np.testing.assert_allclose(trace["decoder/hidden"], y[:, 0].transpose(1, 0, 2), atol=1e-5)
