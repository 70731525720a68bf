"""Models with nested sub-models (a Sequential or Functional model used as a layer), saved
by Keras 3 (``.keras``, ``.h5``) or tf_keras (``.h5``), with per-step framework states.

    python keras_nested.py OUTDIR

``CASES`` is plain data (no TensorFlow import), so tests can parametrize on it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CASES = [
    {"name": "sequential_in_functional", "traced": ["inner_lstm", "outer_gru"]},
    {"name": "functional_in_sequential_name_clash", "traced": ["sub/lstm", "lstm"]},
]


def build(keras, name: str):
    L = keras.layers
    if name == "sequential_in_functional":
        encoder = keras.Sequential([
            keras.Input((6, 3)),
            L.LSTM(4, return_sequences=True, name="inner_lstm"),
            L.Dense(4, activation="tanh", name="inner_dense"),
        ], name="encoder")
        inp = keras.Input((6, 2), name="x")
        h = L.Dense(3, name="dense_pre")(inp)
        h = encoder(h)
        out = L.GRU(2, return_sequences=True, name="outer_gru")(h)
        model = keras.Model(inp, out, name=name)
        steps = [("inner_lstm", lambda x: encoder.get_layer("inner_lstm"),
                  lambda x: model.get_layer("dense_pre")(x)),
                 ("outer_gru", lambda x: model.get_layer("outer_gru"),
                  lambda x: encoder(model.get_layer("dense_pre")(x)))]
        return model, steps, (6, 2)
    inner_in = keras.Input((5, 3))
    sub = keras.Model(inner_in, L.LSTM(3, return_sequences=True, name="lstm")(inner_in), name="sub")
    model = keras.Sequential([keras.Input((5, 3)), sub, L.LSTM(2, return_sequences=True, name="lstm")],
                             name=name)
    steps = [("sub/lstm", lambda x: sub.get_layer("lstm"), lambda x: x),
             ("lstm", lambda x: model.layers[-1], lambda x: sub(x))]
    return model, steps, (5, 3)


def main(out: Path) -> None:
    import numpy as np
    from common import cell_reference, randomize, save_every_format, write_manifest

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    manifest = []
    for index, case in enumerate(CASES):
        name = case["name"]
        model, steps, shape = build(keras, name)
        randomize(model, seed=index)
        for layer in model.layers:
            if hasattr(layer, "layers"):
                randomize(layer, seed=10 + index)
        x = np.random.default_rng(index).standard_normal((3, *shape)).astype(np.float32)
        np.save(out / f"{name}_input.npy", x)
        reference = {}
        for key, get_layer, get_input in steps:
            layer = get_layer(x)
            layer_x = np.asarray(get_input(x))
            for q, v in cell_reference(layer.cell, layer_x).items():
                reference[f"{key}/{q}"] = v
        np.savez(out / f"{name}_reference.npz", **reference)
        files = save_every_format(model, out, name, legacy=legacy, weights=False)
        manifest.append({"name": name, "files": files, "input": f"{name}_input.npy",
                         "reference": f"{name}_reference.npz"})
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
