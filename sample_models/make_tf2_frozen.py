"""Write the frozen TF2 graph of a Keras 3 model used by docs/tf-frozen-graphs.md.

    python sample_models/make_tf2_frozen.py

Needs TensorFlow and Keras 3; lstm-trace never does. The model (seeded random weights)::

    x = keras.Input((10, 3), name="x")
    h = keras.layers.Masking(0.0, name="pad")(x)
    h = keras.layers.LSTM(6, return_sequences=True, name="encoder")(h)
    y = keras.layers.GRU(4, go_backwards=True, name="summary")(h)

frozen as users freeze a Keras model (loops lowered, the freezer's default)::

    f = tf.function(lambda t: model(t)).get_concrete_function(tf.TensorSpec([None, 10, 3]))
    frozen = convert_variables_to_constants_v2(f)

written next to this script as ``tf2_frozen.pb``, with ``tf2_frozen_input.npy`` ``(2, 10, 3)``
float32 (the second sample's last three steps are padding zeros) and ``tf2_frozen_reference.npz``:
what TensorFlow's session returned from the frozen graph (``output``) and the encoder's
output sequence in Keras (``encoder``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    import keras
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    keras.utils.set_random_seed(7)
    x = keras.Input((10, 3), name="x")
    h = keras.layers.Masking(0.0, name="pad")(x)
    encoder = keras.layers.LSTM(6, return_sequences=True, name="encoder")
    h = encoder(h)
    y = keras.layers.GRU(4, go_backwards=True, name="summary")(h)
    model = keras.Model(x, y, name="tagger")
    rng = np.random.default_rng(7)
    for layer in model.layers:
        weights = layer.get_weights()
        layer.set_weights([(rng.standard_normal(w.shape) * (0.8 / np.sqrt(w.shape[0]) if w.ndim == 2
                                                            else 0.5)).astype(w.dtype) for w in weights])
    inputs = rng.standard_normal((2, 10, 3)).astype(np.float32)
    inputs[1, -3:] = 0.0

    f = tf.function(lambda t: model(t)).get_concrete_function(tf.TensorSpec([None, 10, 3], tf.float32))
    frozen = convert_variables_to_constants_v2(f)
    graph_def = frozen.graph.as_graph_def()
    (HERE / "tf2_frozen.pb").write_bytes(graph_def.SerializeToString())

    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(graph_def, name="")
        with tf.compat.v1.Session(graph=graph) as sess:
            output = sess.run(frozen.outputs[0].name, {frozen.inputs[0].name: inputs})
    assert np.abs(output - np.asarray(model(inputs))).max() < 1e-5
    sequence = keras.Model(x, encoder.output)(inputs)
    np.save(HERE / "tf2_frozen_input.npy", inputs)
    np.savez(HERE / "tf2_frozen_reference.npz", output=output, encoder=np.asarray(sequence))


if __name__ == "__main__":
    main()
