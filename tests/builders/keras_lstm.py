"""Builds LSTM models with Keras 3 or tf_keras (Keras 2, TF_USE_LEGACY_KERAS=1) and saves
them in every Keras format, with the framework's per-step hidden and cell states.

    python keras_lstm.py OUTDIR

``CASES`` is plain data (no TensorFlow import), so tests can parametrize on it.
"""

from __future__ import annotations

import sys
from pathlib import Path

# name, layer stack [(units, options)], features, batch, steps
CASES: list[dict] = [
    {"name": "basic", "layers": [(8, {})], "features": 3, "batch": 4, "steps": 12},
    {"name": "no_bias", "layers": [(5, {"use_bias": False})], "features": 3, "batch": 2, "steps": 9},
    {"name": "hard_sigmoid", "layers": [(6, {"recurrent_activation": "hard_sigmoid"})],
     "features": 4, "batch": 3, "steps": 10},
    {"name": "relu_linear",
     "layers": [(6, {"activation": "relu", "recurrent_activation": "sigmoid"}),
                (3, {"activation": "linear"})],
     "features": 2, "batch": 2, "steps": 5},
    {"name": "elu_softsign", "layers": [(5, {"activation": "elu", "recurrent_activation": "softsign"})],
     "features": 3, "batch": 2, "steps": 6},
    {"name": "selu_swish", "layers": [(5, {"activation": "selu", "recurrent_activation": "swish"})],
     "features": 3, "batch": 2, "steps": 6},
    # Unbounded gates and cells grow fast: small weights keep the values in float32 range.
    {"name": "gelu_softplus", "layers": [(5, {"activation": "gelu", "recurrent_activation": "softplus"})],
     "features": 3, "batch": 2, "steps": 6, "scale": 0.2},
    {"name": "exponential", "layers": [(4, {"activation": "exponential"})],
     "features": 2, "batch": 2, "steps": 4, "scale": 0.1},
    {"name": "stacked", "layers": [(7, {}), (5, {"activation": "relu"}), (3, {})],
     "features": 4, "batch": 3, "steps": 11},
    {"name": "units1_steps1_batch1", "layers": [(1, {})], "features": 1, "batch": 1, "steps": 1},
    {"name": "units64_steps300_batch16", "layers": [(64, {})], "features": 5, "batch": 16,
     "steps": 300},
    {"name": "not_return_sequences_last", "layers": [(6, {}), (4, {"return_sequences": False})],
     "features": 3, "batch": 2, "steps": 8},
]


def build_model(keras, case: dict):
    inputs = keras.Input((case["steps"], case["features"]))
    x = inputs
    for k, (units, options) in enumerate(case["layers"]):
        options = {"return_sequences": True, **options}
        x = keras.layers.LSTM(units, name=f"{case['name']}_lstm_{k}", **options)(x)
    x = keras.layers.Dense(2, name="head")(x)
    return keras.Sequential([keras.Input((case["steps"], case["features"]))] + [
        layer for layer in keras.Model(inputs, x).layers[1:]
    ], name=case["name"])


def main(out: Path) -> None:
    import os

    import numpy as np
    from common import cell_reference, randomize, save_every_format, write_manifest

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    manifest = []
    for index, case in enumerate(CASES):
        model = build_model(keras, case)
        randomize(model, seed=index, scale=case.get("scale", 0.6))
        rng = np.random.default_rng(100 + index)
        x = rng.standard_normal((case["batch"], case["steps"], case["features"])).astype(np.float32)
        name = case["name"]
        np.save(out / f"{name}_input.npy", x)
        reference = {}
        layer_x = x
        for layer in model.layers:
            if not isinstance(layer, keras.layers.LSTM):
                continue
            states = cell_reference(layer.cell, layer_x)
            for q, v in states.items():
                reference[f"{layer.name}/{q}"] = v
            layer_out = layer(layer_x).numpy()
            reference[f"{layer.name}/__output__"] = layer_out
            layer_x = layer_out
        for key, value in reference.items():
            assert np.isfinite(value).all() and np.abs(value).max() < 100, (name, key)
        np.savez(out / f"{name}_reference.npz", **reference)
        files = save_every_format(model, out, name, legacy=legacy, legacy_zip=True)
        (out / f"{name}.json").write_text(model.to_json())  # for weights-only + --config
        files["json"] = f"{name}.json"
        manifest.append({
            "name": name, "files": files, "input": f"{name}_input.npy",
            "reference": f"{name}_reference.npz",
            "layers": [layer.name for layer in model.layers if isinstance(layer, keras.layers.LSTM)],
        })
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
