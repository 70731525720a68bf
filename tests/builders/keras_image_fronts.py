"""Convolution and pooling fronts over 2-D and 3-D grids before a recurrent layer (CRNN shapes),
built by Keras 3 or tf_keras (Keras 2).

    python keras_image_fronts.py OUTDIR
    TF_USE_LEGACY_KERAS=1 python keras_image_fronts.py OUTDIR

The shape of OCR / spectrogram models (keras.io's captcha OCR: Conv2D, MaxPooling2D,
Reshape, Dense, Bidirectional LSTM): an image ``(width, height, channels)`` whose width
becomes time. Each case is saved as ``.h5`` (and ``.keras`` in Keras 3) with
``<name>_input.npy`` and ``<name>_reference.npz``: ``__input__`` (the recurrent layer's input
as Keras computed it) and ``hidden`` (its output at every step; a Bidirectional layer's two
directions concatenated).

``CASES`` is plain data (no TensorFlow import): name -> (input shape, front layers as
``(class name, options)``, recurrent layer ``(class name, units, bidirectional)``).
"""

from __future__ import annotations

import sys
from pathlib import Path

CASES: dict[str, tuple[tuple[int, ...], list[tuple[str, dict]], tuple[str, int, bool]]] = {
    # keras.io captcha OCR, small: same-padded relu convs, 2x2 max pools, width as time
    "ocr": ((24, 12, 1), [
        ("Conv2D", {"filters": 4, "kernel_size": (3, 3), "padding": "same", "activation": "relu"}),
        ("MaxPooling2D", {"pool_size": (2, 2)}),
        ("Conv2D", {"filters": 6, "kernel_size": (3, 3), "padding": "same", "activation": "relu"}),
        ("MaxPooling2D", {"pool_size": (2, 2)}),
        ("Reshape", {"target_shape": (6, 3 * 6)}),
        ("Dense", {"units": 8, "activation": "relu"}),
    ], ("LSTM", 5, True)),
    # valid padding, strides and a dilation, no bias, a batch norm, average pooling 'same'
    "strided": ((20, 10, 2), [
        ("Conv2D", {"filters": 4, "kernel_size": (3, 2), "strides": (1, 2), "use_bias": False}),
        ("BatchNormalization", {}),
        ("Conv2D", {"filters": 3, "kernel_size": (2, 2), "dilation_rate": (2, 1), "activation": "tanh"}),
        ("AveragePooling2D", {"pool_size": (3, 2), "strides": (1, 2), "padding": "same"}),
        ("Reshape", {"target_shape": (16, 2 * 3)}),
    ], ("GRU", 4, False)),
    # grouped convolution, max pooling 'same' with odd sizes
    "grouped": ((15, 7, 4), [
        ("Conv2D", {"filters": 6, "kernel_size": (2, 3), "groups": 2, "padding": "same"}),
        ("MaxPooling2D", {"pool_size": (2, 3), "strides": (1, 2), "padding": "same"}),
        ("Reshape", {"target_shape": (15, 4 * 6)}),
    ], ("SimpleRNN", 3, False)),
    # a 3-D grid: (time, height, width, channels) video-like, Conv3D + MaxPooling3D
    "volume": ((8, 6, 5, 2), [
        ("Conv3D", {"filters": 3, "kernel_size": (2, 3, 3), "padding": "same", "activation": "relu"}),
        ("MaxPooling3D", {"pool_size": (1, 2, 2), "padding": "same"}),
        ("Reshape", {"target_shape": (8, 3 * 3 * 3)}),
    ], ("LSTM", 4, False)),
    # zero padding and cropping per axis around a valid conv, nearest up-sampling
    "padded": ((12, 8, 1), [
        ("ZeroPadding2D", {"padding": ((1, 2), (0, 1))}),
        ("Conv2D", {"filters": 3, "kernel_size": (3, 3), "activation": "relu"}),
        ("Cropping2D", {"cropping": ((1, 0), (1, 1))}),
        ("UpSampling2D", {"size": (1, 2)}),
        ("Reshape", {"target_shape": (12, 10 * 3)}),
    ], ("GRU", 4, False)),
    # an image summarised by global pooling, repeated as a sequence (an image-to-sequence decoder)
    "global": ((8, 8, 2), [
        ("Conv2D", {"filters": 5, "kernel_size": (3, 3), "padding": "same", "activation": "relu"}),
        ("GlobalMaxPooling2D", {}),
        ("RepeatVector", {"n": 4}),
    ], ("LSTM", 3, False)),
    "flatten": ((6, 4, 2), [
        ("Conv2D", {"filters": 2, "kernel_size": (2, 2), "padding": "same"}),
        ("Flatten", {}),
        ("RepeatVector", {"n": 3}),
    ], ("SimpleRNN", 4, False)),
    # the video CNN-LSTM: each frame through TimeDistributed convolution, pooling and Flatten
    "video": ((5, 8, 6, 1), [
        ("TimeDistributed", {"layer": ("Conv2D", {"filters": 3, "kernel_size": (3, 3), "padding": "same",
                                                  "activation": "relu"})}),
        ("TimeDistributed", {"layer": ("MaxPooling2D", {"pool_size": (2, 2)})}),
        ("TimeDistributed", {"layer": ("Flatten", {})}),
    ], ("LSTM", 4, True)),
    "sequence_summary": ((10, 4), [
        ("UpSampling1D", {"size": 2}),
        ("GlobalAveragePooling1D", {}),
        ("RepeatVector", {"n": 5}),
    ], ("GRU", 3, False)),
}
BATCH = 3


def build(keras, name: str):
    L = keras.layers
    shape, front, (rnn_class, units, bidirectional) = CASES[name]
    x = keras.Input(shape)
    y = x
    for k, (class_name, options) in enumerate(front):
        if "layer" in options:  # a wrapper: the wrapped layer's (class name, options)
            inner_class, inner_options = options["layer"]
            options = {**options, "layer": getattr(L, inner_class)(**inner_options)}
        y = getattr(L, class_name)(name=f"front_{k}", **options)(y)
    rnn = getattr(L, rnn_class)(units, return_sequences=True)
    y = (L.Bidirectional(rnn, name="rnn") if bidirectional else getattr(L, rnn_class)(
        units, return_sequences=True, name="rnn"))(y)
    y = L.Dense(2, name="head")(y)
    return keras.Model(x, y, name=name)


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
    for index, name in enumerate(CASES):
        model = build(keras, name)
        randomize(model, seed=70 + index, scale=1.0)
        for layer in model.layers:  # a batch norm's moving variance must stay positive
            if type(layer).__name__ == "BatchNormalization":
                gamma, beta, mean, variance = layer.get_weights()
                layer.set_weights([gamma, beta, mean, np.abs(variance) + 0.5])
        x = np.random.default_rng(700 + index).random((BATCH, *CASES[name][0])).astype(np.float32)
        manifest.append(save_layer_case(keras, model, out, name, x, "rnn", legacy))
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
