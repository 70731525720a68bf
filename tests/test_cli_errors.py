"""The CLI's error boundary: exit codes, one-line messages, closed pipes, Ctrl-C and SIGTERM.

Exit codes (DESIGN.md): 0 success, 1 ``check`` found a difference, 2 bad usage or input,
3 a bug in lstm-trace, 130 interrupted, 141 (128 + SIGPIPE) when stdout's reader went away.
Everything runs on the bundled sample model (no framework fixtures needed).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from workflow_common import assert_user_error, invoke

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "sample_models" / "brackets.keras"
ONE = ROOT / "sample_models" / "brackets_input.npy"  # (20, 6): one sequence of 20 steps
BATCH = ROOT / "sample_models" / "brackets_batch.npy"  # (8, 30, 6)


def assert_bug(result, *fragments: str) -> None:
    """Exit 3, one line saying it is a bug, with the exception and the --debug hint."""
    assert result.exit_code == 3, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "bug in lstm-trace" in lines[0] and "--debug" in lines[0], lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def break_the_writer(monkeypatch, error: BaseException) -> None:
    """Make every trace output start writing (atomically, like the real writers) and then
    fail with ``error``, wherever the writers' own internals are."""
    import lstm_trace.stream_output as stream_output
    import lstm_trace.writers as writers
    from lstm_trace.atomic import atomic_write

    def broken(trace, fmt, output=None, **options):
        with atomic_write(output, "w") as handle:
            handle.write("sample,layer\n")
            raise error

    def broken_stream(network, input, fmt, output, **options):
        broken(None, fmt, output)

    monkeypatch.setattr(writers, "write_trace", broken)
    monkeypatch.setattr(stream_output, "write_stream", broken_stream)


# ------------------------------------------------------------------ selections: one rule


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "npz"])
@pytest.mark.parametrize(
    ("option", "spec", "fragment"),
    [
        ("--steps", "40:50", "--steps 40:50: step 40 is out of range: there are 30 steps (0 to 29)"),
        ("--steps", "25:31", "step 30 is out of range: there are 30 steps (0 to 29)"),
        ("--units", "9", "--units 9: unit 9 is out of range: there are 8 units (0 to 7)"),
        ("--units", "0:100", "--units 0:100: unit 99 is out of range: there are 8 units (0 to 7)"),
        ("--samples", "8", "there are 8 samples (0 to 7)"),
        ("--samples", "-9", "sample -9 is out of range"),
    ],
)
def test_a_selection_outside_the_trace_is_one_line_and_nothing_is_written(
    fmt, option, spec, fragment, tmp_path
):
    out = tmp_path / f"out.{fmt}"
    result = invoke(MODEL, BATCH, option, spec, "-f", fmt, "-o", out)
    assert_user_error(result, fragment)
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_nothing_reaches_stdout_before_a_selection_error(fmt):
    result = invoke(MODEL, BATCH, "--units", "9", "-f", fmt)
    assert_user_error(result, "unit 9")
    assert result.stdout == ""


def test_steps_past_the_end_as_a_table_is_an_error_not_a_traceback():
    """Issue 8, broken 1: this printed TypeError: object of type 'int' has no len()."""
    assert_user_error(invoke(MODEL, BATCH, "--steps", "40:50", "-f", "table"), "(0 to 29)")


def test_an_open_ended_selection_inside_the_trace_is_fine():
    result = invoke(MODEL, BATCH, "--steps", "25:", "--units", "6:", "--samples", "-1", "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = result.stdout.splitlines()[1:]
    assert len(rows) == 5 * 2
    assert {r.split(",")[0] for r in rows} == {"7"}


def test_a_malformed_range_names_its_option():
    assert_user_error(invoke(MODEL, BATCH, "--units", "0:4,7"), "--units", "not both")


def test_the_default_table_window_is_clipped_not_an_error():
    result = invoke(MODEL, ONE, "-f", "table")  # 20 steps: the default window 0:20 fits
    assert result.exit_code == 0, result.output
    short = invoke(MODEL, ONE, "-f", "table", "--steps", "0:3")
    assert short.exit_code == 0 and "Showing steps 0–2 of 20" in short.output


# ------------------------------------------------------------------ bugs are exit 3


@pytest.mark.parametrize(
    "error",
    [ValueError("boom"), KeyError("boom"), TypeError("boom"), OSError("boom"),
     OSError(errno.EINVAL, "boom"), RuntimeError("boom\nsecond line")],
    ids=["ValueError", "KeyError", "TypeError", "OSError", "OSError-EINVAL", "RuntimeError"],
)
def test_an_unexpected_exception_is_reported_as_a_bug(monkeypatch, error):
    break_the_writer(monkeypatch, error)
    result = invoke(MODEL, ONE, "-f", "csv")
    assert_bug(result, type(error).__name__, "boom")
    assert "second line" not in result.output


def test_a_loader_bug_is_a_bug_not_a_corrupt_file(monkeypatch):
    import lstm_trace.cli as cli

    def broken(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'shape'")

    monkeypatch.setattr(cli, "load", broken)
    assert_bug(invoke(MODEL, ONE), "AttributeError", "'shape'")


def test_debug_shows_the_traceback_of_a_bug(monkeypatch):
    break_the_writer(monkeypatch, TypeError("boom"))
    result = invoke(MODEL, ONE, "-f", "csv", "--debug")
    assert isinstance(result.exception, TypeError)


def test_disk_full_is_a_user_error_and_leaves_nothing(monkeypatch, tmp_path):
    break_the_writer(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    out = tmp_path / "t.csv"
    assert_user_error(invoke(MODEL, ONE, "-o", out), str(out), "No space left on device")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_model_file_is_a_user_error_naming_the_path(tmp_path):
    missing = tmp_path / "nope.keras"
    assert_user_error(invoke(missing, ONE), "nope.keras")


def test_output_onto_a_directory_is_a_user_error(tmp_path):
    assert_user_error(invoke(MODEL, ONE, "-o", tmp_path, "-f", "csv"), str(tmp_path), "directory")


# ------------------------------------------------------------------ option errors


def test_an_unknown_activation_names_the_option_and_every_valid_value():
    from lstm_trace.activations import ACTIVATIONS

    result = invoke(MODEL, ONE, "--activation", "nope")
    assert_user_error(result, "--activation 'nope'", ", ".join(sorted(ACTIVATIONS)))
    assert "model file" not in result.output
    result = invoke(MODEL, ONE, "--recurrent-activation", "hard")
    assert_user_error(result, "--recurrent-activation 'hard'", "hard_sigmoid_keras2")


# ------------------------------------------------------------------ closed pipes


def _run_into_closed_pipe(*args: object) -> subprocess.CompletedProcess:
    """Run the CLI with a stdout pipe whose reader is already gone (like `| head -0`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "lstm_trace", *map(str, args)],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    return proc


@pytest.mark.parametrize(
    "args",
    [
        [MODEL, BATCH, "-f", "csv"],
        [MODEL, BATCH, "-f", "json"],
        [MODEL, BATCH, "-f", "table"],
        [MODEL, BATCH, "--summary", "-f", "csv"],
        ["extract", MODEL, "-o", "-", "-f", "csv"],
        ["inspect", MODEL],
    ],
    ids=["csv", "json", "table", "summary", "extract", "inspect"],
)
def test_a_closed_output_pipe_ends_quietly_with_141(args):
    proc = _run_into_closed_pipe(*args)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""


def test_head_of_a_csv_pipe_gets_its_line_and_nothing_on_stderr():
    """``lstm-trace M B -f csv | head -1``: the reader closes after one line."""
    proc = subprocess.Popen([sys.executable, "-m", "lstm_trace", str(MODEL), str(BATCH), "-f", "csv"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    proc.wait(timeout=120)
    assert first.startswith(b"sample,layer,direction,step,unit,")
    assert stderr == b""
    assert proc.returncode in (0, 141)  # 0 if it finished writing before the reader closed


@pytest.mark.parametrize(
    "error", [BrokenPipeError(errno.EPIPE, "Broken pipe"), OSError("Broken pipe (os error 32)")],
    ids=["BrokenPipeError", "polars-OSError"],
)
def test_broken_pipe_through_clirunner_is_141_and_silent(monkeypatch, error):
    break_the_writer(monkeypatch, error)
    result = invoke(MODEL, ONE, "-f", "csv")
    assert result.exit_code == 141
    assert result.stderr == ""


# ------------------------------------------------------------------ Ctrl-C and SIGTERM


def test_ctrl_c_exits_130_not_1(monkeypatch, tmp_path):
    break_the_writer(monkeypatch, KeyboardInterrupt())
    out = tmp_path / "t.csv"
    result = invoke(MODEL, ONE, "-o", out)
    assert result.exit_code == 130
    assert "Aborted" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_sigterm_handler_is_restored_after_a_command():
    before = signal.getsignal(signal.SIGTERM)
    assert invoke(MODEL, ONE, "-f", "csv").exit_code == 0
    assert signal.getsignal(signal.SIGTERM) == before


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    """1200 one-hot sequences of 250 steps: a CSV of ~210 MB that takes seconds to write."""
    path = tmp_path_factory.mktemp("big") / "big.npy"
    ids = np.random.default_rng(0).integers(0, 6, (1200, 250))
    np.save(path, np.eye(6, dtype=np.float32)[ids])
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_write_exits_130_and_leaves_no_file(big_input, tmp_path, sig):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "trace.csv"
    # One sample a chunk: hundreds of chunks, so the write lasts long after its first bytes
    # even on a fast, idle machine (the signal must arrive mid-write, not after the rename).
    proc = subprocess.Popen([sys.executable, "-m", "lstm_trace", str(MODEL), str(big_input),
                             "-o", str(out), "--batch-size", "1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    seen_tmp = False
    while time.monotonic() < deadline and proc.poll() is None:
        if any(p.name.endswith(".tmp") and p.stat().st_size > 0 for p in out_dir.iterdir()):
            seen_tmp = True
            break
        time.sleep(0.005)
    assert seen_tmp, "the CSV was never seen mid-write"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().startswith("interrupted")
    assert list(out_dir.iterdir()) == [], "a partial or temporary file was left behind"


# ------------------------------------------------------------------ summary, npz to stdout


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_summary_comes_out_in_every_text_format(fmt, tmp_path):
    result = invoke(MODEL, BATCH, "--summary", "-f", fmt)
    assert result.exit_code == 0, result.output
    out = tmp_path / f"s.{'txt' if fmt == 'table' else fmt}"
    written = invoke(MODEL, BATCH, "--summary", "-o", out)
    assert written.exit_code == 0, written.output
    assert out.read_text() == result.stdout
    assert f"wrote {out}" in written.stderr
    if fmt == "csv":
        lines = result.stdout.splitlines()
        assert lines[0].startswith("key,layer,direction,quantity,units,values,min,mean,max,std")
        assert len(lines) == 1 + 6  # one row per key, not the whole trace
    elif fmt == "json":
        import json

        document = json.loads(result.stdout)
        assert document["format"] == "lstm-trace-summary"
        assert [k["key"] for k in document["keys"]][:2] == ["lstm/input_gate", "lstm/forget_gate"]
    else:
        assert "summary over 8 sample(s), 30 step(s)" in result.stdout


def test_summary_values_are_the_statistics_of_the_trace():
    import csv
    import io

    import lstm_trace

    trace = lstm_trace.load(MODEL).trace(np.load(BATCH))
    result = invoke(MODEL, BATCH, "--summary", "-f", "csv", "--steps", "5:", "--units", "7")
    rows = {r["key"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    forget = trace["lstm/forget_gate"][:, 5:, 7].astype(np.float64)
    row = rows["lstm/forget_gate"]
    assert float(row["mean"]) == pytest.approx(forget.mean(), abs=1e-12)
    assert float(row["max"]) == pytest.approx(forget.max(), abs=1e-12)
    assert float(row["above_0.9"]) == pytest.approx((forget > 0.9).mean(), abs=1e-12)
    assert rows["lstm/cell"]["below_0.1"] == ""


def test_summary_is_not_an_npz(tmp_path):
    assert_user_error(invoke(MODEL, ONE, "--summary", "-o", tmp_path / "s.npz"), "--summary", "npz")


def test_npz_goes_to_stdout_when_it_is_not_a_terminal():
    import io
    import zipfile

    result = invoke(MODEL, ONE, "-f", "npz", "-o", "-")
    assert result.exit_code == 0, result.output
    with zipfile.ZipFile(io.BytesIO(result.stdout_bytes)) as archive:
        assert "lstm/hidden.npy" in archive.namelist()


def test_npz_is_refused_only_on_a_terminal(monkeypatch):
    import lstm_trace.cli as cli

    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: True)
    assert_user_error(invoke(MODEL, ONE, "-f", "npz"), "terminal", "-o FILE.npz")


def test_a_table_file_says_what_excerpt_it_holds(tmp_path):
    out = tmp_path / "trace.txt"
    result = invoke(MODEL, BATCH, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"wrote {out} (table of sample 0 of 8, steps 0–19 of 30, all 8 units; -f csv" in result.stderr
    assert "lstm/forget_gate · sample 0" in out.read_text()
    everything = invoke(MODEL, BATCH, "-o", out, "--samples", "0:8", "--steps", "0:30")
    assert "(table of all 8 samples, all 30 steps, all 8 units)" in everything.stderr


# ------------------------------------------------------------------ usage errors, paths


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ([MODEL, ONE, "--dtype", "float16"], ["--dtype", "'float32', 'float64'", "trace --help"]),
        ([MODEL], ["Missing argument 'INPUT'"]),
        ([MODEL, ONE, "--nope"], ["No such option '--nope'"]),
        (["check", MODEL, ONE], ["Missing option '--golden'", "check --help"]),
        (["inspect", MODEL, "-f", "xml"], ["--format", "'table', 'json', 'csv'"]),
    ],
)
def test_usage_errors_are_one_line_too(args, fragments):
    result = invoke(*args)
    assert_user_error(result, *fragments)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Usage:" not in result.output


def test_no_arguments_show_the_help():
    result = invoke()
    assert "Commands:" in result.output and "error:" not in result.output
    assert result.exit_code in (0, 2)  # click's own choice for a bare group


def test_help_and_version_still_exit_0():
    assert invoke("--help").exit_code == 0
    assert invoke("inspect", "--help").exit_code == 0
    version = invoke("--version")
    assert version.exit_code == 0 and "lstm-trace" in version.output


def test_a_layer_input_for_an_unknown_layer_is_an_error_not_stopiteration():
    """Issue 8, broken 1: ``--layer conv_lstm1d --layer-input`` ended in StopIteration."""
    result = invoke(MODEL, ONE, "--layer", "conv_lstm1d", "--layer-input")
    assert_user_error(result, "conv_lstm1d")


def test_model_errors_name_the_path_as_typed(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.keras").write_bytes(b"PK\x03\x04 not a zip")
    monkeypatch.chdir(tmp_path)
    assert_user_error(invoke("./sub/bad.keras", ONE), "./sub/bad.keras: ")
    assert_user_error(invoke("inspect", "sub/bad.keras"), "sub/bad.keras: ")
