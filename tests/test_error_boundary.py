"""Where a bad file ends and a bug begins: loaders.load and the CLI's error boundary."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from workflow_common import invoke

import lstm_trace
from lstm_trace.loaders import FORMATS, LoadError, detect_format, register_format

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def _with_unknown_compression(src: Path, dst: Path, member_suffix: str) -> None:
    """Copy a zip, marking one member as compressed with method 99 (no such method)."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith(member_suffix))
    struct.pack_into("<H", data, info.header_offset + 8, 99)  # local file header
    pos = data.find(b"PK\x01\x02")
    while pos != -1:
        name_len = struct.unpack_from("<H", data, pos + 28)[0]
        name = bytes(data[pos + 46:pos + 46 + name_len]).decode()
        if name == info.filename:
            struct.pack_into("<H", data, pos + 10, 99)
        pos = data.find(b"PK\x01\x02", pos + 4)
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize("sample,member", [("brackets_torch.pt", "data.pkl"),
                                           ("brackets.keras", "config.json")])
def test_a_zip_member_with_an_unknown_compression_is_a_damaged_file(tmp_path, sample, member):
    bad = tmp_path / sample
    _with_unknown_compression(SAMPLES / sample, bad, member)
    with pytest.raises(LoadError):
        lstm_trace.load(bad)
    result = invoke(str(bad), str(SAMPLES / "brackets_input.npy"), "-f", "csv")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_numeric_overflow_warnings_do_not_reach_stderr(tmp_path):
    x = np.full((20, 6), 1e38, dtype=np.float32)
    np.save(tmp_path / "huge.npy", x)
    result = invoke(str(SAMPLES / "brackets.keras"), str(tmp_path / "huge.npy"), "-f", "csv")
    assert result.exit_code == 0, result.output
    assert result.stderr == ""


def test_register_format_adds_and_never_replaces(tmp_path):
    names = [f.name for f in FORMATS]
    marker = tmp_path / "model.myf"
    marker.write_bytes(b"MYFM")

    def match(path: Path) -> bool:
        return path.is_file() and path.read_bytes()[:4] == b"MYFM"

    def open_(path: Path, options):
        raise LoadError(f"{path.name}: a test format")

    try:
        register_format("test_myformat", match, open_, "test format", before="keras")
        assert [f.name for f in FORMATS][0] == "test_myformat"
        assert detect_format(marker) == "test_myformat"
        with pytest.raises(LoadError, match="a test format"):
            lstm_trace.load(marker)
        with pytest.raises(ValueError, match="already registered"):
            register_format("keras", match, open_)
        # Built-in formats are still detected after a registration.
        assert detect_format(SAMPLES / "brackets.keras") == "keras"
        assert detect_format(SAMPLES / "brackets_torch.pt") == "pytorch"
    finally:
        FORMATS[:] = [f for f in FORMATS if f.name != "test_myformat"]
    assert [f.name for f in FORMATS] == names


def test_a_format_whose_module_cannot_be_imported_is_named(tmp_path):
    from lstm_trace.loaders.registry import Format

    broken = Format("ghost", "lstm_trace.loaders.no_such_module", "a missing reader")
    with pytest.raises(LoadError, match="the ghost reader cannot be imported"):
        broken.match(tmp_path)


def test_an_unrecognised_zip_says_what_it_holds(tmp_path):
    path = tmp_path / "arrays.npz"
    np.savez(path, a=np.zeros(3))
    with pytest.raises(LoadError, match=r"a NumPy \.npz archive of a\.npy: MODEL comes first"):
        lstm_trace.load(path)


def test_a_bug_inside_a_reader_is_not_dressed_as_a_damaged_file(monkeypatch):
    from lstm_trace.loaders.keras import archive

    def broken(path, options):
        raise TypeError("a bug")

    monkeypatch.setattr(archive, "open", broken)
    with pytest.raises(TypeError, match="a bug"):
        lstm_trace.load(SAMPLES / "brackets.keras")


def test_initial_states_with_the_wrong_number_of_rows_are_a_clean_error(tmp_path):
    x = np.load(SAMPLES / "brackets_batch.npy")
    states = tmp_path / "states.npz"
    np.savez(states, **{"lstm/hidden": np.zeros((x.shape[0] + 1, 8), np.float32)})
    for fmt in ("csv", "table", "npz"):
        out = ["-o", str(tmp_path / f"t.{fmt}")] if fmt == "npz" else []
        result = invoke(str(SAMPLES / "brackets.keras"), str(SAMPLES / "brackets_batch.npy"),
                        "--initial-state", str(states), "-f", fmt, *out)
        assert result.exit_code == 2, result.output
        assert f"has {x.shape[0] + 1} rows but INPUT has {x.shape[0]} samples" in result.stderr
    one_row = tmp_path / "one.npz"
    np.savez(one_row, **{"lstm/hidden": np.full((1, 8), 0.1, np.float32)})
    result = invoke(str(SAMPLES / "brackets.keras"), str(SAMPLES / "brackets_batch.npy"),
                    "--initial-state", str(one_row), "-f", "csv")
    assert result.exit_code == 0, result.output
