"""Small models for the workflow commands (inspect, extract, check, plot, stats).

    python workflow_models.py OUTDIR        # Keras 3
    TF_USE_LEGACY_KERAS=1 python workflow_models.py OUTDIR   # tf_keras (Keras 2)

Each case is saved in every Keras format of the running Keras, with:

- ``<name>_input.npy``: the model input (float features, or int32 token ids);
- ``<name>_reference.npz``: per recurrent layer ``<layer>/__input__`` (the layer's own
  input, as Keras computed it), ``<layer>/__output__`` (the layer's output sequence;
  Bidirectional concat of both directions at input positions), and ``<layer>/raw/<k>``:
  the layer's weights exactly as ``layer.get_weights()`` returns them (the file's fused
  layout), so tests can check the gate slices ``inspect`` reports against the file.

``CASES`` is plain data (no TensorFlow import), so tests can parametrize on it.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: name -> features, steps, batch, and the layer stack as plain data.
#: A layer is (kind, units, options); kind "bi_lstm"/"bi_gru" wraps it in Bidirectional.
CASES: list[dict] = [
    {"name": "stacked_lstm", "features": 3, "steps": 10, "batch": 3,
     "layers": [("lstm", 8, {}), ("dropout", 0, {}), ("lstm", 6, {})]},
    {"name": "bigru", "features": 4, "steps": 9, "batch": 2,
     "layers": [("bi_gru", 5, {})]},
    {"name": "bilstm", "features": 3, "steps": 7, "batch": 2,
     "layers": [("bi_lstm", 4, {})]},
    {"name": "gru_v1", "features": 3, "steps": 6, "batch": 2,
     "layers": [("gru", 4, {"reset_after": False})]},
    {"name": "lstm_nobias", "features": 2, "steps": 6, "batch": 2,
     "layers": [("lstm", 3, {"use_bias": False})]},
    {"name": "simple_rnn", "features": 3, "steps": 6, "batch": 2,
     "layers": [("simple_rnn", 5, {})]},
    {"name": "relu_lstm", "features": 3, "steps": 6, "batch": 2,
     "layers": [("lstm", 4, {"activation": "relu"})]},
    # Token ids with padding 0 (masked) at the end of the second sequence.
    {"name": "tokens", "vocab": 12, "steps": 8, "batch": 2,
     "layers": [("embedding", 4, {"mask_zero": True}), ("lstm", 6, {})]},
]

RECURRENT_KINDS = ("lstm", "gru", "simple_rnn", "bi_lstm", "bi_gru")


def build_model(keras, case: dict):
    L = keras.layers
    if "vocab" in case:
        layers = [keras.Input((case["steps"],), dtype="int32")]
    else:
        layers = [keras.Input((case["steps"], case["features"]))]
    for k, (kind, units, options) in enumerate(case["layers"]):
        name = f"{kind}_{k}"
        if kind == "dropout":
            layers.append(L.Dropout(0.25, name=name))
        elif kind == "embedding":
            layers.append(L.Embedding(case["vocab"], units, name=name, **options))
        elif kind.startswith("bi_"):
            inner = {"lstm": L.LSTM, "gru": L.GRU}[kind[3:]]
            layers.append(L.Bidirectional(inner(units, return_sequences=True, **options), name=name))
        else:
            cls = {"lstm": L.LSTM, "gru": L.GRU, "simple_rnn": L.SimpleRNN}[kind]
            layers.append(cls(units, return_sequences=True, name=name, **options))
    layers.append(L.Dense(2, name="head"))
    return keras.Sequential(layers, name=case["name"])


def make_input(case: dict, rng):
    import numpy as np

    if "vocab" in case:
        x = rng.integers(1, case["vocab"], (case["batch"], case["steps"])).astype(np.int32)
        x[1, -3:] = 0  # padding: masked by mask_zero
        return x
    return rng.standard_normal((case["batch"], case["steps"], case["features"])).astype(np.float32)


def main(out: Path) -> None:
    import os

    import numpy as np
    from common import randomize, save_every_format, write_manifest

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    manifest = []
    for index, case in enumerate(CASES):
        name = case["name"]
        model = build_model(keras, case)
        randomize(model, seed=10 + index)
        x = make_input(case, np.random.default_rng(200 + index))
        np.save(out / f"{name}_input.npy", x)
        reference = {}
        recurrent = []
        for k, (kind, _, _) in enumerate(case["layers"]):
            if kind not in RECURRENT_KINDS:
                continue
            layer = model.get_layer(f"{kind}_{k}")
            recurrent.append(layer.name)
            # The layer's input as the model computes it (Dropout is the identity here): the
            # previous layer's output (a masked Keras 3 layer's input is [data, mask]).
            before = model.layers[model.layers.index(layer) - 1] if k else None
            source = before.output if before is not None else model.inputs[0]
            reference[f"{layer.name}/__input__"] = np.asarray(keras.Model(model.inputs, source)(x))
            reference[f"{layer.name}/__output__"] = np.asarray(keras.Model(model.inputs, layer.output)(x))
            for w, value in enumerate(layer.get_weights()):
                reference[f"{layer.name}/raw/{w}"] = value
        np.savez(out / f"{name}_reference.npz", **reference)
        files = save_every_format(model, out, name, legacy=legacy)
        manifest.append({"name": name, "files": files, "input": f"{name}_input.npy",
                         "reference": f"{name}_reference.npz", "layers": recurrent,
                         "keras_version": keras.__version__})
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
