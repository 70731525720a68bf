"""Builds ONNX models of single LSTM/GRU/RNN nodes with onnx.helper and runs onnxruntime on them.

    python onnx_nodes.py OUTDIR

Per case: ``model.onnx`` (traced by lstm-trace), ``feeds.npz`` (the graph inputs by name,
as onnxruntime is fed), ``weights.npz`` (W, R, B, P as stored) and ``reference.npz`` from
onnxruntime: ``hidden`` and ``cell`` ``(D, batch, steps, H)`` at every input position
(cell states from runs on prefixes, and on suffixes for the backward direction), ``valid``
``(batch, steps)``, and the node's ``Y``/``Y_h``/``Y_c``. onnxruntime refuses ``layout=1``,
so a layout-1 case is run through the equivalent Transpose → layout-0 node → Transpose
graph (``equivalent.onnx``, traced too) fed the same inputs.

``CASES`` is plain data (no onnx import), so tests can parametrize on it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def case(name: str, op: str, **kw) -> dict:
    base = {"name": name, "op": op, "direction": "forward", "hidden": 4, "features": 3, "batch": 3,
            "steps": 5, "attrs": {}, "bias": True, "peepholes": False, "seq_lens": None,
            "initial": None, "layout": 0, "opset": 14, "scale": 0.7}
    base.update(kw)
    return base


CASES: list[dict] = []
for _op in ("LSTM", "GRU", "RNN"):
    for _direction in ("forward", "reverse", "bidirectional"):
        CASES.append(case(f"{_op}_{_direction}".lower(), _op, direction=_direction))
CASES += [
    case("lstm_no_bias", "LSTM", bias=False),
    case("lstm_peepholes", "LSTM", peepholes=True, direction="bidirectional"),
    case("lstm_clip", "LSTM", attrs={"clip": 0.7}, scale=1.5),
    case("lstm_clip_peepholes_bidirectional", "LSTM", attrs={"clip": 0.9}, peepholes=True,
         direction="bidirectional", scale=1.5),
    case("lstm_input_forget", "LSTM", attrs={"input_forget": 1}),
    case("lstm_input_forget_peepholes_reverse", "LSTM", attrs={"input_forget": 1}, peepholes=True,
         direction="reverse"),
    case("lstm_activations", "LSTM", scale=0.4, attrs={
        "activations": ["HardSigmoid", "LeakyRelu", "ScaledTanh"],
        "activation_alpha": [0.3, 0.2, 1.5], "activation_beta": [0.4, 0.8]}),
    case("lstm_activations_bidirectional", "LSTM", direction="bidirectional", scale=0.4, attrs={
        "activations": ["Sigmoid", "Affine", "Elu", "HardSigmoid", "Softsign", "Softplus"],
        "activation_alpha": [0.9, 1.3, 0.25], "activation_beta": [0.1, 0.6]}),
    case("lstm_thresholded_relu", "LSTM", scale=0.5, attrs={
        "activations": ["Sigmoid", "ThresholdedRelu", "Relu"], "activation_alpha": [0.2]}),
    case("lstm_default_alphas", "LSTM", scale=0.5, attrs={
        "activations": ["HardSigmoid", "LeakyRelu", "Elu"]}),
    case("lstm_sequence_lens", "LSTM", seq_lens=[5, 2, 4], direction="bidirectional"),
    case("lstm_initial_states", "LSTM", initial="initializer", direction="bidirectional"),
    case("lstm_initial_states_input", "LSTM", initial="input"),
    case("lstm_everything", "LSTM", direction="bidirectional", peepholes=True, seq_lens=[3, 5, 1],
         initial="input", scale=1.2, attrs={"clip": 1.1, "input_forget": 1,
                                             "activations": ["Sigmoid", "Tanh", "Softsign"] * 2}),
    case("lstm_layout1", "LSTM", layout=1, direction="bidirectional", initial="input",
         seq_lens=[4, 5, 2]),
    case("lstm_opset7", "LSTM", opset=7, peepholes=True),
    case("lstm_opset22", "LSTM", opset=22, direction="reverse"),
    case("gru_linear_before_reset", "GRU", attrs={"linear_before_reset": 1}),
    case("gru_linear_before_reset_bidirectional", "GRU", direction="bidirectional",
         attrs={"linear_before_reset": 1}),
    case("gru_no_bias", "GRU", bias=False),
    case("gru_clip", "GRU", attrs={"clip": 0.6}, scale=1.5),
    case("gru_clip_linear_before_reset", "GRU", attrs={"clip": 0.6, "linear_before_reset": 1},
         scale=1.5, direction="bidirectional"),
    case("gru_activations", "GRU", scale=0.5, attrs={
        "activations": ["HardSigmoid", "ScaledTanh"], "activation_alpha": [0.25, 0.9],
        "activation_beta": [0.45, 1.2]}),
    case("gru_sequence_lens_initial", "GRU", seq_lens=[2, 5, 3], initial="input",
         direction="bidirectional", attrs={"linear_before_reset": 1}),
    case("gru_layout1", "GRU", layout=1, initial="initializer", direction="reverse"),
    case("gru_opset7", "GRU", opset=7),
    case("rnn_relu", "RNN", scale=0.4, attrs={"activations": ["Relu"]}),
    case("rnn_activations_bidirectional", "RNN", scale=0.4, direction="bidirectional",
         attrs={"activations": ["LeakyRelu", "Affine"], "activation_alpha": [0.05, 0.7],
                "activation_beta": [0.2]}),
    case("rnn_clip_sequence_lens", "RNN", attrs={"clip": 0.5}, seq_lens=[5, 1, 3], scale=1.5),
    case("rnn_layout1_initial", "RNN", layout=1, initial="input", seq_lens=[3, 5, 4]),
]


def _node_inputs(c: dict) -> list[str]:
    names = ["X", "W", "R", "B" if c["bias"] else "", "sequence_lens" if c["seq_lens"] else "",
             "initial_h" if c["initial"] else "",
             "initial_c" if c["initial"] and c["op"] == "LSTM" else "",
             "P" if c["peepholes"] else ""]
    while names[-1] == "":
        names.pop()
    return names


def build_case(c: dict, out: Path, rng) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    op, H, I, Bn, T = c["op"], c["hidden"], c["features"], c["batch"], c["steps"]
    D = 2 if c["direction"] == "bidirectional" else 1
    G = GATES[op]
    s = c["scale"]
    weights = {
        "W": (rng.standard_normal((D, G * H, I)) * s).astype(np.float32),
        "R": (rng.standard_normal((D, G * H, H)) * s / np.sqrt(H)).astype(np.float32),
    }
    if c["bias"]:
        weights["B"] = (rng.standard_normal((D, 2 * G * H)) * s * 0.5).astype(np.float32)
    if c["peepholes"]:
        weights["P"] = (rng.standard_normal((D, 3 * H)) * s).astype(np.float32)
    x = rng.standard_normal((T, Bn, I)).astype(np.float32)
    state_shape = (D, Bn, H)
    initial = {}
    if c["initial"]:
        initial["initial_h"] = (rng.standard_normal(state_shape) * 0.5).astype(np.float32)
        if op == "LSTM":
            initial["initial_c"] = (rng.standard_normal(state_shape) * 0.5).astype(np.float32)
    layout = c["layout"]
    # Feeds as the traced model takes them.
    feeds = {"X": x if layout == 0 else x.transpose(1, 0, 2)}
    if c["seq_lens"]:
        feeds["sequence_lens"] = np.array(c["seq_lens"], dtype=np.int32)
    if c["initial"] == "input":
        for k, v in initial.items():
            feeds[k] = v if layout == 0 else v.transpose(1, 0, 2)
    inits = {**weights}
    if c["initial"] == "initializer":
        inits.update({k: v if layout == 0 else v.transpose(1, 0, 2) for k, v in initial.items()})
    outputs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    attrs = {"hidden_size": H, "direction": c["direction"], **c["attrs"]}

    def value_info(name, arr):
        elem = TensorProto.INT32 if arr.dtype == np.int32 else TensorProto.FLOAT
        shape: list = list(arr.shape)
        if name == "X":  # the prefix runs of the reference change the number of steps
            shape[layout] = "steps"
        return helper.make_tensor_value_info(name, elem, shape)

    def make(nodes, out_names):
        graph = helper.make_graph(
            nodes, c["name"], [value_info(k, v) for k, v in feeds.items()],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, [None] * (4 if o == "Y" else 3))
             for o in out_names],
            [numpy_helper.from_array(v, k) for k, v in inits.items()],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", c["opset"])])
        model.ir_version = 8 if c["opset"] <= 17 else 10
        onnx.checker.check_model(model)
        return model

    node_inputs = _node_inputs(c)
    if layout == 0:
        node = helper.make_node(op, node_inputs, outputs, name=f"{op.lower()}_node", **attrs)
        model = ref_model = make([node], outputs)
    else:
        model = make([helper.make_node(op, node_inputs, outputs, name=f"{op.lower()}_node", layout=1,
                                       **attrs)], outputs)
        # onnxruntime runs only layout 0: the same node between Transposes.
        renamed = {"X": "X_t", "initial_h": "initial_h_t", "initial_c": "initial_c_t"}
        pre = [helper.make_node("Transpose", ["X"], ["X_t"], perm=[1, 0, 2])]
        for k in initial:
            if c["initial"] == "input" or c["initial"] == "initializer":
                pre.append(helper.make_node("Transpose", [k], [renamed[k]], perm=[1, 0, 2]))
        inner = [renamed.get(n, n) for n in node_inputs]
        mid = helper.make_node(op, inner, [o + "_0" for o in outputs], name=f"{op.lower()}_node",
                               **attrs)
        post = [helper.make_node("Transpose", ["Y_0"], ["Y"], perm=[2, 0, 1, 3])]
        post += [helper.make_node("Transpose", [o + "_0"], [o], perm=[1, 0, 2]) for o in outputs[1:]]
        ref_model = make(pre + [mid] + post, outputs)
    onnx.save(model, out / "model.onnx")
    if ref_model is not model:
        onnx.save(ref_model, out / "equivalent.onnx")
    np.savez(out / "feeds.npz", **feeds)
    np.savez(out / "weights.npz", **weights, **{f"init_{k}": v for k, v in initial.items()})

    import onnxruntime as ort

    sess = ort.InferenceSession(ref_model.SerializeToString(), providers=["CPUExecutionProvider"])
    time_axis = 0 if layout == 0 else 1

    def run(fd):
        return dict(zip(outputs, sess.run(None, fd), strict=True))

    full = run(feeds)
    lens = np.array(c["seq_lens"] or [T] * Bn)
    valid = np.arange(T)[None, :] < lens[:, None]

    def to_dbth(y):  # Y in the model's layout -> (D, B, T, H)
        return y.transpose(1, 2, 0, 3) if layout == 0 else y.transpose(2, 0, 1, 3)

    def state_dbh(s):
        return s if layout == 0 else s.transpose(1, 0, 2)

    hidden = np.zeros((D, Bn, T, H), np.float32)
    cell = np.zeros((D, Bn, T, H), np.float32)
    init_h = initial.get("initial_h", np.zeros(state_shape, np.float32))
    init_c = initial.get("initial_c", np.zeros(state_shape, np.float32))
    for t in range(T):
        # forward: prefix x[:t+1]; backward: suffix x[t:] (its first step ends at position t)
        for d in range(D):
            backward = c["direction"] == "reverse" or d == 1
            part = dict(feeds)
            sl = [slice(None)] * 3
            sl[time_axis] = slice(t, None) if backward else slice(0, t + 1)
            part["X"] = feeds["X"][tuple(sl)]
            if c["seq_lens"]:
                n = np.clip(lens - t, 1, None) if backward else np.minimum(lens, t + 1)
                part["sequence_lens"] = n.astype(np.int32)
            res = run(part)
            hs = state_dbh(res["Y_h"])[d]
            cs = state_dbh(res["Y_c"])[d] if op == "LSTM" else None
            for b in range(Bn):
                before_start = backward and t >= lens[b]
                hidden[d, b, t] = init_h[d, b] if before_start else hs[b]
                if cs is not None:
                    cell[d, b, t] = init_c[d, b] if before_start else cs[b]
    y = to_dbth(full["Y"])
    assert np.allclose(y[:, valid], hidden[:, valid], atol=1e-6), "prefix runs disagree with Y"
    np.savez(out / "reference.npz", hidden=hidden, cell=cell, valid=valid, **full)


def main(out: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(13)
    for c in CASES:
        d = out / c["name"]
        d.mkdir(parents=True)
        build_case(c, d, rng)
    (out / "manifest.json").write_text(json.dumps({"cases": CASES}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
