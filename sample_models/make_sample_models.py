"""Train the bundled sample model: an LSTM(8) that predicts bracket nesting depth.

    python sample_models/make_sample_models.py        # or: make sample-models

Needs TensorFlow (the ``test`` extra); lstm-trace itself never does. Writes, next to
this script:

- ``brackets.keras`` and ``brackets.h5`` (Keras 3, legacy HDF5): the trained model;
- ``brackets_input.npy`` ``(steps, features)`` float32: one one-hot sequence;
- ``brackets_input.csv``: the same sequence, a row per step, a header of feature names;
- ``brackets_vocab.txt``: the character of each step of ``brackets_input`` (plot labels);
- ``brackets_batch.npy`` ``(batch, steps, features)``: a few held-out sequences;
- ``training.json``: the training settings and held-out results quoted in the README.

The task: each step reads one character of ``TOKENS`` (``(``, ``)`` or a noise letter),
one-hot encoded, and the model predicts the nesting depth *after* that character, i.e.
``depth_t = #"(" - #")"`` in ``x[0..t]``. Sequences are well formed prefixes: a ``)``
never closes below depth 0 and the depth never exceeds ``MAX_DEPTH``. To do this an LSTM
must keep a counter, and the cell state is where it can: ``c_t = f ⊙ c_{t-1} + i ⊙ g``
with ``f ≈ 1`` is an accumulator, and ``i ⊙ g`` is the ±1 increment.

Everything is seeded; the run takes about a minute on two CPU cores.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: The alphabet, in one-hot feature order.
TOKENS = ("(", ")", "a", "b", "c", "d")
#: CSV header names of the features (brackets spelled out, so the header is plain text).
FEATURE_NAMES = ("open", "close", "a", "b", "c", "d")
MAX_DEPTH = 6
UNITS = 8
TRAIN_STEPS = 40
SEED = 1234

#: The sample sequence: 20 steps (one table page), depth 0..4, nested and sibling groups.
SAMPLE = "((a(b)c)(((d)))b)()a"


def depths(text: str) -> np.ndarray:
    """Nesting depth after each character: ``depth_t = #"(" - #")"`` in ``text[:t+1]``."""
    step = np.array([1 if ch == "(" else -1 if ch == ")" else 0 for ch in text])
    return np.cumsum(step)


def encode(texts: list[str]) -> np.ndarray:
    """One-hot ``(batch, steps, len(TOKENS))`` float32 of equal-length strings."""
    index = {tok: k for k, tok in enumerate(TOKENS)}
    x = np.zeros((len(texts), len(texts[0]), len(TOKENS)), np.float32)
    for b, text in enumerate(texts):
        for t, ch in enumerate(text):
            x[b, t, index[ch]] = 1.0
    return x


def random_sequence(rng: np.random.Generator, steps: int) -> str:
    """A random well-formed prefix: brackets about half the time, letters otherwise.

    The open/close balance is itself random per sequence, so some sequences dive deep
    and others stay shallow; depth stays within ``0..MAX_DEPTH``.
    """
    p_open = rng.uniform(0.2, 0.45)
    p_close = rng.uniform(0.2, 0.45)
    out, depth = [], 0
    for _ in range(steps):
        r = rng.random()
        if r < p_open and depth < MAX_DEPTH:
            out.append("(")
            depth += 1
        elif r < p_open + p_close and depth > 0:
            out.append(")")
            depth -= 1
        else:
            out.append(TOKENS[2 + rng.integers(len(TOKENS) - 2)])
    return "".join(out)


def dataset(rng: np.random.Generator, count: int, steps: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    texts = [random_sequence(rng, steps) for _ in range(count)]
    x = encode(texts)
    y = np.stack([depths(t) for t in texts]).astype(np.float32)[..., None]
    return texts, x, y


def build_model(keras):
    """Input ``(steps, 6)`` one-hot → LSTM(8, return_sequences) → Dense(1) at every step.

    A Dense layer on a sequence acts on each step, as TimeDistributed(Dense) would, and
    accepts any sequence length at predict time.
    """
    return keras.Sequential([
        keras.Input((None, len(TOKENS)), name="chars"),
        keras.layers.LSTM(UNITS, return_sequences=True, name="lstm"),
        keras.layers.Dense(1, name="depth"),
    ], name="brackets")


def evaluate(model, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """MAE of the predicted depth and the share of steps whose rounded prediction is exact."""
    pred = model.predict(x, verbose=0)
    return {
        "mae": float(np.abs(pred - y).mean()),
        "step_accuracy": float((np.rint(pred) == y).mean()),
        "sequence_accuracy": float((np.rint(pred) == y).all(axis=(1, 2)).mean()),
    }


def main(out: Path = HERE) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    import keras

    keras.utils.set_random_seed(SEED)
    rng = np.random.default_rng(SEED)
    _, x_train, y_train = dataset(rng, 6000, TRAIN_STEPS)
    _, x_val, y_val = dataset(rng, 500, TRAIN_STEPS)
    _, x_long, y_long = dataset(rng, 200, 4 * TRAIN_STEPS)  # longer than anything seen in training

    model = build_model(keras)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse")
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=64, epochs=30, validation_data=(x_val, y_val),
                        verbose=2, callbacks=[keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=3)])
    seconds = time.perf_counter() - start

    results = {"held_out_40_steps": evaluate(model, x_val, y_val),
               "held_out_160_steps": evaluate(model, x_long, y_long)}
    print(json.dumps(results, indent=1))

    # A saved model should not carry optimizer state it does not need: clean re-save.
    model.save(out / "brackets.keras")
    model.save(out / "brackets.h5")

    sample = encode([SAMPLE])[0]
    np.save(out / "brackets_input.npy", sample)
    with open(out / "brackets_input.csv", "w") as f:
        f.write(",".join(FEATURE_NAMES) + "\n")
        for row in sample.astype(int):
            f.write(",".join(str(v) for v in row) + "\n")
    (out / "brackets_vocab.txt").write_text("".join(ch + "\n" for ch in SAMPLE))
    batch_texts, x_batch, _ = dataset(np.random.default_rng(SEED + 1), 8, 30)
    np.save(out / "brackets_batch.npy", x_batch)

    info = {
        "task": "nesting depth after each character",
        "tokens": list(TOKENS), "feature_names": list(FEATURE_NAMES), "max_depth": MAX_DEPTH,
        "units": UNITS, "train_sequences": len(x_train), "train_steps": TRAIN_STEPS,
        "epochs": len(history.history["loss"]), "final_loss": history.history["loss"][-1],
        "final_val_loss": history.history["val_loss"][-1], "train_seconds": round(seconds, 1),
        "results": results, "sample": SAMPLE, "batch": batch_texts,
        "keras_version": keras.__version__, "seed": SEED,
    }
    (out / "training.json").write_text(json.dumps(info, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
