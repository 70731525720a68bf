"""``lstm-trace MODEL INPUT -o OUT`` streams: formats, --batch-size, memory-mapped .npy
inputs, bad input found mid-stream, progress and --quiet, through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pyarrow.parquet as pq
import pytest
from workflow_common import assert_user_error, invoke

import lstm_trace
from lstm_trace.writers import write_trace

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "sample_models" / "brackets.keras"


@pytest.fixture(scope="module")
def network():
    return lstm_trace.load(MODEL)


@pytest.fixture()
def long_input(tmp_path):
    """12 one-hot sequences of 700 steps: several step chunks at --batch-size 5."""
    rng = np.random.default_rng(0)
    x = np.eye(6, dtype=np.float32)[rng.integers(0, 6, (12, 700))]
    path = tmp_path / "long.npy"
    np.save(path, x)
    return path, x


@pytest.mark.parametrize("fmt", ["csv", "json", "npz", "h5", "parquet"])
@pytest.mark.parametrize("batch_size", [None, "5", "12"])
def test_streamed_files_hold_the_one_shot_trace(fmt, batch_size, network, long_input, tmp_path):
    path, x = long_input
    out = tmp_path / f"out.{fmt}"
    args = ["--batch-size", batch_size] if batch_size else []
    result = invoke(MODEL, path, "-o", out, *args)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"wrote {out} ({fmt}: 6 keys, 12 samples × 700 steps × 8 units)")
    trace = network.trace(x)
    if fmt in ("csv", "json"):
        write_trace(trace, fmt, tmp_path / f"ref.{fmt}")
        if batch_size != "5":  # same sample blocks as one replay: identical bytes
            assert out.read_bytes() == (tmp_path / f"ref.{fmt}").read_bytes()
        else:  # narrower blocks: equal to float32 rounding (see test_streaming)
            assert out.stat().st_size == pytest.approx((tmp_path / f"ref.{fmt}").stat().st_size, rel=1e-3)
    elif fmt == "npz":
        with np.load(out) as got:
            for key in trace:
                np.testing.assert_allclose(got[key], trace[key], rtol=1e-6, atol=1e-6)
    elif fmt == "h5":
        with h5py.File(out) as got:
            for key in trace:
                np.testing.assert_allclose(got[key][()], trace[key], rtol=1e-6, atol=1e-6)
    else:
        table = pq.read_table(out)
        assert table.num_rows == 12 * 700 * 8
        np.testing.assert_allclose(table.column("hidden").to_numpy(), trace["lstm/hidden"].ravel(),
                                   rtol=1e-6, atol=1e-6)


def test_lstmvis_project_from_the_command_line(network, long_input, tmp_path):
    path, x = long_input
    vocab = tmp_path / "alphabet.txt"
    vocab.write_text("(\n)\na\nb\nc\nd\n")
    result = invoke(MODEL, path, "--format", "lstmvis", "-o", tmp_path / "vis", "--vocab", vocab)
    assert result.exit_code == 0, result.output
    with h5py.File(tmp_path / "vis" / "states.h5") as states:
        np.testing.assert_array_equal(states["lstm/cell"][()], network.trace(x)["lstm/cell"].reshape(-1, 8))
    with h5py.File(tmp_path / "vis" / "words.h5") as words:
        np.testing.assert_array_equal(words["word_ids"][()], x.argmax(-1).ravel())
    assert (tmp_path / "vis" / "words.dict").read_text().splitlines()[:2] == ["( 0", ") 1"]


def test_truncated_npy_is_refused_before_mapping(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((4, 500, 6), np.float32))
    path.write_bytes(path.read_bytes()[:-100])
    result = invoke(MODEL, path, "-o", tmp_path / "out.csv")
    assert_user_error(result, "cut.npy", "declares shape (4, 500, 6)", "truncated or corrupt")
    assert not (tmp_path / "out.csv").exists()


def test_nan_far_into_a_mapped_input_fails_with_no_output(long_input, tmp_path):
    path, x = long_input
    x = x.copy()
    x[9, 650, 2] = np.nan
    np.save(path, x)
    for fmt in ("csv", "npz", "h5", "parquet"):
        out = tmp_path / f"out.{fmt}"
        result = invoke(MODEL, path, "-o", out, "--batch-size", "4")
        assert_user_error(result, "expected finite numbers, found nan at sample 9, step 650, feature 2")
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.npy"]


def test_wrong_feature_count_of_a_mapped_input_says_the_shape(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((3, 40, 5), np.float32))
    result = invoke(MODEL, path, "-o", tmp_path / "out.h5")
    assert_user_error(result, "x.npy", "(3, 40, 5)")


@pytest.mark.parametrize("fmt", ["h5", "parquet", "lstmvis"])
def test_file_formats_need_an_output(fmt, long_input):
    result = invoke(MODEL, long_input[0], "--format", fmt)
    assert_user_error(result, f"--format {fmt}", "-o")


def test_vocab_is_for_lstmvis(long_input, tmp_path):
    vocab = tmp_path / "v.txt"
    vocab.write_text("a\n")
    result = invoke(MODEL, long_input[0], "-o", tmp_path / "o.csv", "--vocab", vocab)
    assert_user_error(result, "--vocab", "lstmvis")


def test_bad_batch_size(long_input, tmp_path):
    result = invoke(MODEL, long_input[0], "-o", tmp_path / "o.csv", "--batch-size", "0")
    assert_user_error(result, "--batch-size must be 1 or more")


def test_no_progress_bar_when_stderr_is_not_a_terminal(long_input, tmp_path):
    result = invoke(MODEL, long_input[0], "-o", tmp_path / "o.csv")
    assert result.exit_code == 0
    assert result.stderr.strip().splitlines() == [
        f"wrote {tmp_path / 'o.csv'} (csv: 6 keys, 12 samples × 700 steps × 8 units)"]


def test_progress_bar_on_a_terminal_and_quiet(monkeypatch, long_input, tmp_path, capsys):
    import io

    from lstm_trace import stream_output
    from lstm_trace.streaming import trace_chunks

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(stream_output.sys, "stderr", terminal)
    network = lstm_trace.load(MODEL)
    source = trace_chunks(network, np.load(long_input[0]), batch_size=4)
    seen = []
    with stream_output.progress(source):
        for chunk in source:
            seen.append(chunk.cells)
    assert sum(seen) == 12 * 700
    assert "sample-steps" in terminal.getvalue()
    quiet = Terminal()
    monkeypatch.setattr(stream_output.sys, "stderr", quiet)
    source = trace_chunks(network, np.load(long_input[0]), batch_size=4)
    with stream_output.progress(source, quiet=True):
        list(source)
    assert quiet.getvalue() == ""


def test_selections_still_take_the_in_memory_path(long_input, tmp_path):
    result = invoke(MODEL, long_input[0], "-o", tmp_path / "o.csv", "--samples", "3", "--steps", "0:2")
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "o.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * 8 and lines[1].startswith("3,lstm,forward,0,0,")
