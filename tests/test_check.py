"""``lstm-trace check``: the CI regression check against a golden trace.

Goldens are written the way users write them, ``lstm-trace MODEL INPUT --format npz -o
GOLDEN.npz``; differences are made by editing a copy of the golden, so the expected
numbers (error, count, first divergence) are known exactly.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from workflow_common import (
    ALL_FORMATS,
    assert_user_error,
    input_file,
    invoke,
    model_file,
)

from lstm_trace.check import compare


@pytest.fixture()
def golden(wf3, tmp_path):
    """A golden trace of the stacked LSTM, and a function writing edited copies of it."""
    path = tmp_path / "golden.npz"
    result = invoke(model_file(wf3, "stacked_lstm"), input_file(wf3, "stacked_lstm"),
                    "--format", "npz", "-o", path)
    assert result.exit_code == 0, result.output
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    return path, arrays


def _check(wf3, golden_path, *args):
    return invoke("check", model_file(wf3, "stacked_lstm"), input_file(wf3, "stacked_lstm"),
                  "--golden", golden_path, *args)


def _write(tmp_path, arrays, name="edited.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_unchanged_model_passes(wf3, golden):
    result = _check(wf3, golden[0])
    assert result.exit_code == 0, result.output
    assert "OK: 12 keys equal" in result.stdout


@pytest.mark.parametrize(("fixture", "fmt"), [p for p in ALL_FORMATS if p[1] != "weights_h5"])
def test_every_format_with_a_config_matches_its_own_golden(request, fixture, fmt, tmp_path):
    directory = request.getfixturevalue(fixture)
    model, x = model_file(directory, "bigru", fmt), input_file(directory, "bigru")
    path = tmp_path / "g.npz"
    assert invoke(model, x, "-o", path).exit_code == 0
    result = invoke("check", model, x, "--golden", path)
    assert result.exit_code == 0, result.output


def test_keras_and_h5_of_one_model_agree(wf3, tmp_path):
    """The same model saved as .keras and as .h5 traces identically."""
    x = input_file(wf3, "bilstm")
    path = tmp_path / "g.npz"
    assert invoke(model_file(wf3, "bilstm", "keras"), x, "-o", path).exit_code == 0
    result = invoke("check", model_file(wf3, "bilstm", "h5"), x, "--golden", path, "--atol", "0",
                    "--rtol", "0")
    assert result.exit_code == 0, result.output


def test_a_changed_value_is_found_with_where_it_diverged(wf3, golden, tmp_path):
    path, arrays = golden
    arrays["lstm_2/cell"] = arrays["lstm_2/cell"].copy()
    arrays["lstm_2/cell"][1, 6, 4] += 0.5
    arrays["lstm_2/cell"][0, 8, 0] -= 0.25
    result = _check(wf3, _write(tmp_path, arrays))
    assert result.exit_code == 1, result.output
    row = next(line for line in result.stdout.splitlines() if "lstm_2/cell" in line)
    assert "0.5" in row and "2/180" in row and "(1, 6, 4)" in row
    assert "1 of 12 keys differ" in result.stdout


def test_json_gives_the_numbers(wf3, golden, tmp_path):
    _, arrays = golden
    arrays["lstm_0/forget_gate"] = arrays["lstm_0/forget_gate"] * np.float32(1.01)
    result = _check(wf3, _write(tmp_path, arrays), "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["equal"] is False and report["keys_different"] == 1
    (entry,) = [k for k in report["keys"] if k["status"] != "equal"]
    assert entry["key"] == "lstm_0/forget_gate"
    # Relative to the golden value: |g - 1.01 g| / |1.01 g|.
    assert entry["max_rel_error"] == pytest.approx(0.01 / 1.01, rel=1e-3)
    assert entry["first_difference"] == {"sample": 0, "step": 0, "unit": 0}


def test_missing_extra_and_reshaped_keys_are_differences(wf3, golden, tmp_path):
    _, arrays = golden
    del arrays["lstm_0/hidden"]
    arrays["lstm_9/hidden"] = np.zeros((3, 10, 2), np.float32)
    arrays["lstm_2/hidden"] = arrays["lstm_2/hidden"][:, :5]
    result = _check(wf3, _write(tmp_path, arrays), "--format", "json")
    assert result.exit_code == 1
    status = {k["key"]: k["status"] for k in json.loads(result.stdout)["keys"]}
    assert status["lstm_0/hidden"] == "missing_in_golden"
    assert status["lstm_9/hidden"] == "missing_in_trace"
    assert status["lstm_2/hidden"] == "shape"
    table = _check(wf3, _write(tmp_path, arrays)).stdout
    assert "missing in golden" in table and "missing in trace" in table and "shape" in table


def test_tolerances_decide(wf3, golden, tmp_path):
    _, arrays = golden
    arrays["lstm_0/cell"] = arrays["lstm_0/cell"] + np.float32(2e-5)
    edited = _write(tmp_path, arrays)
    assert _check(wf3, edited).exit_code == 1
    assert _check(wf3, edited, "--atol", "1e-4").exit_code == 0


def test_keys_glob_limits_the_comparison(wf3, golden, tmp_path):
    _, arrays = golden
    arrays["lstm_0/cell"] = arrays["lstm_0/cell"] + 1
    edited = _write(tmp_path, arrays)
    assert _check(wf3, edited, "--keys", "lstm_2/*").exit_code == 0
    assert _check(wf3, edited, "--keys", "lstm_2/*", "--keys", "*/cell").exit_code == 1
    assert_user_error(_check(wf3, edited, "--keys", "lstm_7/*"), "lstm_7/*", "matches no key")


def test_junit_report_has_one_case_per_key(wf3, golden, tmp_path):
    _, arrays = golden
    arrays["lstm_2/output_gate"] = arrays["lstm_2/output_gate"] - 1
    report = tmp_path / "junit.xml"
    result = _check(wf3, _write(tmp_path, arrays), "--report", report)
    assert result.exit_code == 1
    root = ET.parse(report).getroot()
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 12 and suite.get("failures") == "1"
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["lstm_2/output_gate"]
    assert "max abs error 1" in failed[0].find("failure").get("message")
    # A passing run writes a passing report.
    assert _check(wf3, golden[0], "--report", report).exit_code == 0
    assert ET.parse(report).getroot().find("testsuite").get("failures") == "0"


def test_mask_keys_compare_exactly():
    mask = np.ones((2, 4), bool)
    other = mask.copy()
    other[1, 2] = False
    result = compare({"l/mask": mask}, {"l/mask": other})
    (entry,) = result.keys
    assert entry.status == "different" and entry.first == (1, 2, None) and entry.differing == 1


def test_nan_equals_nan_but_not_a_number():
    a = np.array([[[np.nan, 1.0]]], np.float32)
    assert compare({"k": a}, {"k": a.copy()}).equal
    b = np.array([[[0.0, 1.0]]], np.float32)
    entry = compare({"k": a}, {"k": b}).keys[0]
    assert entry.status == "different" and entry.first == (0, 0, 0)


def test_first_difference_is_the_earliest_step():
    golden = np.zeros((3, 5, 4), np.float32)
    trace = golden.copy()
    trace[0, 4, 0] = 1
    trace[2, 1, 3] = 1
    trace[1, 1, 2] = 1
    assert compare({"k": trace}, {"k": golden}).keys[0].first == (1, 1, 2)


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04truncated", b""])
def test_corrupt_golden_is_a_user_error(wf3, tmp_path, content):
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    assert_user_error(_check(wf3, path), "bad.npz")


def test_truncated_golden_is_a_user_error(wf3, golden, tmp_path):
    data = golden[0].read_bytes()
    path = tmp_path / "cut.npz"
    path.write_bytes(data[: len(data) // 2])
    assert_user_error(_check(wf3, path), "cut.npz")


def test_pickled_golden_is_refused(wf3, tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, **{"lstm_0/hidden": np.array([{"a": 1}], dtype=object)})
    result = _check(wf3, path)
    assert_user_error(result, "pickled.npz")
    assert "pickle" in result.stderr.lower() or "object" in result.stderr.lower()


def test_npy_golden_is_a_user_error(wf3, tmp_path):
    path = tmp_path / "one.npy"
    np.save(path, np.zeros(3))
    assert_user_error(_check(wf3, path), "one.npy")


def test_missing_golden_and_negative_tolerance(wf3, golden, tmp_path):
    assert_user_error(_check(wf3, tmp_path / "none.npz"), "none.npz")
    assert_user_error(_check(wf3, golden[0], "--atol", "-1"), "non-negative")


def test_bad_input_is_exit_2_not_1(wf3, golden, tmp_path):
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((4, 7), np.float32))  # 7 features, the model takes 3
    result = invoke("check", model_file(wf3, "stacked_lstm"), bad, "--golden", golden[0])
    assert_user_error(result, "x.npy")
