"""Helpers for fixture builders: random non-trivial weights and framework references.

Imported only by builder scripts, which run in their own process with TensorFlow.
``keras`` is passed in, so the same code serves Keras 3 and tf_keras (Keras 2).

Reference quantities come from the framework's own cell, stepped one input at a time
(``cell(x_t, states)``), so ``hidden`` and ``cell`` are known at *every* step; the
layer's own output is recorded too, so the step loop is checked against the layer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def randomize(model, seed: int = 0, scale: float = 0.6) -> None:
    """Give every weight random values (biases too), so no gate is trivially 0.5.

    Matrices get a standard deviation of ``scale * 2 / sqrt(fan_in)``: large enough for
    saturated gates, small enough that long sequences stay out of chaotic regimes where
    float32 rounding alone would decide the result.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([
                (rng.standard_normal(w.shape) * _std(w, scale)).astype(w.dtype) for w in weights
            ])


def _std(w: np.ndarray, scale: float) -> float:
    if w.ndim >= 2:
        return scale * 2 / np.sqrt(max(1, int(np.prod(w.shape[:-1]))))
    return scale


def cell_reference(cell, x: np.ndarray, *, reverse: bool = False, mask: np.ndarray | None = None,
                   initial: list[np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Step a Keras cell over ``x`` (batch, steps, features); states at input positions.

    Returns ``hidden`` (and ``cell`` for an LSTM) as (batch, steps, units) arrays: the
    value at ``t`` is the state right after the cell consumed ``x[t]``. On a masked step
    the states carry over, as Keras does.
    """
    import tensorflow as tf

    batch, steps, _ = x.shape
    sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
    states = initial or [np.zeros((batch, int(s)), np.float32) for s in sizes]
    states = [tf.constant(s) for s in states]
    hidden = np.zeros((batch, steps, int(sizes[0])), np.float32)
    cells = np.zeros((batch, steps, int(sizes[-1])), np.float32) if len(sizes) > 1 else None
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        _, new_states = cell(tf.constant(x[:, t]), states, training=False)
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        if mask is not None:
            keep = tf.constant(mask[:, t, None])
            new_states = [tf.where(keep, n, s) for n, s in zip(new_states, states, strict=True)]
        states = new_states
        hidden[:, t] = states[0].numpy()
        if cells is not None:
            cells[:, t] = states[1].numpy()
    out = {"hidden": hidden}
    if cells is not None:
        out["cell"] = cells
    return out


def layer_input(keras, model, layer) -> np.ndarray:
    """A function from the model input to ``layer``'s input, as a Keras model."""
    return keras.Model(model.inputs, layer.input)


def save_every_format(model, out: Path, name: str, *, legacy: bool, weights: bool = True,
                      legacy_zip: bool = False) -> dict[str, str]:
    """Save ``model`` in each Keras format its writer has; returns ``{format: file name}``.

    Keras 3 writes ``.keras``, legacy ``.h5`` and ``.weights.h5``; tf_keras (``legacy``)
    writes ``.h5`` and a weights-only ``.h5``, and with ``legacy_zip`` its ``.keras`` too.
    """
    files = {"h5": f"{name}.h5"}
    if not legacy or legacy_zip:
        files["keras"] = f"{name}.keras"
    if weights:
        files["weights_h5"] = f"{name}_weights.h5" if legacy else f"{name}.weights.h5"
    for fmt, file in files.items():
        if fmt == "weights_h5":
            model.save_weights(out / file)
        else:
            model.save(out / file)
    return files


def save_layer_case(keras, model, out: Path, name: str, x: np.ndarray, layer: str, legacy: bool) -> dict:
    """Save ``model`` as ``NAME.h5`` (and ``NAME.keras`` in Keras 3), ``x`` as
    ``NAME_input.npy`` and, as ``NAME_reference.npz``, the input (``__input__``) and output
    (``hidden``) of its layer ``layer`` as Keras computes them; return the manifest entry."""
    traced = model.get_layer(layer)
    reference = {"__input__": np.asarray(keras.Model(model.inputs, traced.input)(x)),
                 "hidden": np.asarray(keras.Model(model.inputs, traced.output)(x))}
    np.save(out / f"{name}_input.npy", x)
    np.savez(out / f"{name}_reference.npz", **reference)
    files = {"h5": f"{name}.h5"}
    if not legacy:
        files["keras"] = f"{name}.keras"
    for file in files.values():
        model.save(out / file)
    return {"name": name, "files": files, "input": f"{name}_input.npy", "reference": f"{name}_reference.npz"}


def write_manifest(out: Path, cases: list[dict]) -> None:
    (out / "manifest.json").write_text(json.dumps({"cases": cases}, indent=1))
