"""``lstm-trace extract``: per-gate weights, and PyTorch state dicts proven on real torch modules.

The PyTorch test loads what ``extract --to pytorch`` wrote into real ``torch.nn.LSTM`` /
``GRU`` / ``RNN`` modules, runs them on each layer's input as Keras computed it, and
compares with the Keras layer's own output (float32, atol 1e-5). torch is a hard test
dependency (the `test` extra): without it these tests fail, never skip.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from error_record import record_error
from workflow_common import (
    ALL_FORMATS,
    assert_user_error,
    case,
    input_file,
    invoke,
    model_file,
)

ATOL = 1e-5
#: Keras's documented fused gate orders (the framework fact the split is checked against).
KERAS_ORDER = {
    "lstm": ("input_gate", "forget_gate", "candidate", "output_gate"),
    "gru": ("update_gate", "reset_gate", "candidate"),
    "simple_rnn": ("candidate",),
}
TORCH_CASES = ["stacked_lstm", "bigru", "bilstm", "lstm_nobias", "simple_rnn"]


def _extract(model, tmp_path, *args, name="w.npz"):
    out = tmp_path / name
    result = invoke("extract", model, "-o", out, *args)
    assert result.exit_code == 0, result.output
    return out, result


def test_keys_and_values_split_keras_fused_tensors(wf3, tmp_path):
    out, _ = _extract(model_file(wf3, "stacked_lstm"), tmp_path)
    reference = np.load(wf3 / case(wf3, "stacked_lstm")["reference"])
    with np.load(out, allow_pickle=False) as data:
        keys = set(data.files)
        for layer, units in (("lstm_0", 8), ("lstm_2", 6)):
            raw = [reference[f"{layer}/raw/{k}"] for k in range(3)]
            for g, gate in enumerate(KERAS_ORDER["lstm"]):
                cols = slice(g * units, (g + 1) * units)
                np.testing.assert_array_equal(data[f"{layer}/{gate}/kernel"], raw[0][:, cols])
                np.testing.assert_array_equal(data[f"{layer}/{gate}/recurrent_kernel"], raw[1][:, cols])
                np.testing.assert_array_equal(data[f"{layer}/{gate}/bias"], raw[2][cols])
    assert len(keys) == 2 * 4 * 3


def test_bidirectional_gru_has_two_biases_per_direction(wf3, tmp_path):
    out, _ = _extract(model_file(wf3, "bigru"), tmp_path)
    reference = np.load(wf3 / case(wf3, "bigru")["reference"])
    u = 5
    with np.load(out) as data:
        for d, direction in enumerate(("forward", "backward")):
            bias = reference[f"bi_gru_0/raw/{3 * d + 2}"]  # Keras reset_after: (2, 3*units)
            for g, gate in enumerate(KERAS_ORDER["gru"]):
                prefix = f"bi_gru_0/{direction}/{gate}"
                assert data[f"{prefix}/kernel"].shape == (4, u)
                assert f"{prefix}/bias" not in data.files
                np.testing.assert_array_equal(data[f"{prefix}/input_bias"], bias[0, g * u:(g + 1) * u])
                np.testing.assert_array_equal(data[f"{prefix}/recurrent_bias"], bias[1, g * u:(g + 1) * u])


def test_json_and_csv_round_trip_float32(wf3, tmp_path):
    npz, _ = _extract(model_file(wf3, "bigru"), tmp_path)
    js, _ = _extract(model_file(wf3, "bigru"), tmp_path, name="w.json")
    cs, _ = _extract(model_file(wf3, "bigru"), tmp_path, name="w.csv")
    document = json.loads(js.read_text())
    rows = list(csv.DictReader(cs.open()))
    assert list(rows[0]) == ["key", "row", "column", "value"]
    with np.load(npz) as data:
        assert sorted(document) == sorted(data.files)
        for key in data.files:
            np.testing.assert_array_equal(np.asarray(document[key], dtype=np.float32), data[key])
        by_key: dict[str, dict] = {}
        for row in rows:
            column = int(row["column"]) if row["column"] else None
            by_key.setdefault(row["key"], {})[(int(row["row"]), column)] = np.float32(row["value"])
        for key in data.files:
            array = data[key]
            for (r, c), value in by_key[key].items():
                assert value == (array[r] if c is None else array[r, c])
            assert len(by_key[key]) == array.size
    # Shortest round-trip text, not 17 digits.
    assert max(len(row["value"]) for row in rows) <= 15


def test_json_to_stdout(wf3):
    result = invoke("extract", model_file(wf3, "simple_rnn"), "-o", "-")
    assert result.exit_code == 0, result.output
    assert "simple_rnn_0/candidate/kernel" in json.loads(result.stdout)


def test_layer_option_limits_the_layers(wf3, tmp_path):
    out, _ = _extract(model_file(wf3, "stacked_lstm"), tmp_path, "--layer", "lstm_2")
    with np.load(out) as data:
        assert {k.split("/")[0] for k in data.files} == {"lstm_2"}


@pytest.mark.parametrize(("fixture", "fmt"), ALL_FORMATS)
@pytest.mark.parametrize("name", TORCH_CASES)
def test_pytorch_state_dict_reproduces_keras(request, fixture, fmt, name, tmp_path):
    import torch

    directory = request.getfixturevalue(fixture)
    spec = case(directory, name)
    out, result = _extract(directory / spec["files"][fmt], tmp_path, "--to", "pytorch")
    reference = np.load(directory / spec["reference"])
    with np.load(out, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    layers = list(dict.fromkeys(k.rpartition("/")[0] for k in arrays))
    assert len(layers) == len(spec["layers"])
    printed = [line.strip() for line in result.stdout.splitlines()]
    for layer, keras_name, line in zip(layers, spec["layers"], printed, strict=True):
        state = {k.rpartition("/")[2]: torch.from_numpy(v) for k, v in arrays.items()
                 if k.rpartition("/")[0] == layer}
        constructor = line.split(": ", 1)[1]
        assert constructor.startswith("torch.nn.")
        module = eval(constructor, {"torch": torch})  # the printed constructor, as a user runs it
        module.load_state_dict(state)
        x = torch.from_numpy(reference[f"{keras_name}/__input__"])
        with torch.no_grad():
            output, _ = module(x)
        err = float(np.abs(output.numpy() - reference[f"{keras_name}/__output__"]).max())
        assert err < ATOL, (layer, err)
        record_error("PyTorch export vs Keras", f"{name}/{fmt}", err)
        if name.startswith("bi"):
            assert any(k.endswith("_reverse") for k in state)


def test_pytorch_gate_order_is_documented_torch_order(wf3):
    """PyTorch stacks LSTM gates i, f, g, o and GRU gates r, z, n along rows."""
    import lstm_trace
    from lstm_trace.extract import gate_weights, to_pytorch

    network = lstm_trace.load(model_file(wf3, "bigru"))
    per_gate = gate_weights(network)
    (layer,) = to_pytorch(network)
    w = layer.state_dict["weight_ih_l0_reverse"]
    for k, gate in enumerate(("reset_gate", "update_gate", "candidate")):
        np.testing.assert_array_equal(w[k * 5:(k + 1) * 5], per_gate[f"bi_gru_0/backward/{gate}/kernel"].T)
    b = layer.state_dict["bias_hh_l0"]
    np.testing.assert_array_equal(b[5:10], per_gate["bi_gru_0/forward/update_gate/recurrent_bias"])


def test_pytorch_rejects_reset_before_gru(wf3, tmp_path):
    out = tmp_path / "w.npz"
    result = invoke("extract", model_file(wf3, "gru_v1"), "--to", "pytorch", "-o", out)
    assert_user_error(result, "reset_after=False", "gru_0")
    assert not out.exists()


def test_pytorch_rejects_non_default_activations(wf3, tmp_path):
    result = invoke("extract", model_file(wf3, "relu_lstm"), "--to", "pytorch", "-o", tmp_path / "w.npz")
    assert_user_error(result, "activation='relu'")


def test_unknown_layer_is_a_user_error(wf3, tmp_path):
    result = invoke("extract", model_file(wf3, "bigru"), "--layer", "nope", "-o", tmp_path / "w.npz")
    assert_user_error(result, "'nope'", "bi_gru_0")


def test_npz_to_stdout_is_refused_only_on_a_terminal(wf3, monkeypatch):
    import lstm_trace.cli as cli

    result = invoke("extract", model_file(wf3, "bigru"), "-o", "-", "--format", "npz")
    assert result.exit_code == 0 and result.stdout_bytes.startswith(b"PK")
    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: True)
    assert_user_error(invoke("extract", model_file(wf3, "bigru"), "-o", "-", "--format", "npz"),
                      "-o FILE.npz", "terminal")


def test_failed_write_leaves_the_old_file(wf3, tmp_path):
    out = tmp_path / "w.npz"
    out.write_bytes(b"old")
    result = invoke("extract", model_file(wf3, "gru_v1"), "--to", "pytorch", "-o", out)
    assert result.exit_code == 2
    assert out.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [out]


def test_input_file_helper_exists(wf3):
    assert input_file(wf3, "bigru").exists()


TF1_TORCH_CASES = ["basic_lstm", "basic_lstm_forget_bias", "lstm_block_fused", "cudnn_compatible_lstm"]


def _tf1_options(name: str) -> list[str]:
    """What a user passes for a TF1 checkpoint without its graph (e.g. --forget-bias 0.3)."""
    from builders.tf1_cells import CASES as TF1_CASES

    spec = next((c for c in TF1_CASES if c["name"] == name), {"options": {}})
    flags: list[str] = []
    for key, value in spec.get("options", {}).items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


@pytest.fixture(scope="session")
def tf1_checkpoints():
    from conftest import build_fixtures

    return build_fixtures("tf1_cells", legacy_keras=True)


@pytest.mark.parametrize("name", TF1_TORCH_CASES)
def test_pytorch_state_dict_reproduces_tensorflow_v1_cells(tf1_checkpoints, name, tmp_path):
    """TF1 layouts (i, j, f, o over one [x, h] kernel, run-time forget_bias) end up right in torch."""
    import torch

    assert (tf1_checkpoints / name).exists(), f"no {name} case in the TF1 fixtures"
    out, result = _extract(tf1_checkpoints / name / "model", tmp_path, "--to", "pytorch",
                           *_tf1_options(name))
    reference = np.load(tf1_checkpoints / f"{name}_reference.npz")
    x = np.load(tf1_checkpoints / f"{name}_input.npy")
    with np.load(out, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    (layer,) = dict.fromkeys(k.rpartition("/")[0] for k in arrays)
    state = {k.rpartition("/")[2]: torch.from_numpy(v) for k, v in arrays.items()}
    module = eval(result.stdout.splitlines()[0].split(": ", 1)[1], {"torch": torch})
    module.load_state_dict(state)
    with torch.no_grad():
        output, _ = module(torch.from_numpy(x))
    hidden = sorted(k for k in reference.files if k.endswith("/hidden"))
    if len(hidden) == 2:  # bidirectional: torch concatenates forward, backward
        fw = next(k for k in hidden if "/fw/" in k)
        bw = next(k for k in hidden if "/bw/" in k)
        expected = np.concatenate([reference[fw], reference[bw]], axis=-1)
    else:
        expected = reference[hidden[0]]
    err = float(np.abs(output.numpy() - expected).max())
    assert err < ATOL, (name, err)
    record_error("PyTorch export vs TF1", name, err)


@pytest.mark.parametrize(("name", "fragment"), [("gru", "reset_after=False"),
                                                ("lstm_projection_clip", "torch.nn.LSTM"),
                                                ("lstm_peepholes", "peephole"),
                                                ("lstm_block_fused_peepholes", "peephole"),
                                                ("bidirectional", "peephole")])
def test_pytorch_refuses_tf1_cells_it_cannot_express(tf1_checkpoints, name, fragment, tmp_path):
    assert (tf1_checkpoints / name).exists(), f"no {name} case in the TF1 fixtures"
    result = invoke("extract", tf1_checkpoints / name / "model", "--to", "pytorch",
                    "-o", tmp_path / "w.npz")
    assert_user_error(result, fragment)


def test_tf1_peepholes_and_projection_are_extracted(tf1_checkpoints, tmp_path):
    for name, keys in (("lstm_peepholes", ["input_gate/peephole", "forget_gate/peephole",
                                           "output_gate/peephole"]),
                       ("lstm_projection_clip", ["projection"])):
        assert (tf1_checkpoints / name).exists(), f"no {name} case in the TF1 fixtures"
        out, _ = _extract(tf1_checkpoints / name / "model", tmp_path, name=f"{name}.npz")
        with np.load(out) as data:
            for key in keys:
                assert f"rnn/lstm_cell/{key}" in data.files, (name, key, data.files)
