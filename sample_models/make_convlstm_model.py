"""Write the small ConvLSTM sample used by docs/keras-layers.md.

    python sample_models/make_convlstm_model.py

Needs Keras 3 (TensorFlow backend); lstm-trace never does. Writes next to this script:

- ``convlstm.keras``: ``ConvLSTM2D(2, (3, 3), padding="same", return_sequences=True)`` on
  4 steps of a 4x4 grid with 1 channel, seeded random weights;
- ``convlstm_input.npy`` ``(1, 4, 4, 4, 1)`` float32, and ``convlstm_reference.npz``: what
  Keras ``predict`` returned for it (``output``, ``(1, 4, 4, 4, 2)``).
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    import keras
    import numpy as np

    rng = np.random.default_rng(14)
    model = keras.Sequential([
        keras.Input((4, 4, 4, 1)),
        keras.layers.ConvLSTM2D(2, (3, 3), padding="same", return_sequences=True, name="conv_lstm"),
    ])
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32)
                       for w in model.get_weights()])
    x = rng.standard_normal((1, 4, 4, 4, 1)).astype(np.float32)
    model.save(HERE / "convlstm.keras")
    np.save(HERE / "convlstm_input.npy", x)
    np.savez(HERE / "convlstm_reference.npz", output=model.predict(x, verbose=0))


if __name__ == "__main__":
    main()
