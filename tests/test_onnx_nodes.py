"""ONNX LSTM/GRU/RNN nodes: lstm-trace's replay matches onnxruntime at every step (atol 1e-5).

The models are built with ``onnx.helper`` from random weights and run by onnxruntime in
the fixture builder's process (tests/builders/onnx_nodes.py); this process imports
neither. Hidden and cell states are compared at every input position (cell states from
onnxruntime runs on prefixes), and the recorded gates are recombined into onnxruntime's
states with the ONNX equations, written here independently of lstm-trace.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.onnx_nodes import CASES
from error_record import record_error

import lstm_trace

ATOL = 1e-5
NAMES = [c["name"] for c in CASES]


@pytest.fixture(scope="session")
def onnx_nodes():
    from conftest import build_fixtures

    return build_fixtures("onnx_nodes")


# ONNX activation functions (operator specification), with their alpha/beta defaults.
def _act(name: str, alpha: float | None, beta: float | None):
    n = name.lower()
    a = np.float32(alpha) if alpha is not None else None
    b = np.float32(beta) if beta is not None else None
    table = {
        "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
        "tanh": np.tanh,
        "relu": lambda x: np.maximum(x, 0),
        "softsign": lambda x: x / (1 + np.abs(x)),
        "softplus": lambda x: np.log1p(np.exp(x)),
        "affine": lambda x: a * x + b,
        "leakyrelu": lambda x: np.where(x >= 0, x, (0.01 if a is None else a) * x),
        "thresholdedrelu": lambda x: np.where(x > (1.0 if a is None else a), x, 0),
        "scaledtanh": lambda x: a * np.tanh(b * x),
        "hardsigmoid": lambda x: np.clip((0.2 if a is None else a) * x + (0.5 if b is None else b), 0, 1),
        "elu": lambda x: np.where(x >= 0, x, (1.0 if a is None else a) * (np.exp(x) - 1)),
    }
    return table[n]


USES = {"affine": (1, 1), "leakyrelu": (1, 0), "thresholdedrelu": (1, 0), "scaledtanh": (1, 1),
        "hardsigmoid": (1, 1), "elu": (1, 0)}
DEFAULTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


def activations(case: dict, D: int) -> list[list]:
    names = case["attrs"].get("activations") or DEFAULTS[case["op"]] * D
    alphas = list(case["attrs"].get("activation_alpha", []))
    betas = list(case["attrs"].get("activation_beta", []))
    funcs = []
    for name in names:
        na, nb = USES.get(name.lower(), (0, 0))
        a = alphas.pop(0) if na and alphas else None
        b = betas.pop(0) if nb and betas else None
        funcs.append(_act(name, a, b))
    k = len(DEFAULTS[case["op"]])
    return [funcs[d * k:(d + 1) * k] for d in range(D)]


def _load(directory, name):
    d = directory / name
    feeds = dict(np.load(d / "feeds.npz"))
    ref = dict(np.load(d / "reference.npz"))
    weights = dict(np.load(d / "weights.npz"))
    return d, feeds, ref, weights


def _case(name):
    return next(c for c in CASES if c["name"] == name)


def _prefixes(case):
    layer = f"{case['op'].lower()}_node"
    if case["direction"] == "bidirectional":
        return [(f"{layer}/forward", False), (f"{layer}/backward", True)]
    return [(layer, case["direction"] == "reverse")]


def _previous(states: np.ndarray, initial: np.ndarray, reverse: bool) -> np.ndarray:
    """(B, T, H) states each step started from, in processing order."""
    prev = np.empty_like(states)
    T = states.shape[1]
    for t in range(T):
        s = t + 1 if reverse else t - 1
        prev[:, t] = states[:, s] if 0 <= s < T else initial
    return prev


def check_trace(trace, case, ref, weights, feeds):
    D = 2 if case["direction"] == "bidirectional" else 1
    valid = ref["valid"]
    H = case["hidden"]
    acts = activations(case, D)
    clip = case["attrs"].get("clip")
    x = feeds["X"] if case["layout"] == 1 else feeds["X"].transpose(1, 0, 2)  # (B, T, I)
    for d, (prefix, reverse) in enumerate(_prefixes(case)):
        hidden = trace[f"{prefix}/hidden"]
        record_error("ONNX nodes vs onnxruntime", f"{case['name']}/{prefix}/hidden",
                     float(np.abs(hidden - ref["hidden"][d]).max()))
        np.testing.assert_allclose(hidden, ref["hidden"][d], atol=ATOL, err_msg=f"{prefix}/hidden")
        init_h = weights.get("init_initial_h", np.zeros((D, case["batch"], H), np.float32))[d]
        h_prev = _previous(ref["hidden"][d], init_h, reverse)
        if case["seq_lens"]:
            np.testing.assert_array_equal(trace[f"{prefix}/mask"], valid)
        else:
            assert f"{prefix}/mask" not in trace
        v = valid
        if case["op"] == "LSTM":
            f_act, g_act, h_act = acts[d]
            cell = trace[f"{prefix}/cell"]
            record_error("ONNX nodes vs onnxruntime", f"{case['name']}/{prefix}/cell",
                         float(np.abs(cell - ref["cell"][d]).max()))
            np.testing.assert_allclose(cell, ref["cell"][d], atol=ATOL, err_msg=f"{prefix}/cell")
            init_c = weights.get("init_initial_c", np.zeros((D, case["batch"], H), np.float32))[d]
            c_prev = _previous(ref["cell"][d], init_c, reverse)
            i, f = trace[f"{prefix}/input_gate"], trace[f"{prefix}/forget_gate"]
            g, o = trace[f"{prefix}/candidate"], trace[f"{prefix}/output_gate"]
            c_new = f * c_prev + i * g
            np.testing.assert_allclose(c_new[v], ref["cell"][d][v], atol=ATOL, err_msg="c = f c + i g")
            h_new = o * h_act(ref["cell"][d])
            np.testing.assert_allclose(h_new[v], ref["hidden"][d][v], atol=ATOL, err_msg="h = o h(c)")
            if case["attrs"].get("input_forget"):
                np.testing.assert_allclose(f[v], 1 - i[v], atol=1e-6)
            # The input gate alone, from ONNX's W/R/B (order i, o, f, c), P and clip:
            W, R = weights["W"][d], weights["R"][d]
            pre = x @ W[:H].T + h_prev @ R[:H].T
            if "B" in weights:
                pre += weights["B"][d, :H] + weights["B"][d, 4 * H:5 * H]
            if "P" in weights:
                pre += weights["P"][d, :H] * c_prev
            if clip is not None:
                pre = np.clip(pre, -clip, clip)
            np.testing.assert_allclose(i[v], f_act(pre)[v], atol=ATOL, err_msg="input gate")
            for q in ("input_gate", "forget_gate", "candidate", "output_gate"):
                assert not trace[f"{prefix}/{q}"][~v].any(), "gates on masked steps are 0"
        elif case["op"] == "GRU":
            f_act, g_act = acts[d]
            z, r, g = (trace[f"{prefix}/{q}"] for q in ("update_gate", "reset_gate", "candidate"))
            h_new = (1 - z) * g + z * h_prev
            np.testing.assert_allclose(h_new[v], ref["hidden"][d][v], atol=ATOL, err_msg="h = (1-z) g + z h")
            # The candidate from the recorded reset gate and ONNX's W/R/B (order z, r, h):
            W, R = weights["W"][d], weights["R"][d]
            wb = weights["B"][d, 2 * H:3 * H] if "B" in weights else 0
            rb = weights["B"][d, 5 * H:6 * H] if "B" in weights else 0
            if case["attrs"].get("linear_before_reset"):
                pre = x @ W[2 * H:].T + r * (h_prev @ R[2 * H:].T + rb) + wb
            else:
                pre = x @ W[2 * H:].T + (r * h_prev) @ R[2 * H:].T + rb + wb
            if clip is not None:
                pre = np.clip(pre, -clip, clip)
            np.testing.assert_allclose(g[v], g_act(pre)[v], atol=ATOL, err_msg="candidate")


@pytest.mark.parametrize("name", NAMES)
def test_onnx_node_matches_onnxruntime(onnx_nodes, name):
    case = _case(name)
    d, feeds, ref, weights = _load(onnx_nodes, name)
    network = lstm_trace.load(d / "model.onnx")
    trace = network.trace(feeds)
    check_trace(trace, case, ref, weights, feeds)
    if case["layout"] == 1:
        # The Transpose -> layout 0 -> Transpose graph onnxruntime ran gives the same trace.
        equivalent = lstm_trace.load(d / "equivalent.onnx").trace(feeds)
        assert set(equivalent) == set(trace)
        for key in trace:
            np.testing.assert_allclose(equivalent[key], trace[key], atol=1e-6, err_msg=key)


def test_layout1_node_reads_batch_major_input(onnx_nodes):
    d, feeds, _, _ = _load(onnx_nodes, "lstm_layout1")
    layer = lstm_trace.load(d / "model.onnx").layer("lstm_node/X")
    x, mask = layer.apply_many([feeds["X"], feeds["sequence_lens"]], [None, None])
    np.testing.assert_array_equal(x, feeds["X"])  # (batch, steps, features) already
    assert mask.sum(axis=1).tolist() == feeds["sequence_lens"].tolist()


def test_onnx_float64_replay_is_closer_to_itself(onnx_nodes):
    d, feeds, ref, _ = _load(onnx_nodes, "lstm_forward")
    trace = lstm_trace.load(d / "model.onnx").trace(feeds, dtype="float64")
    assert trace["lstm_node/hidden"].dtype == np.float64
    np.testing.assert_allclose(trace["lstm_node/hidden"], ref["hidden"][0], atol=ATOL)


@pytest.mark.parametrize("name", ["lstm_opset7", "gru_opset7", "rnn_forward"])
def test_opset_1_nodes_read_like_later_opsets(onnx_nodes, tmp_path, name):
    """onnxruntime runs no opset-1 RNN node; its weights and attributes mean the same."""
    import onnx

    d, feeds, ref, weights = _load(onnx_nodes, name)
    model = onnx.load(str(d / "model.onnx"))
    model.opset_import[0].version = 1
    onnx.save(model, str(tmp_path / "opset1.onnx"))
    network = lstm_trace.load(tmp_path / "opset1.onnx")
    assert network.recurrent_layers[0].options["opset"] == 1
    check_trace(network.trace(feeds), _case(name), ref, weights, feeds)
