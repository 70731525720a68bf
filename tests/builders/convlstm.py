"""Builds Keras ConvLSTM1D/2D/3D models with Keras 3 or tf_keras (``TF_USE_LEGACY_KERAS=1``),
saves them in every Keras format that keeps the config, and records the framework's states.

    python convlstm.py OUTDIR

For each case, ``<case>_reference.npz`` holds, per ConvLSTM layer, ``<layer>/hidden`` and
``<layer>/cell`` ``(batch, steps, *grid, filters)`` (channels last, by input position): the
layer's own cell stepped by hand (``cell(x_t, [h, c])``, masked positions carrying their
states as Keras does), checked against the layer's own returned output before saving; and
``<layer>/output``: what the model returned for that layer. ``CASES`` is plain data.
"""

from __future__ import annotations

import sys
from pathlib import Path

# layers: (class, filters, options); grid: the input grid; own_input: a second model
# input feeding the named layer (traced with --layer NAME --layer-input).
CASES: list[dict] = [
    {"name": "c2d_same", "layers": [("ConvLSTM2D", 3, {"kernel_size": (3, 3), "padding": "same"})],
     "grid": (6, 7), "channels": 2, "batch": 2, "steps": 5},
    {"name": "c2d_valid_strides",
     "layers": [("ConvLSTM2D", 4, {"kernel_size": (3, 2), "strides": (2, 1)})],
     "grid": (9, 7), "channels": 2, "batch": 2, "steps": 4},
    {"name": "c2d_dilation_backwards",
     "layers": [("ConvLSTM2D", 2, {"kernel_size": (3, 3), "dilation_rate": (2, 2),
                                   "padding": "same", "go_backwards": True})],
     "grid": (8, 8), "channels": 1, "batch": 2, "steps": 4},
    {"name": "c2d_same_strides", "layers": [("ConvLSTM2D", 3, {"kernel_size": (3, 3), "strides": (2, 2),
                                                               "padding": "same"})],
     "grid": (7, 6), "channels": 2, "batch": 2, "steps": 4},
    {"name": "c1d_last_step", "layers": [("ConvLSTM1D", 3, {"kernel_size": 3, "padding": "same",
                                                            "return_sequences": False})],
     "grid": (10,), "channels": 2, "batch": 3, "steps": 5},
    {"name": "c3d", "layers": [("ConvLSTM3D", 2, {"kernel_size": (2, 2, 2)})],
     "grid": (4, 4, 4), "channels": 1, "batch": 2, "steps": 3},
    {"name": "c2d_channels_first",
     "layers": [("ConvLSTM2D", 3, {"kernel_size": (3, 3), "padding": "same",
                                   "data_format": "channels_first"})],
     "grid": (6, 5), "channels": 2, "batch": 2, "steps": 4},
    {"name": "c2d_no_bias_activations",
     "layers": [("ConvLSTM2D", 3, {"kernel_size": (2, 2), "use_bias": False, "activation": "relu",
                                   "recurrent_activation": "hard_sigmoid"})],
     "grid": (5, 5), "channels": 2, "batch": 2, "steps": 4, "scale": 0.3},
    {"name": "masked_stack", "masking": True,
     "layers": [("ConvLSTM2D", 3, {"kernel_size": (3, 3), "padding": "same"}),
                ("ConvLSTM2D", 2, {"kernel_size": (3, 3), "padding": "same", "go_backwards": True})],
     "grid": (6, 6), "channels": 2, "batch": 2, "steps": 5},
    {"name": "bidirectional", "bidirectional": True,
     "layers": [("ConvLSTM2D", 2, {"kernel_size": (3, 3), "padding": "same"})],
     "grid": (5, 4), "channels": 2, "batch": 2, "steps": 4},
    {"name": "side_input",
     "layers": [("ConvLSTM2D", 2, {"kernel_size": (3, 3), "padding": "same"})],
     "own_input": {"name": "side", "layer": ("ConvLSTM1D", 3, {"kernel_size": 2}), "grid": (6,),
                   "channels": 3},
     "grid": (5, 5), "channels": 1, "batch": 2, "steps": 4},
]


def layer_names(case: dict) -> list[str]:
    return [f"{case['name']}_{k}" for k in range(len(case["layers"]))]


def main(out: Path) -> None:  # noqa: C901 - one builder, read top to bottom
    import os

    import numpy as np
    from common import randomize, save_every_format, write_manifest

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    import tensorflow as tf

    def make(cls: str, filters: int, options: dict, name: str):
        options = {"return_sequences": True, **options}
        return getattr(keras.layers, cls)(filters, name=name, **options)

    def step_reference(layer, x, mask=None) -> dict:
        """Step ``layer.cell`` over ``x`` (layer layout); states channels-last by input position."""
        cell = layer.cell
        channels_first = layer.data_format == "channels_first"
        batch, steps = x.shape[:2]
        h = c = _zero_state(layer, x)
        hidden = np.zeros((batch, steps, *h.shape[1:]), np.float32)
        cells = np.zeros_like(hidden)
        order = range(steps - 1, -1, -1) if layer.go_backwards else range(steps)
        for t in order:
            _, (h_new, c_new) = cell(tf.constant(x[:, t]), [h, c], training=False)
            if mask is not None:
                m = mask[:, t].reshape(mask[:, t].shape + (1,) * (h.ndim - mask[:, t].ndim))
                if channels_first and m.ndim == h.ndim and mask.ndim > 2:
                    m = np.moveaxis(m, -1, 1)
                h_new = tf.where(m, h_new, h)
                c_new = tf.where(m, c_new, c)
            h, c = h_new, c_new
            hidden[:, t], cells[:, t] = h.numpy(), c.numpy()
        if channels_first:
            hidden, cells = np.moveaxis(hidden, 2, -1), np.moveaxis(cells, 2, -1)
        return {"hidden": hidden, "cell": cells}

    def _zero_state(layer, x):
        """A zero state on the layer's output grid (in its data_format)."""
        shape = layer.compute_output_shape((x.shape[0], *x.shape[1:]))
        shape = tuple(shape[0] if isinstance(shape, list) else shape)
        return tf.zeros((x.shape[0], *(shape[2:] if layer.return_sequences else shape[1:])))

    manifest = []
    for case in CASES:
        rng = np.random.default_rng(len(case["name"]) * 7919)
        names = layer_names(case)
        grid_shape = (case["steps"], *case["grid"], case["channels"])
        first = case["layers"][0][2]
        if first.get("data_format") == "channels_first":
            grid_shape = (case["steps"], case["channels"], *case["grid"])
        inputs = [keras.Input(grid_shape, name="video")]
        x = inputs[0]
        if case.get("masking"):
            x = keras.layers.Masking(0.0, name="masking")(x)
        layers, outputs = [], []
        for (cls, filters, options), name in zip(case["layers"], names, strict=True):
            if case.get("bidirectional"):
                layer = keras.layers.Bidirectional(make(cls, filters, options, f"{name}_inner"),
                                                   name=name)
            else:
                layer = make(cls, filters, options, name)
            x = layer(x)
            layers.append(layer)
            outputs.append(x)
        side = case.get("own_input")
        if side:
            cls, filters, options = side["layer"]
            side_in = keras.Input((case["steps"], *side["grid"], side["channels"]), name="side_in")
            inputs.append(side_in)
            side_layer = make(cls, filters, options, side["name"])
            outputs.append(side_layer(side_in))
            layers.append(side_layer)
        model = keras.Model(inputs, outputs, name=case["name"])
        randomize(model, seed=len(case["name"]), scale=case.get("scale", 0.6))
        feeds = [rng.standard_normal((case["batch"], *grid_shape)).astype(np.float32)]
        if case.get("masking"):
            feeds[0][0, 3:] = 0  # whole steps masked
            feeds[0][1, 1, 2:4, 1:5] = 0  # some positions masked
        if side:
            feeds.append(rng.standard_normal(
                (case["batch"], case["steps"], *side["grid"], side["channels"])).astype(np.float32))
        returned = model.predict(feeds, verbose=0)
        returned = returned if isinstance(returned, list) else [returned]
        reference = {}
        layer_inputs = [feeds[0]] * len(case["layers"]) + feeds[1:]
        mask = None
        if case.get("masking"):
            mask = np.any(feeds[0] != 0, axis=-1)
        chained = feeds[0]
        for k, (layer, value) in enumerate(zip(layers, returned, strict=True)):
            x_in = chained if k < len(case["layers"]) else layer_inputs[k]
            if case.get("bidirectional"):
                # Each direction's states by input position; the output concatenates both.
                parts = {}
                for label, inner in (("forward", layer.forward_layer),
                                     ("backward", layer.backward_layer)):
                    states = step_reference(inner, x_in)
                    for q, arr in states.items():
                        reference[f"{layer.name}/{label}/{q}"] = arr
                    parts[label] = states["hidden"]
                expect = np.concatenate([parts["forward"], parts["backward"]], axis=-1)
                err = np.abs(expect - value).max()
                assert err < 1e-5, (case["name"], layer.name, err)
                reference[f"{layer.name}/output"] = value
                chained = value
                continue
            states = step_reference(layer, x_in, mask if k < len(case["layers"]) else None)
            # The layer's own returned sequence (processing order) must equal the hand steps.
            seq = states["hidden"]
            if layer.data_format == "channels_first":
                seq = np.moveaxis(seq, -1, 2)
            # (On a masked step Keras repeats the previous output, i.e. the carried state.)
            if layer.return_sequences:
                expect = seq[:, ::-1] if layer.go_backwards else seq
            else:
                expect = seq[:, 0] if layer.go_backwards else seq[:, -1]
            err = np.abs(expect - value).max()
            assert err < 1e-5, (case["name"], layer.name, err)
            for q, arr in states.items():
                reference[f"{layer.name}/{q}"] = arr
            reference[f"{layer.name}/output"] = value
            chained = value
        for k, feed in enumerate(feeds):
            np.save(out / f"{case['name']}_input{k}.npy", feed)
        np.savez(out / f"{case['name']}_reference.npz", **reference)
        files = save_every_format(model, out, case["name"], legacy=legacy, legacy_zip=True)
        (out / f"{case['name']}.json").write_text(model.to_json())
        files["config"] = f"{case['name']}.json"
        manifest.append({"name": case["name"], "files": files,
                         "inputs": [f"{case['name']}_input{k}.npy" for k in range(len(feeds))],
                         "reference": f"{case['name']}_reference.npz",
                         "layers": [layer.name for layer in layers]})
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
