"""Reversed directions over step chunks (lstm_trace.step_chunks) from the command line: every
file format holds the one-shot trace, the spill files are gone after success, error and
SIGTERM, and peak memory does not grow with the sequence length.

The model is a bidirectional two-layer PyTorch LSTM written as safetensors with random
weights (no framework needed: the one-shot replay of such files is checked against torch in
test_pytorch_*); equality with the one-shot trace is the check here.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from streaming_cases import NETWORKS
from workflow_common import assert_user_error, invoke

import lstm_trace
from lstm_trace import stream_output, streaming
from lstm_trace.engine import plan_replay
from lstm_trace.writers import write_trace

ROOT = Path(__file__).resolve().parents[1]
UNITS, FEATURES = 5, 3


def bidirectional_lstm(path: Path, *, layers: int = 2, units: int = UNITS) -> Path:
    """A ``nn.LSTM(FEATURES, units, num_layers=layers, bidirectional=True)`` state_dict."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(1)
    tensors = {}
    for k in range(layers):
        inputs = FEATURES if k == 0 else 2 * units
        for suffix in (f"_l{k}", f"_l{k}_reverse"):
            tensors[f"rnn.weight_ih{suffix}"] = rng.normal(0, 0.5, (4 * units, inputs)).astype(np.float32)
            tensors[f"rnn.weight_hh{suffix}"] = rng.normal(0, 0.5, (4 * units, units)).astype(np.float32)
            tensors[f"rnn.bias_ih{suffix}"] = rng.normal(0, 0.3, 4 * units).astype(np.float32)
            tensors[f"rnn.bias_hh{suffix}"] = rng.normal(0, 0.3, 4 * units).astype(np.float32)
    save_file(tensors, str(path))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return bidirectional_lstm(tmp_path_factory.mktemp("model") / "bi.safetensors")


@pytest.fixture()
def long_input(tmp_path):
    x = np.random.default_rng(2).normal(0, 1, (3, 700, FEATURES)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    return path, x


@pytest.fixture()
def small_budget(monkeypatch):
    """The CLI's chunks cut at 64 steps (the budget is what a long input would exceed)."""
    monkeypatch.setattr(stream_output, "trace_chunks",
                        functools.partial(streaming.trace_chunks, budget=4096))


def spills_open(directory: Path) -> list[str]:
    """Open files of this process that live (or lived, unlinked) in ``directory``."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


@pytest.mark.parametrize("fmt", ["csv", "json", "npz", "h5", "parquet", "lstmvis"])
def test_every_format_of_a_bidirectional_stack_holds_the_one_shot_trace(
        fmt, model, long_input, tmp_path, small_budget):
    path, x = long_input
    out = tmp_path / ("vis" if fmt == "lstmvis" else f"out.{fmt}")
    result = invoke(model, path, "--format", fmt, "-o", out, "--batch-size", "2")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1].endswith(
        f"({fmt}: 24 keys, 3 samples × 700 steps × {UNITS} units)")
    network = lstm_trace.load(model)
    expected = network.trace(x)
    source = streaming.trace_chunks(network, x, batch_size=2, budget=4096)
    assert source.step_chunked and source.chunk_steps == 64
    if fmt in ("csv", "json"):
        # The same numbers written in memory give the same bytes; those numbers are the
        # one-shot trace's to float32 rounding.
        same = source.to_trace()
        for key in expected:
            np.testing.assert_allclose(same[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
        write_trace(same, fmt, tmp_path / f"ref.{fmt}")
        assert out.read_bytes() == (tmp_path / f"ref.{fmt}").read_bytes()
        if fmt == "json":
            json.loads(out.read_text())
    elif fmt == "npz":
        with np.load(out) as got:
            assert list(got.files) == list(expected)
            for key in expected:
                np.testing.assert_allclose(got[key], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
    elif fmt == "h5":
        with h5py.File(out) as got:
            for key in expected:
                np.testing.assert_allclose(got[key][()], expected[key], rtol=1e-6, atol=1e-6, err_msg=key)
    elif fmt == "parquet":
        table = pq.read_table(out)
        assert table.num_rows == 3 * 4 * 700 * UNITS  # samples × (layers × directions) × steps × units
        rows = table.filter(pq.ParquetFile(out).read().column("direction").to_numpy() == "backward")
        hidden = rows.column("hidden").to_numpy().reshape(3, 2, 700, UNITS)
        np.testing.assert_allclose(hidden[:, 1], expected["rnn/l1/backward/hidden"], rtol=1e-6, atol=1e-6)
    else:
        with h5py.File(out / "states.h5") as states:
            np.testing.assert_allclose(states["rnn/l1/backward/cell"][()],
                                       expected["rnn/l1/backward/cell"].reshape(-1, UNITS),
                                       rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["bidirectional_stacked_masked", "go_backwards_stack_masked"])
def test_spills_are_closed_after_success_an_error_and_an_abandoned_iteration(name, tmp_path, monkeypatch):
    """Spill files are unnamed files in TMPDIR: nothing is ever listed there, and every one
    is closed (so its disk space freed) when the source is done, fails or is closed."""
    import tempfile

    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))
    network, x = NETWORKS[name]
    x = np.concatenate([x] * 4, axis=1)

    source = streaming.trace_chunks(network, x, batch_size=2, chunk_steps=16)
    chunks = iter(source)
    next(chunks)
    assert spills_open(spill_dir), "the backward pass spilled nothing"
    assert list(spill_dir.iterdir()) == []
    for _ in chunks:
        pass
    assert spills_open(spill_dir) == []

    source = streaming.trace_chunks(network, x, batch_size=2, chunk_steps=16)
    chunks = iter(source)
    next(chunks)
    source.close()  # a writer that failed (the CLI closes the source on its way out)
    assert spills_open(spill_dir) == []

    def fail_late(part, s0, t0):
        if t0 >= 64:
            raise ValueError("bad value far in")
        return part

    source = streaming.trace_chunks(network, x, batch_size=2, chunk_steps=16, validate_chunk=fail_late)
    with pytest.raises(ValueError, match="bad value far in"):
        source.to_trace()
    assert spills_open(spill_dir) == []
    assert list(spill_dir.iterdir()) == []


@pytest.mark.parametrize(("name", "passes"), [("bidirectional", 2), ("go_backwards_stack_masked", 4),
                                              ("bidirectional_stacked_masked", 6), ("lstm", 1)])
def test_progress_counts_every_pass_over_the_steps(name, passes):
    """The backward passes (and the forward passes spilling a reversed layer's input) report
    their chunks too: a progress bar moves while they run, and ends at cells x passes."""
    network, x = NETWORKS[name]
    source = streaming.trace_chunks(network, x, batch_size=2, chunk_steps=8)
    assert source.passes == passes
    done = []
    source.on_work = done.append
    source.on_chunk = lambda chunk: done.append(chunk.cells)
    list(source)
    assert sum(done) == source.cells * passes
    one_chunk = streaming.trace_chunks(network, x, batch_size=2)
    assert one_chunk.passes == 1


def test_nan_late_in_a_bidirectional_input_fails_with_no_output(model, long_input, tmp_path, small_budget):
    """The backward pass meets the last bad value first; the error still names the first,
    as for a forward-only model."""
    path, x = long_input
    x = x.copy()
    x[1, 600, 2] = np.nan  # step chunk [576, 640)
    x[0, 690, 0] = np.inf  # step chunk [640, 704): the backward pass reads it first
    np.save(path, x)
    for fmt in ("csv", "h5"):
        out = tmp_path / f"out.{fmt}"
        result = invoke(model, path, "-o", out, "--batch-size", "2")
        assert_user_error(result, "expected finite numbers, found nan at sample 1, step 600, feature 2")
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


SLOW_CLI = ("import functools, sys\n"
            "from lstm_trace import stream_output, streaming\n"
            "stream_output.trace_chunks = functools.partial(streaming.trace_chunks, budget=4096)\n"
            "from lstm_trace.cli import main\n"
            "sys.argv[0] = 'lstm-trace'\n"
            "main()\n")


def open_files_in(pid: int, directory: Path) -> list[str]:
    found = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_sigterm_during_the_backward_pass_exits_130_and_leaves_nothing(model, tmp_path):
    """A real process: SIGTERM while it holds a spill; exit 130, no output, no spill."""
    x = np.random.default_rng(3).normal(0, 1, (1, 40_000, FEATURES)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    env = {**os.environ, "TMPDIR": str(spill_dir), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_CLI, str(model), str(tmp_path / "x.npy"),
                             "-o", str(out_dir / "trace.h5")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    spilled = []
    while time.monotonic() < deadline and proc.poll() is None and not spilled:
        # Unnamed (O_TMPFILE) or unlinked files: a spill. (Python's first look at TMPDIR
        # also opens a named probe file there for a moment.)
        spilled = [n for n in open_files_in(proc.pid, spill_dir) if n.endswith("(deleted)")]
        time.sleep(0.005)
    assert spilled, "no spill file was seen while the trace ran"
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert stderr.strip().startswith("interrupted"), stderr
    assert "Traceback" not in stderr
    assert list(spill_dir.iterdir()) == []
    assert list(out_dir.iterdir()) == [], "a partial or temporary file was left behind"


#: Runs its arguments as a command and prints the command's peak RSS (KB). A child's peak
#: includes what it held before exec (with vfork, its parent's resident pages), so the
#: command is started from this small interpreter, not from the test process (hundreds of MB).
PEAK_RSS = ("import os, subprocess, sys\n"
            "proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
            "_, status, usage = os.wait4(proc.pid, 0)\n"
            "print(usage.ru_maxrss if status == 0 else -1)\n")


def peak_rss_mb(args: list[str], env: dict[str, str]) -> float:
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS, *args], env=env, capture_output=True,
                          text=True, check=False)
    kb = int(proc.stdout.strip() or -1)
    assert kb > 0, proc.stderr
    return kb / 1024


def test_peak_memory_of_a_bidirectional_trace_does_not_grow_with_the_steps(tmp_path):
    """One sample, 80,000 then 320,000 steps of a bidirectional LSTM(8) into HDF5 (both
    longer than one 24 MB chunk): the longer trace is 92 MB more of arrays, but the peak
    grows by less than 25 MB (measured 75 -> 84 MB; when the whole sequence ran at once,
    78 -> 177 MB)."""
    model = bidirectional_lstm(tmp_path / "bi8.safetensors", layers=1, units=8)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    peaks = []
    for steps in (80_000, 320_000):
        x = np.random.default_rng(4).normal(0, 1, (1, steps, FEATURES)).astype(np.float32)
        np.save(tmp_path / "x.npy", x)
        peaks.append(peak_rss_mb([sys.executable, "-m", "lstm_trace", str(model), str(tmp_path / "x.npy"),
                                  "-o", str(tmp_path / "t.h5"), "--quiet"], env))
        (tmp_path / "t.h5").unlink()
    assert peaks[1] - peaks[0] < 25, f"peak RSS {peaks[0]:.0f} MB -> {peaks[1]:.0f} MB"


# ------------------------------------------------------------------ models saved by the frameworks

#: Keras 3 models (tests/builders/keras_layers.py) and TF1 graphs (tests/builders/tf1_cells.py)
#: with reversed directions: Bidirectional in every merge mode, go_backwards, masks, initial
#: states, custom backward layers, RNN cells, TF1 fw/bw cells and fw/bw MultiRNNCell stacks.
KERAS_REVERSED = ["bidi_ave", "bidi_concat", "bidi_custom_backward", "bidi_last", "bidi_mul", "bidi_none",
                  "bidi_sum", "embedding_functional", "embedding_text", "go_backwards", "initial_state",
                  "initial_state_masked", "mask_bidi", "mask_bidi_mul_ave", "mask_go_backwards",
                  "rnn_cells", "rnn_stacked_backwards"]
TF1_REVERSED = ["bidirectional", "bidirectional_stacks"]


def framework_case(case: str) -> tuple[lstm_trace.Network, np.ndarray]:
    from conftest import build_fixtures

    if case.startswith("tf1:"):
        from test_tf1_checkpoint import CASE

        name = case[4:]
        tf1 = build_fixtures("tf1_cells", legacy_keras=True)
        return (lstm_trace.load(tf1 / name / "model", **CASE[name]["options"]),
                np.load(tf1 / f"{name}_input.npy"))
    keras = build_fixtures("keras_layers")
    return lstm_trace.load(keras / f"{case}.keras"), np.load(keras / f"{case}_input.npy")


@pytest.mark.parametrize("case", KERAS_REVERSED + [f"tf1:{n}" for n in TF1_REVERSED])
def test_framework_models_with_reversed_directions_stream_in_steps(case):
    """Every chunking of the steps records the one-shot trace (itself checked against the
    framework in test_keras_layers / test_tf1_checkpoint): float32 to 1e-6, float64 to 1e-12."""
    network, x = framework_case(case)
    assert streaming.step_streaming_blocker(plan_replay(network)) is None
    steps = x.shape[-2] if x.dtype.kind == "f" else x.shape[-1]
    for dtype, tol in (("float32", 1e-6), ("float64", 1e-12)):
        expected = network.trace(x, dtype=dtype)
        for batch_size, chunk_steps in [(1, 1), (2, 2), (len(x), 3), (1, max(1, steps - 1))]:
            source = streaming.trace_chunks(network, x, batch_size=batch_size, chunk_steps=chunk_steps,
                                            dtype=dtype)
            assert source.step_chunked
            got = source.to_trace()
            assert list(got) == list(expected)
            for key in expected:
                np.testing.assert_allclose(got[key], expected[key], rtol=tol, atol=tol,
                                           err_msg=f"{key} at {batch_size} x {chunk_steps}")

