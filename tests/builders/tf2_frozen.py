"""Frozen TF2 graphs of Keras models (``convert_variables_to_constants_v2``), with TensorFlow's
per-step states and the frozen graph's own output.

    python tf2_frozen.py OUTDIR                          # Keras 3
    TF_USE_LEGACY_KERAS=1 python tf2_frozen.py OUTDIR    # tf_keras

Each case of ``CASES`` (plain data) is built, given random weights, and frozen twice, as
users freeze a Keras model::

    f = tf.function(lambda x: model(x)).get_concrete_function(tf.TensorSpec(...))
    frozen = convert_variables_to_constants_v2(f, lower_control_flow=...)

``<case>_lowered.pb`` (the default: loops lowered to Enter/Merge/Switch nodes) and
``<case>_functional.pb`` (``lower_control_flow=False``: ``While`` ops with body functions).
Both are run by TensorFlow (``import_graph_def`` + ``Session``) and must give the model's
output. With tf_keras, also the classic graph-mode recipe (:func:`graph_mode`), and
(``_extras``) graphs lstm-trace must refuse and a Conv1D front. ``<case>_reference.npz``
holds, per lstm-trace prefix, ``hidden`` / ``cell`` at every input position (the layer's
own cell stepped by hand, mask carried as Keras does), ``__input__``, ``__mask__`` and a
GRU's ``__weights__<k>``; per recurrent layer returning sequences its Keras output
``<layer>/__output__``; and ``__frozen_output__``, what the frozen graph returned (the last
layer's last step).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: Each layer: (class, units, options); every recurrent layer returns sequences but the last.
CASES: list[dict] = [
    {"name": "stack", "layers": [
        ("LSTM", 5, {"name": "enc", "recurrent_activation": "hard_sigmoid", "implementation": 1}),
        ("GRU", 4, {"name": "mid", "reset_after": True, "activation": "softsign",
                    "recurrent_activation": "tanh"}),
        ("SimpleRNN", 3, {"name": "last", "activation": "relu"}),
    ]},
    {"name": "backwards", "layers": [
        ("Dense", 4, {"name": "proj", "activation": "tanh"}),
        ("GRU", 4, {"name": "back_gru", "reset_after": False, "go_backwards": True,
                    "use_bias": False}),
        ("LSTM", 3, {"name": "after", "activation": None}),
    ]},
    {"name": "masked_bi", "masked_steps": 2, "layers": [
        ("Masking", 0, {"name": "pad"}),
        ("Bi:LSTM", 3, {"name": "bi"}),
        ("GRU", 3, {"name": "top"}),
    ]},
    # RNN(StackedRNNCells) walking backwards over a masked input: keys <layer>/cell_<k>.
    {"name": "stacked_cells", "masked_steps": 2, "layers": [
        ("Masking", 0, {"name": "pad"}),
        ("Stack:LSTM,GRU,SimpleRNN", (4, 3, 2), {"name": "stack", "go_backwards": True}),
        ("GRU", 2, {"name": "after_stack"}),
    ]},
    # Names Keras picks itself; RNN(GRUCell) cells are auto-named too (gru_cell_1 in tf_keras).
    {"name": "auto_names", "layers": [
        ("SimpleRNN", 4, {}), ("Cell:GRU", 3, {}), ("Cell:GRU", 2, {"reset_after": False}),
    ]},
    {"name": "embedding", "tokens": 12, "layers": [
        ("Embedding", 4, {"name": "tokens", "mask_zero": True}),
        ("Bi:GRU", 3, {"name": "bi_gru", "merge_mode": "sum"}),
        ("LSTM", 2, {"name": "tail"}),
    ]},
]
FREEZERS = {"lowered": True, "functional": False}
FEATURES, BATCH, STEPS = 3, 3, 6


def _layer(keras, kind: str, units, options: dict, last: bool):
    options = dict(options)
    L = keras.layers
    if kind == "Dense":
        return L.Dense(units, **options)
    if kind == "Masking":
        return L.Masking(0.0, **options)
    if kind == "Embedding":
        return L.Embedding(12, units, **options)
    if kind.startswith("Stack:"):
        cells = [getattr(L, f"{c}Cell")(u) for c, u in zip(kind[6:].split(","), units, strict=True)]
        return L.RNN(L.StackedRNNCells(cells), return_sequences=not last, **options)
    if kind.startswith("Cell:"):
        cell = getattr(L, f"{kind[5:]}Cell")(units, **options)
        return L.RNN(cell, return_sequences=not last)
    if kind.startswith("Bi:"):
        name, merge = options.pop("name"), options.pop("merge_mode", "concat")
        inner = getattr(L, kind[3:])(units, return_sequences=not last, **options)
        return L.Bidirectional(inner, name=name, merge_mode=merge)
    return getattr(L, kind)(units, return_sequences=not last, **options)


def main(out: Path) -> None:
    import os
    import zlib

    import numpy as np
    import tensorflow as tf
    from common import cell_reference, randomize, write_manifest
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    tf1 = tf.compat.v1
    manifest = []
    for case in CASES:
        name = case["name"]
        seed = zlib.crc32(name.encode())
        keras.utils.set_random_seed(seed % 1000)
        rng = np.random.default_rng(seed)
        tokens = case.get("tokens")
        if tokens:
            inputs = keras.Input((STEPS,), dtype="int32", name="x")
            x = rng.integers(1, tokens, (BATCH, STEPS)).astype(np.int32)
            x[0, -2:] = 0
            x[1, 2] = 0
            spec = tf.TensorSpec([None, STEPS], tf.int32)
        else:
            inputs = keras.Input((STEPS, FEATURES), name="x")
            x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
            if case.get("masked_steps"):
                x[0, -case["masked_steps"]:] = 0.0
                x[2, 1] = 0.0
            spec = tf.TensorSpec([None, STEPS, FEATURES], tf.float32)
        count = len(case["layers"])
        layers = [_layer(keras, k, u, o, i == count - 1) for i, (k, u, o) in enumerate(case["layers"])]
        h = inputs
        for layer in layers:
            h = layer(h)
        model = keras.Model(inputs, h, name=f"{name}_model")
        randomize(model, seed=seed % 1000)
        expected = np.asarray(model(x))

        files = {}
        for kind, lower in FREEZERS.items():
            function = tf.function(lambda t, m=model: m(t)).get_concrete_function(spec)
            frozen = convert_variables_to_constants_v2(function, lower_control_flow=lower)
            graph_def = frozen.graph.as_graph_def()
            file = f"{name}_{kind}.pb"
            (out / file).write_bytes(graph_def.SerializeToString())
            files[kind] = file
            graph = tf.Graph()
            with graph.as_default():
                tf1.import_graph_def(graph_def, name="")
                with tf1.Session(graph=graph) as sess:
                    got = sess.run(frozen.outputs[0].name, {frozen.inputs[0].name: x})
            err = float(np.abs(got - expected).max())
            assert err < 1e-5, (name, kind, err)

        reference = {"__frozen_output__": got}
        prefixes = []
        current = x
        mask = None
        for layer, (kind, _, options) in zip(layers, case["layers"], strict=True):
            if kind in ("Dense", "Embedding", "Masking"):
                if kind == "Embedding":
                    mask = np.asarray(current) != 0
                if kind == "Masking":
                    mask = np.any(np.asarray(current) != 0.0, axis=-1)
                current = np.asarray(layer(current))
                continue
            keras_mask = None if mask is None else tf.constant(mask)
            parts = ([("forward", layer.forward_layer.cell, False),
                      ("backward", layer.backward_layer.cell, True)] if kind.startswith("Bi:")
                     else [(f"cell_{k}", c, bool(layer.go_backwards))
                           for k, c in enumerate(layer.cell.cells)] if kind.startswith("Stack:")
                     else [(None, layer.cell, bool(layer.go_backwards))])
            cell_input = current
            for direction, cell, reverse in parts:
                prefix = f"{layer.name}/{direction}" if direction else layer.name
                states = cell_reference(cell, cell_input, reverse=reverse, mask=mask)
                reference.update({f"{prefix}/{q}": v for q, v in states.items()})
                reference[f"{prefix}/__input__"] = np.asarray(cell_input, np.float32)
                if mask is not None:
                    reference[f"{prefix}/__mask__"] = mask
                cell_kind = {"LSTMCell": "lstm", "GRUCell": "gru",
                             "SimpleRNNCell": "simple_rnn"}[type(cell).__name__]
                if cell_kind == "gru":
                    reference.update({f"{prefix}/__weights__{k}": w
                                      for k, w in enumerate(cell.get_weights())})
                prefixes.append({"prefix": prefix, "kind": cell_kind, "reverse": reverse})
                if kind.startswith("Stack:"):  # the next cell reads this one's outputs
                    cell_input = states["hidden"]
            current = np.asarray(layer(current, mask=keras_mask) if mask is not None else layer(current))
            if current.ndim == 3 and options.get("merge_mode", "concat") == "concat":
                reference[f"{layer.name}/__output__"] = current
        np.save(out / f"{name}_input.npy", x)
        np.savez(out / f"{name}_reference.npz", **reference)
        manifest.append({
            "name": name, "backend": "keras2" if legacy else "keras3", "files": files,
            "input": f"{name}_input.npy", "reference": f"{name}_reference.npz",
            "prefixes": prefixes, "last": layers[-1].name,
        })
    manifest.append(_extras(keras, tf, np, out, convert_variables_to_constants_v2))
    if legacy:
        import subprocess

        subprocess.run([sys.executable, __file__, str(out), "--graph-mode"], check=True)
        manifest[-1]["files"]["classic"] = "classic.pb"
    write_manifest(out, manifest)


def graph_mode(out: Path) -> None:
    """The classic TF1-style recipe on a tf_keras model, in its own process (graph mode is
    process-wide): ``disable_eager_execution``, then ``convert_variables_to_constants`` of the
    Keras session's graph. Constants keep the variables' names (``lstm/lstm_cell/kernel``) and
    the loops carry a training graph's accumulators. Writes ``classic.pb``, its input and what
    the session returned: the LSTM's output sequence and the model's output."""
    import numpy as np
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    import tf_keras as keras

    L = keras.layers
    model = keras.Sequential([
        keras.Input((STEPS, FEATURES)), L.Masking(0.0, name="pad"),
        L.LSTM(4, return_sequences=True, name="enc"),
        L.Bidirectional(L.GRU(3, reset_after=False), name="bi"),
    ])
    rng = np.random.default_rng(11)
    for layer in model.layers:
        layer.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32)
                           for w in layer.get_weights()])
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    x[1, -2:] = 0.0
    sess = tf.compat.v1.keras.backend.get_session()
    enc, output = sess.run([model.get_layer("enc").output, model.output], {model.input: x})
    graph_def = tf.compat.v1.graph_util.convert_variables_to_constants(
        sess, sess.graph.as_graph_def(), [model.output.op.name])
    (out / "classic.pb").write_bytes(graph_def.SerializeToString())
    np.save(out / "classic_input.npy", x)
    np.savez(out / "classic_reference.npz", enc=enc, output=output, mask=np.any(x != 0, -1))


def _extras(keras, tf, np, out: Path, freeze) -> dict:
    """Graphs lstm-trace must refuse in one line (``Bidirectional(RNN(StackedRNNCells))``,
    ``unroll=True``,
    a hostile loop), a SavedModel's serving signature frozen (and the SavedModel itself), a
    ``Conv1D`` before an LSTM (traced with ``--layer-input``: the conv's
    output, and what the frozen graph returned), and a decoder started from an encoder's
    final states (``initial_state=[h, c]``; the model's output on ``extras_input.npy``)."""
    from common import randomize

    L = keras.layers
    spec = tf.TensorSpec([None, STEPS, FEATURES], tf.float32)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    np.save(out / "extras_input.npy", x)
    models = {
        "bidirectional_stack": [L.Bidirectional(
            L.RNN(L.StackedRNNCells([L.LSTMCell(3), L.GRUCell(2)])), name="bi_stack")],
        "unrolled": [L.LSTM(3, unroll=True, name="unrolled")],
        "conv_front": [L.Conv1D(4, 2, name="conv"), L.LSTM(3, name="after_conv")],
    }
    files = {}
    inputs = keras.Input((STEPS, FEATURES))
    _, h, c = L.LSTM(3, return_state=True, name="enc")(inputs)
    seq2seq = keras.Model(inputs, L.LSTM(3, name="dec")(inputs, initial_state=[h, c]))
    randomize(seq2seq, seed=6)
    function = tf.function(lambda t: seq2seq(t)).get_concrete_function(spec)
    (out / "initial_state.pb").write_bytes(freeze(function).graph.as_graph_def().SerializeToString())
    files["initial_state"] = "initial_state.pb"
    np.save(out / "initial_state_output.npy", np.asarray(seq2seq(x)))
    for name, layers in models.items():
        inputs = keras.Input((STEPS, FEATURES))
        h = inputs
        for layer in layers:
            h = layer(h)
        model = keras.Model(inputs, h)
        randomize(model, seed=5)
        function = tf.function(lambda t, m=model: m(t)).get_concrete_function(spec)
        graph_def = freeze(function).graph.as_graph_def()
        (out / f"{name}.pb").write_bytes(graph_def.SerializeToString())
        files[name] = f"{name}.pb"
        if name == "conv_front":
            np.save(out / "conv_front_layer_input.npy", np.asarray(layers[0](x)))
            np.save(out / "conv_front_output.npy", np.asarray(model(x)))
    # A SavedModel's serving signature frozen (the model's function behind a
    # StatefulPartitionedCall): Keras 3 model.export, tf_keras model.save.
    inputs = keras.Input((STEPS, FEATURES), name="feats")
    served = keras.Model(inputs, L.Bidirectional(L.GRU(3), name="bi")(
        L.LSTM(4, return_sequences=True, name="enc")(inputs)))
    randomize(served, seed=7)
    export = out / "served_savedmodel"
    served.export(str(export)) if hasattr(served, "export") else served.save(str(export))
    loaded = tf.saved_model.load(str(export))  # kept alive: the signature reads its variables
    signature = loaded.signatures["serving_default"]
    for lower in (True, False):
        name = f"served_{'lowered' if lower else 'functional'}"
        (out / f"{name}.pb").write_bytes(
            freeze(signature, lower_control_flow=lower).graph.as_graph_def().SerializeToString())
        files[name] = f"{name}.pb"
    files["served_savedmodel"] = export.name
    np.save(out / "served_output.npy", np.asarray(served(x)))

    # A hostile loop: 600 nested adds, deeper than any cell (refused, never a crash).
    @tf.function(input_signature=[spec])
    def deep(t):
        def body(i, h):
            for _ in range(600):
                h = h + 1.0
            return i + 1, h
        return tf.while_loop(lambda i, h: i < STEPS, body, [tf.constant(0), t[:, 0]])[1]

    (out / "deep_loop.pb").write_bytes(
        freeze(deep.get_concrete_function(), lower_control_flow=False).graph.as_graph_def()
        .SerializeToString())
    files["deep_loop"] = "deep_loop.pb"
    return {"name": "extras", "files": files, "prefixes": []}


if __name__ == "__main__":
    if sys.argv[2:] == ["--graph-mode"]:
        graph_mode(Path(sys.argv[1]))
    else:
        main(Path(sys.argv[1]))
