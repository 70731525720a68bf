"""Builds TF1 RNN graphs with ``tf.compat.v1`` (graph mode), saves them with ``Saver`` and
records TensorFlow's own per-step states.

    TF_USE_LEGACY_KERAS=1 python tf1_cells.py OUTDIR

``tf.compat.v1.nn.rnn_cell`` needs tf_keras (``TF_USE_LEGACY_KERAS=1``). Each case builds
its graph, gives every variable random values (biases and peepholes too), saves
``<case>/model`` (with or without the ``.meta`` graph) and writes ``<case>_reference.npz``:

- ``<scope>/hidden``, ``<scope>/cell`` ``(batch, steps, units)``: the state right after the
  cell consumed ``x[t]`` (input positions), from stepping the *same* cell objects by hand
  in the graph (``cell(x_t, state)``, which reuses the built variables); the builder checks
  the hand-stepped states against the driver's own outputs before saving anything;
- ``<scope>/output``: what ``dynamic_rnn`` / ``static_rnn`` / ``bidirectional_dynamic_rnn``
  returned for the sequence (last cell of a stack), ``<scope>/final_hidden``,
  ``<scope>/final_cell``: its final state.
- ``<scope>/__input__``: what the cell consumed at each input position (``x`` or the
  previous cell's output); for GRU cells also TensorFlow's own variables,
  ``<scope>/__gate_kernel__`` ``(in+u, 2u)`` (gates ``r, u``), ``__gate_bias__``,
  ``__candidate_kernel__`` ``(in+u, u)``, ``__candidate_bias__``, so a test can check the
  reset gate against TF's equations with TF's weights.

Cells TF 2.21 no longer ships (tf.contrib ``LSTMBlockCell``, ``LSTMBlockFusedCell``,
``GRUBlockCell``, ``CudnnCompatibleLSTMCell``) are built from the ops they wrapped
(``tf.raw_ops.LSTMBlockCell``, ``BlockLSTM``, ``GRUBlockCell``) with variables named as the
contrib classes named them. ``CASES`` is plain data (no TensorFlow import).
"""

from __future__ import annotations

import sys
from pathlib import Path

# name: builder function below; meta: write the .meta graph; options: what a user passes
# to lstm-trace; expect: cell scope -> trace-key prefix lstm-trace must give it.
CASES: list[dict] = [
    {"name": "basic_lstm", "meta": False, "options": {}, "features": 3, "batch": 3, "steps": 7,
     "expect": {"rnn/basic_lstm_cell": "rnn/basic_lstm_cell"}},
    {"name": "basic_lstm_forget_bias", "meta": False, "options": {"forget_bias": 0.3},
     "features": 3, "batch": 2, "steps": 6,
     "expect": {"rnn/basic_lstm_cell": "rnn/basic_lstm_cell"}},
    {"name": "basic_lstm_forget_bias_meta", "meta": True, "options": {},
     "features": 3, "batch": 2, "steps": 6,
     "expect": {"rnn/basic_lstm_cell": "rnn/basic_lstm_cell"}},
    {"name": "lstm_peepholes", "meta": True, "options": {}, "features": 4, "batch": 2, "steps": 9,
     "expect": {"rnn/lstm_cell": "rnn/lstm_cell"}},
    {"name": "lstm_projection_clip", "meta": True, "options": {}, "features": 3, "batch": 3,
     "steps": 10, "scale": 1.6, "expect": {"rnn/lstm_cell": "rnn/lstm_cell"}},
    {"name": "lstm_projection_clip_options", "meta": False,
     "options": {"cell_clip": 0.5, "proj_clip": 0.3}, "features": 3, "batch": 3, "steps": 10,
     "scale": 1.6, "expect": {"rnn/lstm_cell": "rnn/lstm_cell"}},
    {"name": "gru", "meta": True, "options": {}, "features": 3, "batch": 3, "steps": 8,
     "expect": {"rnn/gru_cell": "rnn/gru_cell"}},
    {"name": "basic_rnn_relu_meta", "meta": True, "options": {}, "features": 3, "batch": 2,
     "steps": 6, "expect": {"rnn/basic_rnn_cell": "rnn/basic_rnn_cell"}},
    {"name": "basic_lstm_softsign", "meta": False, "options": {"activation": "softsign"},
     "features": 3, "batch": 2, "steps": 6,
     "expect": {"rnn/basic_lstm_cell": "rnn/basic_lstm_cell"}},
    {"name": "multi_dynamic", "meta": True, "options": {}, "features": 4, "batch": 2, "steps": 8,
     "expect": {"rnn/multi_rnn_cell/cell_0/lstm_cell": "rnn/multi_rnn_cell/cell_0/lstm_cell",
                "rnn/multi_rnn_cell/cell_1/gru_cell": "rnn/multi_rnn_cell/cell_1/gru_cell",
                "rnn/multi_rnn_cell/cell_2/basic_lstm_cell":
                    "rnn/multi_rnn_cell/cell_2/basic_lstm_cell"}},
    {"name": "multi_static", "meta": False, "options": {}, "features": 3, "batch": 2, "steps": 5,
     "expect": {"encoder/rnn/multi_rnn_cell/cell_0/gru_cell":
                    "encoder/rnn/multi_rnn_cell/cell_0/gru_cell",
                "encoder/rnn/multi_rnn_cell/cell_1/basic_rnn_cell":
                    "encoder/rnn/multi_rnn_cell/cell_1/basic_rnn_cell"}},
    {"name": "static_lstm", "meta": True, "options": {}, "features": 2, "batch": 2, "steps": 6,
     "expect": {"rnn/lstm_cell": "rnn/lstm_cell"}},
    {"name": "bidirectional", "meta": True, "options": {}, "features": 3, "batch": 3, "steps": 7,
     "expect": {"bidirectional_rnn/fw/basic_lstm_cell": "bidirectional_rnn/forward",
                "bidirectional_rnn/bw/lstm_cell": "bidirectional_rnn/backward"}},
    {"name": "bidirectional_stacks", "meta": False, "options": {}, "features": 3, "batch": 2,
     "steps": 6,
     "expect": {s: s for s in (
         "bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell",
         "bidirectional_rnn/fw/multi_rnn_cell/cell_1/lstm_cell",
         "bidirectional_rnn/bw/multi_rnn_cell/cell_0/gru_cell",
         "bidirectional_rnn/bw/multi_rnn_cell/cell_1/gru_cell")}},
    {"name": "sharded_partitioned", "meta": True, "options": {}, "features": 3, "batch": 2,
     "steps": 6, "expect": {"layer1/lstm_cell": "layer1/lstm_cell",
                            "layer2/rnn/gru_cell": "layer2/rnn/gru_cell"}},
    {"name": "old_names", "meta": False, "options": {}, "features": 3, "batch": 2, "steps": 5,
     "expect": {"rnn/multi_rnn_cell/cell_0/basic_lstm_cell":
                    "rnn/multi_rnn_cell/cell_0/basic_lstm_cell",
                "rnn/multi_rnn_cell/cell_1/gru_cell": "rnn/multi_rnn_cell/cell_1/gru_cell"}},
    {"name": "lstm_block_cell", "meta": True, "options": {}, "features": 3, "batch": 2,
     "steps": 7, "scale": 1.4, "expect": {"rnn/lstm_cell": "rnn/lstm_cell"}},
    {"name": "lstm_block_fused", "meta": True, "options": {}, "features": 3, "batch": 2,
     "steps": 7, "expect": {"encoder/lstm_fused_cell": "encoder/lstm_fused_cell"}},
    {"name": "lstm_block_fused_peepholes", "meta": True, "options": {}, "features": 3, "batch": 2,
     "steps": 7, "expect": {"encoder/lstm_fused_cell": "encoder/lstm_fused_cell"}},
    {"name": "cudnn_compatible_lstm", "meta": False, "options": {}, "features": 3, "batch": 2,
     "steps": 6, "expect": {"rnn/cudnn_compatible_lstm_cell": "rnn/cudnn_compatible_lstm_cell"}},
    {"name": "gru_block_cell", "meta": False, "options": {}, "features": 3, "batch": 2,
     "steps": 6, "expect": {"rnn/gru_cell": "rnn/gru_cell"}},
    # A TF 1.x-style graph: while loops as Enter/Switch/Merge nodes in the main graph.
    {"name": "control_flow_v1_meta", "meta": True, "options": {}, "features": 3, "batch": 2,
     "steps": 6, "scale": 1.6,
     "expect": {"rnn/multi_rnn_cell/cell_0/lstm_cell": "rnn/multi_rnn_cell/cell_0/lstm_cell",
                "rnn/multi_rnn_cell/cell_1/gru_cell": "rnn/multi_rnn_cell/cell_1/gru_cell"}},
    # Two RNNs on different inputs: the decoder is traced on its own input (--layer-input).
    {"name": "separate_rnns", "meta": True, "options": {}, "features": 3, "batch": 2, "steps": 5,
     "expect": {"encoder/rnn/basic_lstm_cell": "encoder/rnn/basic_lstm_cell",
                "decoder/rnn/gru_cell": "decoder/rnn/gru_cell"},
     "layer_inputs": {"decoder/rnn/gru_cell": 2}},
]

#: Checkpoints with no RNN cell at all (the loader must say so).
NO_CELL_CASE = "dense_only"

#: Called as ``hook(case, sess, feeds, fetch, directory)`` right after each case's checkpoint
#: is saved, with its session still open (tf1_frozen.py freezes and exports the same graphs).
AFTER_SAVE: list = []

# Options of cells, kept here so that tests can say what a case was built with.
BUILT_WITH = {
    "basic_lstm_forget_bias": {"forget_bias": 0.3},
    "basic_lstm_forget_bias_meta": {"forget_bias": 0.3},
    "lstm_projection_clip": {"cell_clip": 0.5, "proj_clip": 0.3},
    "lstm_projection_clip_options": {"cell_clip": 0.5, "proj_clip": 0.3},
    "lstm_block_cell": {"forget_bias": 0.6, "cell_clip": 0.9},
    "sharded_partitioned": {"forget_bias": 0.7},
    "control_flow_v1_meta": {"forget_bias": 0.4, "cell_clip": 0.6, "proj_clip": 0.2,
                             "gru_activation": "relu"},
}


def main(out: Path) -> None:  # noqa: C901 - one small builder per case, run in sequence
    import contextlib
    import json
    import os
    import zlib

    import numpy as np
    import tensorflow as tf

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    rnn = tf1.nn.rnn_cell

    def scope_of(cell) -> str:
        names = [v.name.split(":")[0] for v in cell.variables]
        return os.path.commonpath(names) if len(names) > 1 else names[0].rsplit("/", 1)[0]

    def randomize(sess, variables, rng, scale):
        for v in variables:
            shape = v.shape.as_list()
            std = scale / np.sqrt(shape[0]) if len(shape) == 2 else scale * 0.5
            v.load((rng.standard_normal(shape) * std).astype(np.float32), sess)

    def states_of(state):
        """A cell's state as {"cell": c, "hidden": h} (LSTMStateTuple) or {"hidden": h}."""
        if isinstance(state, rnn.LSTMStateTuple):
            return {"cell": state.c, "hidden": state.h}
        return {"hidden": state}

    def unroll(sub_cells, x, steps, reverse=False):
        """Step the cells by hand; per cell scope, its states at each input position.

        A stack is stepped cell by cell as MultiRNNCell.call does (calling the built
        MultiRNNCell again outside its driver lands in the driver's loop graph in TF 2.21).
        """
        batch = x.shape[0]
        states = [sub.zero_state(batch, tf.float32) for sub in sub_cells]
        per_step, inputs = {}, {}
        order = range(steps - 1, -1, -1) if reverse else range(steps)
        for t in order:
            inp = x[:, t]
            new_states = []
            for k, (sub, state) in enumerate(zip(sub_cells, states, strict=True)):
                inputs[k, t] = inp
                inp, state = sub(inp, state)
                new_states.append(state)
            states = per_step[t] = new_states
        result = {}
        for k, sub in enumerate(sub_cells):
            parts = [states_of(per_step[t][k]) for t in range(steps)]
            result[scope_of(sub)] = {q: tf.stack([p[q] for p in parts], 1) for q in parts[0]}
            result[scope_of(sub)]["__input__"] = tf.stack([inputs[k, t] for t in range(steps)], 1)
            if isinstance(sub, rnn.GRUCell):
                result[scope_of(sub)].update(gru_variables(
                    sub._gate_kernel, sub._gate_bias, sub._candidate_kernel, sub._candidate_bias))
        return result

    def gru_variables(gate_kernel, gate_bias, candidate_kernel, candidate_bias):
        """A GRU cell's variables as fetchable tensors (partitioned ones concatenated)."""
        values = (gate_kernel, gate_bias, candidate_kernel, candidate_bias)
        names = ("__gate_kernel__", "__gate_bias__", "__candidate_kernel__", "__candidate_bias__")
        return {n: tf.convert_to_tensor(v) for n, v in zip(names, values, strict=True)}

    def final_of(sub_cells, state):
        """Driver final state per sub-cell scope."""
        out = {}
        for k, sub in enumerate(sub_cells):
            s = states_of(state[k] if len(sub_cells) > 1 else state)
            out[scope_of(sub)] = {f"final_{q}": v for q, v in s.items()}
        return out

    def finish(case, graph, x, fetch, saver_kwargs=None, session_config=None, check=(),
               layer_inputs=None):
        """Randomize, evaluate, check hand-stepped states, save checkpoint and references.

        ``layer_inputs`` maps a cell scope to the placeholder of its own (second) input.
        """
        rng = np.random.default_rng(zlib.crc32(case["name"].encode()))
        feed_x = rng.standard_normal((case["batch"], case["steps"], case["features"]))
        feed_x = feed_x.astype(np.float32)
        feeds = {x: feed_x}
        for scope, placeholder in (layer_inputs or {}).items():
            value = rng.standard_normal(placeholder.shape.as_list()).astype(np.float32)
            feeds[placeholder] = value
            np.save(out / f"{case['name']}_{scope.replace('/', '_')}_input.npy", value)
        with graph.as_default():
            saver = tf1.train.Saver(**(saver_kwargs or {}))
            with tf1.Session(graph=graph, config=session_config) as sess:
                sess.run(tf1.global_variables_initializer())
                randomize(sess, tf1.trainable_variables(), rng, case.get("scale", 0.8))
                values = sess.run(fetch, feeds)
                directory = out / case["name"]
                directory.mkdir()
                saver.save(sess, str(directory / "model"), write_meta_graph=case["meta"])
                for hook in AFTER_SAVE:
                    hook(case, sess, feeds, fetch, directory)
        reference = {f"{scope}/{q}": v for scope, qs in values.items() for q, v in qs.items()}
        for a, b in check:  # hand-stepped state == the driver's own output
            err = np.abs(reference[a] - reference[b]).max()
            assert err < 1e-6, (case["name"], a, b, err)
        for key, value in reference.items():
            assert np.isfinite(value).all() and np.abs(value).max() < 50, (case["name"], key)
        np.save(out / f"{case['name']}_input.npy", feed_x)
        np.savez(out / f"{case['name']}_reference.npz", **reference)
        return reference

    def dynamic(case, make_cells, *, static=False, scope=None, multi=None):
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            sub_cells = make_cells()
            cell = rnn.MultiRNNCell(sub_cells) if (multi or len(sub_cells) > 1) else sub_cells[0]
            with tf1.variable_scope(scope) if scope else contextlib.nullcontext():
                if static:
                    outputs, state = tf1.nn.static_rnn(cell, tf.unstack(x, axis=1), dtype=tf.float32)
                    outputs = tf.stack(outputs, 1)
                else:
                    outputs, state = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
            count = len(tf1.global_variables())
            fetch = unroll(sub_cells, x, case["steps"])
            assert len(tf1.global_variables()) == count, "hand stepping created new variables"
            last = scope_of(sub_cells[-1])
            fetch[last]["output"] = outputs
            for s, finals in final_of(sub_cells, state).items():
                fetch[s].update(finals)
        check = [(f"{last}/output", f"{last}/hidden")]
        reference = finish(case, graph, x, fetch, check=check)
        for c in sub_cells:
            s = scope_of(c)
            for q in ("hidden", "cell"):
                if f"{s}/final_{q}" in reference:
                    err = np.abs(reference[f"{s}/final_{q}"] - reference[f"{s}/{q}"][:, -1]).max()
                    assert err < 1e-6, (case["name"], s, q, err)
        return reference

    def bidirectional(case, make_fw, make_bw):
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            fw_cells, bw_cells = make_fw(), make_bw()
            fw = rnn.MultiRNNCell(fw_cells) if len(fw_cells) > 1 else fw_cells[0]
            bw = rnn.MultiRNNCell(bw_cells) if len(bw_cells) > 1 else bw_cells[0]
            (out_fw, out_bw), (st_fw, st_bw) = tf1.nn.bidirectional_dynamic_rnn(
                fw, bw, x, dtype=tf.float32)
            fetch = unroll(fw_cells, x, case["steps"])
            fetch.update(unroll(bw_cells, x, case["steps"], reverse=True))
            fetch[scope_of(fw_cells[-1])]["output"] = out_fw
            fetch[scope_of(bw_cells[-1])]["output"] = out_bw
            for cells, state in ((fw_cells, st_fw), (bw_cells, st_bw)):
                for s, finals in final_of(cells, state).items():
                    fetch[s].update(finals)
        check = [(f"{scope_of(c[-1])}/output", f"{scope_of(c[-1])}/hidden")
                 for c in (fw_cells, bw_cells)]
        reference = finish(case, graph, x, fetch, check=check)
        for cells, position in ((fw_cells, -1), (bw_cells, 0)):
            for c in cells:
                s = scope_of(c)
                err = np.abs(reference[f"{s}/final_hidden"] - reference[f"{s}/hidden"][:, position]).max()
                assert err < 1e-6, (case["name"], s, err)

    def block_cell(case, scope, cell_scope, *, forget_bias, cell_clip, peephole):
        """``tf.raw_ops.LSTMBlockCell`` stepped in the graph, variables named like contrib's."""
        graph = tf.Graph()
        units = 5
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            with tf1.variable_scope(scope), tf1.variable_scope(cell_scope):
                w = tf1.get_variable("kernel", (case["features"] + units, 4 * units))
                b = tf1.get_variable("bias", (4 * units,))
                if peephole:
                    wci, wcf, wco = (tf1.get_variable(n, (units,))
                                     for n in ("w_i_diag", "w_f_diag", "w_o_diag"))
                else:
                    wci = wcf = wco = tf.zeros((units,))
            cs = h = tf.zeros((case["batch"], units))
            cells, hiddens = [], []
            for t in range(case["steps"]):
                step = tf.raw_ops.LSTMBlockCell(
                    x=x[:, t], cs_prev=cs, h_prev=h, w=w, wci=wci, wcf=wcf, wco=wco, b=b,
                    forget_bias=forget_bias, cell_clip=cell_clip, use_peephole=peephole)
                cs, h = step.cs, step.h
                cells.append(cs)
                hiddens.append(h)
            name = f"{scope}/{cell_scope}"
            fetch = {name: {"cell": tf.stack(cells, 1), "hidden": tf.stack(hiddens, 1)}}
        return finish(case, graph, x, fetch)

    def fused(case, peephole=False):
        """``tf.raw_ops.BlockLSTM`` (LSTMBlockFusedCell's op), time-major, contrib names;
        peepholes named ``w_i_diag``, ``w_f_diag``, ``w_o_diag`` as contrib named them."""
        graph = tf.Graph()
        units = 4
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            with tf1.variable_scope("encoder"), tf1.variable_scope("lstm_fused_cell"):
                w = tf1.get_variable("kernel", (case["features"] + units, 4 * units))
                b = tf1.get_variable("bias", (4 * units,))
                if peephole:
                    wci, wcf, wco = (tf1.get_variable(n, (units,))
                                     for n in ("w_i_diag", "w_f_diag", "w_o_diag"))
                else:
                    wci = wcf = wco = tf.zeros((units,))
            zeros = tf.zeros((case["batch"], units))
            res = tf.raw_ops.BlockLSTM(
                seq_len_max=tf.constant(case["steps"], tf.int64), x=tf.transpose(x, (1, 0, 2)),
                cs_prev=zeros, h_prev=zeros, w=w, wci=wci, wcf=wcf, wco=wco, b=b, forget_bias=1.0,
                cell_clip=-1.0, use_peephole=peephole)
            fetch = {"encoder/lstm_fused_cell": {
                "cell": tf.transpose(res.cs, (1, 0, 2)), "hidden": tf.transpose(res.h, (1, 0, 2))}}
        return finish(case, graph, x, fetch)

    def gru_block(case):
        """``tf.raw_ops.GRUBlockCell`` (contrib GRUBlockCell: w_ru, b_ru, w_c, b_c)."""
        graph = tf.Graph()
        units = 4
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            with tf1.variable_scope("rnn"), tf1.variable_scope("gru_cell"):
                w_ru = tf1.get_variable("w_ru", (case["features"] + units, 2 * units))
                w_c = tf1.get_variable("w_c", (case["features"] + units, units))
                b_ru = tf1.get_variable("b_ru", (2 * units,))
                b_c = tf1.get_variable("b_c", (units,))
            h = tf.zeros((case["batch"], units))
            hiddens = []
            for t in range(case["steps"]):
                h = tf.raw_ops.GRUBlockCell(x=x[:, t], h_prev=h, w_ru=w_ru, w_c=w_c, b_ru=b_ru,
                                            b_c=b_c).h
                hiddens.append(h)
            fetch = {"rnn/gru_cell": {"hidden": tf.stack(hiddens, 1), "__input__": x,
                                      **gru_variables(w_ru, b_ru, w_c, b_c)}}
        return finish(case, graph, x, fetch)

    def old_names(case):
        """TF < 1.0 names (weights/biases) for the same cells, via a Saver name map."""
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            sub_cells = [rnn.BasicLSTMCell(5), rnn.GRUCell(3)]
            cell = rnn.MultiRNNCell(sub_cells)
            outputs, _ = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
            fetch = unroll(sub_cells, x, case["steps"])
            fetch[scope_of(sub_cells[-1])]["output"] = outputs
            renamed = {}
            for v in tf1.global_variables():
                name = v.name.split(":")[0]
                renamed[name.replace("/kernel", "/weights").replace("/bias", "/biases")] = v
        last = scope_of(sub_cells[-1])
        finish(case, graph, x, fetch, saver_kwargs={"var_list": renamed},
               check=[(f"{last}/output", f"{last}/hidden")])

    def sharded(case):
        """Two RNNs on two devices, Saver(sharded=True), partitioned kernels."""
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            with tf.device("/cpu:0"):
                c1 = rnn.LSTMCell(6, num_unit_shards=3, num_proj=4, num_proj_shards=2,
                                  use_peepholes=True,
                                  forget_bias=BUILT_WITH[case["name"]]["forget_bias"])
                out1, st1 = tf1.nn.dynamic_rnn(c1, x, dtype=tf.float32, scope="layer1")
            with tf.device("/cpu:1"), tf1.variable_scope(
                    "layer2", partitioner=tf1.fixed_size_partitioner(2)):
                c2 = rnn.GRUCell(3)
                out2, st2 = tf1.nn.dynamic_rnn(c2, out1, dtype=tf.float32)
            fetch = unroll([c1], x, case["steps"])
            fetch.update(unroll([c2], out1, case["steps"]))
            fetch[scope_of(c1)]["output"] = out1
            fetch[scope_of(c2)]["output"] = out2
            partitioned = [v.name for v in tf1.global_variables() if "/part_" in v.name]
            assert partitioned, "no partitioned variable was made"
        config = tf1.ConfigProto(device_count={"CPU": 2})
        finish(case, graph, x, fetch, saver_kwargs={"sharded": True}, session_config=config,
               check=[(f"{scope_of(c)}/output", f"{scope_of(c)}/hidden") for c in (c1, c2)])
        shards = sorted(p.name for p in (out / case["name"]).glob("model.data-*"))
        assert len(shards) == 2, shards

    builders = {
        "basic_lstm": lambda c: _basic_lstm_with_training_state(c),
        "basic_lstm_forget_bias": lambda c: dynamic(c, lambda: [rnn.BasicLSTMCell(5, forget_bias=0.3)]),
        "basic_lstm_forget_bias_meta": lambda c: dynamic(
            c, lambda: [rnn.BasicLSTMCell(5, forget_bias=0.3)]),
        "lstm_peepholes": lambda c: dynamic(c, lambda: [rnn.LSTMCell(6, use_peepholes=True)]),
        "lstm_projection_clip": lambda c: _projection(c),
        "lstm_projection_clip_options": lambda c: _projection(c),
        "gru": lambda c: dynamic(c, lambda: [rnn.GRUCell(5)]),
        "basic_rnn_relu_meta": lambda c: dynamic(c, lambda: [rnn.BasicRNNCell(4, activation=tf.nn.relu)]),
        "basic_lstm_softsign": lambda c: dynamic(
            c, lambda: [rnn.BasicLSTMCell(4, activation=tf.nn.softsign)]),
        "multi_dynamic": lambda c: dynamic(c, lambda: [
            rnn.LSTMCell(6, use_peepholes=True), rnn.GRUCell(5), rnn.BasicLSTMCell(4, forget_bias=1.0)]),
        "multi_static": lambda c: dynamic(c, lambda: [rnn.GRUCell(4), rnn.BasicRNNCell(3)],
                                          static=True, scope="encoder"),
        "static_lstm": lambda c: dynamic(c, lambda: [rnn.LSTMCell(5)], static=True),
        "bidirectional": lambda c: bidirectional(
            c, lambda: [rnn.BasicLSTMCell(5)], lambda: [rnn.LSTMCell(5, use_peepholes=True)]),
        "bidirectional_stacks": lambda c: bidirectional(
            c, lambda: [rnn.LSTMCell(4), rnn.LSTMCell(3)], lambda: [rnn.GRUCell(4), rnn.GRUCell(3)]),
        "sharded_partitioned": sharded,
        "old_names": old_names,
        "lstm_block_cell": lambda c: block_cell(c, "rnn", "lstm_cell", forget_bias=0.6,
                                                cell_clip=0.9, peephole=True),
        "lstm_block_fused": fused,
        "lstm_block_fused_peepholes": lambda c: fused(c, peephole=True),
        "cudnn_compatible_lstm": lambda c: block_cell(
            c, "rnn", "cudnn_compatible_lstm_cell", forget_bias=0.0, cell_clip=-1.0, peephole=False),
        "gru_block_cell": gru_block,
    }

    def _projection(case):
        clip = BUILT_WITH[case["name"]]
        reference = dynamic(case, lambda: [rnn.LSTMCell(
            5, use_peepholes=True, num_proj=3, cell_clip=clip["cell_clip"],
            proj_clip=clip["proj_clip"])])
        # The clips must bite, or the test would not test them.
        for q, limit in (("cell", clip["cell_clip"]), ("hidden", clip["proj_clip"])):
            hit = np.isclose(np.abs(reference[f"rnn/lstm_cell/{q}"]), limit).mean()
            assert hit > 0.05, (case["name"], q, hit)

    def _basic_lstm_with_training_state(case):
        """A BasicLSTMCell with a dense head, Adam slots and global_step (unexplained variables)."""
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            cell = rnn.BasicLSTMCell(5)
            outputs, state = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
            logits = tf1.layers.dense(outputs[:, -1], 2)
            step = tf1.train.get_or_create_global_step()
            tf1.train.AdamOptimizer().minimize(tf.reduce_sum(logits ** 2), global_step=step)
            fetch = unroll([cell], x, case["steps"])
            fetch["rnn/basic_lstm_cell"].update(output=outputs, final_cell=state.c,
                                                final_hidden=state.h)
        finish(case, graph, x, fetch, check=[("rnn/basic_lstm_cell/output",
                                              "rnn/basic_lstm_cell/hidden")])

    def separate(case):
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            width = case["layer_inputs"]["decoder/rnn/gru_cell"]
            y = tf1.placeholder(tf.float32, (case["batch"], case["steps"], width))
            enc, dec = rnn.BasicLSTMCell(4), rnn.GRUCell(3)
            with tf1.variable_scope("encoder"):
                out_enc, _ = tf1.nn.dynamic_rnn(enc, x, dtype=tf.float32)
            with tf1.variable_scope("decoder"):
                out_dec, _ = tf1.nn.dynamic_rnn(dec, y, dtype=tf.float32)
            fetch = unroll([enc], x, case["steps"])
            fetch.update(unroll([dec], y, case["steps"]))
            fetch[scope_of(enc)]["output"] = out_enc
            fetch[scope_of(dec)]["output"] = out_dec
        finish(case, graph, x, fetch, layer_inputs={scope_of(dec): y},
               check=[(f"{scope_of(c)}/output", f"{scope_of(c)}/hidden") for c in (enc, dec)])

    def dense_only(directory):
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (2, 3))
            tf1.layers.dense(x, 4)
            tf1.train.get_or_create_global_step()
            saver = tf1.train.Saver()
            with tf1.Session(graph=graph) as sess:
                sess.run(tf1.global_variables_initializer())
                directory.mkdir()
                saver.save(sess, str(directory / "model"))

    def control_flow_v1(case):
        built = BUILT_WITH[case["name"]]
        tf1.disable_control_flow_v2()
        try:
            dynamic(case, lambda: [
                rnn.LSTMCell(4, forget_bias=built["forget_bias"], cell_clip=built["cell_clip"],
                             num_proj=3, proj_clip=built["proj_clip"]),
                rnn.GRUCell(3, activation=getattr(tf.nn, built["gru_activation"]))])
        finally:
            tf1.enable_control_flow_v2()

    builders["separate_rnns"] = separate
    builders["control_flow_v1_meta"] = control_flow_v1
    dense_only(out / NO_CELL_CASE)
    manifest = []
    for case in CASES:
        builders[case["name"]](case)
        manifest.append({"name": case["name"], "checkpoint": f"{case['name']}/model",
                         "input": f"{case['name']}_input.npy",
                         "reference": f"{case['name']}_reference.npz"})
    (out / "manifest.json").write_text(json.dumps({"cases": manifest}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
