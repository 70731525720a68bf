"""ONNX models whose LSTM/GRU/RNN nodes lie inside ``If`` branches, run by onnxruntime.

    python onnx_subgraphs.py OUTDIR

Per case ``<name>.onnx`` and, per feed ``k``, ``<name>_feed<k>.npz`` (the graph inputs,
as onnxruntime is fed) and ``<name>_ref<k>.npz`` (onnxruntime's ``Y``, ``Y_h``, ``Y_c`` of
the recurrent nodes that feed runs, keys ``<layer>/Y``...). A branch's tensors are not
graph outputs, so the references come from a copy of the model where :func:`expose` has
made them outputs (each enclosing ``If`` hands them on; the branch not taken hands on an
empty tensor). ``manifest.json`` lists the cases (:data:`CASES` plus the node facts).
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

T, B, I, H = 5, 2, 3, 4

#: name -> what the test checks: the recurrent layers and which of them each feed runs.
CASES: dict[str, dict] = {
    "cond_input": {"runs": [["enc_lstm"], ["enc_gru"]]},
    "cond_constant": {"runs": [["kept_gru"]], "absent": ["dead_lstm"]},
    "cond_computed": {"runs": [["long_lstm"], ["short_rnn"]]},
    "nested": {"runs": [["rnn16"], ["gru8"], ["rnn16_nostate"]]},
    "same_names": {"runs": [["sel/then/lstm"], ["sel/else/lstm"]]},
    "stacked_in_branch": {"runs": [["first", "second"], ["other"]]},
    "zeros_by_if": {"runs": [["z_lstm"], ["z_lstm"]]},
    "float16": {"runs": [["half_lstm"]]},
    "float16_twin": {"runs": [["half_lstm"]]},
}


def _find(graph, name: str, path: list):
    """The ``(If node, branch attribute name)`` chain from ``graph`` to the node making ``name``."""
    for node in graph.node:
        if name in node.output:
            return path
        for attr in node.attribute:
            if attr.type == 5:  # GRAPH
                found = _find(attr.g, name, [*path, (node, attr.name)])
                if found is not None:
                    return found
    return None


def expose(model, names: list[str], elem: int):
    """A copy of ``model`` with the tensors ``names`` (anywhere in If branches) as graph outputs.

    Output ``k`` added to a graph is ``names[k]``'s value when every enclosing branch is
    taken, else an empty tensor. Returns ``(model, output names)``.
    """
    from onnx import helper

    model = copy.deepcopy(model)
    outputs = []
    for name in names:
        path = _find(model.graph, name, [])
        if path is None:
            raise KeyError(name)
        current = name
        for node, taken in reversed(path):
            chosen = next(a.g for a in node.attribute if a.name == taken)
            existing = [o.name for o in chosen.output]
            if current in existing:  # already handed on by this If
                current = node.output[existing.index(current)]
                continue
            for attr in node.attribute:
                if attr.type != 5:
                    continue
                if attr.name == taken:
                    attr.g.output.append(helper.make_tensor_value_info(current, elem, None))
                else:
                    dummy = f"{current}__absent_{len(attr.g.node)}_{attr.name}"
                    attr.g.node.append(helper.make_node(
                        "Constant", [], [dummy], value=helper.make_tensor("v", elem, [0], [])))
                    attr.g.output.append(helper.make_tensor_value_info(dummy, elem, None))
            current = f"{current}__via_{node.name}"
            node.output.append(current)
        if current not in [o.name for o in model.graph.output]:
            model.graph.output.append(helper.make_tensor_value_info(current, elem, None))
        outputs.append(current)
    return model, outputs


def main(out: Path) -> None:
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
    manifest: dict[str, dict] = {}

    def weights(op: str, prefix: str, inputs: int, dtype=np.float32) -> dict[str, np.ndarray]:
        G = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
        return {
            f"{prefix}_W": (rng.standard_normal((1, G * H, inputs)) * 0.6).astype(dtype),
            f"{prefix}_R": (rng.standard_normal((1, G * H, H)) * 0.5).astype(dtype),
            f"{prefix}_B": (rng.standard_normal((1, 2 * G * H)) * 0.3).astype(dtype),
        }

    def constants(values: dict[str, np.ndarray]) -> list:
        """Weights as Constant nodes inside a branch (as spox and torch write them)."""
        return [helper.make_node("Constant", [], [k], value=numpy_helper.from_array(v, k))
                for k, v in values.items()]

    def rnn_node(op: str, name: str, x: str, prefix: str, states: tuple[str, ...] = (), **attrs):
        outs = [f"{prefix}_Y", f"{prefix}_Yh"] + ([f"{prefix}_Yc"] if op == "LSTM" else [])
        inputs = [x, f"{prefix}_W", f"{prefix}_R", f"{prefix}_B", "", *states]
        return helper.make_node(op, inputs, outs, name=name, hidden_size=H, **attrs), outs

    def branch(name: str, nodes: list, outputs: list[str], elem=F32):
        return helper.make_graph(nodes, name, [],
                                 [helper.make_tensor_value_info(o, elem, None) for o in outputs])

    def save(name: str, graph, feeds: list[dict], layers: dict[str, tuple[str, ...]],
             elem=F32, opset: int = 14) -> None:
        """Write the model, its feeds and onnxruntime's values of every node's outputs."""
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
        model.ir_version = 8
        onnx.save(model, out / f"{name}.onnx")
        tensors = [t for outs in layers.values() for t in outs]
        exposed, names = expose(model, tensors, elem)
        session = ort.InferenceSession(exposed.SerializeToString())
        for k, feed in enumerate(feeds):
            np.savez(out / f"{name}_feed{k}.npz", **feed)
            values = dict(zip(names, session.run(names, feed), strict=True))
            ref = {}
            for layer, outs in layers.items():
                if layer not in CASES[name]["runs"][k]:
                    continue
                for label, tensor in zip(("Y", "Y_h", "Y_c"), outs, strict=False):
                    value = values[names[tensors.index(tensor)]]
                    if value.size:
                        ref[f"{layer}/{label}"] = value
            np.savez(out / f"{name}_ref{k}.npz", **ref)
        manifest[name] = {**CASES[name], "layers": list(layers)}

    x = rng.standard_normal((T, B, I)).astype(np.float32)
    x_info = helper.make_tensor_value_info("X", F32, ["steps", "batch", I])
    cond_info = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])

    # cond_input: the condition is a graph input; an LSTM (after a Tanh in its branch,
    # weights as Constant nodes) or a GRU (linear_before_reset, weights as initializers).
    w_l, w_g = weights("LSTM", "l", I), weights("GRU", "g", I)
    lstm, l_outs = rnn_node("LSTM", "enc_lstm", "X_t", "l")
    gru, g_outs = rnn_node("GRU", "enc_gru", "X", "g", linear_before_reset=1)
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], name="pick",
                          then_branch=branch("then", [*constants(w_l), helper.make_node(
                              "Tanh", ["X"], ["X_t"]), lstm], [l_outs[1]]),
                          else_branch=branch("else", [gru], [g_outs[1]]))],
        "cond_input", [x_info, cond_info], [helper.make_tensor_value_info("out", F32, None)],
        [numpy_helper.from_array(v, k) for k, v in w_g.items()])
    save("cond_input", graph, [{"X": x, "cond": np.array(True)}, {"X": x, "cond": np.array(False)}],
         {"enc_lstm": tuple(l_outs), "enc_gru": tuple(g_outs)})

    # cond_constant: a Constant condition (false): the LSTM of the then branch never runs.
    w_l, w_g = weights("LSTM", "d", I), weights("GRU", "k", I)
    lstm, l_outs = rnn_node("LSTM", "dead_lstm", "X", "d")
    gru, g_outs = rnn_node("GRU", "kept_gru", "X", "k")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["flag"], value=numpy_helper.from_array(np.array(False), "f")),
         helper.make_node("If", ["flag"], ["out"], name="fixed",
                          then_branch=branch("then", [*constants(w_l), lstm], [l_outs[1]]),
                          else_branch=branch("else", [*constants(w_g), gru], [g_outs[1]]))],
        "cond_constant", [x_info], [helper.make_tensor_value_info("out", F32, None)])
    save("cond_constant", graph, [{"X": x}], {"kept_gru": tuple(g_outs)})

    # cond_computed: the condition is computed from X's shape (steps > 4), as torch's
    # exporter writes shape tests: an LSTM for long sequences, a relu RNN for short ones.
    w_l, w_r = weights("LSTM", "lo", I), weights("RNN", "sh", I)
    lstm, l_outs = rnn_node("LSTM", "long_lstm", "X", "lo", direction="reverse")
    rnn, r_outs = rnn_node("RNN", "short_rnn", "X", "sh", activations=["Relu"])
    graph = helper.make_graph(
        [helper.make_node("Shape", ["X"], ["shape"]),
         helper.make_node("Gather", ["shape", "zero"], ["steps"], axis=0),
         helper.make_node("Greater", ["steps", "four"], ["is_long"]),
         helper.make_node("If", ["is_long"], ["out"], name="by_length",
                          then_branch=branch("then", [*constants(w_l), lstm], [l_outs[1]]),
                          else_branch=branch("else", [*constants(w_r), rnn], [r_outs[1]]))],
        "cond_computed", [x_info], [helper.make_tensor_value_info("out", F32, None)],
        [numpy_helper.from_array(np.array(0, np.int64), "zero"),
         numpy_helper.from_array(np.array(4, np.int64), "four")])
    save("cond_computed", graph, [{"X": x}, {"X": x[:3]}],
         {"long_lstm": tuple(l_outs), "short_rnn": tuple(r_outs)})

    # nested: silero-vad's shape. Batch-first X, an int64 "sr" and a state (2, batch, H).
    # sr == 16000: an inner If on whether the state is empty chooses an LSTM starting from
    # the state or one starting from zeros; its X passes through a third If (Squeeze of an
    # added axis, or Identity, which would give 4 axes). Else: a GRU from state[0].
    w16, w16n, w8 = weights("LSTM", "a", I), weights("LSTM", "n", I), weights("GRU", "e", I)

    def slot(name: str, k: int) -> list:
        return [helper.make_node("Gather", ["state", f"idx{k}"], [f"{name}_g"], axis=0),
                helper.make_node("Unsqueeze", [f"{name}_g", "axis0"], [name])]

    squeeze_if = helper.make_node(
        "If", ["is_3d"], ["x_seq"], name="squeeze_if",
        then_branch=branch("sq", [helper.make_node("Squeeze", ["x4", "axis0"], ["x_sq"])], ["x_sq"]),
        else_branch=branch("id", [helper.make_node("Identity", ["x4"], ["x_id"])], ["x_id"]))
    lstm16, o16 = rnn_node("LSTM", "rnn16", "x_seq", "a", ("h16", "c16"))
    lstm16n, o16n = rnn_node("LSTM", "rnn16_nostate", "x_seq", "n")
    inner = helper.make_node(
        "If", ["has_state"], ["h_out16"], name="state_if",
        then_branch=branch("with_state", [*constants(w16), *slot("h16", 0), *slot("c16", 1),
                                          lstm16], [o16[1]]),
        else_branch=branch("no_state", [*constants(w16n), lstm16n], [o16n[1]]))
    gru8, o8 = rnn_node("GRU", "gru8", "x_tm", "e", ("h8",))
    outer = helper.make_node(
        "If", ["is16k"], ["h_out"], name="rate_if",
        then_branch=branch("k16", [
            helper.make_node("Unsqueeze", ["x_tm", "axis0"], ["x4"]),
            helper.make_node("Shape", ["x4"], ["x4_shape"]),
            helper.make_node("Gather", ["x4_shape", "idx0"], ["x4_lead"], axis=0),
            helper.make_node("Equal", ["x4_lead", "one"], ["is_3d"]), squeeze_if,
            helper.make_node("Size", ["state"], ["state_size"]),
            helper.make_node("Equal", ["state_size", "zero_i"], ["empty"]),
            helper.make_node("Not", ["empty"], ["has_state"]), inner], ["h_out16"]),
        else_branch=branch("k8", [*constants(w8), *slot("h8", 0), gru8], [o8[1]]))
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["X"], ["x_tm"], perm=[1, 0, 2]),
         helper.make_node("Equal", ["sr", "k16"], ["is16k"]), outer],
        "nested",
        [helper.make_tensor_value_info("X", F32, ["batch", "steps", I]),
         helper.make_tensor_value_info("sr", TensorProto.INT64, []),
         helper.make_tensor_value_info("state", F32, [2, "batch", H])],
        [helper.make_tensor_value_info("h_out", F32, None)],
        [numpy_helper.from_array(np.array(16000, np.int64), "k16"),
         numpy_helper.from_array(np.array(0, np.int64), "idx0"),
         numpy_helper.from_array(np.array(1, np.int64), "idx1"),
         numpy_helper.from_array(np.array(1, np.int64), "one"),
         numpy_helper.from_array(np.array(0, np.int64), "zero_i"),
         numpy_helper.from_array(np.array([0], np.int64), "axis0")])
    xb = x.transpose(1, 0, 2).copy()
    state = (rng.standard_normal((2, B, H)) * 0.5).astype(np.float32)
    save("nested", graph, [
        {"X": xb, "sr": np.array(16000, np.int64), "state": state},
        {"X": xb, "sr": np.array(8000, np.int64), "state": state},
        {"X": xb, "sr": np.array(16000, np.int64), "state": np.zeros((2, 0, H), np.float32)},
    ], {"rnn16": tuple(o16), "gru8": tuple(o8), "rnn16_nostate": tuple(o16n)})
    np.savez(out / "nested_no_sr.npz", X=xb, state=state)  # the input deciding the branch left out

    # same_names: two branches built from one template: the same node name "lstm" and the
    # same tensor names (x_in, W, R, B) inside each, different weights.
    def template(seed_weights: dict[str, np.ndarray], tag: str):
        named = {"W": seed_weights["s_W"], "R": seed_weights["s_R"], "B": seed_weights["s_B"]}
        nodes = [*constants(named), helper.make_node("Sigmoid", ["X"], ["x_in"]),
                 helper.make_node("LSTM", ["x_in", "W", "R", "B"],
                                  [f"Y_{tag}", f"Yh_{tag}", f"Yc_{tag}"], name="lstm", hidden_size=H)]
        return branch(tag, nodes, [f"Yh_{tag}"]), (f"Y_{tag}", f"Yh_{tag}", f"Yc_{tag}")

    then_g, then_o = template(weights("LSTM", "s", I), "then")
    else_g, else_o = template(weights("LSTM", "s", I), "else")
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], name="sel", then_branch=then_g, else_branch=else_g)],
        "same_names", [x_info, cond_info], [helper.make_tensor_value_info("out", F32, None)])
    save("same_names", graph, [{"X": x, "cond": np.array(True)}, {"X": x, "cond": np.array(False)}],
         {"sel/then/lstm": then_o, "sel/else/lstm": else_o})

    # stacked_in_branch: two stacked LSTMs in the then branch (torch's 2-layer nn.LSTM
    # inside an if), the second fed the first's Y through Squeeze; a GRU in the else branch.
    w_1, w_2, w_o = weights("LSTM", "f1", I), weights("LSTM", "f2", H), weights("GRU", "ot", I)
    first, f1 = rnn_node("LSTM", "first", "X", "f1")
    second, f2 = rnn_node("LSTM", "second", "f1_seq", "f2", direction="reverse")
    other, ot = rnn_node("GRU", "other", "X", "ot")
    graph = helper.make_graph(
        [helper.make_node("If", ["cond"], ["out"], name="stack_if",
                          then_branch=branch("then", [
                              *constants(w_1), *constants(w_2), first,
                              helper.make_node("Squeeze", ["f1_Y", "one_axis"], ["f1_seq"]),
                              second], [f2[1]]),
                          else_branch=branch("else", [*constants(w_o), other], [ot[1]]))],
        "stacked_in_branch", [x_info, cond_info], [helper.make_tensor_value_info("out", F32, None)],
        [numpy_helper.from_array(np.array([1], np.int64), "one_axis")])
    save("stacked_in_branch", graph,
         [{"X": x, "cond": np.array(True)}, {"X": x, "cond": np.array(False)}],
         {"first": tuple(f1), "second": tuple(f2), "other": tuple(ot)})

    # zeros_by_if: a top-level LSTM whose initial_h is zeros made to the batch's shape by
    # either branch of an If (ConstantOfShape, or Expand of a zero): known zeros, not wired.
    w_z = weights("LSTM", "z", I)
    z_lstm, z_outs = rnn_node("LSTM", "z_lstm", "X", "z", ("h_zero",))
    graph = helper.make_graph(
        [helper.make_node("Shape", ["X"], ["x_shape"]),
         helper.make_node("Gather", ["x_shape", "one_idx"], ["batch"], axis=0),
         helper.make_node("Concat", ["one_vec", "batch_vec", "h_vec"], ["h_shape"], axis=0),
         helper.make_node("Unsqueeze", ["batch", "zero_axis"], ["batch_vec"]),
         helper.make_node("If", ["cond"], ["h_zero"], name="zero_if",
                          then_branch=branch("then", [helper.make_node(
                              "ConstantOfShape", ["h_shape"], ["h_c"],
                              value=numpy_helper.from_array(np.zeros(1, np.float32)))], ["h_c"]),
                          else_branch=branch("else", [helper.make_node(
                              "Expand", ["zero_f", "h_shape"], ["h_e"])], ["h_e"])),
         z_lstm],
        "zeros_by_if", [x_info, cond_info], [helper.make_tensor_value_info(z_outs[1], F32, None)],
        [numpy_helper.from_array(np.array(1, np.int64), "one_idx"),
         numpy_helper.from_array(np.array([1], np.int64), "one_vec"),
         numpy_helper.from_array(np.array([H], np.int64), "h_vec"),
         numpy_helper.from_array(np.array([0], np.int64), "zero_axis"),
         numpy_helper.from_array(np.array(0.0, np.float32), "zero_f"),
         *[numpy_helper.from_array(v, k) for k, v in w_z.items()]])
    # (Concat reads batch_vec before the Unsqueeze that makes it: reorder for a valid graph)
    nodes = list(graph.node)
    nodes[2], nodes[3] = nodes[3], nodes[2]
    del graph.node[:]
    graph.node.extend(nodes)
    save("zeros_by_if", graph, [{"X": x, "cond": np.array(True)}, {"X": x, "cond": np.array(False)}],
         {"z_lstm": tuple(z_outs)})

    # float16: a float16 X and float16 weights (initializers of the branch), in a then
    # branch. Also saved: a float32 twin (the same values widened) and its references.
    w_h = weights("LSTM", "h", I, np.float16)
    lstm, h_outs = rnn_node("LSTM", "half_lstm", "X", "h")
    then_g = helper.make_graph([lstm], "then", [], [helper.make_tensor_value_info(h_outs[1], F16, None)],
                               [numpy_helper.from_array(v, k) for k, v in w_h.items()])
    else_g = branch("else", [helper.make_node("Constant", [], ["none"], value=helper.make_tensor(
        "v", F16, [0], []))], ["none"], F16)
    x16 = x.astype(np.float16)
    for suffix, elem, cast in (("", F16, np.float16), ("_twin", F32, np.float32)):
        if cast is np.float32:
            then_g = copy.deepcopy(then_g)
            for t in then_g.initializer:
                t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float32), t.name))
            then_g.output[0].type.tensor_type.elem_type = F32
            else_g = branch("else", [helper.make_node("Constant", [], ["none"], value=helper.make_tensor(
                "v", F32, [0], []))], ["none"], F32)
        graph = helper.make_graph(
            [helper.make_node("If", ["cond"], ["out"], name="half_if", then_branch=then_g,
                              else_branch=else_g)],
            "float16", [helper.make_tensor_value_info("X", elem, ["steps", "batch", I]), cond_info],
            [helper.make_tensor_value_info("out", elem, None)])
        save(f"float16{suffix}", graph, [{"X": x16.astype(cast), "cond": np.array(True)}],
             {"half_lstm": tuple(h_outs)}, elem=elem)

    # lstm_in_loop: an LSTM inside a Loop body (run once per iteration): refused, not run.
    w_l = weights("LSTM", "p", I)
    lstm, p_outs = rnn_node("LSTM", "looped", "X", "p")
    body = helper.make_graph(
        [*constants(w_l), lstm, helper.make_node("Identity", ["c_in"], ["c_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c_in", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info(p_outs[1], F32, None)])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", ""], ["hs"], name="steps_loop", body=body)],
        "lstm_in_loop", [x_info], [helper.make_tensor_value_info("hs", F32, None)],
        [numpy_helper.from_array(np.array(2, np.int64), "trips")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.save(model, out / "lstm_in_loop.onnx")
    # unrolled_loop: a SimpleRNN unrolled into a Loop body of plain ops (as tf2onnx writes
    # it): no recurrent node, refused in one line naming the loop.
    body = helper.make_graph(
        [helper.make_node("Gather", ["X", "it"], ["x_t"], axis=0),
         helper.make_node("MatMul", ["x_t", "Wk"], ["xw"]),
         helper.make_node("MatMul", ["h_in", "Uk"], ["hu"]),
         helper.make_node("Add", ["xw", "hu"], ["pre"]),
         helper.make_node("Tanh", ["pre"], ["h_out"]),
         helper.make_node("Identity", ["go_in"], ["go_out"])], "cell",
        [helper.make_tensor_value_info("it", TensorProto.INT64, []),
         helper.make_tensor_value_info("go_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", F32, [B, H])],
        [helper.make_tensor_value_info("go_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_out", F32, [B, H])])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "", "h0"], ["h_last"], name="rnn_loop", body=body)],
        "unrolled_loop", [x_info], [helper.make_tensor_value_info("h_last", F32, None)],
        [numpy_helper.from_array(np.array(T, np.int64), "trips"),
         numpy_helper.from_array(np.zeros((B, H), np.float32), "h0"),
         numpy_helper.from_array(rng.standard_normal((I, H)).astype(np.float32), "Wk"),
         numpy_helper.from_array(rng.standard_normal((H, H)).astype(np.float32), "Uk")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.save(model, out / "unrolled_loop.onnx")

    # erf_in_fixed_branch: the X of a top-level LSTM comes through an If whose constant
    # condition takes a branch with an op lstm-trace cannot replay (Erf): named by inspect.
    w_e = weights("LSTM", "er", I)
    lstm, e_outs = rnn_node("LSTM", "after_if", "x_sel", "er")
    graph = helper.make_graph(
        [helper.make_node("If", ["yes"], ["x_sel"], name="fixed_front",
                          then_branch=branch("then", [helper.make_node("Erf", ["X"], ["x_erf"],
                                                                       name="erf_front")], ["x_erf"]),
                          else_branch=branch("else", [helper.make_node("Identity", ["X"], ["x_id2"])],
                                             ["x_id2"])), lstm],
        "erf_in_fixed_branch", [x_info], [helper.make_tensor_value_info(e_outs[1], F32, None)],
        [numpy_helper.from_array(np.array(True), "yes"),
         *[numpy_helper.from_array(v, k) for k, v in w_e.items()]])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.save(model, out / "erf_in_fixed_branch.onnx")

    # too_deep: If branches nested 20 levels (a hostile file): refused in one line.
    inner_g = branch("leaf", [helper.make_node("Identity", ["X"], ["leaf_out"])], ["leaf_out"])
    for level in range(20):
        node = helper.make_node("If", ["cond"], [f"o{level}"], name=f"if{level}",
                                then_branch=inner_g, else_branch=inner_g)
        inner_g = branch(f"level{level}", [node], [f"o{level}"])
    graph = helper.make_graph(list(inner_g.node), "too_deep", [x_info, cond_info],
                              [helper.make_tensor_value_info("o19", F32, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    onnx.save(model, out / "too_deep.onnx")
    (out / "manifest.json").write_text(json.dumps({"cases": manifest}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
