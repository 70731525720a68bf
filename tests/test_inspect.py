"""``lstm-trace inspect``: layers, options, parameter counts and where each gate lives.

The gate slices are checked against the file itself: the builder saved each layer's
weights exactly as Keras's ``get_weights()`` returns them (the fused file layout), and
every slice ``inspect`` reports, applied to those raw tensors, must give the weights of
that gate in lstm-trace's canonical cell.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from builders.workflow_models import CASES
from workflow_common import (
    ALL_FORMATS,
    assert_user_error,
    case,
    invoke,
    model_file,
)

import lstm_trace
from lstm_trace.inspect import describe

RECURRENT_CASES = [c["name"] for c in CASES if c["name"] != "tokens"]
TENSOR_INDEX = {"kernel": 0, "recurrent_kernel": 1, "bias": 2}


def _apply(expression: str, raw: list[np.ndarray]) -> np.ndarray:
    """Evaluate ``kernel[:, 0:8]`` / ``bias[1, 5:10]`` on the layer's raw Keras weights."""
    match = re.fullmatch(r"(\w+)\[(.*)\]", expression)
    assert match, expression
    tensor = raw[TENSOR_INDEX[match.group(1)]]
    index = []
    for part in match.group(2).split(","):
        part = part.strip()
        if ":" in part:
            start, stop = part.split(":")
            index.append(slice(int(start) if start else None, int(stop) if stop else None))
        else:
            index.append(int(part))
    return tensor[tuple(index)]


def _raw_weights(reference, keras_layer: str, direction: int, count: int) -> list[np.ndarray]:
    """The raw arrays of one direction (Bidirectional: forward's first, then backward's)."""
    arrays = []
    k = 0
    while f"{keras_layer}/raw/{k}" in reference:
        arrays.append(reference[f"{keras_layer}/raw/{k}"])
        k += 1
    return arrays[direction * count:(direction + 1) * count]


@pytest.mark.parametrize(("fixture", "fmt"), ALL_FORMATS)
@pytest.mark.parametrize("name", RECURRENT_CASES)
def test_gate_slices_point_at_each_gate_in_the_file(request, fixture, fmt, name):
    directory = request.getfixturevalue(fixture)
    spec = case(directory, name)
    network = lstm_trace.load(directory / spec["files"][fmt])
    info = describe(network)
    reference = np.load(directory / spec["reference"])
    recurrent = [layer for layer in info["layers"] if layer["role"] == "recurrent"]
    assert len(recurrent) == len(spec["layers"])
    for entry, layer, keras_name in zip(recurrent, network.recurrent_layers, spec["layers"],
                                        strict=True):
        count = len(_raw_weights(reference, keras_name, 0, 99)) // len(layer.directions)
        for d, (direction, canonical) in enumerate(zip(entry["directions"], layer.directions,
                                                       strict=True)):
            raw = _raw_weights(reference, keras_name, d, count)
            per_gate = canonical.cell.gate_weights()
            assert [g["gate"] for g in direction["gates"]] == list(per_gate)  # Keras order
            for gate in direction["gates"]:
                expected = per_gate[gate["gate"]]
                for tensor in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
                    if tensor not in gate:
                        continue
                    np.testing.assert_array_equal(_apply(gate[tensor].replace(
                        "recurrent_bias", "bias"), raw), expected[tensor])
        # The parameter count is the size of what Keras stores for the layer.
        assert entry["parameters"] == sum(a.size for a in _raw_weights(reference, keras_name, 0, 99))


def test_table_lists_layers_options_and_slices(wf3):
    result = invoke("inspect", model_file(wf3, "stacked_lstm"))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for fragment in ("lstm_0", "dropout_1", "lstm_2", "3 → 8", "8 → 6", "sigmoid / tanh",
                     "kernel[:, 0:8]", "recurrent_kernel[:, 8:16]", "bias[24:32]",
                     "input_gate", "forget_gate", "output_gate", "file layout keras_lstm",
                     "Keras version: 3."):
        assert fragment in out, fragment
    dropout = next(line for line in out.splitlines() if "dropout_1" in line)
    assert "(between)" in dropout and "yes" in dropout


def test_json_describes_a_bidirectional_gru(wf3):
    result = invoke("inspect", model_file(wf3, "bigru"), "--format", "json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    layer = info["layers"][0]
    assert layer["class_name"] == "Bidirectional" and layer["kind"] == "gru"
    assert layer["bidirectional"] and layer["merge_mode"] == "concat"
    assert (layer["units"], layer["input_size"], layer["output_size"]) == (5, 4, 10)
    forward, backward = layer["directions"]
    assert not forward["go_backwards"] and backward["go_backwards"]
    assert forward["reset_after"] is True and forward["recurrent_bias"] is True
    assert forward["gates"][0] == {"gate": "update_gate", "kernel": "kernel[:, 0:5]",
                                   "recurrent_kernel": "recurrent_kernel[:, 0:5]",
                                   "bias": "bias[0, 0:5]", "recurrent_bias": "bias[1, 0:5]"}
    assert layer["trace_keys"] == ["bi_gru_0/forward/<quantity>", "bi_gru_0/backward/<quantity>"]
    assert info["keras_version"].startswith("3.")


def test_options_of_gru_v1_no_bias_and_relu(wf3, wf2):
    gru = describe(lstm_trace.load(model_file(wf2, "gru_v1", "h5")))["layers"][0]
    assert gru["directions"][0]["reset_after"] is False
    assert "bias" in gru["directions"][0]["gates"][0]
    assert "recurrent_bias" not in gru["directions"][0]["gates"][0]
    nobias = describe(lstm_trace.load(model_file(wf3, "lstm_nobias")))["layers"][0]
    assert nobias["directions"][0]["use_bias"] is False
    assert "bias" not in nobias["directions"][0]["gates"][0]
    relu = describe(lstm_trace.load(model_file(wf3, "relu_lstm")))["layers"][0]
    assert relu["directions"][0]["activation"] == "relu"
    simple = describe(lstm_trace.load(model_file(wf3, "simple_rnn")))["layers"][0]
    assert "recurrent_activation" not in simple["directions"][0]


def test_keras2_file_reports_its_version(wf2):
    info = describe(lstm_trace.load(model_file(wf2, "stacked_lstm", "h5")))
    assert info["keras_version"].startswith("2.")


def test_weights_only_notes_go_to_stderr_and_json(wf3):
    path = model_file(wf3, "bigru", "weights_h5")
    result = invoke("inspect", path)
    assert result.exit_code == 0, result.output
    assert "note:" in result.stderr and "note:" not in result.stdout
    info = json.loads(invoke("inspect", path, "--format", "json").stdout)
    assert any("merge_mode" in line for line in info["notes"])


def test_upstream_layers_say_whether_they_replay(wf3):
    info = describe(lstm_trace.load(model_file(wf3, "tokens")))
    embedding = info["layers"][0]
    assert embedding["class_name"] == "Embedding" and embedding["position"] == "before"
    network = lstm_trace.load(model_file(wf3, "tokens"))
    assert embedding["replayable"] == network.layers[0].replayable
    assert embedding["replayable"]
    assert embedding["parameters"] == 12 * 4
    assert info["layers"][1]["mask_source"] == "embedding_0 (Embedding, mask_zero)"


def test_layers_after_the_recurrent_ones_are_listed(wf3, wf2):
    for path in (model_file(wf3, "stacked_lstm"), model_file(wf2, "bigru", "h5")):
        info = describe(lstm_trace.load(path))
        head = info["layers"][-1]
        assert (head["name"], head["class_name"], head["position"]) == ("head", "Dense", "after")
    out = invoke("inspect", model_file(wf3, "stacked_lstm")).stdout
    assert "not needed" in next(line for line in out.splitlines() if "head" in line)


def test_output_file_is_written(wf3, tmp_path):
    out = tmp_path / "info.json"
    result = invoke("inspect", model_file(wf3, "bilstm"), "--format", "json", "-o", out)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["layers"][0]["kind"] == "lstm"


def test_missing_model_is_a_user_error(tmp_path):
    assert_user_error(invoke("inspect", tmp_path / "nope.keras"), "nope.keras")


def test_not_a_model_is_a_user_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    assert_user_error(invoke("inspect", path), "notes.txt")


def _evaluate(expression: str, tensors: dict[str, np.ndarray]) -> np.ndarray:
    match = re.fullmatch(r"([\w/]+)\[(.*)\]", expression)
    assert match, expression
    index = []
    for part in match.group(2).split(","):
        part = part.strip()
        if ":" in part:
            start, stop = part.split(":")
            index.append(slice(int(start) if start else None, int(stop) if stop else None))
        else:
            index.append(int(part))
    return tensors[match.group(1)][tuple(index)]


def test_tf1_joint_kernel_slices():
    """TF1 cells keep one kernel over [x, h] with gates i, j, f, o; inspect names its blocks."""
    from lstm_trace.gates import reorder_gates
    from lstm_trace.network import Cell

    rng = np.random.default_rng(0)
    n_in, u = 3, 4
    kernel = rng.standard_normal((n_in + u, 4 * u)).astype(np.float32)
    bias = rng.standard_normal(4 * u).astype(np.float32)
    cell = Cell("lstm", u, reorder_gates(kernel[:n_in], "tf1_lstm", "lstm"),
                reorder_gates(kernel[n_in:], "tf1_lstm", "lstm"),
                bias=reorder_gates(bias, "tf1_lstm", "lstm"), layout="tf1_lstm")
    from lstm_trace.inspect import gate_locations

    locations = gate_locations(cell)
    assert [g["gate"] for g in locations] == ["input_gate", "candidate", "forget_gate", "output_gate"]
    assert locations[1]["kernel"] == "kernel[0:3, 4:8]"
    per_gate = cell.gate_weights()
    for entry in locations:
        for tensor in ("kernel", "recurrent_kernel", "bias"):
            np.testing.assert_array_equal(
                _evaluate(entry[tensor], {"kernel": kernel, "bias": bias}), per_gate[entry["gate"]][tensor])


def test_tf1_gru_gates_and_candidate_kernels():
    from lstm_trace.inspect import gate_locations
    from lstm_trace.network import Cell

    rng = np.random.default_rng(1)
    n_in, u = 2, 3
    gates = rng.standard_normal((n_in + u, 2 * u)).astype(np.float32)  # r, u
    candidate = rng.standard_normal((n_in + u, u)).astype(np.float32)
    r, z = gates[:, :u], gates[:, u:]
    fused = np.concatenate([z, r, candidate], axis=1)  # canonical z, r, h
    cell = Cell("gru", u, fused[:n_in], fused[n_in:], reset_after=False, layout="tf1_gru_gates")
    locations = {g["gate"]: g for g in gate_locations(cell)}
    per_gate = cell.gate_weights()
    tensors = {"gates/kernel": gates, "candidate/kernel": candidate}
    for gate, entry in locations.items():
        for tensor in ("kernel", "recurrent_kernel"):
            np.testing.assert_array_equal(_evaluate(entry[tensor], tensors), per_gate[gate][tensor])


TF1_CASES = ["basic_lstm", "lstm_peepholes", "lstm_projection_clip", "gru", "basic_rnn_relu_meta",
             "multi_dynamic", "bidirectional", "lstm_block_cell", "lstm_block_fused",
             "lstm_block_fused_peepholes",
             "cudnn_compatible_lstm", "gru_block_cell"]


@pytest.fixture(scope="session")
def tf1_checkpoints():
    from conftest import build_fixtures

    return build_fixtures("tf1_cells", legacy_keras=True)


@pytest.mark.parametrize("name", TF1_CASES)
def test_tf1_gate_slices_point_into_the_checkpoint(tf1_checkpoints, name):
    """Every slice inspect names, read from the checkpoint's own tensors, is that gate."""
    from lstm_trace.loaders.tf.bundle import TensorBundle

    path = tf1_checkpoints / name / "model"
    assert (tf1_checkpoints / name).exists(), f"no {name} case in the TF1 fixtures"
    network = lstm_trace.load(path)
    bundle = TensorBundle.open(path)
    tensors = {key: bundle.read(key) for key in list(bundle)}
    info = describe(network)
    recurrent = [layer for layer in info["layers"] if layer["role"] == "recurrent"]
    assert recurrent
    for entry, layer in zip(recurrent, network.recurrent_layers, strict=True):
        for direction, canonical in zip(entry["directions"], layer.directions, strict=True):
            per_gate = canonical.cell.gate_weights()
            for gate in direction["gates"]:
                for tensor in ("kernel", "recurrent_kernel", "bias"):
                    if tensor not in gate:
                        continue
                    expression = gate[tensor]
                    tensor_name = expression.split("[")[0]
                    index = expression[len(tensor_name):]
                    # The file names the tensor relative to the cell's scope.
                    found = [key for key in tensors if key.endswith("/" + tensor_name)
                             and _matches(tensors[key], index, per_gate[gate["gate"]][tensor])]
                    assert found, (name, direction["direction"], gate["gate"], expression)


def _matches(array: np.ndarray, index: str, expected: np.ndarray) -> bool:
    try:
        value = _evaluate("t" + index, {"t": array})
    except (IndexError, ValueError):
        return False
    return value.shape == expected.shape and np.array_equal(value, expected)
