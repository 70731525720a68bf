"""The ONNX project's own LSTM/GRU/RNN node tests, traced: Y, Y_h, Y_c as ONNX expects them.

The installed ``onnx`` package generates its backend node tests (``test_lstm_defaults``,
``test_gru_batchwise``, ``test_simple_rnn_bidirectional``...) with its own NumPy reference;
tests/builders/onnx_backend_vectors.py writes them to files. lstm-trace traces each model
and the node's outputs are rebuilt from the trace alone: ``Y`` is ``hidden`` at every input
position (zero where ``mask`` is 0), ``Y_h`` / ``Y_c`` the last processed step's ``hidden`` /
``cell`` (input position ``steps - 1`` forward, ``0`` for a reverse direction, the states
carrying over masked steps), in the node's ``layout``. ONNX's weights there are all-equal
(every unit the same), so these complement the random-weight tests in test_onnx_nodes.py.

ONNX's test models feed W, R, B, P as graph inputs at run time; lstm-trace reads weights
only from the file, so the traced model is ``stored.onnx`` (the same weights as
initializers) and ``model.onnx`` itself must be refused with one line naming them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from error_record import record_error

import lstm_trace

ATOL = 1e-5
# Every LSTM/GRU/RNN node test of onnx==1.23 (the `test` extra's pin). A case added or
# removed by another onnx version fails test_every_case_is_listed instead of being skipped.
CASES = [
    "test_lstm_defaults", "test_lstm_with_initial_bias", "test_lstm_with_peepholes",
    "test_lstm_batchwise", "test_lstm_reverse", "test_lstm_bidirectional",
    "test_gru_defaults", "test_gru_with_initial_bias", "test_gru_seq_length",
    "test_gru_batchwise", "test_gru_reverse", "test_gru_bidirectional",
    "test_simple_rnn_defaults", "test_simple_rnn_with_initial_bias", "test_rnn_seq_length",
    "test_simple_rnn_batchwise", "test_simple_rnn_reverse", "test_simple_rnn_bidirectional",
]


@pytest.fixture(scope="session")
def vectors():
    from conftest import build_fixtures

    out = build_fixtures("onnx_backend_vectors")
    manifest = json.loads((out / "manifest.json").read_text())
    return out, {c["name"]: c for c in manifest["cases"]}


def test_every_case_is_listed(vectors):
    assert sorted(vectors[1]) == sorted(CASES)


def rebuilt_outputs(trace, case: dict, steps: int) -> dict[str, np.ndarray]:
    """Y ``[steps, D, batch, H]``, Y_h and Y_c ``[D, batch, H]`` (layout 0) from the trace."""
    layer = f"{case['op']}_0"
    if case["direction"] == "bidirectional":
        parts = [(f"{layer}/forward/", False), (f"{layer}/backward/", True)]
    else:
        parts = [(f"{layer}/", case["direction"] == "reverse")]
    ys, hs, cs = [], [], []
    for prefix, reverse in parts:
        hidden = trace[f"{prefix}hidden"]  # (batch, steps, H) by input position
        mask = trace.get(f"{prefix}mask")
        valid = np.ones(hidden.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        last = 0 if reverse else steps - 1
        ys.append(np.where(valid[..., None], hidden, 0).transpose(1, 0, 2))
        hs.append(hidden[:, last])
        if f"{prefix}cell" in trace:
            cs.append(trace[f"{prefix}cell"][:, last])
    out = {"Y": np.stack(ys, axis=1), "Y_h": np.stack(hs)}
    if cs:
        out["Y_c"] = np.stack(cs)
    if case["layout"] == 1:
        out = {"Y": out["Y"].transpose(2, 0, 1, 3),
               **{k: v.transpose(1, 0, 2) for k, v in out.items() if k != "Y"}}
    return out


@pytest.mark.parametrize("name", CASES)
def test_outputs_match_onnx_reference(vectors, name):
    root, cases = vectors
    case, d = cases[name], root / name
    feeds = dict(np.load(d / "feeds.npz"))
    expected = dict(np.load(d / "expected.npz"))
    steps = feeds["X"].shape[1 if case["layout"] == 1 else 0]
    trace = lstm_trace.load(d / "stored.onnx").trace(feeds)
    rebuilt = rebuilt_outputs(trace, case, steps)
    assert expected, name
    for output, want in expected.items():
        got = rebuilt[output]
        assert got.shape == want.shape, (output, got.shape, want.shape)
        err = float(np.max(np.abs(got - want)))
        record_error("ONNX backend test vectors", f"{name} {output}", err)
        assert err < ATOL, (output, err)


@pytest.mark.parametrize("name", ["test_lstm_defaults", "test_gru_batchwise"])
def test_weights_fed_at_run_time_are_refused_in_one_line(vectors, name):
    d = vectors[0] / name
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_trace", str(d / "model.onnx"), str(d / "feeds.npz")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "graph inputs" in lines[0] and "W, R" in lines[0], lines[0]
