"""Writers on synthetic traces: CSV/NPZ/JSON contracts and exactness, tables, atomic files."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile

import numpy as np
import pytest

from lstm_trace.atomic import atomic_write
from lstm_trace.network import QUANTITIES
from lstm_trace.trace import Trace, TracedLayer
from lstm_trace.writers import FORMATS, write_trace
from lstm_trace.writers import table as table_writer
from lstm_trace.writers._text import float_chars

LSTM_GRU_COLUMNS = [
    "sample", "layer", "direction", "step", "unit",
    "input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden",
    "update_gate", "reset_gate", "mask",
]


def _values(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
    """Random values spanning many magnitudes, plus awkward ones at the start."""
    a = (rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 6, shape)).astype(dtype)
    special = np.array([0.0, -0.0, 0.1, 1.0, 1e-45, 3.4028235e38, -1e-20, 123456789.0,
                        9.999999e-05, 1e16, 0.3], dtype=dtype)
    flat = a.reshape(-1)
    flat[: min(special.size, flat.size)] = special[: flat.size]
    return a


def make_trace(
    batch: int = 2, steps: int = 4, lstm_units: int = 3, gru_units: int = 2,
    num_proj: int | None = None, dtype=np.float32, seed: int = 0,
) -> Trace:
    """An LSTM (optionally projected), then a masked bidirectional GRU."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {}
    for q in QUANTITIES["lstm"]:
        width = num_proj if q == "hidden" and num_proj else lstm_units
        arrays[f"lstm/{q}"] = _values(rng, (batch, steps, width), dtype)
    mask = np.ones((batch, steps), dtype=bool)
    mask[-1, steps // 2:] = False
    for direction in ("forward", "backward"):
        for q in QUANTITIES["gru"]:
            arrays[f"bi_gru/{direction}/{q}"] = _values(rng, (batch, steps, gru_units), dtype)
        arrays[f"bi_gru/{direction}/mask"] = mask
    layers = [
        TracedLayer("lstm", "lstm", ("forward",), bidirectional=False),
        TracedLayer("bi_gru", "gru", ("forward", "backward"), bidirectional=True, masked=True),
    ]
    return Trace(arrays, layers)


def gru_only_trace() -> Trace:
    rng = np.random.default_rng(1)
    arrays = {f"gru/{q}": rng.random((1, 3, 2), dtype=np.float32) for q in QUANTITIES["gru"]}
    return Trace(arrays, [TracedLayer("gru", "gru", ("forward",), bidirectional=False)])


def read_csv(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def same_bits(text: list[str], expected: np.ndarray) -> bool:
    back = np.array([np.float32(s) for s in text], dtype=np.float32)
    exp = expected.astype(np.float32).ravel()
    return bool(np.all((back.view(np.uint32) == exp.view(np.uint32)) | (np.isnan(back) & np.isnan(exp))))


# ------------------------------------------------------------------ CSV

def test_csv_header_is_the_union_of_quantities_in_contract_order(tmp_path):
    path = tmp_path / "trace.csv"
    write_trace(make_trace(), "csv", path)
    header, rows = read_csv(path)
    assert header == LSTM_GRU_COLUMNS
    # One row per (sample, layer, direction, step, unit).
    assert len(rows) == 2 * 4 * 3 + 2 * (2 * 4 * 2)
    assert all(len(row) == len(header) for row in rows)


def test_csv_gru_only_file_keeps_the_gru_order(tmp_path):
    path = tmp_path / "gru.csv"
    write_trace(gru_only_trace(), "csv", path)
    header, rows = read_csv(path)
    assert header[5:] == ["update_gate", "reset_gate", "candidate", "hidden"]
    assert rows[0][:5] == ["0", "gru", "forward", "0", "0"]


def test_csv_cells_that_do_not_apply_are_empty_and_mask_repeats_per_unit(tmp_path):
    trace = make_trace()
    path = tmp_path / "trace.csv"
    write_trace(trace, "csv", path)
    header, rows = read_csv(path)
    col = {name: i for i, name in enumerate(header)}
    lstm_rows = [r for r in rows if r[col["layer"]] == "lstm"]
    gru_rows = [r for r in rows if r[col["layer"]] == "bi_gru"]
    assert {r[col["direction"]] for r in lstm_rows} == {"forward"}
    assert {r[col["direction"]] for r in gru_rows} == {"forward", "backward"}
    for r in lstm_rows:
        assert r[col["update_gate"]] == r[col["reset_gate"]] == r[col["mask"]] == ""
        assert r[col["forget_gate"]] != ""
    for r in gru_rows:
        for q in ("input_gate", "forget_gate", "output_gate", "cell"):
            assert r[col[q]] == ""
        assert r[col["update_gate"]] != "" and r[col["candidate"]] != ""
        sample, step = int(r[col["sample"]]), int(r[col["step"]])
        expected = trace["bi_gru/forward/mask"][sample, step]
        assert r[col["mask"]] == ("1" if expected else "0")
    # The mask value appears on every unit row of a step.
    masked = [r for r in gru_rows if r[col["sample"]] == "1" and r[col["step"]] == "3"]
    assert [r[col["mask"]] for r in masked] == ["0"] * 4  # 2 directions x 2 units


def test_csv_rows_are_sample_major_then_layer_direction_step_unit(tmp_path):
    path = tmp_path / "trace.csv"
    write_trace(make_trace(), "csv", path)
    _, rows = read_csv(path)
    keys = [(int(r[0]), r[1], r[2], int(r[3]), int(r[4])) for r in rows]
    order = {"lstm": 0, "bi_gru": 1}, {"forward": 0, "backward": 1}
    ranks = [(s, order[0][layer], order[1][d], t, u) for s, layer, d, t, u in keys]
    assert ranks == sorted(ranks)


def test_csv_floats_read_back_to_the_same_float32_bits(tmp_path):
    trace = make_trace(batch=3, steps=6, lstm_units=5)
    path = tmp_path / "trace.csv"
    write_trace(trace, "csv", path)
    header, rows = read_csv(path)
    col = {name: i for i, name in enumerate(header)}
    for key in trace:
        parts = key.split("/")
        layer, quantity = parts[0], parts[-1]
        direction = parts[1] if len(parts) == 3 else "forward"
        if quantity == "mask":
            continue
        array = trace[key]
        selected = [r for r in rows if r[col["layer"]] == layer and r[col["direction"]] == direction]
        index = [(int(r[col["sample"]]), int(r[col["step"]]), int(r[col["unit"]])) for r in selected]
        expected = np.array([array[i] for i in index])
        assert same_bits([r[col[quantity]] for r in selected], expected), key


def test_csv_float_text_is_shortest_and_exact_for_awkward_values():
    values = np.array([0.1, 0.3, 1.0, -0.0, 1e-45, 3.4028235e38, np.nan, np.inf, -np.inf,
                       16777216.0, 9.999999e-05, 1e-4, 0.5, 1e-13, 1e22, 2.5e-14], dtype=np.float32)
    text = [bytes(row).replace(b"\0", b"").decode() for row in float_chars(values)]
    assert text[:6] == ["0.1", "0.3", "1.0", "-0.0", "1e-45", "3.4028235e+38"]
    assert text[6:9] == ["nan", "inf", "-inf"]
    assert same_bits(text, values)
    # Same digits as NumPy's own shortest repr, across many magnitudes and random bits.
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, 40_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    rand = np.concatenate([bits, _values(rng, (40_000,))])
    text = [bytes(row).replace(b"\0", b"").decode() for row in float_chars(rand)]
    assert same_bits(text, rand)
    reference = rand.astype("S40").astype(str)
    assert [float(t) for t in text if t != "nan"] == [float(r) for r in reference if r != "nan"]
    assert all(len(_digits(t)) <= len(_digits(r)) for t, r in zip(text, reference, strict=True))


def _digits(text: str) -> str:
    mantissa = text.lstrip("-").split("e")[0]
    return mantissa.replace(".", "").strip("0")


def test_csv_projected_hidden_leaves_cells_past_its_width_empty(tmp_path):
    trace = make_trace(lstm_units=4, num_proj=2)
    path = tmp_path / "proj.csv"
    write_trace(trace, "csv", path)
    header, rows = read_csv(path)
    col = {name: i for i, name in enumerate(header)}
    lstm = [r for r in rows
            if r[col["layer"]] == "lstm" and r[col["sample"]] == "0" and r[col["step"]] == "0"]
    assert [r[col["unit"]] for r in lstm] == ["0", "1", "2", "3"]
    assert [r[col["hidden"]] != "" for r in lstm] == [True, True, False, False]
    assert all(r[col["cell"]] != "" for r in lstm)


def test_csv_selection_keeps_original_indices(tmp_path):
    trace = make_trace(batch=3, steps=6, lstm_units=5)
    path = tmp_path / "sel.csv"
    write_trace(trace, "csv", path, samples=[2], steps=slice(3, 5), units=[4, 1])
    header, rows = read_csv(path)
    col = {name: i for i, name in enumerate(header)}
    lstm = [r for r in rows if r[col["layer"]] == "lstm"]
    assert [(r[0], r[3], r[4]) for r in lstm] == [
        ("2", "3", "4"), ("2", "3", "1"), ("2", "4", "4"), ("2", "4", "1")]
    assert same_bits([r[col["cell"]] for r in lstm], trace["lstm/cell"][2][np.ix_([3, 4], [4, 1])])
    gru = [r for r in rows if r[col["layer"]] == "bi_gru"]
    assert {r[col["unit"]] for r in gru} == {"1"}  # unit 4 does not exist in a 2-unit GRU


def test_csv_float64_trace_round_trips_in_float64(tmp_path):
    trace = make_trace(dtype=np.float64)
    path = tmp_path / "f64.csv"
    write_trace(trace, "csv", path)
    header, rows = read_csv(path)
    lstm = [r for r in rows if r[1] == "lstm"]
    got = np.array([float(r[header.index("cell")]) for r in lstm])
    expected = np.array([trace["lstm/cell"][int(r[0]), int(r[3]), int(r[4])] for r in lstm])
    np.testing.assert_array_equal(got, expected)


def test_csv_to_stdout(capsys):
    write_trace(gru_only_trace(), "csv", "-")
    out = capsys.readouterr().out
    assert out.startswith("sample,layer,direction,step,unit,update_gate,")
    assert out.count("\n") == 1 + 3 * 2


def test_csv_quotes_a_layer_name_with_a_comma(tmp_path):
    arrays = {"a,b/hidden": np.ones((1, 1, 1), np.float32)}
    trace = Trace(arrays, [TracedLayer("a,b", "simple_rnn", ("forward",), bidirectional=False)])
    path = tmp_path / "q.csv"
    write_trace(trace, "csv", path)
    _, rows = read_csv(path)
    assert rows == [["0", "a,b", "forward", "0", "0", "1.0"]]


# ------------------------------------------------------------------ NPZ

def test_npz_holds_exactly_the_contract_keys_and_loads_without_pickle(tmp_path):
    trace = make_trace(num_proj=2, lstm_units=4)
    path = tmp_path / "trace.npz"
    write_trace(trace, "npz", path)
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(trace)
        for key in trace:
            np.testing.assert_array_equal(npz[key], trace[key])
            assert npz[key].dtype == trace[key].dtype
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted(f"{k}.npy" for k in trace)
        assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())


def test_npz_compress_option_and_selection(tmp_path):
    trace = make_trace(batch=3, steps=6, lstm_units=5)
    path = tmp_path / "small.npz"
    write_trace(trace, "npz", path, compress=True, samples=[1], units=slice(0, 2))
    with zipfile.ZipFile(path) as archive:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    with np.load(path, allow_pickle=False) as npz:
        assert npz["lstm/cell"].shape == (1, 6, 2)
        assert npz["bi_gru/backward/mask"].shape == (1, 6)
        np.testing.assert_array_equal(npz["lstm/cell"], trace["lstm/cell"][1:2, :, :2])


def test_npz_refuses_only_a_terminal_as_stdout(monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    with pytest.raises(ValueError, match="binary format"):
        write_trace(make_trace(), "npz", "-")


# ------------------------------------------------------------------ JSON

def _strict_json(text: str):
    def no_constants(name):
        raise AssertionError(f"invalid JSON constant {name}")
    return json.loads(text, parse_constant=no_constants)


def test_json_is_valid_and_round_trips_float32_exactly(tmp_path):
    trace = make_trace(num_proj=2, lstm_units=4)
    path = tmp_path / "trace.json"
    write_trace(trace, "json", path)
    doc = _strict_json(path.read_text())
    assert list(doc["trace"]) == list(trace)
    assert doc["shape"] == {"batch": 2, "steps": 4}
    assert doc["selection"] == {"samples": None, "steps": None, "units": None}
    lstm, gru = doc["layers"]
    assert lstm == {
        "name": "lstm", "kind": "lstm", "directions": ["forward"], "bidirectional": False,
        "masked": False, "units": 4, "output_units": 2,
        "quantities": list(QUANTITIES["lstm"]),
        "keys": [f"lstm/{q}" for q in QUANTITIES["lstm"]],
    }
    assert gru["masked"] and gru["bidirectional"] and gru["directions"] == ["forward", "backward"]
    assert "bi_gru/backward/mask" in gru["keys"]
    for key, array in trace.items():
        back = np.asarray(doc["trace"][key], dtype=array.dtype)
        assert back.shape == array.shape, key
        if array.dtype == np.bool_:
            np.testing.assert_array_equal(back, array)
        else:
            assert np.array_equal(back.view(np.uint32), array.view(np.uint32)), key


def test_json_writes_nan_and_inf_as_null(tmp_path):
    arrays = {"rnn/hidden": np.array([[[np.nan, np.inf, -np.inf, 0.5]]], dtype=np.float32)}
    trace = Trace(arrays, [TracedLayer("rnn", "simple_rnn", ("forward",), bidirectional=False)])
    path = tmp_path / "nan.json"
    write_trace(trace, "json", path)
    doc = _strict_json(path.read_text())
    assert doc["trace"]["rnn/hidden"] == [[[None, None, None, 0.5]]]
    assert np.isnan(np.asarray(doc["trace"]["rnn/hidden"], dtype=np.float32)[0, 0, :3]).all()


def test_json_selection_records_the_original_indices(tmp_path):
    trace = make_trace(batch=3, steps=6, lstm_units=5)
    path = tmp_path / "sel.json"
    write_trace(trace, "json", path, samples=[2, 0], steps=slice(1, 3), units=[4, 0])
    doc = _strict_json(path.read_text())
    assert doc["selection"] == {"samples": [2, 0], "steps": [1, 2], "units": [4, 0]}
    assert doc["shape"] == {"batch": 2, "steps": 2}
    np.testing.assert_array_equal(
        np.asarray(doc["trace"]["lstm/cell"], np.float32), trace["lstm/cell"][np.ix_([2, 0], [1, 2], [4, 0])]
    )
    assert np.asarray(doc["trace"]["bi_gru/forward/hidden"]).shape == (2, 2, 1)  # unit 0 only


# ------------------------------------------------------------------ table

def _table(trace: Trace, **options) -> str:
    buffer = io.StringIO()
    color, width = options.pop("color", False), options.pop("width", None)

    def draw(console, styled):
        table_writer.render(trace, console, styled=styled, **options)

    table_writer._write_to(buffer, draw, color=color, width=width)
    return buffer.getvalue()


def test_table_for_8_units_shows_every_unit_with_headers():
    trace = make_trace(batch=1, steps=5, lstm_units=8)
    text = _table(trace)
    assert "lstm/forget_gate · sample 0" in text
    assert "bi_gru/backward/update_gate · sample 0" in text
    header = next(line for line in text.splitlines() if line.startswith("step") and "mask" not in line)
    assert header.split() == ["step", *map(str, range(8))]
    assert "mask" in text and "✓" in text
    assert "Showing" not in text  # nothing left out
    assert "\x1b[" not in text
    assert all(line == line.rstrip() for line in text.splitlines())


def test_table_for_512_units_and_1000_steps_shows_a_readable_default_and_says_what_is_left_out():
    rng = np.random.default_rng(0)
    arrays = {f"big/{q}": rng.random((4, 1000, 512), dtype=np.float32) for q in QUANTITIES["lstm"]}
    trace = Trace(arrays, [TracedLayer("big", "lstm", ("forward",), bidirectional=False)])
    text = _table(trace)
    lines = text.splitlines()
    assert len(lines) < 6 * 30
    assert max(len(line) for line in lines) <= table_writer.PLAIN_WIDTH
    header = next(line for line in lines if line.startswith("step"))
    assert header.split() == ["step", *map(str, range(8))]
    footer = lines[-1]
    assert footer.startswith("Showing sample 0 of 4, steps 0–19 of 1000, units 0–7 of 512")
    assert "--samples" in footer and "--steps 20:40" in footer and "--units 8:16" in footer
    assert "--summary" in footer


def test_table_splits_wide_unit_selections_instead_of_wrapping():
    rng = np.random.default_rng(0)
    arrays = {"big/hidden": rng.random((1, 3, 64), dtype=np.float32)}
    trace = Trace(arrays, [TracedLayer("big", "simple_rnn", ("forward",), bidirectional=False)])
    text = _table(trace, units=slice(0, 64), width=100)
    assert max(len(line) for line in text.splitlines()) <= 100
    titles = [line for line in text.splitlines() if line.startswith("big/hidden")]
    assert len(titles) > 1 and titles[0].endswith("units 0–10")
    assert all(str(u) in text for u in (0, 31, 63))


def test_table_summary_has_statistics_per_quantity():
    text = _table(make_trace(), summary=True)
    assert "min" in text and "mean" in text and "max" in text
    assert "lstm/forget_gate" in text and "bi_gru/forward/mask" in text
    assert "Showing" not in text  # the summary covers everything by default


def test_table_colours_gates_only_when_styled():
    arrays = {f"l/{q}": np.full((1, 2, 2), 0.95, np.float32) for q in QUANTITIES["lstm"]}
    trace = Trace(arrays, [TracedLayer("l", "lstm", ("forward",), bidirectional=False)])
    assert "\x1b[" not in _table(trace)
    assert "\x1b[1m" in _table(trace, color=True)  # bold for a saturated gate


def test_table_to_a_file_and_to_stdout(tmp_path, capsys):
    trace = make_trace()
    path = tmp_path / "trace.txt"
    write_trace(trace, "table", path, samples=[1], steps=slice(0, 2))
    text = path.read_text()
    assert "lstm/hidden · sample 1" in text and "\x1b[" not in text
    write_trace(trace, "table", "-", summary=False)
    assert "lstm/input_gate · sample 0" in capsys.readouterr().out


def test_table_rejects_out_of_range_selection():
    with pytest.raises(ValueError, match="sample 5 is out of range"):
        _table(make_trace(), samples=[5])


# ------------------------------------------------------------------ dispatch and atomic files

def test_write_trace_dispatches_every_format_and_checks_options(tmp_path):
    trace = make_trace()
    for fmt in FORMATS:
        path = tmp_path / f"out.{fmt}"
        write_trace(trace, fmt, path, units=None, steps=None, samples=None)
        assert path.stat().st_size > 0
    with pytest.raises(ValueError, match="unknown output format 'xml'"):
        write_trace(trace, "xml", tmp_path / "x")
    with pytest.raises(ValueError, match="summary does not apply to --format csv"):
        write_trace(trace, "csv", tmp_path / "y.csv", summary=True)
    assert not (tmp_path / "y.csv").exists()


def test_atomic_write_leaves_nothing_when_the_block_raises(tmp_path):
    path = tmp_path / "out.csv"
    with pytest.raises(RuntimeError), atomic_write(path, "w") as handle:
        handle.write("half a file")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_atomic_write_keeps_the_old_file_on_error_and_replaces_it_on_success(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_write(path, "w") as handle:
        handle.write("new")
        raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]
    with atomic_write(path, "wb") as handle:
        handle.write(b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_write_gives_new_files_normal_permissions(tmp_path):
    path = tmp_path / "perm.txt"
    with atomic_write(path, "w") as handle:
        handle.write("x")
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_stdout_and_bad_mode(capsys):
    with atomic_write("-", "w") as handle:
        handle.write("to stdout\n")
    assert capsys.readouterr().out == "to stdout\n"
    with pytest.raises(ValueError, match="mode"), atomic_write("x", "a"):
        pass


def test_a_writer_failing_midway_leaves_no_file(tmp_path):
    path = tmp_path / "trace.csv"
    with pytest.raises(ValueError, match="unit 99 is out of range"):
        write_trace(make_trace(), "csv", path, units=[0, 99])
    assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="unit 99 is out of range"):
        write_trace(make_trace(), "table", tmp_path / "t.txt", units=[99])
    assert os.listdir(tmp_path) == []
