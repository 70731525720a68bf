"""Keras's own per-step states and predictions for the committed sample model.

    python sample_reference.py OUTDIR

Loads ``sample_models/brackets.keras`` with Keras (fine here: a test builder, our own
file), steps its LSTM cell over each sample input and writes ``reference.npz``:
``<input>/hidden``, ``<input>/cell`` (batch, steps, units), ``<input>/__output__`` (the
LSTM layer's own output) and ``<input>/__prediction__`` (the model's depth output).
"""

from __future__ import annotations

import sys
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "sample_models"
MODEL = SAMPLES / "brackets.keras"
INPUTS = {"input": SAMPLES / "brackets_input.npy", "batch": SAMPLES / "brackets_batch.npy"}


def main(out: Path) -> None:
    import keras
    import numpy as np
    from common import cell_reference, write_manifest

    model = keras.models.load_model(MODEL, compile=False)
    lstm = next(layer for layer in model.layers if isinstance(layer, keras.layers.LSTM))
    reference = {}
    for name, path in INPUTS.items():
        x = np.load(path).astype(np.float32)
        if x.ndim == 2:
            x = x[None]
        for q, v in cell_reference(lstm.cell, x).items():
            reference[f"{name}/{q}"] = v
        reference[f"{name}/__output__"] = np.asarray(lstm(x))
        reference[f"{name}/__prediction__"] = model.predict(x, verbose=0)
    np.savez(out / "reference.npz", **reference)
    write_manifest(out, [{"name": "brackets", "layer": lstm.name, "units": int(lstm.units),
                          "inputs": sorted(INPUTS)}])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
