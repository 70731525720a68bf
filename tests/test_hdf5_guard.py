"""Damaged HDF5 files that make the HDF5 library loop or crash: one line, exit 2, no hang.

The library loops inside C on some damaged files, where no Python signal handler runs (found
by fuzzing: 44 zeroed bytes in a name heap of the sample ``.h5`` kept ``attrs.get`` busy for
20 minutes). The CLI reads every HDF5 file once in a forked child first
(:mod:`lstm_trace.loaders.hdf5_guard`) and refuses the file when the child does not finish or
crashes.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lstm_trace.cli import main
from lstm_trace.loaders import LoadError, hdf5_guard

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_H5 = ROOT / "sample_models" / "brackets.h5"


def looping_h5(tmp_path: Path) -> Path:
    """The fuzzer's file: 44 bytes zeroed from inside an optimizer weight's name onwards."""
    data = bytearray(SAMPLE_H5.read_bytes())
    start = data.find(b"adam/brackets_lstm_lstm_cell_kernel_velocity") + 31
    assert start > 31
    data[start:start + 44] = bytes(44)
    path = tmp_path / "looping.h5"
    path.write_bytes(bytes(data))
    return path


def test_a_file_the_hdf5_library_loops_on_is_one_line_exit_2(tmp_path, monkeypatch):
    monkeypatch.setattr(hdf5_guard, "BASE_SECONDS", 3.0)
    model = looping_h5(tmp_path)
    start = time.monotonic()
    for args in (["inspect", str(model)], [str(model), str(ROOT / "sample_models" / "brackets_input.npy")]):
        result = CliRunner().invoke(main, args)
        lines = result.output.strip().splitlines()
        assert result.exit_code == 2, result.output
        assert len(lines) == 1 and lines[0].startswith(f"error: {model}: "), lines
    assert time.monotonic() - start < 30


def test_a_child_that_never_ends_is_killed_at_the_deadline(monkeypatch):
    monkeypatch.setattr(hdf5_guard, "BASE_SECONDS", 0.5)
    monkeypatch.setattr(hdf5_guard, "_read_everything", lambda source: time.sleep(3600))
    hdf5_guard.enable()
    try:
        with pytest.raises(LoadError, match="did not finish reading this file in 0 s"):
            hdf5_guard.check(b"", "x.h5")
    finally:
        hdf5_guard.enable(False)
    with pytest.raises(ChildProcessError):  # nothing left behind to reap
        os.waitpid(-1, os.WNOHANG)


def test_a_child_the_hdf5_library_crashes_is_refused(monkeypatch):
    def crash(source: object) -> None:
        faulthandler.disable()  # pytest's handler would print the child's stack
        os.kill(os.getpid(), signal.SIGSEGV)

    monkeypatch.setattr(hdf5_guard, "_read_everything", crash)
    hdf5_guard.enable()
    try:
        with pytest.raises(LoadError, match=r"crashed reading this file \(SIGSEGV\)"):
            hdf5_guard.check(SAMPLE_H5, "brackets.h5")
    finally:
        hdf5_guard.enable(False)


def test_errors_in_the_child_are_left_to_the_loader(tmp_path):
    """A file h5py refuses at once passes the guard; the loader's own message names it."""
    hdf5_guard.enable()
    try:
        hdf5_guard.check(b"not hdf5 at all", "x.h5")
        hdf5_guard.check(SAMPLE_H5, "brackets.h5")
    finally:
        hdf5_guard.enable(False)


def test_the_guard_is_off_outside_the_cli(monkeypatch):
    """Library callers may have threads holding locks: no fork unless the CLI turned it on."""
    monkeypatch.setattr(os, "fork", lambda: pytest.fail("forked"))
    hdf5_guard.check(SAMPLE_H5, "brackets.h5")
