"""Frozen TF1 graphs (``.pb`` GraphDef) and TF1 SavedModels traced without TensorFlow match
TensorFlow running the frozen graph (atol 1e-5), gates recombined into TF's own states.

The fixtures (``tests/builders/tf1_frozen.py``) freeze every graph of ``tf1_cells.py``
(plus a time-major one) and export it with ``simple_save``; the references are what
TensorFlow computes from a frozen graph. Every file is loaded without options: the build-time
numbers (``forget_bias``, clips, activations) must come from the graph itself.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from builders.tf1_cells import BUILT_WITH
from builders.tf1_frozen import CASES, TIME_MAJOR_BUILT_WITH
from conftest import BUILDERS, build_fixtures
from error_record import record_error
from test_tf1_checkpoint import check_tf1_scope
from workflow_common import assert_user_error, invoke

import lstm_trace
from lstm_trace.loaders import LoadError
from lstm_trace.loaders.registry import find_format

ATOL = 1e-5
CASE = {c["name"]: c for c in CASES}
KINDS = {"frozen": "frozen.pb", "saved_model": "saved_model"}


@pytest.fixture(scope="session")
def frozen_fixtures():
    return build_fixtures("tf1_frozen", legacy_keras=True, inputs=(BUILDERS / "tf1_cells.py",))


def model_path(fixtures, name: str, kind: str = "frozen"):
    return fixtures / name / KINDS[kind]


def cell_of(network, prefix: str):
    for layer in network.recurrent_layers:
        for p, direction in layer.trace_prefixes():
            if p == prefix:
                return layer, direction
    raise KeyError(prefix)


def traces(fixtures, name: str, network) -> dict:
    """``{cell scope: trace}``: the model input's trace, or the layer's own input's."""
    case = CASE[name]
    own = case.get("layer_inputs", {})
    x = np.load(fixtures / f"{name}_input.npy")
    main = [cell_of(network, p)[0].name for s, p in case["expect"].items() if s not in own]
    out = {}
    if main:
        trace = network.trace(x, layers=sorted(set(main)))
        out = {s: trace for s in case["expect"] if s not in own}
    for scope in own:
        layer_x = np.load(fixtures / f"{name}_{scope.replace('/', '_')}_input.npy")
        layer = cell_of(network, case["expect"][scope])[0]
        out[scope] = network.trace(layer_x, layers=[layer.name], layer_input=True)
    return out


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", list(CASE))
def test_frozen_and_tf1_saved_model_trace_matches_tensorflow(frozen_fixtures, name, kind):
    network = lstm_trace.load(model_path(frozen_fixtures, name, kind))
    reference = np.load(frozen_fixtures / f"{name}_frozen_reference.npz")
    x = np.load(frozen_fixtures / f"{name}_input.npy")
    for scope, trace in traces(frozen_fixtures, name, network).items():
        prefix = CASE[name]["expect"][scope]
        _, direction = cell_of(network, prefix)
        cell, reverse = direction.cell, direction.reverse
        check_tf1_scope(trace, prefix, cell, reverse, reference, scope, x,
                        family="TF1 frozen graphs", case=f"{name}/{kind}/{scope}")


@pytest.mark.parametrize("kind", list(KINDS))
def test_frozen_graph_gives_forget_bias_and_clips_without_options(frozen_fixtures, kind):
    file = KINDS[kind].replace("saved_model", "saved_model.pb")
    network = lstm_trace.load(model_path(frozen_fixtures, "lstm_projection_clip", kind))
    cell = network.recurrent_layers[0].directions[0].cell
    built = BUILT_WITH["lstm_projection_clip"]
    assert (cell.forget_bias, cell.cell_clip, cell.proj_clip) == pytest.approx(
        (1.0, built["cell_clip"], built["proj_clip"]))
    assert any(f"cell_clip=0.5, proj_clip=0.3 (read from {file})" in n for n in network.notes)
    network = lstm_trace.load(model_path(frozen_fixtures, "basic_lstm_forget_bias", kind))
    assert network.recurrent_layers[0].directions[0].cell.forget_bias == pytest.approx(0.3)
    assert not any("assumed" in n for n in network.notes), network.notes


def test_frozen_graph_activation_from_the_op_type(frozen_fixtures):
    cells = [lstm_trace.load(model_path(frozen_fixtures, n)).recurrent_layers[0].directions[0].cell
             for n in ("basic_rnn_relu_meta", "basic_lstm_softsign")]
    assert [c.activation for c in cells] == ["relu", "softsign"]
    stack = lstm_trace.load(model_path(frozen_fixtures, "control_flow_v1_meta"))
    assert stack.recurrent_layers[1].directions[0].cell.activation == "relu"


def test_time_major_graph_takes_batch_major_input(frozen_fixtures):
    network = lstm_trace.load(model_path(frozen_fixtures, "time_major_stack"))
    lstm = network.recurrent_layers[0].directions[0].cell
    assert (lstm.forget_bias, lstm.cell_clip) == pytest.approx(
        (TIME_MAJOR_BUILT_WITH["forget_bias"], TIME_MAJOR_BUILT_WITH["cell_clip"]))
    assert lstm.peepholes is not None
    assert any(n.startswith("Placeholder: frozen.pb feeds it to the RNN time-major") for n in
               network.notes), network.notes
    batch_major = lstm_trace.load(model_path(frozen_fixtures, "multi_dynamic"))
    assert not any("time-major" in n for n in batch_major.notes)
    x = np.load(frozen_fixtures / "time_major_stack_input.npy")
    trace = network.trace(x)
    assert trace["rnn/multi_rnn_cell/cell_1/gru_cell/hidden"].shape == (*x.shape[:2], 4)


def test_frozen_bidirectional_is_one_layer_and_partitioned_kernels_are_joined(frozen_fixtures):
    (layer,) = lstm_trace.load(model_path(frozen_fixtures, "bidirectional")).recurrent_layers
    assert layer.name == "bidirectional_rnn" and layer.bidirectional
    network = lstm_trace.load(model_path(frozen_fixtures, "sharded_partitioned"))
    cell = network.recurrent_layers[0].directions[0].cell
    assert cell.kernel.shape == (3, 24) and cell.projection.shape == (6, 4)
    assert cell.forget_bias == pytest.approx(BUILT_WITH["sharded_partitioned"]["forget_bias"])


def test_frozen_separate_rnns_need_layer_input_for_the_second(frozen_fixtures):
    network = lstm_trace.load(model_path(frozen_fixtures, "separate_rnns"))
    # The graph says the decoder reads its own placeholder, not the encoder's output.
    assert network.inbound["decoder/rnn/gru_cell"] == ("<graph input Placeholder_1>",)
    assert any("reads the graph input 'Placeholder_1', not 'Placeholder'" in n
               for n in network.notes), network.notes
    with pytest.raises(ValueError, match="--layer-input"):
        network.trace(np.load(frozen_fixtures / "separate_rnns_input.npy"),
                      layers=["decoder/rnn/gru_cell"])


@pytest.mark.parametrize("kind", list(KINDS))
def test_rnns_on_the_same_graph_input_are_both_traced_from_input(frozen_fixtures, kind):
    """Their sizes would let the GRU read the LSTM's output; the graph says it reads x."""
    network = lstm_trace.load(model_path(frozen_fixtures, "two_rnns_same_input", kind))
    assert network.inbound["b/gru_cell"] == ()
    assert not any("assumed to take the previous RNN's output" in n for n in network.notes)
    trace = network.trace(np.load(frozen_fixtures / "two_rnns_same_input_input.npy"))
    reference = np.load(frozen_fixtures / "two_rnns_same_input_frozen_reference.npz")
    for scope in ("a/lstm_cell", "b/gru_cell"):
        err = np.abs(trace[f"{scope}/hidden"] - reference[f"{scope}/output"]).max()
        record_error("TF1 frozen graphs", f"two_rnns_same_input/{kind}/{scope}", err)


def test_frozen_graph_lists_constants_no_cell_uses(frozen_fixtures):
    network = lstm_trace.load(model_path(frozen_fixtures, "basic_lstm"))
    assert network.source == "frozen TF graph frozen.pb"
    # The dense head was pruned away by freezing (the model returns the RNN's outputs).
    assert network.unexplained == []
    network = lstm_trace.load(model_path(frozen_fixtures, "basic_lstm", "saved_model"))
    assert network.source == "TF1 SavedModel saved_model"
    assert any(u.startswith("dense/kernel ") for u in network.unexplained), network.unexplained


def test_formats_are_told_apart_by_content(frozen_fixtures, tmp_path):
    frozen = model_path(frozen_fixtures, "gru")
    assert find_format(frozen).name == "tf_frozen_graph"
    assert find_format(model_path(frozen_fixtures, "gru", "saved_model")).name == "saved_model"
    assert find_format(frozen_fixtures / "gru" / "saved_model" / "saved_model.pb").name == "saved_model"
    # A .meta (MetaGraphDef) and an ONNX ModelProto are not GraphDefs.
    meta = tmp_path / "model.pb"
    meta.write_bytes((frozen_fixtures / "gru" / "model.meta").read_bytes())
    onnx_like = tmp_path / "model2.pb"
    onnx_like.write_bytes(b"\x08\x08\x12\x07pytorch\x1a\x032.1")
    from lstm_trace.loaders import tf_frozen_graph

    assert not tf_frozen_graph.match(meta) and not tf_frozen_graph.match(onnx_like)
    renamed = tmp_path / "graph.bin"
    renamed.write_bytes(frozen.read_bytes())
    assert find_format(renamed).name == "tf_frozen_graph"  # content, not extension


def test_graph_without_cells_is_a_clear_error(tmp_path):
    node = b"\x0a\x01x\x12\x0bPlaceholder"
    path = tmp_path / "graph.pb"
    path.write_bytes(b"\x0a" + bytes([len(node)]) + node)
    with pytest.raises(LoadError, match="frozen TF graph holds no recognisable RNN cell"):
        lstm_trace.load(path)


def test_truncated_frozen_graph_is_exit_2(frozen_fixtures, tmp_path):
    data = model_path(frozen_fixtures, "lstm_peepholes").read_bytes()
    path = tmp_path / "cut.pb"
    path.write_bytes(data[: len(data) // 2])
    result = invoke(path, frozen_fixtures / "lstm_peepholes_input.npy")
    assert_user_error(result, "cut.pb")


def test_commands_work_on_frozen_graphs_and_tf1_saved_models(frozen_fixtures, tmp_path):
    x = frozen_fixtures / "multi_dynamic_input.npy"
    for kind in KINDS:
        model = model_path(frozen_fixtures, "multi_dynamic", kind)
        result = invoke("inspect", model)
        assert result.exit_code == 0, result.output
        assert "rnn/multi_rnn_cell/cell_1/gru_cell" in result.output
        golden = tmp_path / f"{kind}.npz"
        for args in (("trace", model, x, "--format", "npz", "-o", golden),
                     ("check", model, x, "--golden", golden),
                     ("extract", model, "-o", tmp_path / f"{kind}_w.npz"),
                     ("stats", model, x),
                     ("plot", model, x, "-o", tmp_path / f"{kind}.png")):
            result = invoke(*args)
            assert result.exit_code == 0, (args[0], result.output)
    weights = np.load(tmp_path / "frozen_w.npz")
    assert any(k.startswith("rnn/multi_rnn_cell/cell_0/lstm_cell/") for k in weights.files)


def test_frozen_loading_never_imports_tensorflow(frozen_fixtures):
    lstm_trace.load(model_path(frozen_fixtures, "multi_dynamic")).trace(
        np.load(frozen_fixtures / "multi_dynamic_input.npy"))
    assert "tensorflow" not in sys.modules


# ------------------------------------------------------------------ hand-made (hostile) graphs


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _const(name: str, shape: tuple[int, ...], content: bytes, splat: bool = False) -> bytes:
    """A NodeDef ``Const`` holding a float32 TensorProto, read by an Identity (a frozen variable);
    ``splat``: ``content`` goes to ``float_val`` (TF repeats the last value over the shape)."""
    dims = b"".join(_field(2, _varint(1 << 3) + _varint(d)) for d in shape)
    tensor = _varint(1 << 3) + _varint(1) + _field(2, dims) + _field(5 if splat else 4, content)
    attr = _field(1, b"value") + _field(2, _field(8, tensor))
    return _field(1, _field(1, name.encode()) + _field(2, b"Const") + _field(5, attr))


def _identity(name: str, source: str) -> bytes:
    return _field(1, _field(1, name.encode()) + _field(2, b"Identity") + _field(3, source.encode()))


def test_hand_made_graph_of_constants_is_traced(tmp_path):
    """A GraphDef written without TensorFlow: a BasicRNNCell's kernel and bias as constants."""
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((5, 2)).astype(np.float32)  # 3 inputs + 2 units
    bias = rng.standard_normal(2).astype(np.float32)
    graph = (_const("rnn/basic_rnn_cell/kernel", (5, 2), kernel.tobytes())
             + _identity("rnn/basic_rnn_cell/kernel/read", "rnn/basic_rnn_cell/kernel")
             + _const("rnn/basic_rnn_cell/bias", (2,), bias.tobytes())
             + _identity("rnn/basic_rnn_cell/bias/read", "rnn/basic_rnn_cell/bias"))
    path = tmp_path / "graph.pb"
    path.write_bytes(graph)
    network = lstm_trace.load(path)
    x = rng.standard_normal((1, 4, 3)).astype(np.float32)
    h = np.zeros(2, np.float32)
    expected = []
    for t in range(4):
        h = np.tanh(x[0, t] @ kernel[:3] + h @ kernel[3:] + bias)
        expected.append(h)
    assert np.allclose(network.trace(x)["rnn/basic_rnn_cell/hidden"][0], expected, atol=1e-6)
    # No op uses the kernel, so the activation is TF's default and said to be assumed.
    assert any("assumed activation=tanh" in n for n in network.notes), network.notes


@pytest.mark.parametrize("shape, content, splat", [
    ((5, 8), b"\0" * 12, False),  # fewer bytes than the shape needs
    ((1 << 20, 1 << 20), b"\0" * 16, False),  # a shape far larger than any content
    ((1 << 15, 1 << 15), b"\0" * 4, True),  # one stored value for a billion elements
])
def test_constant_that_does_not_fit_its_shape_is_a_clean_error(tmp_path, shape, content, splat):
    graph = (_const("rnn/lstm_cell/kernel", shape, content, splat)
             + _identity("rnn/lstm_cell/kernel/read", "rnn/lstm_cell/kernel"))
    path = tmp_path / "bad.pb"
    path.write_bytes(graph)
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 3), np.float32))
    result = invoke(path, x)
    assert_user_error(result, "bad.pb")
