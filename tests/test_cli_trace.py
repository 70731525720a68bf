"""The ``trace`` command end to end through click's CliRunner: formats, options, errors."""

from __future__ import annotations

import csv
import io
import json
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from workflow_common import assert_user_error, invoke

LAYER = "basic_lstm_0"


@pytest.fixture(scope="module")
def model(keras3_lstm_fixtures):
    return keras3_lstm_fixtures / "basic.keras"


@pytest.fixture(scope="module")
def x(keras3_lstm_fixtures):
    return np.load(keras3_lstm_fixtures / "basic_input.npy")


@pytest.fixture()
def input_npy(tmp_path, x):
    path = tmp_path / "x.npy"
    np.save(path, x)
    return path


def test_bare_command_is_trace_and_prints_a_table(model, input_npy):
    result = invoke(model, input_npy, "--format", "table")
    assert result.exit_code == 0, result.output
    assert LAYER in result.output
    assert "forget_gate" in result.output


def test_default_format_is_csv_when_piped(model, input_npy):
    result = invoke(model, input_npy)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("sample,layer,direction,step,unit,")


def test_output_format_follows_the_extension(model, input_npy, tmp_path):
    out = tmp_path / "t.json"
    assert invoke(model, input_npy, "-o", out).exit_code == 0
    assert json.loads(out.read_text())


def test_trace_subcommand_equals_bare_form(model, input_npy):
    a = invoke("trace", model, input_npy, "--format", "json")
    b = invoke(model, input_npy, "--format", "json")
    assert a.exit_code == b.exit_code == 0
    assert a.output == b.output


def test_npz_output_has_contract_keys_and_matches_the_api(model, input_npy, x, tmp_path):
    import lstm_trace

    out = tmp_path / "trace.npz"
    result = invoke(model, input_npy, "-o", out)
    assert result.exit_code == 0, result.output
    expected = lstm_trace.load(model).trace(x)
    with np.load(out, allow_pickle=False) as data:
        assert sorted(data.files) == sorted(expected.keys())
        for key in expected:
            np.testing.assert_array_equal(data[key], expected[key])
    quantities = ["input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden"]
    assert sorted(expected.keys()) == sorted(f"{LAYER}/{q}" for q in quantities)


def test_csv_output_has_contract_columns_and_round_trips_float32(model, input_npy, x, tmp_path):
    import lstm_trace

    out = tmp_path / "trace.csv"
    result = invoke(model, input_npy, "--format", "csv", "-o", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    header = list(rows[0].keys())
    assert header == ["sample", "layer", "direction", "step", "unit", "input_gate", "forget_gate",
                      "candidate", "output_gate", "cell", "hidden"]
    batch, steps, _ = x.shape
    assert len(rows) == batch * steps * 8
    expected = lstm_trace.load(model).trace(x)
    for row in rows[:: 37]:
        b, t, u = int(row["sample"]), int(row["step"]), int(row["unit"])
        assert row["layer"] == LAYER and row["direction"] == "forward"
        assert np.float32(row["forget_gate"]) == expected[f"{LAYER}/forget_gate"][b, t, u]


def test_json_to_stdout_is_valid(model, input_npy):
    result = invoke(model, input_npy, "--format", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert f"{LAYER}/hidden" in json.dumps(document)


def test_layer_option_limits_the_trace(keras3_lstm_fixtures, tmp_path):
    model = keras3_lstm_fixtures / "stacked.keras"
    out = tmp_path / "t.npz"
    result = invoke(model, keras3_lstm_fixtures / "stacked_input.npy", "--layer", "stacked_lstm_1",
                    "-o", out)
    assert result.exit_code == 0, result.output
    with np.load(out) as data:
        assert {k.split("/")[0] for k in data.files} == {"stacked_lstm_1"}


def test_dtype_float64(model, input_npy, tmp_path):
    out = tmp_path / "t.npz"
    assert invoke(model, input_npy, "--dtype", "float64", "-o", out).exit_code == 0
    with np.load(out) as data:
        assert data[f"{LAYER}/hidden"].dtype == np.float64


def test_csv_and_npz_inputs(model, x, tmp_path):
    seq = x[0]
    csv_path = tmp_path / "seq.csv"
    csv_path.write_text("a,b,c\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in seq))
    npz_path = tmp_path / "inputs.npz"
    np.savez(npz_path, first=seq, second=seq * 2)
    out1, out2 = tmp_path / "a.npz", tmp_path / "b.npz"
    assert invoke(model, csv_path, "-o", out1).exit_code == 0
    assert invoke(model, npz_path, "--input-key", "first", "-o", out2).exit_code == 0
    with np.load(out1) as a, np.load(out2) as b:
        np.testing.assert_allclose(a[f"{LAYER}/hidden"], b[f"{LAYER}/hidden"], atol=1e-6)


def test_npz_input_with_several_arrays_needs_a_key(model, x, tmp_path):
    path = tmp_path / "inputs.npz"
    np.savez(path, first=x, second=x)
    assert_user_error(invoke(model, path), "--input-key", "first", "second")


def test_wrong_feature_count(model, tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((10, 4), np.float32))
    assert_user_error(invoke(model, path), "bad.npy", "3", "(10, 4)")


def test_wrong_rank(model, tmp_path):
    path = tmp_path / "bad.npy"
    np.save(path, np.zeros((2, 3, 4, 3), np.float32))
    assert_user_error(invoke(model, path), "bad.npy")


def test_empty_input(model, tmp_path):
    path = tmp_path / "empty.npy"
    np.save(path, np.zeros((0, 3), np.float32))
    assert_user_error(invoke(model, path), "empty.npy")


def test_non_numeric_input(model, tmp_path):
    path = tmp_path / "text.npy"
    np.save(path, np.array([["a", "b", "c"]]))
    assert_user_error(invoke(model, path), "text.npy")


def test_pickled_object_array_is_refused_not_loaded(model, tmp_path):
    path = tmp_path / "evil.npy"
    marker = tmp_path / "executed"
    np.save(path, np.array([Exploit(str(marker))], dtype=object), allow_pickle=True)
    assert_user_error(invoke(model, path), "evil.npy")
    assert not marker.exists()


class Exploit:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_missing_model_file(input_npy, tmp_path):
    assert_user_error(invoke(tmp_path / "nope.keras", input_npy), "nope.keras")


def test_garbage_model_file(input_npy, tmp_path):
    path = tmp_path / "model.h5"
    path.write_bytes(b"this is not a model" * 10)
    assert_user_error(invoke(path, input_npy), "model.h5")


def test_truncated_hdf5_model(keras3_lstm_fixtures, input_npy, tmp_path):
    data = (keras3_lstm_fixtures / "basic.h5").read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(data[: len(data) // 2])
    assert_user_error(invoke(path, input_npy), "cut.h5")


def test_zip_that_is_not_a_keras_model(input_npy, tmp_path):
    path = tmp_path / "other.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("hello.txt", "hi")
    assert_user_error(invoke(path, input_npy), "other.keras", "config.json")


def test_pickle_file_as_model_is_never_unpickled(input_npy, tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Exploit(str(marker))))
    assert_user_error(invoke(path, input_npy), "model.pkl")
    assert not marker.exists()


def test_unknown_layer_name(model, input_npy):
    assert_user_error(invoke(model, input_npy, "--layer", "nope"), "nope", LAYER)


def test_npz_format_to_stdout_needs_a_file_or_pipe(model, input_npy, monkeypatch):
    import lstm_trace.cli as cli

    assert invoke(model, input_npy, "--format", "npz").stdout_bytes.startswith(b"PK")
    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: True)
    assert_user_error(invoke(model, input_npy, "--format", "npz"), "-o")


def test_failed_trace_leaves_no_output_file(model, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 7), np.float32))
    out = tmp_path / "out.csv"
    assert invoke(model, bad, "-o", out).exit_code == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [bad]


def test_debug_shows_the_traceback(model, tmp_path):
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((5, 7), np.float32))
    result = invoke(model, bad, "--debug")
    assert result.exit_code != 0
    assert result.exception is not None


def test_unsupported_activation_in_config_is_a_clear_error(keras3_lstm_fixtures, input_npy, tmp_path):
    source = keras3_lstm_fixtures / "basic.keras"
    path = tmp_path / "custom.keras"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = data.replace(b'"activation": "tanh"', b'"activation": "my_custom_fn"')
            dst.writestr(item, data)
    assert_user_error(invoke(path, input_npy), "my_custom_fn", "--activation")
    result = invoke(path, input_npy, "--activation", "tanh", "--format", "json")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("fmt", ["keras", "h5", "weights_h5"])
def test_tracing_never_imports_tensorflow(keras3_lstm_fixtures, keras2_lstm_fixtures, fmt, tmp_path):
    files = {"keras": keras3_lstm_fixtures / "basic.keras", "h5": keras2_lstm_fixtures / "basic.h5",
             "weights_h5": keras3_lstm_fixtures / "basic.weights.h5"}
    x = keras3_lstm_fixtures / "basic_input.npy"
    code = (
        "import sys, numpy as np\n"
        "from click.testing import CliRunner\n"
        "from lstm_trace.cli import main\n"
        f"r = CliRunner().invoke(main, [{str(files[fmt])!r}, {str(x)!r},"
        f" '-o', {str(tmp_path / 'o.npz')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras', 'torch')]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_console_script_runs(model, input_npy, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_trace", str(model), str(input_npy), "--format", "csv"],
        capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert next(csv.reader(io.StringIO(proc.stdout)))[:5] == ["sample", "layer", "direction", "step", "unit"]


def test_output_into_a_missing_directory_names_the_real_path(model, input_npy, tmp_path):
    out = tmp_path / "no" / "such" / "trace.csv"
    result = invoke(model, input_npy, "-o", out)
    assert_user_error(result, str(out), "does not exist")
    assert ".tmp" not in result.output


def test_reset_after_flag_overrides_the_gru_variant(keras3_lstm_fixtures, tmp_path):
    """A weights-only GRU with a (3*units,) bias is assumed reset_after=False unless told."""
    import h5py

    rng = np.random.default_rng(0)
    path = tmp_path / "gru.weights.h5"
    with h5py.File(path, "w") as h5:
        cell = h5.create_group("layers/gru/cell/vars")
        cell["0"] = rng.standard_normal((3, 12)).astype(np.float32)
        cell["1"] = rng.standard_normal((4, 12)).astype(np.float32)
        cell["2"] = rng.standard_normal((12,)).astype(np.float32)
    x = tmp_path / "x.npy"
    np.save(x, rng.standard_normal((5, 3)).astype(np.float32))
    outputs = {}
    for flag in ("--reset-after", "--no-reset-after"):
        out = tmp_path / f"{flag}.npz"
        result = invoke(path, x, flag, "-o", out)
        assert result.exit_code == 0, result.output
        assert f"reset_after={flag == '--reset-after'}" in result.output
        with np.load(out) as data:
            outputs[flag] = data["gru/hidden"]
    assert not np.allclose(outputs["--reset-after"], outputs["--no-reset-after"])
