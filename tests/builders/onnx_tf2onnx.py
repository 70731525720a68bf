"""tf_keras models converted by tf2onnx (the Keras/TF route to ONNX), with Keras's own outputs.

    TF_USE_LEGACY_KERAS=1 python onnx_tf2onnx.py OUTDIR

Per case: ``model.onnx`` (``tf2onnx.convert.from_keras``, opset 14, graph input ``x``
``[batch, 7, 3]``), ``x.npy``, and ``reference.npz``: each recurrent layer's own output
(``layer_<k>``, Keras order, a Bidirectional layer's directions concatenated; a
``go_backwards`` layer's in processing order). tf2onnx writes Keras LSTM/GRU(reset_after)
layers as ONNX nodes; SimpleRNN, GRU(reset_after=False) and masked layers become ``Loop``
ops, which lstm-trace refuses (no recurrent node). ``CASES`` is plain data.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# name, layers: [(class, units, options, bidirectional)]
CASES: list[dict] = [
    {"name": "bidirectional_lstm_then_gru",
     "layers": [("LSTM", 5, {}, True), ("GRU", 4, {}, False)]},
    {"name": "lstm_hard_sigmoid", "layers": [("LSTM", 4, {"recurrent_activation": "hard_sigmoid"}, False)]},
    {"name": "lstm_relu", "layers": [("LSTM", 4, {"activation": "relu"}, False)]},
    {"name": "lstm_go_backwards", "layers": [("LSTM", 4, {"go_backwards": True}, False)]},
    {"name": "dense_then_lstm", "dense": 6, "layers": [("LSTM", 4, {}, False)]},
]


def main(out: Path) -> None:
    import numpy as np
    import tensorflow as tf
    import tf2onnx
    import tf_keras as keras

    rng = np.random.default_rng(31)
    for case in CASES:
        d = out / case["name"]
        d.mkdir(parents=True)
        inputs = keras.Input((7, 3))
        x = inputs
        if case.get("dense"):
            x = keras.layers.Dense(case["dense"], activation="tanh")(x)
        recurrent = []
        for cls, units, options, bidirectional in case["layers"]:
            layer = getattr(keras.layers, cls)(units, return_sequences=True, **options)
            if bidirectional:
                layer = keras.layers.Bidirectional(layer)
            x = layer(x)
            recurrent.append(x)
        model = keras.Model(inputs, x)
        model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32)
                           for w in model.get_weights()])
        spec = (tf.TensorSpec((None, 7, 3), tf.float32, name="x"),)
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=14,
                                   output_path=str(d / "model.onnx"))
        sample = rng.standard_normal((2, 7, 3)).astype(np.float32)
        np.save(d / "x.npy", sample)
        outputs = keras.Model(inputs, recurrent).predict(sample, verbose=0)
        outputs = outputs if isinstance(outputs, list) else [outputs]
        np.savez(d / "reference.npz", **{f"layer_{k}": o for k, o in enumerate(outputs)})
    (out / "manifest.json").write_text(json.dumps({"cases": CASES}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
