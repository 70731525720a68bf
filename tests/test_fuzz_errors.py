"""Hostile and broken files through the CLI: one ``error:`` line (under 300 characters) on
stderr, exit 2, no traceback, nothing on stdout, and no memory blow-up.

The hostile cases are the ones fuzzing found: a ``.keras`` member that declares 18 KB and
inflates to 1 GiB, a CSV holding one 10 MB number, HDF5 kernels of compound, complex and
string dtypes, a gzip-compressed HDF5 kernel that inflates 1000-fold.
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest
from workflow_common import invoke

import lstm_trace
from lstm_trace.loaders import LoadError

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
MODEL = SAMPLES / "brackets.keras"
INPUT = SAMPLES / "brackets_input.npy"
MAX_LINE = 300


# ------------------------------------------------------------------ hostile archives


def _set_declared_size(data: bytearray, member: bytes, size: int) -> None:
    """Overwrite ``member``'s uncompressed size in its local header and central directory."""
    for magic, name_len_at, name_at, size_at in ((b"PK\x03\x04", 26, 30, 22),
                                                 (b"PK\x01\x02", 28, 46, 24)):
        pos = 0
        while (i := data.find(magic, pos)) >= 0:
            n = struct.unpack_from("<H", data, i + name_len_at)[0]
            if data[i + name_at:i + name_at + n] == member:
                struct.pack_into("<I", data, i + size_at, size)
            pos = i + 4


def _keras_with_member(path: Path, member: str, write: Callable, declared: int | None = None) -> Path:
    """The sample .keras with ``member`` written by ``write(file)`` (deflated)."""
    with zipfile.ZipFile(MODEL) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename == member:
                with dst.open(member, "w") as f:
                    write(f)
            else:
                dst.writestr(item.filename, src.read(item))
    if declared is not None:
        data = bytearray(path.read_bytes())
        _set_declared_size(data, member.encode(), declared)
        path.write_bytes(bytes(data))
    return path


def _zeros(total: int) -> Callable:
    def write(f):
        chunk = bytes(1 << 20)
        for _ in range(total >> 20):
            f.write(chunk)
    return write


def zip_bomb_declared_small(tmp: Path) -> list[str]:
    """256 MiB of zeros declared as 18 KB (fuzzing found 1 GiB): refused before inflating."""
    return [str(_keras_with_member(tmp / "bomb.keras", "model.weights.h5", _zeros(256 << 20),
                                   declared=18 * 1024)), str(INPUT)]


def zip_bomb_ratio(tmp: Path) -> list[str]:
    """128 MiB of zeros declared honestly: a 1000-fold ratio."""
    return [str(_keras_with_member(tmp / "ratio.keras", "model.weights.h5", _zeros(128 << 20))),
            str(INPUT)]


def npz_bomb(tmp: Path) -> list[str]:
    path = tmp / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (1 << 26, 1, 6)})
        _zeros(128 << 20)(f)
    return [str(MODEL), str(path)]


def golden_bomb(tmp: Path) -> list[str]:
    """``check --golden`` with a golden member that declares 18 KB and inflates to 128 MiB."""
    path = tmp / "golden.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("lstm/hidden.npy", "w") as f:
        _zeros(128 << 20)(f)
    data = bytearray(path.read_bytes())
    _set_declared_size(data, b"lstm/hidden.npy", 18 * 1024)
    path.write_bytes(bytes(data))
    return ["check", str(MODEL), str(INPUT), "--golden", str(path)]


def config_bomb(tmp: Path) -> list[str]:
    return [str(_keras_with_member(tmp / "cfg.keras", "config.json", _zeros(64 << 20),
                                   declared=1000)), str(INPUT)]


# ------------------------------------------------------------------ hostile HDF5


def _h5_with_kernel(tmp: Path, name: str, make: Callable) -> Path:
    """The sample .h5 with the LSTM kernel replaced by ``make(group, dataset name)``."""
    path = tmp / name
    path.write_bytes((SAMPLES / "brackets.h5").read_bytes())
    with h5py.File(path, "r+") as h5:
        group = h5["model_weights/lstm"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        kernel = names[0]
        del group[kernel]
        make(group, kernel)
    return path


def h5_compound_kernel(tmp: Path) -> list[str]:
    dtype = np.dtype([("re", "<f4"), ("im", "<f4")])
    return [str(_h5_with_kernel(tmp, "compound.h5",
                                lambda g, k: g.create_dataset(k, (6, 32), dtype=dtype))), str(INPUT)]


def h5_complex_kernel(tmp: Path) -> list[str]:
    return [str(_h5_with_kernel(tmp, "complex.h5",
                                lambda g, k: g.create_dataset(k, data=np.ones((6, 32), np.complex64)))),
            str(INPUT)]


def h5_string_kernel(tmp: Path) -> list[str]:
    return [str(_h5_with_kernel(tmp, "strings.h5",
                                lambda g, k: g.create_dataset(k, data=np.array([b"abc"] * 6)))),
            str(INPUT)]


def h5_gzip_bomb(tmp: Path) -> list[str]:
    def make(group, k):
        group.create_dataset(k, shape=(8192, 8192), dtype="f4", compression="gzip",
                             chunks=(1024, 1024), fillvalue=0.0)
    return [str(_h5_with_kernel(tmp, "gzip.h5", make)), str(INPUT)]


# ------------------------------------------------------------------ hostile inputs


def csv_huge_number(tmp: Path) -> list[str]:
    path = tmp / "huge.csv"
    row = ",".join(["0.5"] * 6)
    path.write_text(f"{row}\n{'1' * 10_000_000},0,0,0,0,0\n{row}\n")
    return [str(MODEL), str(path)]


def csv_huge_header(tmp: Path) -> list[str]:
    path = tmp / "header.csv"
    path.write_text("x" * 5000 + ",b,c,d,e,f\n" + "1,2,3,4,5,x" * 1 + "\n")
    return [str(MODEL), str(path)]


# ------------------------------------------------------------------ plainly broken files


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _edited_config(tmp: Path, name: str, config: object) -> Path:
    def write(f):
        f.write(json.dumps(config).encode())
    return _keras_with_member(tmp / name, "config.json", write)


BROKEN: dict[str, Callable[[Path], list[str]]] = {
    "zip_bomb_declared_small": zip_bomb_declared_small,
    "zip_bomb_ratio": zip_bomb_ratio,
    "npz_bomb": npz_bomb,
    "config_bomb": config_bomb,
    "golden_bomb": golden_bomb,
    "h5_compound_kernel": h5_compound_kernel,
    "h5_complex_kernel": h5_complex_kernel,
    "h5_string_kernel": h5_string_kernel,
    "h5_gzip_bomb": h5_gzip_bomb,
    "csv_huge_number": csv_huge_number,
    "csv_huge_header": csv_huge_header,
    "empty_model": lambda t: [str(_write(t, "empty.keras", b"")), str(INPUT)],
    "random_model": lambda t: [str(_write(t, "random.bin", bytes(range(256)) * 64)), str(INPUT)],
    "text_model": lambda t: [str(_write(t, "model.txt", b"hello\nworld\n" * 100)), str(INPUT)],
    "truncated_keras": lambda t: [str(_write(t, "cut.keras", MODEL.read_bytes()[:3000])), str(INPUT)],
    "truncated_h5": lambda t: [str(_write(t, "cut.h5", (SAMPLES / "brackets.h5").read_bytes()[:5000])),
                               str(INPUT)],
    "config_not_json": lambda t: [str(_keras_with_member(t / "nj.keras", "config.json",
                                                         lambda f: f.write(b"{" * 5000))), str(INPUT)],
    "config_a_list": lambda t: [str(_edited_config(t, "list.keras", [1, 2, 3] * 1000)), str(INPUT)],
    "config_wrong_class": lambda t: [str(_edited_config(t, "cls.keras",
                                                        {"class_name": "X" * 3000, "config": {}})),
                                     str(INPUT)],
    "weights_not_h5": lambda t: [str(_keras_with_member(t / "wh.keras", "model.weights.h5",
                                                        lambda f: f.write(b"junk" * 5000))), str(INPUT)],
    "input_missing": lambda t: [str(MODEL), str(t / "nope.npy")],
    "input_wrong_features": lambda t: [str(MODEL), str(_npy(t, np.ones((5, 4), np.float32)))],
    "input_nan": lambda t: [str(MODEL), str(_npy(t, np.full((5, 6), np.nan, np.float32)))],
    "input_object": lambda t: [str(MODEL), str(_npy(t, np.array([{"a": 1}], dtype=object),
                                                   allow_pickle=True))],
    "input_structured": lambda t: [str(MODEL), str(_npy(t, np.zeros(5, [(f"f{i}", "f4")
                                                                       for i in range(200)])))],
    "input_complex": lambda t: [str(MODEL), str(_npy(t, np.ones((5, 6), np.complex64)))],
    "input_4d": lambda t: [str(MODEL), str(_npy(t, np.ones((2, 2, 5, 6), np.float32)))],
    "input_truncated_npy": lambda t: [str(MODEL), str(_write(t, "cut.npy",
                                                             _npy_bytes(np.ones((50, 6)))[:200]))],
    "input_bad_header_npy": lambda t: [str(MODEL), str(_write(t, "hdr.npy", b"\x93NUMPY\x01\x00\xff\x00"
                                                               + b"{" * 255))],
    "input_binary": lambda t: [str(MODEL), str(_write(t, "x.bin", bytes(range(256)) * 50))],
    "input_ragged_csv": lambda t: [str(MODEL), str(_write(t, "r.csv", b"1,2,3,4,5,6\n1,2\n"))],
    "input_npz_many_keys": lambda t: [str(MODEL), str(_npz(t, {f"k{i}": np.ones(3) for i in range(300)}))],
    "input_npz_corrupt": lambda t: [str(MODEL), str(_write(t, "c.npz", b"PK\x03\x04" + b"\0" * 100))],
}


def _npy(tmp: Path, array: np.ndarray, allow_pickle: bool = False) -> Path:
    path = tmp / f"x{len(list(tmp.iterdir()))}.npy"
    np.save(path, array, allow_pickle=allow_pickle)
    return path


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(tmp: Path, arrays: dict) -> Path:
    path = tmp / "many.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    """``broken(case)``: the CLI arguments of a case, its files made once per module."""
    made: dict[str, list[str]] = {}

    def make(case: str) -> list[str]:
        if case not in made:
            made[case] = BROKEN[case](tmp_path_factory.mktemp(case))
        return made[case]
    return make


#: Cases whose damage is in INPUT or a golden file, not in the model: nothing for inspect.
NOT_THE_MODEL = {name for name in BROKEN if name.startswith(("input_", "csv_"))} | {
    "golden_bomb", "npz_bomb"}


#: (command, case): every case traced; inspect for the cases that damage the model.
COMMAND_CASES = [("trace", case) for case in sorted(BROKEN)] + [
    ("inspect", case) for case in sorted(set(BROKEN) - NOT_THE_MODEL)]


@pytest.mark.parametrize(("command", "case"), COMMAND_CASES, ids=[f"{c}-{k}" for c, k in COMMAND_CASES])
def test_every_error_is_one_short_line_and_exit_2(case, command, broken):
    args = broken(case)
    # NOT_THE_MODEL is what the case's arguments say: those run the intact sample model.
    assert (args[0] in (str(MODEL), "check")) == (case in NOT_THE_MODEL), (case, args[0])
    if command == "inspect":
        args = args[:1]
    result = invoke(*([command] if command == "inspect" else []), *args)
    assert result.exit_code == 2, (case, result.exit_code, result.output[-2000:])
    lines = result.stderr.splitlines()
    errors = [line for line in lines if not line.startswith("note: ")]
    assert len(errors) == 1, (case, lines)
    assert errors[0].startswith("error: "), errors
    assert len(errors[0]) <= MAX_LINE, (case, len(errors[0]), errors[0])
    assert "Traceback" not in result.output
    assert result.stdout == ""


@pytest.mark.parametrize(("case", "fragment"), [
    ("zip_bomb_declared_small", "declares 18,432 bytes but holds"),
    ("zip_bomb_ratio", "refused as a zip bomb"),
    ("config_bomb", "config.json declares 1,000 bytes"),
    ("npz_bomb", "refused as a zip bomb"),
    ("golden_bomb", "lstm/hidden.npy declares 18,432 bytes but holds"),
    ("h5_compound_kernel", "has a compound data type"),
    ("h5_complex_kernel", "has data type complex64"),
    ("h5_string_kernel", "has data type |S3"),
    ("h5_gzip_bomb", "refused as a decompression bomb"),
    ("csv_huge_number", "line 2, column 1 holds 10,000,000 characters"),
])
def test_hostile_files_are_refused_before_reading_with_the_reason(case, fragment, broken):
    args = broken(case)
    tracemalloc.start()
    try:
        result = invoke(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 2, result.output
    assert fragment in result.stderr, result.stderr
    assert peak < 64 << 20, f"{case}: {peak:,} bytes allocated"


def test_library_raises_load_error_for_the_zip_bomb(broken):
    path = broken("zip_bomb_declared_small")[0]
    with pytest.raises(LoadError, match="model.weights.h5 declares 18,432 bytes"):
        lstm_trace.load(path)


def test_a_long_message_keeps_both_ends():
    """A message echoing 3000 characters of user text keeps its start and its advice."""
    result = invoke(MODEL, INPUT, "--layer", "X" * 3000)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("error: no recurrent layer named 'XXX") and " ... " in line
    assert line.endswith("the model's recurrent layers are: lstm")
    assert "\n" not in line and len(line) <= 1010
