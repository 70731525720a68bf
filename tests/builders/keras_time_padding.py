"""``ZeroPadding1D`` / ``Cropping1D`` in front of a GRU, built by Keras 3 or tf_keras (Keras 2).

    python keras_time_padding.py OUTDIR
    TF_USE_LEGACY_KERAS=1 python keras_time_padding.py OUTDIR

The shape of a real model (the ``ao-compensation-model`` package's GRUs: causal Conv1D,
BatchNormalization, ZeroPadding1D, AveragePooling1D, GRU): each case is ``Input ->
Conv1D(4, causal) -> <padding layers> -> GRU(5, return_sequences=True) -> Dense(2)``,
saved as ``.keras`` (Keras 3) and ``.h5``, with ``<name>_input.npy`` and
``<name>_reference.npz``: ``__input__`` (the GRU's input as Keras computed it) and
``hidden`` (the GRU's output at every step). ``ACROSS_POOLING`` is ``Input -> LSTM(4) ->
MaxPooling1D(2) -> GRU(5)``, saved and referenced the same way.

``CASES`` is plain data (no TensorFlow import): name -> the layers between Conv1D and
GRU as ``(class name, options)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

CASES: dict[str, list[tuple[str, dict]]] = {
    "zero_padding_int": [("ZeroPadding1D", {"padding": 3})],
    "zero_padding_pair_then_pool": [("ZeroPadding1D", {"padding": (4, 0)}),
                                    ("AveragePooling1D", {"pool_size": 5, "strides": 1})],
    "cropping_pair": [("Cropping1D", {"cropping": (2, 1)})],
    "padding_then_cropping": [("ZeroPadding1D", {"padding": (1, 2)}),
                              ("Cropping1D", {"cropping": 2})],
    # dgaintel's domain classifier: Embedding -> Conv1D -> MaxPooling1D(2, same) -> LSTM.
    "max_pooling_same": [("MaxPooling1D", {"pool_size": 2, "padding": "same"})],
}
#: A model with a recurrent layer on each side of the pooling (their traces differ in steps).
ACROSS_POOLING = "lstm_pool_gru"
STEPS, FEATURES, BATCH = 9, 2, 3


def build(keras, case: str):
    L = keras.layers
    x = keras.Input((STEPS, FEATURES))
    y = L.Conv1D(4, 3, padding="causal", name="conv")(x)
    for k, (class_name, options) in enumerate(CASES[case]):
        y = getattr(L, class_name)(name=f"pad_{k}", **options)(y)
    y = L.GRU(5, return_sequences=True, name="gru")(y)
    y = L.Dense(2, name="head")(y)
    return keras.Model(x, y, name=case)


def build_across_pooling(keras):
    L = keras.layers
    x = keras.Input((STEPS, FEATURES))
    y = L.LSTM(4, return_sequences=True, name="lstm")(x)
    y = L.MaxPooling1D(2, padding="same", name="pool")(y)
    y = L.GRU(5, return_sequences=True, name="gru")(y)
    return keras.Model(x, y, name=ACROSS_POOLING)


def main(out: Path) -> None:
    import os

    import numpy as np
    from common import randomize, save_layer_case, write_manifest

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    manifest = []
    for index, name in enumerate([*CASES, ACROSS_POOLING]):
        model = build_across_pooling(keras) if name == ACROSS_POOLING else build(keras, name)
        randomize(model, seed=90 + index, scale=1.0)
        x = np.random.default_rng(900 + index).standard_normal((BATCH, STEPS, FEATURES))
        x = x.astype(np.float32)
        manifest.append(save_layer_case(keras, model, out, name, x, "gru", legacy))
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
