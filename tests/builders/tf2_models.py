"""Builds recurrent Keras models with Keras 3 or tf_keras (TF_USE_LEGACY_KERAS=1) and saves
them as TF2 object checkpoints and SavedModels, with the framework's per-step states.

    python tf2_models.py OUTDIR

``CASES`` is plain data (no TensorFlow import), so tests can parametrize on it. Each layer
is ``(class, units, options)``; ``class`` is LSTM, GRU, SimpleRNN, Dense, ``Bi:<class>``
(Bidirectional) or ``Stack:<class>,<class>`` (``RNN(StackedRNNCells)``). Files per backend:

- tf_keras: ``ckpt`` (``save_weights`` TF format: a directory with a ``checkpoint`` file),
  ``tfckpt`` (``tf.train.CheckpointManager``, two saves, the latest one is the real one),
  ``savedmodel`` (``model.save(dir)``, with ``keras_metadata.pb``), ``weights_h5``.
- Keras 3: ``tfckpt``, ``export`` (``model.export``), ``tf_saved`` (``tf.saved_model.save``),
  ``weights_h5`` (``.weights.h5``).
- both: ``json`` (``model.to_json()``).
"""

from __future__ import annotations

import sys
from pathlib import Path

CASES: list[dict] = [
    {"name": "lstm", "layers": [("LSTM", 5, {"name": "enc_lstm"})], "train": True},
    {"name": "gru_reset_after", "layers": [("GRU", 4, {"name": "gru_ra", "reset_after": True})]},
    {"name": "gru_reset_before",
     "layers": [("GRU", 4, {"name": "gru_rb", "reset_after": False})]},
    {"name": "simple_rnn", "layers": [("SimpleRNN", 6, {"name": "srnn"})]},
    {"name": "bidirectional", "train": True, "layers": [
        ("Bi:LSTM", 3, {"name": "bi_lstm"}),
        ("Bi:GRU", 2, {"name": "bi_gru", "reset_after": False}),
    ]},
    {"name": "stacked", "layers": [
        ("LSTM", 6, {"name": "s_lstm"}), ("GRU", 5, {"name": "s_gru"}),
        ("SimpleRNN", 4, {"name": "s_rnn"}),
    ]},
    {"name": "no_bias", "layers": [
        ("LSTM", 4, {"name": "nb_lstm", "use_bias": False}),
        ("GRU", 3, {"name": "nb_gru", "use_bias": False}),
    ]},
    # Unnamed layers in a Sequential: Keras 3 prefixes full names with the model's name.
    {"name": "sequential", "sequential": True, "layers": [("LSTM", 4, {}), ("GRU", 3, {})]},
    # A Dense before the LSTM: replayable only with a config; otherwise --layer-input.
    {"name": "dense_front", "layers": [
        ("Dense", 4, {"name": "proj", "activation": "tanh"}), ("LSTM", 3, {"name": "after_dense"}),
    ]},
    # Options no file without a config can know: only --config / keras_metadata get them right.
    {"name": "options", "needs_config": True, "layers": [
        ("LSTM", 4, {"name": "opt_lstm", "activation": "relu",
                     "recurrent_activation": "hard_sigmoid", "go_backwards": True}),
    ], "scale": 0.3},
    # Token ids: an Embedding is inferred from its one 2-D ``embeddings`` variable ...
    {"name": "embedding", "tokens": 12, "layers": [
        ("Embedding", 4, {"name": "tokens"}), ("LSTM", 5, {"name": "after_emb"}),
    ]},
    # ... but whether id 0 is masked only a config says.
    {"name": "embedding_masked", "tokens": 12, "needs_config": True, "layers": [
        ("Embedding", 4, {"name": "tokens", "mask_zero": True}), ("GRU", 3, {"name": "masked_gru"}),
    ]},
    # RNN(StackedRNNCells): Keras 3 saves its cells in SavedModels but not in TF checkpoints.
    {"name": "stacked_cells", "layers": [
        ("Stack:LSTM,GRU", (4, 3), {"name": "rnn_stack"}),
    ]},
    # A subclassed model: no layer graph anywhere, names from the variables.
    {"name": "subclassed", "subclassed": True, "layers": [("LSTM", 4, {"name": "sub_lstm"})]},
]

FEATURES, BATCH, STEPS = 3, 3, 7


def _layer(keras, kind: str, units, options: dict):
    options = dict(options)
    if kind == "Dense":
        return keras.layers.Dense(units, **options)
    if kind == "Embedding":
        return keras.layers.Embedding(12, units, **options)
    if kind.startswith("Bi:"):
        name = options.pop("name")
        inner = getattr(keras.layers, kind[3:])(units, return_sequences=True, **options)
        return keras.layers.Bidirectional(inner, name=name)
    if kind.startswith("Stack:"):
        classes = kind[6:].split(",")
        cells = [getattr(keras.layers, f"{c}Cell")(u) for c, u in zip(classes, units, strict=True)]
        return keras.layers.RNN(keras.layers.StackedRNNCells(cells), return_sequences=True, **options)
    return getattr(keras.layers, kind)(units, return_sequences=True, **options)


def _input(keras, case: dict):
    if case.get("tokens"):
        return keras.Input((STEPS,), dtype="int32", name="x")
    return keras.Input((STEPS, FEATURES), name="x")


def build_model(keras, case: dict):
    layers = [_layer(keras, kind, units, opts) for kind, units, opts in case["layers"]]
    head = keras.layers.Dense(2, name="head")
    if case.get("sequential"):
        return keras.Sequential([keras.Input((STEPS, FEATURES)), *layers, head])
    if case.get("subclassed"):
        class Tagger(keras.Model):
            def __init__(self):
                super().__init__(name="tagger")
                self.rnn = layers[0]
                self.head = head

            def call(self, x):
                return self.head(self.rnn(x))

        import tensorflow as tf

        model = Tagger()
        model(tf.zeros((1, STEPS, FEATURES)))
        return model
    inputs = _input(keras, case)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, head(x), name=case["name"])


def references(keras, model, case: dict, x):
    """Per-step hidden/cell states of every recurrent cell, keyed by lstm-trace's prefixes.

    Besides ``<prefix>/hidden`` and ``<prefix>/cell`` (the cell stepped one input at a
    time), each prefix gets ``__input__`` (what the cell consumed), ``__mask__`` (the mask
    Keras hands the layer, when there is one) and, for a GRU, ``__weights__<k>``
    (``cell.get_weights()`` in Keras layout, for the reset-gate check); each recurrent
    layer gets ``<layer>/__output__``, its own output in Keras.
    """
    import numpy as np
    from common import cell_reference

    out: dict[str, np.ndarray] = {}
    prefixes = []
    layer_inputs = {}
    current = x
    mask = None

    def add(prefix: str, cell, cell_input, states: dict, reverse: bool) -> None:
        prefixes.append(_prefix(prefix, cell, reverse))
        out.update({f"{prefix}/{q}": v for q, v in states.items()})
        out[f"{prefix}/__input__"] = np.asarray(cell_input, np.float32)
        if mask is not None:
            out[f"{prefix}/__mask__"] = mask
        if type(cell).__name__ == "GRUCell":
            out.update({f"{prefix}/__weights__{k}": w for k, w in enumerate(cell.get_weights())})

    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, (keras.layers.Dense, keras.layers.Embedding)):
            if layer.name != "head":
                if isinstance(layer, keras.layers.Embedding) and layer.mask_zero:
                    mask = np.asarray(current) != 0
                current = layer(current).numpy()
            continue
        layer_inputs[layer.name] = current
        if isinstance(layer, keras.layers.Bidirectional):
            parts = [("forward", layer.forward_layer), ("backward", layer.backward_layer)]
            for direction, inner in parts:
                reverse = direction == "backward"
                states = cell_reference(inner.cell, current, reverse=reverse, mask=mask)
                add(f"{layer.name}/{direction}", inner.cell, current, states, reverse)
        elif isinstance(layer.cell, keras.layers.StackedRNNCells):
            seq = current
            for k, cell in enumerate(layer.cell.cells):
                states = cell_reference(cell, seq, mask=mask)
                add(f"{layer.name}/cell_{k}", cell, seq, states, False)
                seq = states["hidden"]
        else:
            reverse = bool(layer.go_backwards)
            states = cell_reference(layer.cell, current, reverse=reverse, mask=mask)
            add(layer.name, layer.cell, current, states, reverse)
        current = layer(current, mask=mask).numpy() if mask is not None else layer(current).numpy()
        out[f"{layer.name}/__output__"] = current
    for key, value in out.items():
        if value.dtype != bool:
            assert np.isfinite(value).all() and np.abs(value).max() < 100, (case["name"], key)
    return out, prefixes, layer_inputs


def _prefix(prefix: str, cell, reverse: bool) -> dict:
    kind = {"LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "simple_rnn"}[type(cell).__name__]
    return {"prefix": prefix, "kind": kind, "reverse": reverse}


def main(out: Path) -> None:
    import os

    import numpy as np
    import tensorflow as tf
    from common import randomize, write_manifest

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    backend = "keras2" if legacy else "keras3"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    manifest = []
    for index, case in enumerate(CASES):
        if backend not in case.get("backends", ["keras2", "keras3"]):
            continue
        name = case["name"]
        keras.utils.set_random_seed(index)
        model = build_model(keras, case)
        rng = np.random.default_rng(100 + index)
        if case.get("tokens"):
            x = rng.integers(0, case["tokens"], (BATCH, STEPS)).astype(np.int32)
            x[:, [2, 5]] = 0  # masked steps where the model masks id 0
        else:
            x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
        if case.get("train"):
            model.compile(optimizer="adam", loss="mse")
            model.fit(x, rng.standard_normal((BATCH, STEPS, 2)).astype(np.float32), verbose=0)
        # A first, stale checkpoint with other weights: readers must follow the state file.
        checkpoint = tf.train.Checkpoint(model=model, **(
            {"optimizer": model.optimizer} if case.get("train") else {}))
        manager = tf.train.CheckpointManager(checkpoint, str(out / f"{name}_tfckpt"), max_to_keep=3)
        manager.save()
        randomize(model, seed=index, scale=case.get("scale", 0.6))
        manager.save()
        np.save(out / f"{name}_input.npy", x)
        reference, prefixes, layer_inputs = references(keras, model, case, x)
        np.savez(out / f"{name}_reference.npz", **reference)
        first = next(iter(layer_inputs))
        np.save(out / f"{name}_layer_input.npy", layer_inputs[first])
        files = {"tfckpt": f"{name}_tfckpt"}
        if legacy:
            model.save_weights(str(out / f"{name}_ckpt" / "weights"))
            files["ckpt"] = f"{name}_ckpt/weights"
            model.save(str(out / f"{name}_savedmodel"))
            files["savedmodel"] = f"{name}_savedmodel"
            if not case.get("subclassed"):
                model.save_weights(str(out / f"{name}_weights.h5"))
                files["weights_h5"] = f"{name}_weights.h5"
        else:
            model.export(str(out / f"{name}_export"))
            files["export"] = f"{name}_export"
            tf.saved_model.save(model, str(out / f"{name}_tf_saved"))
            files["tf_saved"] = f"{name}_tf_saved"
            if not case.get("subclassed"):
                model.save_weights(str(out / f"{name}.weights.h5"))
                files["weights_h5"] = f"{name}.weights.h5"
        if not case.get("subclassed"):
            (out / f"{name}.json").write_text(model.to_json())
            files["json"] = f"{name}.json"
        manifest.append({
            "name": name, "backend": backend, "files": files, "input": f"{name}_input.npy",
            "reference": f"{name}_reference.npz", "layer_input": f"{name}_layer_input.npy",
            "prefixes": prefixes,
            "layers": list(layer_inputs),
        })
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
