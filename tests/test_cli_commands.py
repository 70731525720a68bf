"""The commands as one family: -o's extension picks the format everywhere, the same
--samples/--steps/--units, "wrote ..." on stderr, check's real errors. Sample model only."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from workflow_common import assert_user_error, invoke

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "sample_models" / "brackets.keras"
ONE = ROOT / "sample_models" / "brackets_input.npy"
BATCH = ROOT / "sample_models" / "brackets_batch.npy"


# ------------------------------------------------------------------ -o picks the format


@pytest.mark.parametrize("command", [["inspect", MODEL], ["stats", MODEL, BATCH]],
                         ids=["inspect", "stats"])
def test_output_extension_picks_the_format(command, tmp_path):
    out = tmp_path / "report.json"
    result = invoke(*command, "-o", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())
    assert f"wrote {out} (json)" in result.stderr
    table = tmp_path / "report.txt"
    assert invoke(*command, "-o", table).exit_code == 0
    assert "┃" in table.read_text() or "─" in table.read_text()
    rows = tmp_path / "report.csv"
    assert invoke(*command, "-o", rows).exit_code == 0
    assert list(csv.DictReader(io.StringIO(rows.read_text())))
    assert_user_error(invoke(*command, "-o", tmp_path / "report.npz"), ".npz", "table, json, csv")
    assert not (tmp_path / "report.npz").exists()


def test_inspect_csv_has_a_row_per_layer():
    result = invoke("inspect", MODEL, "-f", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows] == ["lstm", "depth"]
    lstm = rows[0]
    assert (lstm["kind"], lstm["units"], lstm["input_size"]) == ("lstm", "8", "6")
    assert (lstm["activation"], lstm["recurrent_activation"]) == ("tanh", "sigmoid")
    assert lstm["trace_keys"] == "lstm/<quantity>"


def test_stats_csv_has_gate_rows_and_top_unit_rows():
    import lstm_trace
    from lstm_trace.stats import gate_stats

    expected = gate_stats(lstm_trace.load(MODEL).trace(np.load(BATCH)), top=3)[0]
    result = invoke("stats", MODEL, BATCH, "-f", "csv", "--top", "3")
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    gates = {r["quantity"]: r for r in rows if r["unit"] == ""}
    assert set(gates) == {"input_gate", "forget_gate", "output_gate"}
    assert float(gates["forget_gate"]["mean"]) == expected["gates"]["forget_gate"]["mean"]
    units = [int(r["unit"]) for r in rows if r["unit"]]
    assert units == [u["unit"] for u in expected["top_units"]]


def test_stats_selection_keeps_the_models_unit_numbers():
    import lstm_trace
    from lstm_trace.stats import unit_variance

    trace = lstm_trace.load(MODEL).trace(np.load(BATCH))
    variance = unit_variance(trace["lstm/cell"][:, 10:, 5:8], None)
    result = invoke("stats", MODEL, BATCH, "-f", "json", "--units", "5:8", "--steps", "10:")
    assert result.exit_code == 0, result.output
    top = json.loads(result.stdout)["layers"][0]["top_units"]
    assert [t["unit"] for t in top] == [5 + int(u) for u in np.argsort(-variance, kind="stable")]
    assert top[0]["variance"] == pytest.approx(float(variance.max()))
    assert_user_error(invoke("stats", MODEL, BATCH, "--units", "9"), "(0 to 7)")
    assert_user_error(invoke("stats", MODEL, BATCH, "--steps", "40:50"), "(0 to 29)")


# ------------------------------------------------------------------ check


@pytest.fixture()
def golden(tmp_path):
    path = tmp_path / "golden.npz"
    assert invoke(MODEL, BATCH, "-o", path).exit_code == 0
    return path


def _nudged(golden: Path, key: str, index: tuple, by: float) -> Path:
    with np.load(golden) as data:
        arrays = {k: data[k].copy() for k in data.files}
    arrays[key][index] += by
    out = golden.with_name("nudged.npz")
    np.savez(out, **arrays)
    return out


def test_check_reports_the_real_error_of_a_key_within_tolerance(golden):
    nudged = _nudged(golden, "lstm/cell", (3, 7, 2), 2e-6)
    result = invoke("check", MODEL, BATCH, "--golden", nudged, "-f", "json")
    assert result.exit_code == 0, result.output
    keys = {k["key"]: k for k in json.loads(result.stdout)["keys"]}
    assert keys["lstm/cell"]["status"] == "equal"
    with np.load(golden) as before, np.load(nudged) as after:
        moved = abs(float(after["lstm/cell"][3, 7, 2]) - float(before["lstm/cell"][3, 7, 2]))
    assert 1.9e-6 < moved < 2.1e-6  # 2e-6 as float32 rounds it
    assert keys["lstm/cell"]["max_abs_error"] == pytest.approx(moved, rel=1e-9)
    assert keys["lstm/hidden"]["max_abs_error"] == 0.0
    text = invoke("check", MODEL, BATCH, "--golden", nudged)
    assert text.exit_code == 0
    assert f"largest difference {moved:.3g} in lstm/cell" in text.stdout
    import xml.etree.ElementTree as ET

    report = golden.with_name("junit.xml")
    assert invoke("check", MODEL, BATCH, "--golden", nudged, "--report", report).exit_code == 0
    cases = {c.get("name"): c for c in ET.parse(report).getroot().iter("testcase")}
    assert cases["lstm/cell"].find("system-out").text.startswith(f"max abs error {moved:.3g},")
    assert cases["lstm/hidden"].find("system-out").text.startswith("max abs error 0,")


def test_check_compares_only_the_selection(golden):
    nudged = _nudged(golden, "lstm/hidden", (1, 20, 4), 0.5)
    assert invoke("check", MODEL, BATCH, "--golden", nudged).exit_code == 1
    assert invoke("check", MODEL, BATCH, "--golden", nudged, "--steps", "0:20").exit_code == 0
    assert invoke("check", MODEL, BATCH, "--golden", nudged, "--units", "0:4").exit_code == 0
    assert invoke("check", MODEL, BATCH, "--golden", nudged, "--samples", "1").exit_code == 1
    assert_user_error(invoke("check", MODEL, BATCH, "--golden", nudged, "--units", "0:100"),
                      "--units 0:100", "(0 to 7)")


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [("trace.csv", b"sample,layer\n0,lstm\n", "not an .npz (zip) file"),
     ("one.npy", None, "a NumPy .npy array"),
     ("empty.npz", b"", "empty"),
     ("cut.npz", b"PK\x03\x04cut", "damaged")],
)
def test_check_says_what_a_golden_must_be(tmp_path, name, content, fragment):
    path = tmp_path / name
    if content is None:
        np.save(path, np.zeros(3))
    else:
        path.write_bytes(content)
    result = invoke("check", MODEL, BATCH, "--golden", path)
    assert_user_error(result, f"--golden {path}", fragment,
                      "a golden trace must be an .npz written by 'lstm-trace MODEL INPUT --format npz")
    assert "allow_pickle" not in result.output


def test_check_report_says_it_was_written(golden, tmp_path):
    report = tmp_path / "junit.xml"
    result = invoke("check", MODEL, BATCH, "--golden", golden, "--report", report)
    assert result.exit_code == 0
    assert f"wrote {report} (JUnit XML)" in result.stderr
    assert report.read_bytes().startswith(b"<?xml")


# ------------------------------------------------------------------ extract, plot


def test_extract_messages_go_to_stderr_and_stdout_is_the_default(tmp_path):
    out = tmp_path / "w.npz"
    result = invoke("extract", MODEL, "-o", out)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr.startswith(f"wrote {out} (12 arrays)")
    to_stdout = invoke("extract", MODEL)
    assert "lstm/input_gate/kernel" in json.loads(to_stdout.stdout)


def test_plot_takes_samples_like_every_command_and_keeps_sample(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    first = invoke("plot", MODEL, BATCH, "-o", a, "--samples", "3")
    assert first.exit_code == 0, first.output
    assert first.stderr.startswith(f"wrote {a} (")
    assert invoke("plot", MODEL, BATCH, "-o", b, "--sample", "3").exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    assert_user_error(invoke("plot", MODEL, BATCH, "-o", a, "--samples", "0,1"), "one sample")
    assert_user_error(invoke("plot", MODEL, BATCH, "-o", a, "--samples", "8"), "(0 to 7)")


# ------------------------------------------------------------------ --summary, streamed


def _chunked(trace, batch_size: int, chunk_steps: int):
    """``trace`` handed out as a TraceSource of many chunks (sample blocks × step chunks)."""
    from lstm_trace.streaming import TraceChunk, TraceSource

    def make():
        for s0 in range(0, trace.batch, batch_size):
            for t0 in range(0, trace.steps, chunk_steps):
                s1, t1 = min(trace.batch, s0 + batch_size), min(trace.steps, t0 + chunk_steps)
                yield TraceChunk((s0, s1), (t0, t1), trace.select(slice(s0, s1), slice(t0, t1)))

    return TraceSource(trace.batch, trace.steps, batch_size, chunk_steps, True, make)


def _masked_trace():
    from lstm_trace.network import QUANTITIES
    from lstm_trace.trace import Trace, TracedLayer

    rng = np.random.default_rng(3)
    layer = TracedLayer("lstm", "lstm", ("forward",), False, masked=True)
    arrays = {f"lstm/{q}": rng.uniform(-0.2, 1.2, (5, 23, 6)).astype(np.float32)
              for q in QUANTITIES["lstm"]}
    arrays["lstm/mask"] = rng.random((5, 23)) > 0.3
    return Trace(arrays, [layer])


@pytest.mark.parametrize("selection", [{}, {"samples": [4, 1], "steps": slice(3, 20), "units": [5, 0]}])
def test_summary_merged_over_chunks_equals_the_whole(selection):
    from lstm_trace.summary import summarize, summarize_source

    trace = _masked_trace()
    whole = summarize(trace, **selection)
    merged = summarize_source(_chunked(trace, batch_size=2, chunk_steps=4), **selection)
    assert [r.key for r in merged.rows] == [r.key for r in whole.rows]
    for a, b in zip(merged.rows, whole.rows, strict=True):
        assert (a.units, a.values, a.min, a.max, a.below, a.above) == \
               (b.units, b.values, b.min, b.max, b.below, b.above), a.key
        for name in ("mean", "std"):
            if getattr(b, name) is not None:
                assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-12, abs=1e-15)
    used = trace["lstm/mask"]
    forget = trace["lstm/forget_gate"].astype(np.float64)[used]
    if not selection:
        row = next(r for r in whole.rows if r.key == "lstm/forget_gate")
        assert row.mean == pytest.approx(forget.mean()) and row.std == pytest.approx(forget.std())
        assert row.values == forget.size


def test_cli_summary_streams_in_chunks_with_the_same_numbers():
    whole = invoke(MODEL, BATCH, "--summary", "-f", "csv")
    chunked = invoke(MODEL, BATCH, "--summary", "-f", "csv", "--batch-size", "3")
    assert whole.exit_code == chunked.exit_code == 0, chunked.output
    a = list(csv.DictReader(io.StringIO(whole.stdout)))
    b = list(csv.DictReader(io.StringIO(chunked.stdout)))
    assert [r["key"] for r in a] == [r["key"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert x["values"] == y["values"]  # replays of other batch sizes round a little apart:
        for column in ("min", "max", "mean", "std", "below_0.1", "above_0.9"):
            if x[column]:
                assert float(x[column]) == pytest.approx(float(y[column]), rel=1e-6, abs=1e-7)
    assert_user_error(invoke(MODEL, BATCH, "--summary", "--batch-size", "0"), "--batch-size")
