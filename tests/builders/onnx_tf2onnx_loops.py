"""tf_keras recurrent layers that tf2onnx writes as ``Loop`` ops, with Keras's own outputs.

    TF_USE_LEGACY_KERAS=1 python onnx_tf2onnx_loops.py OUTDIR

tf2onnx keeps Keras ``LSTM`` and ``GRU(reset_after=True)`` layers as ONNX nodes, but writes
``SimpleRNN`` (and ``GRU(reset_after=False)``, masked layers) as a ``Loop`` whose body is
the cell in plain ops. Per case ``<name>/model.onnx`` (``tf2onnx.convert.from_keras``,
opset 14, graph input ``x`` ``[batch, 7, 3]``), ``x.npy`` and ``reference.npy`` (the
recurrent layer's own output, ``return_sequences=True``; a ``go_backwards`` layer's in
processing order). ``CASES`` is plain data: ``traced`` says whether lstm-trace reads the
loop as a cell (``False``: refused in one line).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

CASES: list[dict] = [
    {"name": "simple_rnn_tanh", "layer": "SimpleRNN", "options": {}, "traced": True},
    {"name": "simple_rnn_relu_backwards", "layer": "SimpleRNN",
     "options": {"activation": "relu", "go_backwards": True}, "traced": True},
    {"name": "simple_rnn_no_bias_after_dense", "layer": "SimpleRNN",
     "options": {"use_bias": False}, "dense": 5, "traced": True},
    {"name": "gru_reset_before", "layer": "GRU", "options": {"reset_after": False}, "traced": False},
    {"name": "masked_simple_rnn", "layer": "SimpleRNN", "options": {}, "mask": True, "traced": False},
]


def main(out: Path) -> None:
    import numpy as np
    import tensorflow as tf
    import tf2onnx
    import tf_keras as keras

    rng = np.random.default_rng(41)
    for case in CASES:
        d = out / case["name"]
        d.mkdir(parents=True)
        inputs = keras.Input((7, 3))
        x = inputs
        if case.get("mask"):
            x = keras.layers.Masking(0.0)(x)
        if case.get("dense"):
            x = keras.layers.Dense(case["dense"], activation="tanh")(x)
        layer = getattr(keras.layers, case["layer"])(4, return_sequences=True, name="rnn",
                                                     **case["options"])
        model = keras.Model(inputs, layer(x))
        for w in model.weights:
            w.assign(rng.standard_normal(w.shape).astype(np.float32) * 0.5)
        spec = (tf.TensorSpec((None, 7, 3), tf.float32, name="x"),)
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=14,
                                   output_path=str(d / "model.onnx"))
        data = rng.standard_normal((2, 7, 3)).astype(np.float32)
        if case.get("mask"):
            data[1, 5:] = 0.0
        np.save(d / "x.npy", data)
        np.save(d / "reference.npy", model(data).numpy())
    (out / "manifest.json").write_text(json.dumps({"cases": CASES}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
