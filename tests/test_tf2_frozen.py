"""Frozen TF2 graphs of Keras models (``convert_variables_to_constants_v2``, loops lowered or
kept as ``While`` functions; Keras 3 and tf_keras) traced without TensorFlow match TensorFlow
(atol 1e-5): every cell's ``hidden``/``cell`` at every step, gates recombined into them, each
layer's output, and the frozen graph's own output. Keys are the Keras layer names.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.tf2_frozen import CASES, FREEZERS
from conftest import build_fixtures
from error_record import record_error
from tf2_checks import check_against_framework, directions_by_prefix
from workflow_common import assert_user_error, invoke

import lstm_trace
from lstm_trace.loaders import LoadError

ATOL = 1e-5
BACKENDS = {"keras3": False, "keras2": True}


@pytest.fixture(scope="session")
def frozen_tf2():
    return {backend: build_fixtures("tf2_frozen", legacy_keras=legacy)
            for backend, legacy in BACKENDS.items()}


def _case(directory, name: str) -> dict:
    import json

    return next(c for c in json.loads((directory / "manifest.json").read_text())["cases"]
                if c["name"] == name)


@pytest.mark.parametrize("freezer", list(FREEZERS))
@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("name", [c["name"] for c in CASES])
def test_frozen_keras_graph_trace_matches_tensorflow(frozen_tf2, name, backend, freezer):
    directory = frozen_tf2[backend]
    case = _case(directory, name)
    network = lstm_trace.load(directory / case["files"][freezer])
    family = "TF2 frozen graphs"
    worst = check_against_framework(network, case, directory, family=family)
    assert worst < ATOL
    # What the frozen graph itself returned: the last layer's state after its last step.
    x = np.load(directory / case["input"])
    reference = np.load(directory / case["reference"])
    frozen = reference["__frozen_output__"]
    trace = network.trace(x)
    layer = network.layer(case["last"])
    finals = []
    for prefix, direction in layer.trace_prefixes():
        hidden = trace[f"{prefix}/hidden"]
        finals.append(hidden[:, 0] if direction.reverse else hidden[:, -1])
    merged = np.concatenate(finals, -1) if layer.merge_mode == "concat" else sum(finals)
    err = float(np.abs(merged - frozen).max())
    assert err < ATOL, err
    record_error(family, f"{backend}/{name}/{freezer}/output", err)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_frozen_keras_graph_names_and_structure(frozen_tf2, backend):
    directory = frozen_tf2[backend]
    network = lstm_trace.load(directory / _case(directory, "masked_bi")["files"]["lowered"])
    assert [layer.name for layer in network.layers] == ["pad", "bi", "top"]
    assert sorted(directions_by_prefix(network)) == ["bi/backward", "bi/forward", "top"]
    network = lstm_trace.load(directory / _case(directory, "embedding")["files"]["functional"])
    assert [layer.name for layer in network.layers] == ["tokens", "bi_gru", "tail"]
    assert network.layer("tokens").mask_zero
    assert network.layer("bi_gru").merge_mode == "sum"
    network = lstm_trace.load(directory / _case(directory, "backwards")["files"]["functional"])
    gru = network.layer("back_gru")
    assert gru.directions[0].reverse and not gru.directions[0].cell.reset_after
    assert network.layer("proj").activation == "tanh"
    # Keras's own hard sigmoid of each version: relu6(x + 3) / 6, or clip(0.2 x + 0.5, 0, 1).
    network = lstm_trace.load(directory / _case(directory, "stack")["files"]["lowered"])
    expected = "hard_sigmoid_keras2" if backend == "keras2" else "hard_sigmoid"
    assert network.layer("enc").directions[0].cell.recurrent_activation == expected


def test_frozen_keras_graph_cli_traces_layer_names(frozen_tf2):
    directory = frozen_tf2["keras3"]
    case = _case(directory, "stack")
    result = invoke("inspect", directory / case["files"]["lowered"], "--format", "json")
    assert result.exit_code == 0, result.output
    for name in ("enc", "mid", "last"):
        assert f'"{name}"' in result.output


def test_frozen_graph_with_an_unknown_loop_is_refused_in_one_line(frozen_tf2, tmp_path):
    """A loop body that is not a Keras cell (here: an LSTM whose ``o * tanh(c')`` became
    ``o + tanh(c')``) is refused with one line, never traced wrongly."""
    from lstm_trace.loaders.tf.meta_graph import MetaGraph

    directory = frozen_tf2["keras3"]
    source = directory / _case(directory, "stack")["files"]["functional"]
    data = source.read_bytes()
    meta = MetaGraph(data, source.name, frozen=True)
    body = next(g for g in meta.graphs.values() if "enc" in g.name and "body" in g.name)
    mul = next(n for n in body.nodes.values()
               if n.op == "Mul" and any("Tanh_1" in t[0] for t in n.inputs))
    name = mul.name.encode()
    # The NodeDef's op field follows its name: b"\x12\x03Mul" -> b"\x12\x03Add".
    at = data.index(name) + len(name)
    assert data[at:at + 5] == b"\x12\x03Mul"
    broken = tmp_path / "broken.pb"
    broken.write_bytes(data[:at] + b"\x12\x03Add" + data[at + 5:])
    with pytest.raises(LoadError, match=r"the loop of layer 'enc' \(stack_model_1/enc_1\) is not an "
                                        r"LSTM, GRU or SimpleRNN cell \(as an LSTM: .*\)"):
        lstm_trace.load(broken)
    assert_user_error(invoke("inspect", broken), "is not an LSTM, GRU or SimpleRNN cell")


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_frozen_keras_graphs_lstm_trace_cannot_read_are_refused_in_one_line(frozen_tf2, backend):
    directory = frozen_tf2[backend]
    files = _case(directory, "extras")["files"]
    assert_user_error(invoke("inspect", directory / files["bidirectional_stack"]),
                      "'bi_stack' is a Bidirectional RNN(StackedRNNCells)")
    assert_user_error(invoke("inspect", directory / files["unrolled"]),
                      "no while loop at all", "unroll=True")
    assert_user_error(invoke("inspect", directory / files["deep_loop"]),
                      "is not an LSTM, GRU or SimpleRNN cell")


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_frozen_keras_graph_layer_after_a_conv_is_traced_from_its_own_input(frozen_tf2, backend):
    """A Conv1D is not replayed: the LSTM after it asks for --layer-input and, given the
    conv's output, ends where the frozen graph did."""
    directory = frozen_tf2[backend]
    path = directory / _case(directory, "extras")["files"]["conv_front"]
    x = np.load(directory / "conv_front_layer_input.npy")
    result = invoke(path, directory / "conv_front_layer_input.npy", "--format", "npz", "-o", "-")
    assert_user_error(result, "--layer-input")
    network = lstm_trace.load(path)
    trace = network.trace(x, layer_input=True)
    frozen = np.load(directory / "conv_front_output.npy")
    err = float(np.abs(trace["after_conv/hidden"][:, -1] - frozen).max())
    assert err < ATOL, err
    record_error("TF2 frozen graphs", f"{backend}/conv_front", err)


def test_classic_graph_mode_freeze_of_a_tf_keras_session_matches_the_session(frozen_tf2):
    """``convert_variables_to_constants(sess, ...)`` of a tf_keras session graph: constants
    named like TF1 cells (``enc/lstm_cell/kernel``, (3, 16): not a TF1 [x, h] kernel) and
    loops that also carry a training graph's gradient accumulators."""
    directory = frozen_tf2["keras2"]
    network = lstm_trace.load(directory / _case(directory, "extras")["files"]["classic"])
    assert [layer.name for layer in network.layers] == ["pad", "enc", "bi"]
    x = np.load(directory / "classic_input.npy")
    reference = np.load(directory / "classic_reference.npz")
    trace = network.trace(x)
    mask = reference["mask"]
    np.testing.assert_array_equal(trace["enc/mask"], mask)
    err = float(np.abs(trace["enc/hidden"] - reference["enc"])[mask].max())
    final = np.concatenate([trace["bi/forward/hidden"][:, -1], trace["bi/backward/hidden"][:, 0]], -1)
    err = max(err, float(np.abs(final - reference["output"]).max()))
    assert err < ATOL, err
    record_error("TF2 frozen graphs", "keras2/classic", err)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_frozen_keras_decoder_starts_from_the_encoders_final_states(frozen_tf2, backend):
    """``LSTM(initial_state=[h, c])`` of an encoder's ``return_state``: the decoder's loop starts
    from the encoder loop's final h and c, so the replay wires them in (``enc:1``, ``enc:2``)."""
    directory = frozen_tf2[backend]
    network = lstm_trace.load(directory / _case(directory, "extras")["files"]["initial_state"])
    assert network.layer("dec").initial_state_from == ("enc:1", "enc:2")
    trace = network.trace(np.load(directory / "extras_input.npy"))
    err = float(np.abs(trace["dec/hidden"][:, -1] - np.load(directory / "initial_state_output.npy")).max())
    assert err < ATOL, err
    record_error("TF2 frozen graphs", f"{backend}/initial_state", err)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_frozen_serving_signature_and_its_savedmodel_match_keras(frozen_tf2, backend):
    """``convert_variables_to_constants_v2`` of a SavedModel's ``serving_default`` (Keras 3
    ``model.export``, tf_keras ``model.save``): the layers sit behind an inlined
    ``StatefulPartitionedCall``, which names no layer. The SavedModel directory itself is read
    by the SavedModel loader from its variables (no loop needed)."""
    directory = frozen_tf2[backend]
    files = _case(directory, "extras")["files"]
    x = np.load(directory / "extras_input.npy")
    want = np.load(directory / "served_output.npy")
    for name in ("served_lowered", "served_functional", "served_savedmodel"):
        network = lstm_trace.load(directory / files[name])
        assert [layer.name for layer in network.recurrent_layers] == ["enc", "bi"], name
        trace = network.trace(x)
        final = np.concatenate([trace["bi/forward/hidden"][:, -1], trace["bi/backward/hidden"][:, 0]], -1)
        err = float(np.abs(final - want).max())
        assert err < ATOL, (name, err)
        record_error("TF2 frozen graphs", f"{backend}/{name}", err)
