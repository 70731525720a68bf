"""Write the small TF1 sample files used by docs/tf1-checkpoints.md.

    TF_USE_LEGACY_KERAS=1 python sample_models/make_tf1_models.py

Needs TensorFlow with tf_keras (``tf.compat.v1.nn.rnn_cell``); lstm-trace never does.
One graph, built in ``tf.compat.v1`` graph mode with seeded random weights::

    cell = MultiRNNCell([LSTMCell(8, use_peepholes=True, cell_clip=3.0, forget_bias=0.5),
                         GRUCell(4)])
    outputs, state = dynamic_rnn(cell, x)          # x: (batch, 10, 3)

written next to this script as

- ``tf1_frozen.pb``: ``convert_variables_to_constants`` of it (outputs and final states);
- ``tf1_saved_model/``: ``tf.compat.v1.saved_model.simple_save`` of the same session;
- ``tf1_input.npy`` ``(1, 10, 3)`` float32, and ``tf1_reference.npz``: what TensorFlow
  returned for it (``outputs``, the last cell's hidden state at every step).

and a second graph, a checkpoint (``Saver``) with a dense head and ``global_step`` beside the
cells::

    cell = MultiRNNCell([LSTMCell(16, use_peepholes=True, cell_clip=3.0, forget_bias=0.5),
                         LSTMCell(8, num_proj=4)])
    outputs, state = dynamic_rnn(cell, x)          # x: (batch, 12, 3)
    logits = dense(outputs[:, -1], 2)              # + get_or_create_global_step()

written as

- ``tf1_ckpt/``: ``Saver().save(sess, "tf1_ckpt/model", global_step=0)`` (``checkpoint``,
  ``model-0.index``, ``model-0.data-00000-of-00001``, ``model-0.meta``);
- ``tf1_ckpt_no_meta/``: the same checkpoint without its ``.meta`` graph;
- ``tf1_ckpt_cut/``: the same, its data file cut to 100 bytes; ``tf1_ckpt_bad_index/``: the
  same, one byte of its index file changed (the damaged-file examples);
- ``tf1_ckpt_input.npy`` ``(1, 12, 3)`` float32, and ``tf1_ckpt_reference.npz``: what
  TensorFlow returned for it (``outputs``: the last cell's projected output at every step).
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    import numpy as np
    import tensorflow as tf

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    rnn = tf1.nn.rnn_cell
    rng = np.random.default_rng(14)
    x_value = rng.standard_normal((1, 10, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        x = tf1.placeholder(tf.float32, (None, 10, 3), name="x")
        cell = rnn.MultiRNNCell([
            rnn.LSTMCell(8, use_peepholes=True, cell_clip=3.0, forget_bias=0.5),
            rnn.GRUCell(4),
        ])
        outputs, state = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        outputs = tf.identity(outputs, name="outputs")
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            for v in tf1.trainable_variables():
                shape = v.shape.as_list()
                std = 1.5 / np.sqrt(shape[0]) if len(shape) == 2 else 0.5
                v.load((rng.standard_normal(shape) * std).astype(np.float32), sess)
            returned = [outputs, state[0].c, state[0].h, state[1]]
            values = sess.run(outputs, {x: x_value})
            frozen = tf1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), sorted({t.op.name for t in returned}))
            (HERE / "tf1_frozen.pb").write_bytes(frozen.SerializeToString())
            target = HERE / "tf1_saved_model"
            shutil.rmtree(target, ignore_errors=True)
            tf1.saved_model.simple_save(sess, str(target), {"x": x}, {"outputs": outputs})
    np.save(HERE / "tf1_input.npy", x_value)
    np.savez(HERE / "tf1_reference.npz", outputs=values)
    checkpoint()


def checkpoint() -> None:
    """The training checkpoint (and its damaged copies) of docs/tf1-checkpoints.md."""
    import numpy as np
    import tensorflow as tf

    tf1 = tf.compat.v1
    tf1.disable_eager_execution()
    rnn = tf1.nn.rnn_cell
    rng = np.random.default_rng(41)
    x_value = rng.standard_normal((1, 12, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(41)
        x = tf1.placeholder(tf.float32, (None, 12, 3), name="x")
        cell = rnn.MultiRNNCell([
            rnn.LSTMCell(16, use_peepholes=True, cell_clip=3.0, forget_bias=0.5),
            rnn.LSTMCell(8, num_proj=4),
        ])
        outputs, _ = tf1.nn.dynamic_rnn(cell, x, dtype=tf.float32)
        tf1.layers.dense(outputs[:, -1], 2)
        tf1.train.get_or_create_global_step()
        # Relative paths in the ``checkpoint`` state file: the directory can move.
        # (No optimizer: its gradient graph would make the .meta file ~350 KB.)
        saver = tf1.train.Saver(save_relative_paths=True)
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            for v in tf1.trainable_variables():
                shape = v.shape.as_list()
                std = 1.5 / np.sqrt(shape[0]) if len(shape) == 2 else 0.5
                v.load((rng.standard_normal(shape) * std).astype(np.float32), sess)
            values = sess.run(outputs, {x: x_value})
            for name in ("tf1_ckpt", "tf1_ckpt_no_meta", "tf1_ckpt_cut", "tf1_ckpt_bad_index"):
                shutil.rmtree(HERE / name, ignore_errors=True)
            saver.save(sess, str(HERE / "tf1_ckpt" / "model"), global_step=0)
            tf1.train.Saver(save_relative_paths=True).save(  # its own `checkpoint` file
                sess, str(HERE / "tf1_ckpt_no_meta" / "model"), global_step=0,
                write_meta_graph=False)
    for name in ("tf1_ckpt_cut", "tf1_ckpt_bad_index"):
        (HERE / name).mkdir()
        for suffix in (".index", ".data-00000-of-00001"):
            shutil.copy(HERE / "tf1_ckpt_no_meta" / f"model-0{suffix}", HERE / name)
    data = HERE / "tf1_ckpt_cut" / "model-0.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    index = HERE / "tf1_ckpt_bad_index" / "model-0.index"
    damaged = bytearray(index.read_bytes())
    damaged[40] ^= 0x01
    index.write_bytes(bytes(damaged))
    np.save(HERE / "tf1_ckpt_input.npy", x_value)
    np.savez(HERE / "tf1_ckpt_reference.npz", outputs=values)


if __name__ == "__main__":
    main()
