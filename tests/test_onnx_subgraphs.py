"""ONNX recurrent nodes inside ``If`` branches: the branch the input takes is traced, as
onnxruntime runs it (atol 1e-5).

The models (tests/builders/onnx_subgraphs.py) are built with ``onnx.helper``: conditions
that are graph inputs, constants, or computed from X's shape; nested ``If`` nodes as
silero-vad writes them (a sampling-rate input, a "state is empty" test, an ``If`` on the
way to the LSTM's X); two branches with the same node and tensor names; float16.
onnxruntime's ``Y``, ``Y_h``, ``Y_c`` of the node inside the branch come from a copy of
the model that hands them on as graph outputs. Hidden states are compared at every step,
final cells with ``Y_c``, and the recorded gates are recombined into the states.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.onnx_subgraphs import CASES
from click.testing import CliRunner
from error_record import record_error
from recombine import recombine_gru, recombine_lstm

import lstm_trace
from lstm_trace.cli import main

ATOL = 1e-5
FAMILY = "ONNX nodes in If branches vs onnxruntime"
FEEDS = [(name, k) for name, case in CASES.items() for k in range(len(case["runs"]))]
#: Initial states each node starts from in the builder (index into the "state" feed).
INITIAL = {"rnn16": (0, 1), "gru8": (0,)}
REVERSE = {"long_lstm", "second"}


@pytest.fixture(scope="session")
def subgraphs():
    from conftest import build_fixtures

    return build_fixtures("onnx_subgraphs")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error_line(result, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for phrase in phrases:
        assert phrase in lines[0], lines[0]


def _trace(subgraphs, name: str, k: int):
    feed = dict(np.load(subgraphs / f"{name}_feed{k}.npz"))
    ref = dict(np.load(subgraphs / f"{name}_ref{k}.npz"))
    return lstm_trace.load(subgraphs / f"{name}.onnx").trace(feed), feed, ref


def _seq(y: np.ndarray) -> np.ndarray:
    """ONNX ``Y`` ``[steps, 1, batch, H]`` as lstm-trace's ``(batch, steps, H)``, float32."""
    return y[:, 0].transpose(1, 0, 2).astype(np.float32)


@pytest.mark.parametrize("name, k", FEEDS, ids=[f"{n}-feed{k}" for n, k in FEEDS])
def test_the_branch_taken_is_traced_as_onnxruntime_runs_it(subgraphs, name, k):
    trace, feed, ref = _trace(subgraphs, name, k)
    runs = CASES[name]["runs"][k]
    assert sorted({layer.name for layer in trace.layers}) == sorted(runs)
    tolerance = ATOL
    if name == "float16":  # against the float32 twin; the float16 outputs are checked below
        _, _, ref = _trace(subgraphs, "float16_twin", 0)
    for layer in runs:
        hidden = trace[f"{layer}/hidden"]
        last = 0 if layer in REVERSE else -1
        errors = [np.abs(hidden - _seq(ref[f"{layer}/Y"])).max(),
                  np.abs(hidden[:, last] - ref[f"{layer}/Y_h"][0]).max()]
        starts = [feed["state"][s] for s in INITIAL.get(layer, ())]
        if f"{layer}/cell" in trace:
            errors.append(np.abs(trace[f"{layer}/cell"][:, last] - ref[f"{layer}/Y_c"][0]).max())
            h, c = recombine_lstm(trace, layer, reverse=layer in REVERSE,
                                  initial_hidden=starts[0] if starts else None,
                                  initial_cell=starts[1] if starts else None)
            errors += [np.abs(h - _seq(ref[f"{layer}/Y"])).max(),
                       np.abs(c - trace[f"{layer}/cell"]).max()]
        elif f"{layer}/update_gate" in trace:
            h = recombine_gru(trace, layer, initial_hidden=starts[0] if starts else None)
            errors.append(np.abs(h - _seq(ref[f"{layer}/Y"])).max())
        err = float(max(errors))
        record_error(FAMILY, f"{name}/{layer}", err)
        assert err < tolerance, (layer, errors)


def test_float16_model_is_traced_in_float32_as_onnxruntime_computes_it(subgraphs):
    """onnxruntime's CPU provider computes a float16 LSTM in float32 and rounds its outputs:
    the float32 trace, rounded to float16, is within one float16 step of them."""
    trace, _, ref = _trace(subgraphs, "float16", 0)
    hidden = trace["half_lstm/hidden"]
    assert hidden.dtype == np.float32
    y16 = ref["half_lstm/Y"][:, 0].transpose(1, 0, 2)
    assert y16.dtype == np.float16
    steps = np.abs(hidden.astype(np.float16).astype(np.float32) - y16.astype(np.float32))
    assert (steps <= np.spacing(np.abs(y16)).astype(np.float32)).all()
    network = lstm_trace.load(subgraphs / "float16.onnx")
    assert any("traced in float32" in note for note in network.notes)


def test_inspect_names_each_branch_before_any_input(subgraphs):
    result = run("inspect", subgraphs / "nested.onnx")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert ("rnn16: direction=forward, opset=14, branch=then branch of If 'rate_if' > "
            "then branch of If 'state_if'") in text
    assert "branch=then branch of If 'rate_if' > else branch of If 'state_if'" in text
    assert "gru8: reset_after=False, direction=forward, opset=14, branch=else branch of If 'rate_if'" in text
    assert ("rnn16/X: ONNX ops to rnn16 X: Transpose → Equal → Unsqueeze → Shape → Gather → Equal → "
            "Squeeze → Identity → If → Size → Equal → Not (run when the input takes the then branch "
            "of If 'rate_if' > then branch of If 'state_if')") in text


def test_a_missing_input_that_chooses_the_branch_is_named(subgraphs):
    _one_error_line(run(subgraphs / "nested.onnx", subgraphs / "nested_no_sr.npz"),
                    "needs graph input 'sr' ('sr' decides the branch of If 'rate_if')",
                    "keys X, sr, state")


def test_a_layer_in_a_branch_not_taken_says_so(subgraphs):
    _one_error_line(run(subgraphs / "nested.onnx", subgraphs / "nested_feed0.npz", "--layer", "gru8"),
                    "layer 'gru8' does not run for this input: it lies in the else branch of "
                    "If 'rate_if', whose condition 'is16k' is true for this input")


def test_no_node_runs_for_this_input(subgraphs, tmp_path):
    feed = dict(np.load(subgraphs / "cond_input_feed0.npz"))
    network = lstm_trace.load(subgraphs / "cond_input.onnx")
    with pytest.raises(Exception, match="layer 'enc_gru' does not run for this input"):
        network.trace(feed, layers=["enc_gru"])


def test_a_constant_condition_is_resolved_at_load_time(subgraphs):
    network = lstm_trace.load(subgraphs / "cond_constant.onnx")
    assert [layer.name for layer in network.recurrent_layers] == ["kept_gru"]
    x_layer = network.layer("kept_gru/X")
    assert x_layer.guards == [] and "run when" not in x_layer.describe()
    assert network.input_adapter.needed == ("X",)


def test_an_lstm_inside_a_loop_body_is_refused_in_one_line(subgraphs):
    _one_error_line(run("inspect", subgraphs / "lstm_in_loop.onnx"),
                    "no LSTM, GRU or RNN node (its ops: Loop)",
                    "its LSTM nodes are inside the body of Loop 'steps_loop', run once per iteration")


def test_cli_trace_of_a_branch_matches_the_library(subgraphs, tmp_path):
    out = tmp_path / "t.npz"
    result = run(subgraphs / "nested.onnx", subgraphs / "nested_feed1.npz", "--format", "npz", "-o", out)
    assert result.exit_code == 0, result.output
    trace, _, _ = _trace(subgraphs, "nested", 1)
    with np.load(out) as saved:
        assert sorted(saved.files) == sorted(f"gru8/{q}" for q in
                                             ("update_gate", "reset_gate", "candidate", "hidden"))
        np.testing.assert_array_equal(saved["gru8/hidden"], trace["gru8/hidden"])


def test_an_initial_state_of_another_batch_is_one_line(subgraphs, tmp_path):
    """onnxruntime refuses it too ("Input initial_h must have shape {1,2,4}")."""
    feed = dict(np.load(subgraphs / "nested_feed0.npz"))
    feed["state"] = np.concatenate([feed["state"]] * 2, axis=1)  # batch 4 for X's 2
    np.savez(tmp_path / "wide.npz", **feed)
    _one_error_line(run(subgraphs / "nested.onnx", tmp_path / "wide.npz"),
                    "layer 'rnn16/initial_h/forward' (ONNX ops): initial state 'h16' of 'rnn16' "
                    "has shape (1, 4, 4), expected [num_directions, batch_size, hidden_size] "
                    "with batch_size 2 (X's) and hidden_size 4")


def test_subgraphs_nested_too_deep_are_refused_in_one_line(subgraphs):
    _one_error_line(run("inspect", subgraphs / "too_deep.onnx"),
                    "too_deep.onnx: subgraphs are nested more than 16 levels deep")


def test_a_loop_of_plain_ops_is_named_with_what_its_body_computes(subgraphs):
    _one_error_line(run("inspect", subgraphs / "unrolled_loop.onnx"),
                    "no LSTM, GRU or RNN node (its ops: Loop); Loop node 'rnn_loop' runs a body of "
                    "Add, Gather, Identity, MatMul, Tanh once per step: a recurrent layer unrolled "
                    "into plain ops, not the simple RNN cell lstm-trace reads from a loop")


def test_stacked_nodes_in_a_branch_not_taken_both_say_why(subgraphs):
    feed = dict(np.load(subgraphs / "stacked_in_branch_feed1.npz"))
    network = lstm_trace.load(subgraphs / "stacked_in_branch.onnx")
    with pytest.raises(Exception, match="layer 'first' does not run for this input: it lies in the "
                       "then branch of If 'stack_if'.*; layer 'second' does not run"):
        network.trace(feed, layers=["first", "second"])


def test_an_op_not_replayable_in_a_branch_always_taken_is_named_by_inspect(subgraphs):
    result = run("inspect", subgraphs / "erf_in_fixed_branch.onnx")
    assert result.exit_code == 0, result.output
    assert "not replayable: node 'erf_front' (Erf) cannot be replayed in NumPy" in result.output


def test_zero_states_made_by_either_branch_are_known_zeros(subgraphs):
    network = lstm_trace.load(subgraphs / "zeros_by_if.onnx")
    assert network.layer("z_lstm").initial_state_from == ()
    assert network.input_adapter.needed == ("X",)  # cond decides nothing the trace needs
