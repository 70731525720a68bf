"""Frozen TF1 graphs (``.pb`` GraphDef) and TF1 SavedModels of every TF1 cell case, with
TensorFlow's own states computed *from the frozen graph*.

    TF_USE_LEGACY_KERAS=1 python tf1_frozen.py OUTDIR

Every case of ``tf1_cells.CASES`` is built by that script's own builders (through its
``AFTER_SAVE`` hook, with the session still open), and for each this script writes:

- ``<case>/frozen.pb``: ``convert_variables_to_constants`` of the graph, pruned to what the
  model returns (the RNN driver's outputs and final states; for the cases built from raw
  block ops, their states): the file a user deploys, with no variable left;
- ``<case>/saved_model/``: ``tf.compat.v1.saved_model.simple_save`` of the same session
  (a MetaGraphDef plus a variables checkpoint, no Keras metadata);
- ``<case>_frozen_reference.npz``: TensorFlow running a frozen copy of the whole graph, imported
  into a fresh graph (weights are constants there): per cell scope its ``hidden`` and
  ``cell`` at every input position (stepped by hand with the same cell objects), and the
  driver's ``output`` / ``final_hidden`` / ``final_cell``. Checked equal to what the live
  session computed before anything is saved.

``TIME_MAJOR_CASES`` and ``SAME_INPUT_CASES`` (two RNNs on one placeholder) are built here;
the time-major ones are ``dynamic_rnn(time_major=True)`` graphs, whose
placeholder is ``(steps, batch, features)``; their ``_input.npy`` is batch-major like every
INPUT of lstm-trace.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    from builders.tf1_cells import CASES as TF1_CASES  # imported by the tests
except ImportError:  # run as a script, tests/builders on the path
    from tf1_cells import CASES as TF1_CASES

#: name -> cells of a MultiRNNCell driven time-major (plain data).
TIME_MAJOR_CASES: list[dict] = [
    {"name": "time_major_stack", "features": 3, "batch": 2, "steps": 6, "options": {},
     "expect": {"rnn/multi_rnn_cell/cell_0/lstm_cell": "rnn/multi_rnn_cell/cell_0/lstm_cell",
                "rnn/multi_rnn_cell/cell_1/gru_cell": "rnn/multi_rnn_cell/cell_1/gru_cell"}},
]
#: Two RNNs on the same placeholder whose sizes would also let one feed the other: the graph,
#: not the sizes, must decide (both are traced from INPUT).
SAME_INPUT_CASES: list[dict] = [
    {"name": "two_rnns_same_input", "features": 3, "batch": 2, "steps": 5, "options": {},
     "expect": {"a/lstm_cell": "a/lstm_cell", "b/gru_cell": "b/gru_cell"}},
]
CASES: list[dict] = [*TF1_CASES, *TIME_MAJOR_CASES, *SAME_INPUT_CASES]
#: Built with (the graph must say these; the tests load the frozen files without options).
TIME_MAJOR_BUILT_WITH = {"forget_bias": 0.4, "cell_clip": 0.7}
DRIVER_QUANTITIES = ("output", "final_hidden", "final_cell")


def main(out: Path) -> None:
    import json
    import zlib

    import numpy as np
    import tensorflow as tf
    import tf1_cells

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    rnn = tf1.nn.rnn_cell

    def freeze(sess, tensors) -> object:
        names = sorted({t.op.name for t in tensors})
        graph_def = tf1.graph_util.convert_variables_to_constants(
            sess, sess.graph.as_graph_def(), names)
        nodes = [*graph_def.node, *(n for f in graph_def.library.function for n in f.node_def)]
        for node in nodes:  # clear_devices, as frozen graphs are deployed
            node.device = ""
        return graph_def

    def run_frozen(graph_def, feeds: dict, fetch: dict) -> dict:
        """Values of ``fetch`` (scope -> quantity -> tensor) computed by the frozen graph."""
        graph = tf.Graph()
        with graph.as_default():
            tf1.import_graph_def(graph_def, name="")
            assert not tf1.global_variables()
            feed = {graph.get_tensor_by_name(p.name): v for p, v in feeds.items()}
            wanted = {s: {q: graph.get_tensor_by_name(t.name) for q, t in qs.items()}
                      for s, qs in fetch.items()}
            with tf1.Session(graph=graph) as sess:
                return sess.run(wanted, feed)

    def seeded_input(case) -> tuple[np.random.Generator, np.ndarray]:
        """The case's generator (seeded by its name) and its random input (batch, steps, features)."""
        rng = np.random.default_rng(zlib.crc32(case["name"].encode()))
        feed_x = rng.standard_normal((case["batch"], case["steps"], case["features"]))
        return rng, feed_x.astype(np.float32)

    def load_random_weights(sess, rng: np.random.Generator) -> None:
        """Random, non-trivial weights for every variable (kernels scaled by fan-in)."""
        sess.run(tf1.global_variables_initializer())
        for v in tf1.trainable_variables():
            shape = v.shape.as_list()
            std = 1.2 / np.sqrt(shape[0]) if len(shape) == 2 else 0.6
            v.load((rng.standard_normal(shape) * std).astype(np.float32), sess)

    def after_save(case, sess, feeds, fetch, directory: Path) -> None:
        driver = [t for qs in fetch.values() for q, t in qs.items() if q in DRIVER_QUANTITIES]
        everything = [t for qs in fetch.values() for t in qs.values()]
        model_outputs = driver or everything
        (directory / "frozen.pb").write_bytes(freeze(sess, model_outputs).SerializeToString())
        live = sess.run(fetch, feeds)
        frozen = run_frozen(freeze(sess, everything), feeds, fetch)
        reference = {}
        for scope, qs in frozen.items():
            for q, value in qs.items():
                err = np.abs(value - live[scope][q]).max()
                assert err < 1e-6, (case["name"], scope, q, err)
                reference[f"{scope}/{q}"] = value
        np.savez(out / f"{case['name']}_frozen_reference.npz", **reference)
        inputs = {f"input_{k}": p for k, p in enumerate(feeds)}
        outputs = {f"output_{k}": t for k, t in enumerate(model_outputs)}
        tf1.saved_model.simple_save(sess, str(directory / "saved_model"), inputs, outputs)

    def time_major(case) -> None:
        graph = tf.Graph()
        built = TIME_MAJOR_BUILT_WITH
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["steps"], case["batch"], case["features"]))
            cells = [rnn.LSTMCell(5, use_peepholes=True, **built), rnn.GRUCell(4)]
            outputs, state = tf1.nn.dynamic_rnn(rnn.MultiRNNCell(cells), x, dtype=tf.float32,
                                                time_major=True)
            states = [c.zero_state(case["batch"], tf.float32) for c in cells]
            per_step = []
            for t in range(case["steps"]):
                inp, new = x[t], []
                for c, s in zip(cells, states, strict=True):
                    inp, s = c(inp, s)
                    new.append(s)
                states = new
                per_step.append(new)
            lstm, gru = (s.split(":")[0].rsplit("/", 1)[0] for s in
                         (cells[0].variables[0].name, cells[1].variables[0].name))
            gru = gru.rsplit("/", 1)[0]  # gru_cell/gates/kernel -> gru_cell
            fetch = {
                lstm: {"hidden": tf.stack([p[0].h for p in per_step], 1),
                       "cell": tf.stack([p[0].c for p in per_step], 1),
                       "final_hidden": state[0].h, "final_cell": state[0].c},
                gru: {"hidden": tf.stack([p[1] for p in per_step], 1),
                      "output": tf.transpose(outputs, (1, 0, 2)), "final_hidden": state[1]},
            }
            assert set(fetch) == set(case["expect"]), fetch.keys()
            rng, feed_x = seeded_input(case)
            with tf1.Session(graph=graph) as sess:
                load_random_weights(sess, rng)
                directory = out / case["name"]
                directory.mkdir()
                feeds = {x: feed_x.transpose(1, 0, 2)}
                after_save(case, sess, feeds, fetch, directory)
        reference = np.load(out / f"{case['name']}_frozen_reference.npz")
        assert np.abs(reference[f"{gru}/output"] - reference[f"{gru}/hidden"]).max() < 1e-6
        assert np.isclose(np.abs(reference[f"{lstm}/cell"]), built["cell_clip"]).mean() > 0.05
        np.save(out / f"{case['name']}_input.npy", feed_x)

    def same_input(case) -> None:
        graph = tf.Graph()
        with graph.as_default():
            x = tf1.placeholder(tf.float32, (case["batch"], case["steps"], case["features"]))
            lstm, gru = rnn.LSTMCell(3, forget_bias=0.8), rnn.GRUCell(2)
            out_a, state_a = tf1.nn.dynamic_rnn(lstm, x, dtype=tf.float32, scope="a")
            out_b, state_b = tf1.nn.dynamic_rnn(gru, x, dtype=tf.float32, scope="b")
            fetch = {"a/lstm_cell": {"hidden": out_a, "output": out_a, "final_hidden": state_a.h,
                                     "final_cell": state_a.c},
                     "b/gru_cell": {"hidden": out_b, "output": out_b, "final_hidden": state_b}}
            rng, feed_x = seeded_input(case)
            with tf1.Session(graph=graph) as sess:
                load_random_weights(sess, rng)
                directory = out / case["name"]
                directory.mkdir()
                after_save(case, sess, {x: feed_x}, fetch, directory)
        np.save(out / f"{case['name']}_input.npy", feed_x)

    tf1_cells.AFTER_SAVE.append(after_save)
    tf1_cells.main(out)
    for case in TIME_MAJOR_CASES:
        time_major(case)
    for case in SAME_INPUT_CASES:
        same_input(case)
    manifest = [{"name": c["name"], "frozen": f"{c['name']}/frozen.pb",
                 "saved_model": f"{c['name']}/saved_model", "input": f"{c['name']}_input.npy",
                 "reference": f"{c['name']}_frozen_reference.npz"} for c in CASES]
    (out / "manifest.json").write_text(json.dumps({"cases": manifest}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
