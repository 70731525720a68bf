"""Convolutions and pooling over 2-D and 3-D grids before a recurrent layer, replayed as Keras runs them.

CRNN models (OCR, spectrograms) read an image whose width becomes time: ``Conv2D``,
``MaxPooling2D``/``AveragePooling2D`` (and the 3-D forms), ``BatchNormalization``,
``Reshape``, ``Dense``, then the recurrent layer. The fixtures
(tests/builders/keras_image_fronts.py) build such models with random weights in Keras 3 and
tf_keras (same and valid padding, strides, a dilation, groups, no bias, ``same`` average
pooling over odd sizes, a 3-D grid, padding / cropping / up-sampling, global pooling or Flatten
then RepeatVector, and the video CNN-LSTM: TimeDistributed Conv2D / MaxPooling2D / Flatten per
frame); the recurrent layer's output at every step is compared
with the framework's (atol 1e-5), traced from the image itself.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.keras_image_fronts import CASES
from error_record import record_error

import lstm_trace
from lstm_trace.convolution import Window
from lstm_trace.layers import ConvND, GlobalPooling, PoolingND

ATOL = 1e-5


@pytest.fixture(scope="session", params=["keras3", "keras2"])
def image_models(request):
    from conftest import build_fixtures, load_manifest

    out = build_fixtures("keras_image_fronts", legacy_keras=request.param == "keras2")
    return request.param, out, {c["name"]: c for c in load_manifest(out)}


def _hidden(trace, bidirectional: bool) -> np.ndarray:
    if bidirectional:
        return np.concatenate([trace["rnn/forward/hidden"], trace["rnn/backward/hidden"]], axis=-1)
    return trace["rnn/hidden"]


@pytest.mark.parametrize("name", list(CASES))
def test_recurrent_layer_after_an_image_front_matches_keras(image_models, name):
    version, out, cases = image_models
    case = cases[name]
    x = np.load(out / case["input"])
    reference = np.load(out / case["reference"])
    bidirectional = CASES[name][2][2]
    for fmt, file in case["files"].items():
        hidden = _hidden(lstm_trace.load(out / file).trace(x), bidirectional)
        assert hidden.shape == reference["hidden"].shape, (fmt, hidden.shape)
        err = float(np.max(np.abs(hidden - reference["hidden"])))
        record_error("Keras 2-D/3-D convolution and pooling fronts", f"{version}/{name}/{fmt}", err)
        assert err < ATOL, (fmt, err)


def test_inspect_describes_the_convolutions(image_models):
    _, out, cases = image_models
    model = lstm_trace.load(out / cases["strided"]["files"]["h5"])
    described = {layer.name: layer.describe() for layer in model.layers if hasattr(layer, "describe")}
    assert described["front_2"] == ("Conv2D 3 filters, kernel (2, 2), valid, strides (1, 1), "
                                    "dilation (2, 1), groups 1 (tanh)")
    assert described["front_3"] == "AveragePooling2D (pool (3, 2), strides (1, 2), same)"


def test_channels_first_is_the_channels_last_result_transposed():
    """TensorFlow's CPU kernels refuse channels_first, so this is checked against channels_last."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 5, 3)).astype(np.float32)
    kernel = rng.standard_normal((3, 2, 3, 4)).astype(np.float32)
    window = Window((3, 2), (2, 1), (1, 1), "same")
    last = ConvND("c", "Conv2D", kernel=kernel, window=window).apply(x, None)[0]
    first = ConvND("c", "Conv2D", kernel=kernel, window=window, channels_first=True)
    np.testing.assert_array_equal(first.apply(np.moveaxis(x, -1, 1), None)[0], np.moveaxis(last, -1, 1))
    pool = PoolingND("p", "MaxPooling2D", window=Window((2, 2), (2, 2), (1, 1), "same"))
    pooled = pool.apply(x, None)[0]
    assert pooled.shape == (2, 4, 3, 3)
    np.testing.assert_array_equal(pooled[0, 3, 2], x[0, 6, 4])  # a window of one real position


def test_a_grid_of_the_wrong_rank_is_one_clear_error():
    window = Window((2, 2), (1, 1), (1, 1))
    conv = ConvND("c", "Conv2D", kernel=np.ones((2, 2, 1, 1), np.float32), window=window)
    with pytest.raises(ValueError, match=r"Conv2D expects input \(batch, size, size, channels\)"):
        conv.apply(np.ones((1, 4, 1), np.float32), None)
    with pytest.raises(ValueError, match="smaller than the window"):
        conv.apply(np.ones((1, 1, 4, 1), np.float32), None)


def test_global_average_over_a_masked_sequence_counts_only_its_steps():
    """Keras 3 on Embedding(mask_zero=True) rows [1, 2, 0, 0] and [3, 0, 0, 0] of the embedding
    [[9, 9], [1, -1], [2, -5], [3, 3], [-4, 4]] gives [[1.5, -3], [3, 3]] (average: only the
    unmasked steps) and [[9, 9], [9, 9]] (maximum: the mask is ignored)."""
    table = np.array([[9, 9], [1, -1], [2, -5], [3, 3], [-4, 4]], np.float32)
    ids = np.array([[1, 2, 0, 0], [3, 0, 0, 0]])
    x, mask = table[ids], ids != 0
    average = GlobalPooling("g", "GlobalAveragePooling1D", mode="average").apply(x, mask)[0]
    np.testing.assert_array_equal(average, [[1.5, -3.0], [3.0, 3.0]])
    maximum = GlobalPooling("g", "GlobalMaxPooling1D", mode="max").apply(x, mask)[0]
    np.testing.assert_array_equal(maximum, [[9.0, 9.0], [9.0, 9.0]])
