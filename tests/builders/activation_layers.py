"""Keras activation layers in front of an LSTM, built by Keras 3 or tf_keras (Keras 2).

    python activation_layers.py OUTDIR
    TF_USE_LEGACY_KERAS=1 python activation_layers.py OUTDIR

Each case is ``Input -> Dense(4) -> <activation layer> -> LSTM(5, return_sequences=True)
-> Dense(2)``
(``masked`` cases put a ``Masking`` layer first and pad the input), saved as ``.keras``
(Keras 3) and ``.h5``, with ``<name>_input.npy`` and ``<name>_reference.npz``:
``__input__`` (the LSTM's input: the activation layer's output, as Keras computed it),
``hidden`` (the LSTM's output at every step) and ``cell`` (the LSTM cell stepped one
input at a time by the framework); the manifest has Keras's ``count_params()`` of the
model (``parameters``) and of the LSTM (``lstm_parameters``).

``CASES`` is plain data (no TensorFlow import), so tests can parametrize on it; each
case is ``(class name, Keras 3 options, Keras 2 options, versions, masked)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

CASES: dict[str, tuple[str, dict, dict, str, bool]] = {
    "leaky_relu": ("LeakyReLU", {"negative_slope": 0.2}, {"alpha": 0.2}, "32", False),
    "leaky_relu_default": ("LeakyReLU", {}, {}, "32", False),
    "leaky_relu_masked": ("LeakyReLU", {"negative_slope": 0.05}, {"alpha": 0.05}, "32", True),
    "prelu_shared": ("PReLU", {"shared_axes": [1]}, {"shared_axes": [1]}, "32", False),
    "prelu_per_step": ("PReLU", {}, {}, "32", False),
    "relu_all_options": ("ReLU", {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.4},
                         {"max_value": 1.5, "negative_slope": 0.1, "threshold": 0.4}, "32", False),
    "relu6": ("ReLU", {"max_value": 6.0}, {"max_value": 6.0}, "32", False),
    "relu_threshold": ("ReLU", {"threshold": 0.3}, {"threshold": 0.3}, "32", False),
    "relu_slope": ("ReLU", {"negative_slope": 0.25}, {"negative_slope": 0.25}, "32", False),
    "relu_slope_max": ("ReLU", {"negative_slope": 0.25, "max_value": 0.8},
                       {"negative_slope": 0.25, "max_value": 0.8}, "32", False),
    "elu": ("ELU", {"alpha": 0.7}, {"alpha": 0.7}, "32", False),
    "elu_masked": ("ELU", {}, {}, "32", True),
    "softmax": ("Softmax", {}, {}, "32", False),
    "softmax_steps": ("Softmax", {"axis": 1}, {"axis": 1}, "32", False),
    "softmax_two_axes": ("Softmax", {"axis": [1, 2]}, {"axis": [1, 2]}, "32", False),
    "thresholded_relu": ("ThresholdedReLU", {}, {"theta": 0.2}, "2", False),
}
STEPS, FEATURES, BATCH = 7, 3, 3
LENGTHS = (7, 4, 6)


def build(keras, case: str, legacy: bool):
    class_name, k3, k2, _, masked = CASES[case]
    L = keras.layers
    x = keras.Input((STEPS, FEATURES))
    y = L.Masking(0.0, name="masking")(x) if masked else x
    y = L.Dense(4, name="dense")(y)
    y = getattr(L, class_name)(name="act", **(k2 if legacy else k3))(y)
    y = L.LSTM(5, return_sequences=True, name="lstm")(y)
    y = L.Dense(2, name="head")(y)
    return keras.Model(x, y, name=case)


def main(out: Path) -> None:
    import os

    import numpy as np
    from common import cell_reference, randomize, write_manifest

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    manifest = []
    for index, (name, spec) in enumerate(CASES.items()):
        if ("2" if legacy else "3") not in spec[3]:
            continue
        model = build(keras, name, legacy)
        randomize(model, seed=70 + index, scale=1.0)
        rng = np.random.default_rng(700 + index)
        x = (2 * rng.standard_normal((BATCH, STEPS, FEATURES))).astype(np.float32)
        mask = None
        if spec[4]:
            mask = np.arange(STEPS)[None, :] < np.array(LENGTHS)[:, None]
            x[~mask] = 0.0
        act = model.get_layer("act")
        lstm_input = np.asarray(keras.Model(model.inputs, act.output)(x))
        states = cell_reference(model.get_layer("lstm").cell, lstm_input, mask=mask)
        hidden = np.asarray(keras.Model(model.inputs, model.get_layer("lstm").output)(x))
        reference = {"__input__": lstm_input, "hidden": hidden,
                     "cell": states["cell"], "stepped_hidden": states["hidden"]}
        np.save(out / f"{name}_input.npy", x)
        np.savez(out / f"{name}_reference.npz", **reference)
        files = {"h5": f"{name}.h5"}
        if not legacy:
            files["keras"] = f"{name}.keras"
        for file in files.values():
            model.save(out / file)
        manifest.append({"name": name, "class_name": spec[0], "files": files,
                         "input": f"{name}_input.npy", "reference": f"{name}_reference.npz",
                         "masked": spec[4], "keras_version": keras.__version__,
                         "parameters": int(model.count_params()),
                         "lstm_parameters": int(model.get_layer("lstm").count_params())})
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
