"""Keras models whose ``extract --to pytorch`` needs a note on how to read torch's output.

    python torch_export_models.py OUTDIR        # Keras 3

Recurrent layers without ``return_sequences`` (Keras returns the final state of each
direction) and masked (padded) inputs (Keras skips the padded steps). Each case writes
``<name>.keras``, ``<name>_input.npy`` and ``<name>_reference.npz`` with ``__input__``
(the recurrent layer's input as Keras computed it), ``__lengths__`` (the unpadded length
of each sample) and ``__output__`` (the recurrent layer's output).

``CASES`` is plain data (no TensorFlow import), so tests can parametrize on it.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: name -> (bidirectional, return_sequences, masked)
CASES: dict[str, tuple[bool, bool, bool]] = {
    "bi_last": (True, False, False),
    "bi_last_masked": (True, False, True),
    "bi_seq_masked": (True, True, True),
    "lstm_last_masked": (False, False, True),
    "lstm_seq_masked": (False, True, True),
}
LAYER = "rnn"
STEPS, FEATURES, BATCH = 9, 3, 4
LENGTHS = (9, 6, 3, 8)  # post-padding


def build(keras, bidirectional: bool, return_sequences: bool, masked: bool):
    L = keras.layers
    x = keras.Input((STEPS, FEATURES))
    y = L.Masking(0.0, name="masking")(x) if masked else x
    if bidirectional:
        y = L.Bidirectional(L.LSTM(5, return_sequences=return_sequences), name=LAYER)(y)
    else:
        y = L.LSTM(5, return_sequences=return_sequences, name=LAYER)(y)
    y = L.Dense(2, name="head")(y)
    return keras.Model(x, y)


def main(out: Path) -> None:
    import keras
    import numpy as np
    from common import randomize, write_manifest

    manifest = []
    for index, (name, (bidirectional, return_sequences, masked)) in enumerate(CASES.items()):
        model = build(keras, bidirectional, return_sequences, masked)
        randomize(model, seed=40 + index, scale=0.9)
        rng = np.random.default_rng(400 + index)
        x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
        lengths = np.array(LENGTHS if masked else (STEPS,) * BATCH, np.int64)
        for b, n in enumerate(lengths):
            x[b, n:] = 0.0
        layer = model.get_layer(LAYER)
        source = model.get_layer("masking").output if masked else model.inputs[0]
        reference = {
            "__input__": np.asarray(keras.Model(model.inputs, source)(x)),
            "__lengths__": lengths,
            "__output__": np.asarray(keras.Model(model.inputs, layer.output)(x)),
        }
        np.save(out / f"{name}_input.npy", x)
        np.savez(out / f"{name}_reference.npz", **reference)
        model.save(out / f"{name}.keras")
        manifest.append({"name": name, "model": f"{name}.keras", "input": f"{name}_input.npy",
                         "reference": f"{name}_reference.npz",
                         "parameters": int(model.count_params()),
                         "recurrent_parameters": int(layer.count_params())})
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
