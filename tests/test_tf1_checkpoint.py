"""TF1 Saver checkpoints traced without TensorFlow match TensorFlow's own states (atol 1e-5).

The fixtures (``tests/builders/tf1_cells.py``) are graphs built by ``tf.compat.v1`` with
random weights; the references are TensorFlow's per-step states and driver outputs.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
from builders.tf1_cells import BUILT_WITH, CASES, NO_CELL_CASE
from click.testing import CliRunner
from conftest import build_fixtures
from error_record import record_error
from recombine import previous_states, recombine_gru

import lstm_trace
from lstm_trace.activations import get_activation
from lstm_trace.cli import main
from lstm_trace.loaders import LoadError
from lstm_trace.loaders.tf1_checkpoint import find_cells

ATOL = 1e-5
CASE = {c["name"]: c for c in CASES}


@pytest.fixture(scope="session")
def tf1_fixtures():
    return build_fixtures("tf1_cells", legacy_keras=True)


def load(fixtures, name: str, **options):
    return lstm_trace.load(fixtures / name / "model", **{**CASE[name]["options"], **options})


def directions_by_prefix(network) -> dict:
    return {prefix: (layer, d) for layer in network.recurrent_layers
            for prefix, d in layer.trace_prefixes()}


def recombine_tf1_lstm(trace, prefix: str, cell, reverse: bool):
    """``c = clip(f c_prev + i g)``, ``h = clip((o φ(c)) P)`` from the recorded gates."""
    i, f = trace[f"{prefix}/input_gate"], trace[f"{prefix}/forget_gate"]
    g, o = trace[f"{prefix}/candidate"], trace[f"{prefix}/output_gate"]
    recorded = trace[f"{prefix}/cell"]
    steps = recorded.shape[1]
    c = np.empty_like(recorded)
    for t in range(steps):
        prev_t = t + 1 if reverse else t - 1
        prev = recorded[:, prev_t] if 0 <= prev_t < steps else np.zeros_like(recorded[:, 0])
        c[:, t] = f[:, t] * prev + i[:, t] * g[:, t]
    if cell.cell_clip is not None:
        c = np.clip(c, -cell.cell_clip, cell.cell_clip)
    h = o * get_activation(cell.activation)(c)
    if cell.projection is not None:
        h = h @ cell.projection
        if cell.proj_clip is not None:
            h = np.clip(h, -cell.proj_clip, cell.proj_clip)
    return h, c


def sigmoid(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


def check_tf1_gru_gates(trace, prefix: str, reference, scope: str, reverse: bool, activation) -> None:
    """Each GRU gate against TF's own equations, with TF's own weights and states::

        r, u = split(σ([x, h] W_gates + b_gates))      h̃ = φ([x, r ⊙ h] W_cand + b_cand)

    ``h`` is TensorFlow's state before the step, so ``r`` is checked both directly and
    through the candidate it produces (nothing here goes through lstm-trace's layouts).
    """
    x = reference[f"{scope}/__input__"]
    n = x.shape[-1]
    h_prev = previous_states(reference[f"{scope}/hidden"], reverse=reverse)
    units = h_prev.shape[-1]
    gates = sigmoid(np.concatenate([x, h_prev], -1) @ reference[f"{scope}/__gate_kernel__"]
                    + reference[f"{scope}/__gate_bias__"])
    r, u = gates[..., :units], gates[..., units:]
    kernel = reference[f"{scope}/__candidate_kernel__"]
    candidate = activation(x @ kernel[:n] + (r * h_prev) @ kernel[n:]
                           + reference[f"{scope}/__candidate_bias__"])
    for q, want in (("reset_gate", r), ("update_gate", u), ("candidate", candidate)):
        err = np.abs(trace[f"{prefix}/{q}"] - want).max()
        assert err < ATOL, (scope, q, err)
    # The recorded reset gate alone, through TF's candidate weights:
    mine = activation(x @ kernel[:n] + (trace[f"{prefix}/reset_gate"] * h_prev) @ kernel[n:]
                      + reference[f"{scope}/__candidate_bias__"])
    assert np.abs(mine - trace[f"{prefix}/candidate"]).max() < ATOL, scope


def trace_case(fixtures, name: str, network=None):
    """``{cell scope: (trace, prefix, cell, reverse)}`` for every expected cell of a case."""
    case = CASE[name]
    network = network or load(fixtures, name)
    x = np.load(fixtures / f"{name}_input.npy")
    own_input = case.get("layer_inputs", {})
    by_prefix = directions_by_prefix(network)
    main_layers = [by_prefix[p][0].name for s, p in case["expect"].items() if s not in own_input]
    traces = {}
    if main_layers:
        trace = network.trace(x, layers=main_layers)
        for scope in case["expect"]:
            if scope not in own_input:
                traces[scope] = trace
    for scope in own_input:
        layer_x = np.load(fixtures / f"{name}_{scope.replace('/', '_')}_input.npy")
        traces[scope] = network.trace(layer_x, layers=[by_prefix[case["expect"][scope]][0].name],
                                      layer_input=True)
    return network, {
        scope: (traces[scope], prefix, by_prefix[prefix][1].cell, by_prefix[prefix][1].reverse)
        for scope, prefix in case["expect"].items()
    }


@pytest.mark.parametrize("name", list(CASE))
def test_tf1_trace_matches_tensorflow(tf1_fixtures, name):
    network, cells = trace_case(tf1_fixtures, name)
    reference = np.load(tf1_fixtures / f"{name}_reference.npz")
    x = np.load(tf1_fixtures / f"{name}_input.npy")
    for scope, (trace, prefix, cell, reverse) in cells.items():
        if cell.kind == "lstm":
            assert f"{scope}/cell" in reference.files, scope
        if cell.kind == "gru":
            assert f"{scope}/__gate_kernel__" in reference.files, scope
        check_tf1_scope(trace, prefix, cell, reverse, reference, scope, x,
                        family="TF1 cells", case=f"{name}/{scope}")


def check_tf1_scope(trace, prefix: str, cell, reverse: bool, reference, scope: str, x,
                    *, family: str, case: str) -> None:
    """One TF1 cell scope's trace against TensorFlow's reference: states per step, the
    driver's outputs and final states, and the gates recombined into TF's own states (and,
    where the builder saved TF's GRU weights, each GRU gate against TF's equations)."""
    assert f"{scope}/hidden" in reference.files, scope  # the case's expectation is real
    for q in ("hidden", "cell"):
        if f"{scope}/{q}" in reference.files:
            got, want = trace[f"{prefix}/{q}"], reference[f"{scope}/{q}"]
            assert got.shape == want.shape and got.dtype == np.float32
            assert np.abs(got - want).max() < ATOL, (scope, q, np.abs(got - want).max())
            record_error(family, case, np.abs(got - want).max())
    # The driver's own outputs and final states (bw: final state is at position 0).
    if f"{scope}/output" in reference.files:
        assert np.abs(trace[f"{prefix}/hidden"] - reference[f"{scope}/output"]).max() < ATOL
    last = 0 if reverse else -1
    for q in ("hidden", "cell"):
        if f"{scope}/final_{q}" in reference.files:
            err = np.abs(trace[f"{prefix}/{q}"][:, last] - reference[f"{scope}/final_{q}"]).max()
            assert err < ATOL, (scope, q, err)
    # Gates recombined into TensorFlow's own states.
    if cell.kind == "lstm":
        h, c = recombine_tf1_lstm(trace, prefix, cell, reverse)
        if f"{scope}/cell" in reference.files:
            assert np.abs(c - reference[f"{scope}/cell"]).max() < ATOL
        assert np.abs(h - reference[f"{scope}/hidden"]).max() < ATOL
    elif cell.kind == "gru":
        h = recombine_gru(trace, prefix, reverse=reverse)
        assert np.abs(h - reference[f"{scope}/hidden"]).max() < ATOL
        if f"{scope}/__gate_kernel__" in reference.files:
            check_tf1_gru_gates(trace, prefix, reference, scope, reverse,
                                get_activation(cell.activation))
    for q in cell.quantities:
        assert trace[f"{prefix}/{q}"].shape[:2] == x.shape[:2]


def test_tf1_trace_keys_are_variable_scopes(tf1_fixtures):
    network, _ = trace_case(tf1_fixtures, "multi_dynamic")
    assert [layer.name for layer in network.recurrent_layers] == list(CASE["multi_dynamic"]["expect"])
    trace = network.trace(np.load(tf1_fixtures / "multi_dynamic_input.npy"))
    assert "rnn/multi_rnn_cell/cell_1/gru_cell/update_gate" in trace
    assert "rnn/multi_rnn_cell/cell_0/lstm_cell/forget_gate" in trace


def test_tf1_bidirectional_is_one_layer_named_by_the_scope_above_fw_bw(tf1_fixtures):
    network = load(tf1_fixtures, "bidirectional")
    (layer,) = network.recurrent_layers
    assert layer.name == "bidirectional_rnn" and layer.bidirectional
    assert [(d.name, d.reverse) for d in layer.directions] == [("forward", False), ("backward", True)]
    assert layer.directions[1].cell.peepholes is not None  # bw is the LSTMCell with peepholes
    trace = network.trace(np.load(tf1_fixtures / "bidirectional_input.npy"))
    assert {"bidirectional_rnn/forward/hidden", "bidirectional_rnn/backward/cell"} <= set(trace)


def test_tf1_bw_stack_cells_read_their_own_direction(tf1_fixtures):
    network = load(tf1_fixtures, "bidirectional_stacks")
    bw0 = "bidirectional_rnn/bw/multi_rnn_cell/cell_0/gru_cell"
    assert network.inbound[bw0] == ()  # the bw stack starts from the model input
    reverse = {layer.name: layer.directions[0].reverse for layer in network.recurrent_layers}
    assert reverse[bw0] and not reverse["bidirectional_rnn/fw/multi_rnn_cell/cell_1/lstm_cell"]


def test_tf1_basic_lstm_assumes_forget_bias_one_and_says_so(tf1_fixtures):
    network = load(tf1_fixtures, "basic_lstm")
    cell = network.recurrent_layers[0].directions[0].cell
    assert cell.forget_bias == 1.0
    assert any("assumed" in n and "forget_bias=1.0" in n and "--forget-bias" in n
               for n in network.notes), network.notes


def test_tf1_forget_bias_option_is_needed_without_meta(tf1_fixtures):
    """Built with forget_bias=0.3 and saved without .meta: the default 1.0 is wrong."""
    name = "basic_lstm_forget_bias"
    network = load(tf1_fixtures, name, forget_bias=None)
    trace = network.trace(np.load(tf1_fixtures / f"{name}_input.npy"))
    reference = np.load(tf1_fixtures / f"{name}_reference.npz")
    assert np.abs(trace["rnn/basic_lstm_cell/cell"] - reference["rnn/basic_lstm_cell/cell"]).max() > 1e-3


def test_tf1_forget_bias_read_from_meta_graph(tf1_fixtures):
    network = load(tf1_fixtures, "basic_lstm_forget_bias_meta")
    cell = network.recurrent_layers[0].directions[0].cell
    assert cell.forget_bias == pytest.approx(BUILT_WITH["basic_lstm_forget_bias_meta"]["forget_bias"])
    assert any("forget_bias=0.3 (read from model.meta)" in n for n in network.notes), network.notes


def test_tf1_clips_read_from_meta_graph(tf1_fixtures):
    cell = load(tf1_fixtures, "lstm_projection_clip").recurrent_layers[0].directions[0].cell
    built = BUILT_WITH["lstm_projection_clip"]
    assert cell.cell_clip == pytest.approx(built["cell_clip"])
    assert cell.proj_clip == pytest.approx(built["proj_clip"])
    assert cell.projection.shape == (5, 3) and cell.state_size == 3


def test_tf1_clips_are_needed_without_meta(tf1_fixtures):
    name = "lstm_projection_clip_options"
    network = load(tf1_fixtures, name, cell_clip=None, proj_clip=None)
    assert any("no cell_clip" in n and "no proj_clip" in n for n in network.notes), network.notes
    trace = network.trace(np.load(tf1_fixtures / f"{name}_input.npy"))
    reference = np.load(tf1_fixtures / f"{name}_reference.npz")
    assert np.abs(trace["rnn/lstm_cell/cell"] - reference["rnn/lstm_cell/cell"]).max() > 1e-2


def test_tf1_meta_graph_with_tf1_style_while_loops(tf1_fixtures):
    """TF 1.x graphs keep dynamic_rnn's loop body in the main graph (Enter/Switch/Merge)."""
    network = load(tf1_fixtures, "control_flow_v1_meta")
    lstm, gru = (layer.directions[0].cell for layer in network.recurrent_layers)
    built = BUILT_WITH["control_flow_v1_meta"]
    assert (lstm.forget_bias, lstm.cell_clip, lstm.proj_clip) == pytest.approx(
        (built["forget_bias"], built["cell_clip"], built["proj_clip"]))
    assert gru.activation == built["gru_activation"]


def test_tf1_activation_read_from_meta_graph(tf1_fixtures):
    cell = load(tf1_fixtures, "basic_rnn_relu_meta").recurrent_layers[0].directions[0].cell
    assert cell.activation == "relu"


def test_tf1_activation_option_is_needed_without_meta(tf1_fixtures):
    name = "basic_lstm_softsign"
    network = load(tf1_fixtures, name, activation=None)
    assert network.recurrent_layers[0].directions[0].cell.activation == "tanh"
    trace = network.trace(np.load(tf1_fixtures / f"{name}_input.npy"))
    reference = np.load(tf1_fixtures / f"{name}_reference.npz")
    assert np.abs(trace["rnn/basic_lstm_cell/hidden"] - reference["rnn/basic_lstm_cell/hidden"]).max() > 1e-3


def test_tf1_block_cell_attributes_read_from_meta_graph(tf1_fixtures):
    cell = load(tf1_fixtures, "lstm_block_cell").recurrent_layers[0].directions[0].cell
    built = BUILT_WITH["lstm_block_cell"]
    assert cell.forget_bias == pytest.approx(built["forget_bias"])
    assert cell.cell_clip == pytest.approx(built["cell_clip"])


def test_tf1_block_fused_cell_peepholes_are_read(tf1_fixtures):
    """LSTMBlockFusedCell with use_peephole=True: its w_*_diag variables become peepholes."""
    with_peepholes = load(tf1_fixtures, "lstm_block_fused_peepholes").recurrent_layers[0]
    without = load(tf1_fixtures, "lstm_block_fused").recurrent_layers[0]
    assert sorted(with_peepholes.directions[0].cell.peepholes) == [
        "forget_gate", "input_gate", "output_gate"]
    assert without.directions[0].cell.peepholes is None


def test_tf1_cudnn_compatible_lstm_defaults_to_no_forget_bias(tf1_fixtures):
    cell = load(tf1_fixtures, "cudnn_compatible_lstm").recurrent_layers[0].directions[0].cell
    assert cell.forget_bias == 0.0


def test_tf1_unexplained_variables_are_listed(tf1_fixtures):
    # Optimizer slots and counters are one line each, not one entry per variable (chiron
    # 0.6.1.1's training checkpoints listed about 100 of them).
    network = load(tf1_fixtures, "basic_lstm")
    assert network.unexplained == [
        "dense/bias (2,)", "dense/kernel (5, 2)",
        "8 optimizer slot variables (Adam, Adam_1; e.g. dense/bias/Adam)",
        "training counters (beta1_power, beta2_power, global_step)",
    ]


def test_tf1_sharded_and_partitioned_checkpoint(tf1_fixtures):
    from lstm_trace.loaders.tf.bundle import TensorBundle

    bundle = TensorBundle.open(tf1_fixtures / "sharded_partitioned" / "model")
    assert bundle.num_shards == 2
    assert bundle.slice_entries("layer1/lstm_cell/kernel")  # stored in 3 pieces
    network = load(tf1_fixtures, "sharded_partitioned")
    assert [layer.name for layer in network.layers] == ["layer1/lstm_cell", "layer2/rnn/gru_cell"]
    # The .meta graph reads a partitioned kernel through a concat of its parts.
    cell = network.layers[0].directions[0].cell
    assert cell.forget_bias == pytest.approx(BUILT_WITH["sharded_partitioned"]["forget_bias"])


def test_tf1_separate_rnns_need_layer_input_for_the_second(tf1_fixtures):
    network = load(tf1_fixtures, "separate_rnns")
    # The .meta graph says the decoder reads its own placeholder, not the encoder's output.
    assert network.inbound["decoder/rnn/gru_cell"] == ("<graph input Placeholder_1>",)
    assert any("decoder/rnn/gru_cell: reads the graph input 'Placeholder_1'" in n
               for n in network.notes), network.notes
    with pytest.raises(ValueError, match="--layer-input"):
        network.trace(np.load(tf1_fixtures / "separate_rnns_input.npy"),
                      layers=["decoder/rnn/gru_cell"])


def test_tf1_checkpoint_without_cells_is_a_clear_error(tf1_fixtures):
    with pytest.raises(LoadError, match="no recognisable RNN cell.*dense/kernel"):
        lstm_trace.load(tf1_fixtures / NO_CELL_CASE / "model")


def test_tf1_loading_never_imports_tensorflow(tf1_fixtures):
    load(tf1_fixtures, "lstm_projection_clip").trace(
        np.load(tf1_fixtures / "lstm_projection_clip_input.npy"))
    assert "tensorflow" not in sys.modules


# ------------------------------------------------------------------ recognition by name and shape


def test_pre_1_0_names_are_recognised():
    shapes = {
        "RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Matrix": (7, 16),
        "RNN/MultiRNNCell/Cell0/BasicLSTMCell/Linear/Bias": (16,),
        "RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Matrix": (7, 6),
        "RNN/MultiRNNCell/Cell1/GRUCell/Gates/Linear/Bias": (6,),
        "RNN/MultiRNNCell/Cell1/GRUCell/Candidate/Linear/Matrix": (7, 3),
        "RNN/MultiRNNCell/Cell1/GRUCell/Candidate/Linear/Bias": (3,),
        "rnn/lstm_cell/weights": (9, 16), "rnn/lstm_cell/biases": (16,),
        "rnn/lstm_cell/w_f_diag": (4,), "rnn/lstm_cell/projection/weights": (4, 2),
    }
    found = {m.scope: (m.kind, m.class_name, m.units, m.input_size) for m in find_cells(shapes)}
    assert found == {
        "RNN/MultiRNNCell/Cell0/BasicLSTMCell": ("lstm", "BasicLSTMCell", 4, 3),
        "RNN/MultiRNNCell/Cell1/GRUCell": ("gru", "GRUCell", 3, 4),
        "rnn/lstm_cell": ("lstm", "LSTMCell", 4, 7),
    }


def test_contrib_layouts_are_recognised():
    shapes = {
        "a/cudnn_compatible_gru_cell/gates/kernel": (7, 8),
        "a/cudnn_compatible_gru_cell/gates/bias": (8,),
        "a/cudnn_compatible_gru_cell/candidate/input_projection/kernel": (3, 4),
        "a/cudnn_compatible_gru_cell/candidate/input_projection/bias": (4,),
        "a/cudnn_compatible_gru_cell/candidate/hidden_projection/kernel": (4, 4),
        "a/cudnn_compatible_gru_cell/candidate/hidden_projection/bias": (4,),
        "b/gru_cell/w_ru": (5, 4), "b/gru_cell/b_ru": (4,), "b/gru_cell/w_c": (5, 2),
        "b/gru_cell/b_c": (2,),
        "c/lstm_fused_cell/kernel": (8, 20), "c/lstm_fused_cell/bias": (20,),
    }
    found = {m.scope: (m.class_name, m.units, m.input_size) for m in find_cells(shapes)}
    assert found == {
        "a/cudnn_compatible_gru_cell": ("CudnnCompatibleGRUCell", 4, 3),
        "b/gru_cell": ("GRUBlockCell", 2, 3),
        "c/lstm_fused_cell": ("LSTMBlockFusedCell", 5, 3),
    }


def test_custom_cell_names_are_guessed_only_inside_an_rnn_scope():
    shapes = {"rnn/my_cell/kernel": (10, 16), "rnn/my_cell/bias": (16,),
              "dense/kernel": (10, 16), "dense/bias": (16,)}
    (match,) = find_cells(shapes)
    assert (match.scope, match.kind, match.guessed) == ("rnn/my_cell", "lstm", True)


def test_shape_that_contradicts_the_cell_name_is_a_load_error():
    with pytest.raises(LoadError, match=r"rnn/basic_lstm_cell/kernel.*\(7, 10\).*4\*units"):
        find_cells({"rnn/basic_lstm_cell/kernel": (7, 10), "rnn/basic_lstm_cell/bias": (10,)})


def test_cudnn_compatible_gru_layout_maps_to_reset_after():
    """No TF 2.21 cell writes this layout: checked against its documented equations."""
    from lstm_trace.engine import run_direction
    from lstm_trace.loaders.tf1_checkpoint import CellMatch, _gru_cell, _Settings

    rng = np.random.default_rng(0)
    n, u = 3, 4
    arrays = {
        "gates_kernel": rng.standard_normal((n + u, 2 * u)).astype(np.float32),
        "gates_bias": rng.standard_normal(2 * u).astype(np.float32),
        "candidate_input_kernel": rng.standard_normal((n, u)).astype(np.float32),
        "candidate_input_bias": rng.standard_normal(u).astype(np.float32),
        "candidate_hidden_kernel": rng.standard_normal((u, u)).astype(np.float32),
        "candidate_hidden_bias": rng.standard_normal(u).astype(np.float32),
    }
    match = CellMatch("g", "gru", "CudnnCompatibleGRUCell", {}, u, n)
    cell = _gru_cell(match, arrays, _Settings(activation="tanh"))
    x = rng.standard_normal((2, 5, n)).astype(np.float32)
    got = run_direction(cell, x).arrays["hidden"]

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    h = np.zeros((2, u), np.float32)
    for t in range(5):
        gates = sigmoid(np.concatenate([x[:, t], h], 1) @ arrays["gates_kernel"] + arrays["gates_bias"])
        r, z = gates[:, :u], gates[:, u:]
        candidate = np.tanh(x[:, t] @ arrays["candidate_input_kernel"] + arrays["candidate_input_bias"]
                            + r * (h @ arrays["candidate_hidden_kernel"] + arrays["candidate_hidden_bias"]))
        h = (1 - z) * candidate + z * h
        assert np.abs(got[:, t] - h).max() < 1e-5


# ------------------------------------------------------------------ CLI


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in result.output, (fragment, result.output)


@pytest.mark.parametrize("target", ["prefix", "directory"])
def test_cli_traces_a_tf1_checkpoint(tf1_fixtures, tmp_path, target):
    name = "basic_lstm_forget_bias"
    model = tf1_fixtures / name / "model" if target == "prefix" else tf1_fixtures / name
    out = tmp_path / "trace.npz"
    result = invoke(model, tf1_fixtures / f"{name}_input.npy", "--forget-bias", "0.3",
                    "-f", "npz", "-o", out)
    assert result.exit_code == 0, result.output
    reference = np.load(tf1_fixtures / f"{name}_reference.npz")
    with np.load(out) as trace:
        for q in ("hidden", "cell"):
            key = f"rnn/basic_lstm_cell/{q}"
            assert np.abs(trace[key] - reference[key]).max() < ATOL


def test_cli_prints_the_assumed_defaults_as_notes(tf1_fixtures):
    result = invoke(tf1_fixtures / "basic_lstm" / "model", tf1_fixtures / "basic_lstm_input.npy",
                    "-f", "csv")
    assert result.exit_code == 0, result.output
    assert "note: rnn/basic_lstm_cell: assumed forget_bias=1.0" in result.stderr
    header = result.stdout.splitlines()[0]
    assert header.startswith("sample,layer,direction,step,unit,input_gate,forget_gate")


def test_cli_rejects_an_unknown_activation(tf1_fixtures):
    result = invoke(tf1_fixtures / "basic_lstm" / "model", tf1_fixtures / "basic_lstm_input.npy",
                    "--activation", "wobble")
    assert_user_error(result, "--activation", "wobble")


@pytest.fixture()
def broken(tf1_fixtures, tmp_path):
    """A private copy of a checkpoint directory to damage."""
    target = tmp_path / "ckpt"
    shutil.copytree(tf1_fixtures / "lstm_peepholes", target)
    return target


def test_cli_truncated_data_file_is_exit_2(broken, tf1_fixtures):
    data = broken / "model.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:40])
    result = invoke(broken / "model", tf1_fixtures / "lstm_peepholes_input.npy")
    assert_user_error(result, "truncated", "model.data-00000-of-00001")


def test_cli_corrupt_data_file_is_exit_2(broken, tf1_fixtures):
    data = broken / "model.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[10] ^= 0xFF
    data.write_bytes(bytes(raw))
    result = invoke(broken, tf1_fixtures / "lstm_peepholes_input.npy")
    assert_user_error(result, "checksum mismatch")


def test_cli_truncated_index_is_exit_2(broken, tf1_fixtures):
    index = broken / "model.index"
    index.write_bytes(index.read_bytes()[:-20])
    result = invoke(broken / "model", tf1_fixtures / "lstm_peepholes_input.npy")
    assert_user_error(result, "model.index")


def test_cli_missing_data_shard_is_exit_2(broken, tf1_fixtures):
    (broken / "model.data-00000-of-00001").unlink()
    result = invoke(broken / "model", tf1_fixtures / "lstm_peepholes_input.npy")
    assert_user_error(result, "missing")


def test_cli_damaged_meta_graph_is_ignored_with_a_note(broken, tf1_fixtures):
    (broken / "model.meta").write_bytes(b"\xff\xff\xff not a protobuf")
    result = invoke(broken / "model", tf1_fixtures / "lstm_peepholes_input.npy", "-f", "csv")
    assert result.exit_code == 0, result.output
    assert "ignored model.meta" in result.stderr


def test_unsupported_contrib_cells_are_never_guessed():
    from lstm_trace.loaders.tf1_checkpoint import unsupported_cells

    shapes = {"rnn/ugrnn_cell/kernel": (10, 8), "rnn/ugrnn_cell/bias": (8,)}
    assert find_cells(shapes) == []
    assert unsupported_cells(shapes) == {"rnn/ugrnn_cell": "UGRNNCell"}


def test_cell_with_variables_its_layout_lacks_is_flagged():
    from lstm_trace.loaders.tf1_checkpoint import foreign_variables

    shapes = {"rnn/my_cell/kernel": (10, 16), "rnn/my_cell/input/gamma": (4,),
              "rnn/my_cell/kernel/Adam": (10, 16)}
    (match,) = find_cells(shapes)
    assert foreign_variables(shapes, match) == ["rnn/my_cell/input/gamma"]


def test_stack_bidirectional_layers_chain_by_scope():
    from lstm_trace.loaders.tf1_checkpoint import _drivers

    shapes = {}
    for k, width in ((0, 3), (1, 8), (2, 8)):
        for d in ("fw", "bw"):
            scope = f"stack_bidirectional_rnn/cell_{k}/bidirectional_rnn/{d}/lstm_cell"
            shapes[f"{scope}/kernel"] = (width + 4, 16)
            shapes[f"{scope}/bias"] = (16,)
    drivers = _drivers(find_cells(shapes), {})
    assert [(d.name, d.bidirectional, len(d.forward), len(d.backward)) for d in drivers] == [
        (f"stack_bidirectional_rnn/cell_{k}/bidirectional_rnn", True, 1, 1) for k in range(3)
    ]
