"""The NumPy layers before a traced layer: what each refuses, and the configurations that
become Unsupported with a reason. (Their values are checked against Keras, through the
recurrent layers they feed, in ``test_keras_layers.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_trace.layers import (
    Conv1D,
    Dense,
    Embedding,
    LayerReplayError,
    Masking,
    Merge,
    Pooling1D,
    Reshape,
    TimeDistributed,
    Unsupported,
)
from lstm_trace.loaders.keras.spec import KerasContext, LayerSpec
from lstm_trace.loaders.keras.upstream import convert_upstream
from lstm_trace.loaders.options import LoadOptions


def _convert(class_name: str, config: dict, weights=(), keras_major: int = 3):
    ctx = KerasContext(keras_major, LoadOptions(), [], "test")
    return convert_upstream(LayerSpec("layer", class_name, config), list(weights), ctx)


def test_embedding_rejects_out_of_range_and_fractional_ids():
    emb = Embedding("emb", "Embedding", embeddings=np.eye(4, dtype=np.float32), mask_zero=True)
    with pytest.raises(ValueError, match=r"token id 7 is out of range.*0 to 3"):
        emb.apply(np.array([[1, 7]]), None)
    with pytest.raises(ValueError, match="non-integer"):
        emb.apply(np.array([[1.5, 2.0]]), None)
    out, mask = emb.apply(np.array([[2.0, 0.0]]), None)  # whole floats are cast, like Keras
    np.testing.assert_array_equal(out[0, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(mask, [[True, False]])


def test_masking_zeroes_masked_steps_and_ignores_incoming_mask():
    x = np.array([[[1.0, 0.0], [0.0, 0.0], [5.0, 5.0]]], np.float32)
    out, mask = Masking("m", "Masking", mask_value=5.0).apply(x, np.zeros((1, 3), bool))
    np.testing.assert_array_equal(mask, [[True, True, False]])
    np.testing.assert_array_equal(out[0, 2], [0, 0])


def test_conv1d_rejects_wrong_channels_and_too_short_input():
    conv = Conv1D("c", "Conv1D", kernel=np.ones((3, 2, 4), np.float32))
    with pytest.raises(ValueError, match="expects 2 channels"):
        conv.apply(np.ones((1, 5, 3), np.float32), None)
    with pytest.raises(ValueError, match="too short"):
        conv.apply(np.ones((1, 2, 2), np.float32), None)


def test_average_pooling_same_counts_only_real_steps():
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 5, 1)  # 1..5
    pool = Pooling1D("p", "AveragePooling1D", mode="average", pool_size=2, strides=2, padding="same")
    out, _ = pool.apply(x, None)
    np.testing.assert_allclose(out[0, :, 0], [1.5, 3.5, 5.0])  # last window holds only x=5


def test_reshape_error_names_shapes():
    with pytest.raises(ValueError, match=r"cannot reshape input \(4, 3\).*\(5, -1\)"):
        Reshape("r", "Reshape", target_shape=(5, -1)).apply(np.ones((2, 4, 3)), None)


def test_merge_masks_follow_the_keras_version():
    x = np.ones((1, 3, 2), np.float32)
    a = np.array([[True, False, True]])
    b = np.array([[True, True, False]])
    k3 = Merge("add", "Add", op="add", keras_major=3)
    k2 = Merge("add", "Add", op="add", keras_major=2)
    np.testing.assert_array_equal(k3.apply_many([x, x], [a, b])[1], [[True, True, True]])
    np.testing.assert_array_equal(k2.apply_many([x, x], [a, b])[1], [[True, False, False]])
    assert k3.apply_many([x, x], [a, None])[1] is None
    np.testing.assert_array_equal(k2.apply_many([x, x], [a, None])[1], a)


def test_time_distributed_applies_inner_layer_per_step():
    dense = Dense("d", "Dense", kernel=np.arange(6, dtype=np.float32).reshape(3, 2), bias=None)
    td = TimeDistributed("td", "TimeDistributed", inner=dense)
    x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    mask = np.ones((2, 4), bool)
    out, out_mask = td.apply(x, mask)
    np.testing.assert_allclose(out, x @ dense.kernel, rtol=1e-6)
    assert out_mask is mask


@pytest.mark.parametrize(("class_name", "config", "weights", "reason"), [
    ("BatchNormalization", {"renorm": True}, [np.ones(2)] * 4, "renorm"),
    ("Conv1D", {"padding": "full"}, [np.ones((2, 1, 1)), np.ones(1)], "padding 'full'"),
    ("Dense", {"activation": {"class_name": "MyAct", "config": {}}}, [np.ones((2, 2)), np.ones(2)],
     "unsupported activation"),
    ("Dense", {}, [np.ones((2, 2))], "expected 2 weight arrays"),
    ("Embedding", {}, [np.ones((2, 2, 2))], "quantized"),
    ("Lambda", {}, [], "holds code"),
    ("Conv2DTranspose", {}, [], "does not replay this layer class"),
    ("Conv2D", {"padding": "causal"}, [np.ones((2, 2, 1, 1)), np.ones(1)], "padding 'causal'"),
    ("MaxPooling2D", {"padding": "full"}, [], "padding 'full'"),
    ("TimeDistributed", {"layer": {"class_name": "Conv2D", "config": {}}}, [], "inner Conv2D"),
])
def test_configurations_outside_the_replay_become_unsupported(class_name, config, weights, reason):
    layer = _convert(class_name, config, weights)
    assert isinstance(layer, Unsupported)
    assert reason in layer.reason
    with pytest.raises(LayerReplayError, match=r"'layer' \(" + class_name + r"\).*--layer-input"):
        layer.apply(np.zeros((1, 2, 2), np.float32), None)


def test_softmax_activation_is_over_the_last_axis():
    layer = _convert("Activation", {"activation": "softmax"})
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
    out, _ = layer.apply(x, None)
    np.testing.assert_allclose(out.sum(axis=-1), 1, rtol=1e-6)
