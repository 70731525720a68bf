"""Write the small Keras 3 TF2-checkpoint samples used by docs/tf2-checkpoints.md.

    python sample_models/make_tf2_models.py

Needs Keras 3 (TensorFlow backend); lstm-trace never does. The model is the one of the
``bidirectional`` case of ``tests/builders/tf2_models.py`` (whose tf_keras files the page's
other examples use), seeded and trained one epoch with Adam so the checkpoint holds
optimizer state::

    inputs = keras.Input((7, 3), name="x")
    x = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True), name="bi_lstm")(inputs)
    x = keras.layers.Bidirectional(keras.layers.GRU(2, return_sequences=True, reset_after=False),
                                   name="bi_gru")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="bidirectional")

Writes next to this script:

- ``tf2_k3_training/``: ``tf.train.CheckpointManager(tf.train.Checkpoint(model=model,
  optimizer=model.optimizer), ...).save()`` (``checkpoint``, ``ckpt-1.index``, ``ckpt-1.data-*``);
- ``tf2_k3_model.json``: ``model.to_json()``;
- ``tf2_k3_input.npy`` ``(2, 7, 3)`` float32, and ``tf2_k3_reference.npz``: what Keras
  returned for it (``bi_lstm``, ``bi_gru``: each layer's output, forward half first);
- ``tf2_k3_cut/``: the checkpoint with its data shard cut to 1000 bytes;
- ``tf2_no_variables/``: a ``tf.saved_model.save`` of a one-variable ``tf.Module`` whose
  ``variables/`` directory was then deleted (the "no weights" example).
"""

from __future__ import annotations

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    keras.utils.set_random_seed(7)
    rng = np.random.default_rng(7)
    inputs = keras.Input((7, 3), name="x")
    x = keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True), name="bi_lstm")(inputs)
    x = keras.layers.Bidirectional(
        keras.layers.GRU(2, return_sequences=True, reset_after=False), name="bi_gru")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x), name="bidirectional")
    model.compile(optimizer="adam", loss="mse")
    train_x = rng.standard_normal((16, 7, 3)).astype(np.float32)
    model.fit(train_x, rng.standard_normal((16, 7, 2)).astype(np.float32), verbose=0)

    for name in ("tf2_k3_training", "tf2_k3_cut", "tf2_no_variables"):
        shutil.rmtree(HERE / name, ignore_errors=True)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    saved = tf.train.CheckpointManager(checkpoint, str(HERE / "tf2_k3_training"), max_to_keep=2).save()
    (HERE / "tf2_k3_model.json").write_text(model.to_json())
    x_value = rng.standard_normal((2, 7, 3)).astype(np.float32)
    np.save(HERE / "tf2_k3_input.npy", x_value)
    outputs = keras.Model(inputs, [model.get_layer("bi_lstm").output, model.get_layer("bi_gru").output])
    bi_lstm, bi_gru = outputs.predict(x_value, verbose=0)
    np.savez(HERE / "tf2_k3_reference.npz", bi_lstm=bi_lstm, bi_gru=bi_gru)

    (HERE / "tf2_k3_cut").mkdir()
    prefix = Path(saved)
    shutil.copy(prefix.with_name(prefix.name + ".index"), HERE / "tf2_k3_cut")
    data = prefix.with_name(prefix.name + ".data-00000-of-00001")
    (HERE / "tf2_k3_cut" / data.name).write_bytes(data.read_bytes()[:1000])

    module = tf.Module()
    module.scale = tf.Variable(2.0)
    module.call = tf.function(lambda v: v * module.scale, input_signature=[tf.TensorSpec(None)])
    tf.saved_model.save(module, str(HERE / "tf2_no_variables"))
    shutil.rmtree(HERE / "tf2_no_variables" / "variables")


if __name__ == "__main__":
    main()
