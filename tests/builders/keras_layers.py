"""Builds Keras models with every recurrent layer kind, masks, initial states and upstream
layers, with Keras 3 or tf_keras (Keras 2, TF_USE_LEGACY_KERAS=1), and saves them in every
Keras format together with the framework's own per-step states.

    python keras_layers.py OUTDIR

``CASES`` is plain data (no TensorFlow import), so tests can parametrize on it; each
case names a ``model_<name>`` function below that builds the model from a ``keras``
module, so one definition serves both Keras versions.

For every recurrent layer (and each direction of a Bidirectional, each cell of a
``StackedRNNCells``) the reference file holds, under the contract prefix
(``<layer>``, ``<layer>/forward``, ``<layer>/cell_<k>``):

- ``<prefix>/hidden`` (and ``/cell``): the framework's cell stepped one input at a time,
  with the mask and initial state Keras passes to the layer (input positions);
- ``<prefix>/__weights__<k>``: the cell's weights in Keras layout (for the GRU reset-gate
  check, which needs them; CuDNN layers give the weights Keras converts them to);
- ``<layer>/__input__``, ``<layer>/__mask__``: what the framework feeds the layer;
- ``<layer>/__output__``: the layer's output; ``__output__<k>`` when it has several
  (``merge_mode=None``, ``return_state``), numbered as Keras numbers them;
- ``__wired__/<prefix>/hidden`` (``/cell``): initial states the model passes in from
  other layers (``initial_state=[...]`` in the graph).

Initial-state cases also write ``<name>_initial.npz`` with contract keys.
"""

from __future__ import annotations

import sys
from pathlib import Path

# versions: which Keras builds the case ("3": Keras 3, "2": tf_keras).
# input: kind float|tokens, batch, steps, features|vocab, pad (None or a pattern name).
# weights_only: the weights-only files describe the model fully (no options needed).
CASES: list[dict] = [
    # --------------------------------------------------------------- cells
    {"name": "gru_reset_after", "versions": "32", "weights_only": True,
     "input": {"kind": "float", "batch": 3, "steps": 9, "features": 3}},
    {"name": "gru_reset_before", "versions": "32", "weights_only": True,
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 4}},
    {"name": "gru_no_bias", "versions": "32",
     "input": {"kind": "float", "batch": 2, "steps": 7, "features": 3}},
    {"name": "gru_activations", "versions": "32",
     "input": {"kind": "float", "batch": 2, "steps": 7, "features": 3}},
    {"name": "simple_rnn", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 3}},
    {"name": "stacked_lstm_gru_rnn", "versions": "32", "weights_only": True, "sequential": True,
     "input": {"kind": "float", "batch": 4, "steps": 10, "features": 5}},
    {"name": "go_backwards", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 3}},
    # --------------------------------------------------------------- Bidirectional
    {"name": "bidi_concat", "versions": "32", "weights_only": True,
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    {"name": "bidi_sum", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    {"name": "bidi_mul", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    {"name": "bidi_ave", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    {"name": "bidi_none", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    {"name": "bidi_custom_backward", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    {"name": "bidi_forward_go_backwards", "versions": "32",
     "input": {"kind": "float", "batch": 2, "steps": 6, "features": 3}},
    {"name": "bidi_last", "versions": "32", "sequential": True,
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    # --------------------------------------------------------------- generic RNN
    {"name": "rnn_cells", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 3}},
    {"name": "rnn_stacked_cells", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 3}},
    {"name": "rnn_stacked_backwards", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 3}},
    # --------------------------------------------------------------- CuDNN (Keras 2 only)
    {"name": "cudnn", "versions": "2", "weights_only": True,
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 3}},
    # --------------------------------------------------------------- masks
    {"name": "mask_stack", "versions": "32",
     "input": {"kind": "float", "batch": 4, "steps": 9, "features": 3, "pad": "mixed"}},
    {"name": "mask_stack_sequential", "versions": "32", "sequential": True,
     "input": {"kind": "float", "batch": 4, "steps": 9, "features": 3, "pad": "mixed"}},
    {"name": "mask_bidi", "versions": "32",
     "input": {"kind": "float", "batch": 4, "steps": 8, "features": 3, "pad": "mixed"}},
    {"name": "mask_bidi_mul_ave", "versions": "32",
     "input": {"kind": "float", "batch": 4, "steps": 8, "features": 3, "pad": "mixed"}},
    {"name": "mask_go_backwards", "versions": "32",
     "input": {"kind": "float", "batch": 4, "steps": 9, "features": 3, "pad": "mixed"}},
    {"name": "mask_upstream", "versions": "32",
     "input": {"kind": "float", "batch": 4, "steps": 8, "features": 3, "pad": "mixed"}},
    {"name": "embedding_text", "versions": "32", "sequential": True,
     "input": {"kind": "tokens", "batch": 4, "steps": 10, "vocab": 30, "pad": "mixed"}},
    {"name": "embedding_functional", "versions": "32",
     "input": {"kind": "tokens", "batch": 4, "steps": 9, "vocab": 25, "pad": "mixed"}},
    {"name": "embedding_no_mask", "versions": "32", "weights_only": True, "sequential": True,
     "input": {"kind": "tokens", "batch": 3, "steps": 8, "vocab": 20}},
    # --------------------------------------------------------------- initial states
    {"name": "initial_state", "versions": "32", "initial_state": True,
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    {"name": "initial_state_masked", "versions": "32", "initial_state": True,
     "input": {"kind": "float", "batch": 4, "steps": 8, "features": 3, "pad": "mixed"}},
    # --------------------------------------------------------------- upstream layers
    {"name": "dense_stack", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 4}},
    {"name": "normalization", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 8, "features": 4}},
    {"name": "conv1d_lstm", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 17, "features": 4}},
    {"name": "conv1d_options", "versions": "32",
     "input": {"kind": "float", "batch": 2, "steps": 16, "features": 6}},
    {"name": "reshape_permute", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 5, "features": 12}},
    {"name": "repeat_vector", "versions": "32", "sequential": True,
     "input": {"kind": "float", "batch": 3, "steps": 6, "features": 3}},
    {"name": "merge_branches", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 7, "features": 3}},
    {"name": "two_inputs", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 6, "features": 3},
     "second_input": {"kind": "float", "batch": 3, "steps": 6, "features": 2}},
    {"name": "seq2seq", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 6, "features": 3},
     "second_input": {"kind": "float", "batch": 3, "steps": 5, "features": 2}},
    {"name": "bidi_none_consumed", "versions": "32",
     "input": {"kind": "float", "batch": 3, "steps": 6, "features": 3, "pad": "mixed"}},
    {"name": "unsupported_upstream", "versions": "32",
     "input": {"kind": "float", "batch": 2, "steps": 6, "features": 3}},
]

CASE_BY_NAME = {c["name"]: c for c in CASES}


def _seq(keras, case, layers):
    """A Sequential model, or the same layers wired as a Functional model."""
    shape, dtype = _input_shape(case)
    if case.get("sequential"):
        return keras.Sequential([keras.Input(shape, dtype=dtype)] + layers, name=case["name"])
    inputs = keras.Input(shape, dtype=dtype)
    x = inputs
    for layer in layers:
        x = layer(x)
    return keras.Model(inputs, x, name=case["name"])


def _input_shape(case):
    spec = case["input"]
    if spec["kind"] == "tokens":
        return (spec["steps"],), "int32"
    return (spec["steps"], spec["features"]), "float32"


# ------------------------------------------------------------------ model builders


def model_gru_reset_after(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.GRU(6, return_sequences=True, name="gru_a"),
        L.GRU(4, return_sequences=True, name="gru_b"),
    ])


def model_gru_reset_before(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.GRU(5, reset_after=False, return_sequences=True, name="gru_a"),
        L.GRU(3, reset_after=False, return_sequences=True, name="gru_b"),
    ])


def model_gru_no_bias(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.GRU(5, use_bias=False, return_sequences=True, name="gru_a"),
        L.GRU(4, use_bias=False, reset_after=False, return_sequences=True, name="gru_b"),
        L.SimpleRNN(3, use_bias=False, return_sequences=True, name="rnn_c"),
    ])


def model_gru_activations(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.GRU(5, activation="relu", recurrent_activation="hard_sigmoid",
              return_sequences=True, name="gru_a"),
        L.GRU(4, activation="softsign", recurrent_activation="tanh", reset_after=False,
              return_sequences=True, name="gru_b"),
    ])


def model_simple_rnn(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.SimpleRNN(6, return_sequences=True, name="rnn_a"),
        L.SimpleRNN(5, activation="relu", return_sequences=True, name="rnn_b"),
        L.SimpleRNN(4, activation="sigmoid", return_sequences=True, name="rnn_c"),
        L.SimpleRNN(3, activation="elu", name="rnn_d"),
        L.Dense(2, name="head"),
    ])


def model_stacked_lstm_gru_rnn(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.LSTM(6, return_sequences=True, name="lstm"),
        L.GRU(5, return_sequences=True, name="gru"),
        L.SimpleRNN(4, return_sequences=True, name="simple_rnn"),
        L.Dense(2, name="head"),
    ])


def model_go_backwards(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.LSTM(5, go_backwards=True, return_sequences=True, name="lstm_back"),
        L.GRU(4, go_backwards=True, return_sequences=True, name="gru_back"),
        L.SimpleRNN(4, return_sequences=True, name="rnn_fwd"),
        L.SimpleRNN(3, go_backwards=True, name="rnn_back"),
    ])


def model_bidi_concat(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Bidirectional(L.LSTM(5, return_sequences=True), name="bi_lstm"),
        L.Bidirectional(L.GRU(4, return_sequences=True), name="bi_gru"),
        L.Bidirectional(L.SimpleRNN(3, return_sequences=True), name="bi_rnn"),
    ])


def model_bidi_sum(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Bidirectional(L.GRU(5, reset_after=False, return_sequences=True), merge_mode="sum",
                        name="bi_gru"),
        L.LSTM(3, return_sequences=True, name="after"),
    ])


def model_bidi_mul(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Bidirectional(L.SimpleRNN(5, return_sequences=True), merge_mode="mul", name="bi_rnn"),
        L.GRU(3, return_sequences=True, name="after"),
    ])


def model_bidi_ave(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode="ave", name="bi_lstm"),
        L.SimpleRNN(3, return_sequences=True, name="after"),
    ])


def model_bidi_none(keras, case):
    L = keras.layers
    shape, dtype = _input_shape(case)
    inputs = keras.Input(shape, dtype=dtype)
    x = L.LSTM(4, return_sequences=True, name="before")(inputs)
    outputs = L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode=None,
                              name="bi_none")(x)
    return keras.Model(inputs, list(outputs), name=case["name"])


def model_bidi_custom_backward(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Bidirectional(
            L.LSTM(5, return_sequences=True, name="fw"),
            backward_layer=L.LSTM(5, activation="relu", go_backwards=True,
                                  return_sequences=True, name="bw"),
            name="bi_custom"),
        L.Bidirectional(
            L.GRU(3, return_sequences=True, name="fw2"),
            backward_layer=L.GRU(3, reset_after=False, go_backwards=True,
                                 return_sequences=True, name="bw2"),
            merge_mode="sum", name="bi_custom_sum"),
    ])


def model_bidi_forward_go_backwards(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        # Keras 3 cannot derive the backward copy of a go_backwards layer: give it.
        L.Bidirectional(L.LSTM(4, go_backwards=True, return_sequences=True),
                        backward_layer=L.LSTM(4, return_sequences=True), name="bi_rev"),
        L.GRU(3, return_sequences=True, name="after"),
    ])


def model_bidi_last(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Bidirectional(L.LSTM(4, return_sequences=False), name="bi_last"),
        L.Dense(2, name="head"),
    ])


def model_rnn_cells(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.RNN(L.LSTMCell(5), return_sequences=True, name="rnn_lstm"),
        L.RNN(L.GRUCell(4, reset_after=False), go_backwards=True, return_sequences=True,
              name="rnn_gru"),
        L.RNN(L.SimpleRNNCell(3, activation="relu"), return_sequences=True, name="rnn_simple"),
    ])


def model_rnn_stacked_cells(keras, case):
    L = keras.layers
    cells = [L.LSTMCell(5), L.GRUCell(4), L.SimpleRNNCell(3)]
    return _seq(keras, case, [
        L.RNN(L.StackedRNNCells(cells), return_sequences=True, name="stack"),
        L.LSTM(2, return_sequences=True, name="after"),
    ])


def model_rnn_stacked_backwards(keras, case):
    L = keras.layers
    cells = [L.GRUCell(4), L.LSTMCell(3)]
    return _seq(keras, case, [
        L.RNN(L.StackedRNNCells(cells), go_backwards=True, return_sequences=True, name="stack"),
        L.SimpleRNN(3, return_sequences=True, name="after"),
    ])


def model_cudnn(keras, case, plain: bool = False):
    """CuDNN layers (tf_keras only). ``plain``: the LSTM/GRU model Keras converts them to."""
    L = keras.layers
    if plain:
        lstm = lambda units, **kw: L.LSTM(units, **kw)  # noqa: E731
        gru = lambda units, **kw: L.GRU(units, reset_after=True,  # noqa: E731
                                        recurrent_activation="sigmoid", **kw)
    else:
        from tf_keras.src.layers.rnn.cudnn_gru import CuDNNGRU
        from tf_keras.src.layers.rnn.cudnn_lstm import CuDNNLSTM

        lstm, gru = CuDNNLSTM, CuDNNGRU
    return _seq(keras, case, [
        lstm(5, return_sequences=True, name="cudnn_lstm"),
        gru(4, return_sequences=True, name="cudnn_gru"),
        L.Bidirectional(lstm(3, return_sequences=True), name="bi_cudnn"),
    ])


def model_mask_stack(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Masking(0.0, name="masking"),
        L.LSTM(5, return_sequences=True, name="lstm"),
        L.GRU(4, return_sequences=True, zero_output_for_mask=True, name="gru"),
        L.SimpleRNN(3, return_sequences=True, name="rnn"),
        L.LSTM(3, name="last"),
    ])


def model_mask_stack_sequential(keras, case):
    return model_mask_stack(keras, case)


def model_mask_bidi(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Masking(0.0, name="masking"),
        L.Bidirectional(L.LSTM(4, return_sequences=True), name="bi_lstm"),
        L.Bidirectional(L.GRU(3, return_sequences=True), merge_mode="sum", name="bi_gru"),
        L.LSTM(3, return_sequences=True, name="after"),
    ])


def model_mask_bidi_mul_ave(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Masking(0.0, name="masking"),
        L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode="mul", name="bi_mul"),
        L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="ave", name="bi_ave"),
        L.Bidirectional(L.GRU(3, return_sequences=False), name="bi_last"),
    ])


def model_mask_go_backwards(keras, case):
    L = keras.layers
    cells = [L.LSTMCell(3), L.GRUCell(3)]
    return _seq(keras, case, [
        L.Masking(0.0, name="masking"),
        L.LSTM(4, go_backwards=True, return_sequences=True, name="lstm_back"),
        L.GRU(4, return_sequences=True, name="gru"),
        L.RNN(L.StackedRNNCells(cells), go_backwards=True, return_sequences=True, name="stack"),
    ])


def model_mask_upstream(keras, case):
    """Mask-preserving layers between the Masking layer and the recurrent ones."""
    L = keras.layers
    return _seq(keras, case, [
        L.Masking(0.0, name="masking"),
        L.Dense(5, activation="tanh", name="dense"),
        L.TimeDistributed(L.Dense(4), name="td"),
        L.Activation("relu", name="act"),
        L.Dropout(0.3, name="drop"),
        L.LayerNormalization(name="ln"),
        L.LSTM(4, return_sequences=True, name="lstm"),
        L.BatchNormalization(name="bn"),
        L.GRU(3, return_sequences=True, name="gru"),
    ])


def model_embedding_text(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Embedding(case["input"]["vocab"], 6, mask_zero=True, name="embedding"),
        L.LSTM(5, return_sequences=True, name="lstm"),
        L.Bidirectional(L.GRU(3), name="bi_gru"),
        L.Dense(2, activation="softmax", name="head"),
    ])


def model_embedding_functional(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Embedding(case["input"]["vocab"], 5, mask_zero=True, name="embedding"),
        L.Dropout(0.2, name="drop"),
        L.GRU(4, return_sequences=True, name="gru"),
        L.Bidirectional(L.LSTM(3, return_sequences=True), merge_mode="ave", name="bi_lstm"),
    ])


def model_embedding_no_mask(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Embedding(case["input"]["vocab"], 4, name="embedding"),
        L.LSTM(5, return_sequences=True, name="lstm"),
    ])


def model_initial_state(keras, case):
    """Parallel recurrent layers on the model input (initial states are given at trace time)."""
    L = keras.layers
    shape, dtype = _input_shape(case)
    inputs = keras.Input(shape, dtype=dtype)
    x = L.Masking(0.0, name="masking")(inputs) if case["input"].get("pad") else inputs
    outs = [
        L.LSTM(5, return_sequences=True, name="lstm")(x),
        L.GRU(4, return_sequences=True, go_backwards=True, name="gru")(x),
        L.SimpleRNN(3, return_sequences=True, name="rnn")(x),
        L.Bidirectional(L.LSTM(3, return_sequences=True), name="bi")(x),
    ]
    return keras.Model(inputs, L.Concatenate(name="concat")(outs), name=case["name"])


def model_initial_state_masked(keras, case):
    return model_initial_state(keras, case)


def model_dense_stack(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Dense(6, activation="relu", name="dense"),
        L.TimeDistributed(L.Dense(5, activation="tanh"), name="td_dense"),
        L.Dense(5, use_bias=False, name="dense_nobias"),
        L.Activation("swish", name="act"),
        L.Dropout(0.5, name="dropout"),
        L.GaussianNoise(0.3, name="noise"),
        L.SpatialDropout1D(0.2, name="sdrop"),
        L.Activation("softmax", name="softmax"),
        L.LSTM(4, return_sequences=True, name="lstm"),
        L.Dense(3, activation="sigmoid", name="between"),
        L.GRU(3, return_sequences=True, name="gru"),
        L.Dense(2, name="after"),
    ])


def model_normalization(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.BatchNormalization(name="bn"),
        L.BatchNormalization(center=False, epsilon=0.05, name="bn_nocenter"),
        L.BatchNormalization(scale=False, axis=1, name="bn_time_axis"),
        L.LayerNormalization(name="ln"),
        L.LayerNormalization(scale=False, epsilon=0.1, name="ln_noscale"),
        L.LayerNormalization(center=False, axis=[1, 2], name="ln_two_axes"),
        L.GRU(4, return_sequences=True, name="gru"),
        L.LayerNormalization(name="ln_between"),
        L.LSTM(3, return_sequences=True, name="lstm"),
    ])


def model_conv1d_lstm(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Conv1D(6, 3, padding="causal", dilation_rate=2, activation="relu", name="conv_causal"),
        L.Conv1D(6, 3, padding="same", strides=2, name="conv_same_s2"),
        L.MaxPooling1D(2, padding="same", name="maxpool_same"),
        L.Conv1D(4, 2, padding="valid", groups=2, name="conv_groups"),
        L.LSTM(5, return_sequences=True, name="lstm"),
    ])


def model_conv1d_options(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Conv1D(5, 4, padding="same", dilation_rate=2, use_bias=False, name="conv_same_dil"),
        L.AveragePooling1D(3, strides=1, padding="same", name="avg_same"),
        L.Conv1D(4, 3, strides=3, padding="same", activation="tanh", name="conv_s3"),
        L.MaxPooling1D(2, strides=1, name="maxpool_valid"),
        L.Conv1D(4, 1, name="conv_1x1"),
        L.AveragePooling1D(2, name="avg_valid"),
        L.GRU(3, return_sequences=True, name="gru"),
    ])


def model_reshape_permute(keras, case):
    """The input is (5, 12) = (channels, steps): Permute puts the time axis first."""
    L = keras.layers
    return _seq(keras, case, [
        L.Permute((2, 1), name="permute"),
        L.Dense(6, name="dense"),
        L.Reshape((12, 2, 3), name="reshape_4d"),
        L.Permute((1, 3, 2), name="permute_inner"),
        L.Reshape((-1, 6), name="reshape_back"),
        L.LSTM(4, return_sequences=True, name="lstm"),
    ])


def model_repeat_vector(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.LSTM(4, name="encoder"),
        L.RepeatVector(5, name="repeat"),
        L.LSTM(3, return_sequences=True, name="decoder"),
        L.TimeDistributed(L.Dense(2), name="head"),
    ])


def model_merge_branches(keras, case):
    L = keras.layers
    shape, dtype = _input_shape(case)
    inputs = keras.Input(shape, dtype=dtype)
    a = L.Dense(4, activation="tanh", name="branch_a")(inputs)
    b = L.Conv1D(4, 3, padding="causal", name="branch_b")(inputs)
    added = L.Add(name="add")([a, b])
    joined = L.Concatenate(name="concat")([added, inputs])
    x = L.LSTM(5, return_sequences=True, name="lstm")(joined)
    y = L.GRU(5, return_sequences=True, name="gru")(inputs)
    z = L.Multiply(name="mul")([x, y])
    z = L.Average(name="avg")([z, x])
    z = L.Subtract(name="sub")([z, y])
    out = L.SimpleRNN(3, return_sequences=True, name="rnn")(z)
    return keras.Model(inputs, out, name=case["name"])


def model_two_inputs(keras, case):
    L = keras.layers
    shape, dtype = _input_shape(case)
    spec2 = case["second_input"]
    first = keras.Input(shape, dtype=dtype, name="first")
    second = keras.Input((spec2["steps"], spec2["features"]), name="second")
    a = L.LSTM(4, return_sequences=True, name="lstm_first")(first)
    b = L.GRU(4, return_sequences=True, name="gru_second")(second)
    joined = L.Concatenate(name="concat")([a, b])
    out = L.SimpleRNN(3, return_sequences=True, name="rnn_joined")(joined)
    return keras.Model([first, second], out, name=case["name"])


def model_seq2seq(keras, case):
    """Initial states wired from another layer's ``return_state`` outputs."""
    L = keras.layers
    shape, dtype = _input_shape(case)
    spec2 = case["second_input"]
    enc_in = keras.Input(shape, dtype=dtype, name="enc_in")
    dec_in = keras.Input((spec2["steps"], spec2["features"]), name="dec_in")
    seq, h, c = L.LSTM(4, return_sequences=True, return_state=True, name="encoder")(enc_in)
    refine = L.GRU(4, return_sequences=True, name="refine")(seq, initial_state=[h])
    _, bh_f, bc_f, bh_b, bc_b = L.Bidirectional(
        L.LSTM(3, return_state=True), name="bi_enc")(refine)
    bi_dec = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bi_dec")(
        refine, initial_state=[bh_f, bc_f, bh_b, bc_b])
    decoder = L.LSTM(4, return_sequences=True, name="decoder")(dec_in, initial_state=[h, c])
    return keras.Model([enc_in, dec_in], [refine, bi_dec, decoder], name=case["name"])


def model_bidi_none_consumed(keras, case):
    """The two outputs of a merge_mode=None Bidirectional feed different layers."""
    L = keras.layers
    shape, dtype = _input_shape(case)
    inputs = keras.Input(shape, dtype=dtype)
    x = L.Masking(0.0, name="masking")(inputs)
    fw, bw = L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode=None, name="bi")(x)
    on_backward = L.SimpleRNN(3, return_sequences=True, name="on_backward")(bw)
    joined = L.Add(name="add")([fw, bw])
    on_sum = L.LSTM(3, return_sequences=True, name="on_sum")(joined)
    return keras.Model(inputs, [on_backward, on_sum], name=case["name"])


def model_unsupported_upstream(keras, case):
    L = keras.layers
    return _seq(keras, case, [
        L.Dense(4, name="dense"),
        L.Conv1DTranspose(4, 3, padding="same", name="deconv"),
        L.LSTM(3, return_sequences=True, name="lstm"),
    ])


# ------------------------------------------------------------------ inputs

PAD_PATTERNS = {
    # per sample: (leading masked steps, trailing masked steps, masked steps in the middle)
    "mixed": [(0, 0, ()), (0, 3, ()), (2, 0, ()), (1, 1, (4,))],
}


def make_input(spec: dict, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    batch, steps = spec["batch"], spec["steps"]
    if spec["kind"] == "tokens":
        x = rng.integers(1, spec["vocab"], size=(batch, steps)).astype(np.int32)
    else:
        x = rng.standard_normal((batch, steps, spec["features"])).astype(np.float32)
    if spec.get("pad"):
        for b, (lead, trail, middle) in enumerate(PAD_PATTERNS[spec["pad"]]):
            if b >= batch:
                break
            masked = list(range(lead)) + list(range(steps - trail, steps)) + list(middle)
            x[b, masked] = 0
    return x


# ------------------------------------------------------------------ references


def _randomize(keras, model, seed: int) -> None:
    """Random weights everywhere; normalization statistics stay valid (variance > 0)."""
    import numpy as np
    from common import randomize

    randomize(model, seed=seed)
    rng = np.random.default_rng(seed + 1000)
    for layer in _all_layers(model):
        if layer.__class__.__name__ == "BatchNormalization":
            weights = layer.get_weights()
            names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
            new = []
            for name, w in zip(names, weights, strict=True):
                if "variance" in name:
                    w = rng.uniform(0.3, 2.0, w.shape).astype(w.dtype)
                elif "gamma" in name:
                    w = rng.uniform(0.5, 1.5, w.shape).astype(w.dtype)
                new.append(w)
            layer.set_weights(new)


def _all_layers(model):
    out = []
    for layer in model.layers:
        out.append(layer)
        inner = getattr(layer, "layer", None)
        if inner is not None:
            out.append(inner)
    return out


def _is_recurrent(layer) -> bool:
    return layer.__class__.__name__ in (
        "LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "CuDNNLSTM", "CuDNNGRU",
    )


def _layer_input_and_mask(keras, model, layer, legacy: bool):
    """The tensors the framework feeds ``layer`` in ``model``: (data, mask or None)."""
    if legacy:
        data, states = layer.input, []
        mask = layer.input_mask
        if isinstance(data, (list, tuple)):  # tf_keras lists initial states after the data
            data, states = data[0], list(data[1:])
            mask = mask[0] if isinstance(mask, (list, tuple)) else mask
        if mask is not None:
            # tf_keras masks are not layer outputs; a Lambda that returns the mask it is
            # given makes the framework compute it along the graph at run time.
            mask = keras.layers.Lambda(lambda t, mask=None: mask)(data)
    else:
        node = layer._inbound_nodes[0]
        data = node.arguments.args[0]
        mask = node.arguments.kwargs.get("mask")
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        states = list(node.arguments.kwargs.get("initial_state") or [])
    return data, mask, states


def _cell_weights(cell) -> list:
    return [w.numpy() if hasattr(w, "numpy") else w for w in cell.get_weights()]


def _stacked_reference(cells, x, *, reverse, mask, initial=None):
    """Step a StackedRNNCells one input at a time: each cell feeds the next within a step."""
    import numpy as np
    import tensorflow as tf

    batch, steps, _ = x.shape
    states = []
    for cell in cells:
        sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        states.append([tf.zeros((batch, int(s))) for s in sizes])
    records = [{"hidden": np.zeros((batch, steps, int(s[0].shape[1])), np.float32),
                **({"cell": np.zeros((batch, steps, int(s[1].shape[1])), np.float32)}
                   if len(s) > 1 else {})} for s in states]
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        inp = tf.constant(x[:, t])
        new_all = []
        for cell, st in zip(cells, states, strict=True):
            out, new = cell(inp, st, training=False)
            new = list(new) if isinstance(new, (list, tuple)) else [new]
            new_all.append(new)
            inp = out
        if mask is not None:
            keep = tf.constant(mask[:, t, None])
            new_all = [[tf.where(keep, n, s) for n, s in zip(new, st, strict=True)]
                       for new, st in zip(new_all, states, strict=True)]
        states = new_all
        for rec, st in zip(records, states, strict=True):
            rec["hidden"][:, t] = st[0].numpy()
            if "cell" in rec:
                rec["cell"][:, t] = st[1].numpy()
    return records


def _initial_states(prefixes: list[tuple[str, object]], batch: int, seed: int):
    """Random initial states of each direction's cell: ({contract key: array}, {prefix: list})."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    per_prefix = {}
    for prefix, cell in prefixes:
        sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
        arrays = [rng.uniform(-0.8, 0.8, (batch, int(s))).astype(np.float32) for s in sizes]
        per_prefix[prefix] = arrays
        out[f"{prefix}/hidden"] = arrays[0]
        if len(arrays) > 1:
            out[f"{prefix}/cell"] = arrays[1]
    return out, per_prefix


def reference_for_layer(keras, model, layer, x_model, legacy, initial_seed=None):
    """Framework references of one recurrent layer (see the module docstring)."""
    import numpy as np
    from common import cell_reference

    data, mask_t, state_t = _layer_input_and_mask(keras, model, layer, legacy)
    outputs = [data] + ([mask_t] if mask_t is not None else []) + state_t
    probe = keras.Model(model.inputs, outputs)
    got = probe(x_model, training=False)
    got = list(got) if isinstance(got, (list, tuple)) else [got]
    x_in = np.asarray(got[0], dtype=np.float32)
    mask = np.asarray(got[1]).astype(bool) if mask_t is not None else None
    wired = [np.asarray(s, dtype=np.float32) for s in got[len(got) - len(state_t):]] if state_t else []
    name = layer.name
    ref = {f"{name}/__input__": x_in}
    if mask is not None:
        ref[f"{name}/__mask__"] = mask
    cls = layer.__class__.__name__
    info = {"name": name, "class": cls}
    if cls == "Bidirectional":
        parts = [("forward", layer.forward_layer), ("backward", layer.backward_layer)]
        info["merge_mode"] = layer.merge_mode
        info["directions"] = [
            {"prefix": f"{name}/{label}", "reverse": bool(sub.go_backwards),
             "kind": _kind(sub.cell)} for label, sub in parts]
        prefixes = [(f"{name}/{label}", sub.cell) for label, sub in parts]
    elif cls == "RNN" and layer.cell.__class__.__name__ == "StackedRNNCells":
        parts = []
        info["directions"] = [
            {"prefix": f"{name}/cell_{k}", "reverse": bool(layer.go_backwards), "kind": _kind(c)}
            for k, c in enumerate(layer.cell.cells)]
        prefixes = []
    else:
        parts = [(None, layer)]
        info["directions"] = [{"prefix": name, "reverse": bool(layer.go_backwards),
                               "kind": _kind(layer.cell)}]
        prefixes = [(name, layer.cell)]
    initial_keys, initial = ({}, {})
    if initial_seed is not None:
        initial_keys, initial = _initial_states(prefixes, x_in.shape[0], initial_seed)
    if wired:
        # States the model wires in from other layers (hidden then cell, per direction).
        for prefix, cell in prefixes:
            sizes = cell.state_size if isinstance(cell.state_size, (list, tuple)) else [cell.state_size]
            initial[prefix] = [wired.pop(0) for _ in sizes]
            for q, value in zip(("hidden", "cell"), initial[prefix], strict=False):
                ref[f"__wired__/{prefix}/{q}"] = value
    if parts:
        for (_, sub), d in zip(parts, info["directions"], strict=True):
            states = cell_reference(sub.cell, x_in, reverse=bool(sub.go_backwards), mask=mask,
                                    initial=initial.get(d["prefix"]))
            for q, v in states.items():
                ref[f"{d['prefix']}/{q}"] = v
            for k, w in enumerate(_cell_weights(sub.cell)):
                ref[f"{d['prefix']}/__weights__{k}"] = w
            d["options"] = _cell_options(sub.cell)
    else:
        records = _stacked_reference(layer.cell.cells, x_in, reverse=bool(layer.go_backwards),
                                     mask=mask)
        for d, rec, c in zip(info["directions"], records, layer.cell.cells, strict=True):
            for q, v in rec.items():
                ref[f"{d['prefix']}/{q}"] = v
            for k, w in enumerate(_cell_weights(c)):
                ref[f"{d['prefix']}/__weights__{k}"] = w
            d["options"] = _cell_options(c)
    # The layer's own output, computed by the framework.
    if initial_seed is None:
        out = keras.Model(model.inputs, layer.output)(x_model, training=False)
    else:
        import tensorflow as tf

        flat = [s for prefix, _ in prefixes for s in initial[prefix]]
        kwargs = {"initial_state": [tf.constant(s) for s in flat]}
        if mask is not None:
            kwargs["mask"] = tf.constant(mask)
        out = layer(tf.constant(x_in), training=False, **kwargs)
    if isinstance(out, (list, tuple)):
        for k, o in enumerate(out):
            ref[f"{name}/__output__{k}"] = np.asarray(o)
    else:
        ref[f"{name}/__output__"] = np.asarray(out)
    # Self-check: the stepped cell must agree with the layer's own output sequence.
    if cls not in ("Bidirectional",) and len(parts) == 1 and getattr(layer, "return_sequences", 0):
        seq = ref[f"{name}/hidden"]
        if mask is not None and getattr(layer, "zero_output_for_mask", False):
            seq = seq * mask[:, :, None]
        if layer.go_backwards:
            seq = seq[:, ::-1]
        if mask is None or initial_seed is None:
            output = ref.get(f"{name}/__output__", ref.get(f"{name}/__output__0"))
            assert np.abs(seq - output).max() < 1e-4, name
    return ref, info, initial_keys


def _kind(cell) -> str:
    cls = cell.__class__.__name__
    if "LSTM" in cls:
        return "lstm"
    if "GRU" in cls:
        return "gru"
    return "simple_rnn"


def _cell_options(cell) -> dict:
    out = {}
    for key in ("activation", "recurrent_activation"):
        fn = getattr(cell, key, None)
        if fn is not None:
            out[key] = getattr(fn, "__name__", str(fn))
    if hasattr(cell, "reset_after"):
        out["reset_after"] = bool(cell.reset_after)
    return out


def build_case(keras, case: dict, index: int, out: Path, legacy: bool) -> dict:
    import numpy as np
    from common import save_every_format

    name = case["name"]
    model = globals()[f"model_{name}"](keras, case)
    _randomize(keras, model, seed=index)
    x = make_input(case["input"], seed=100 + index)
    np.save(out / f"{name}_input.npy", x)
    x_model = [x]
    if "second_input" in case:
        x2 = make_input(case["second_input"], seed=200 + index)
        np.save(out / f"{name}_input2.npy", x2)
        x_model = [x, x2]
    files = save_every_format(model, out, name, legacy=legacy)
    reference_model = model
    if name == "cudnn":
        # CuDNN kernels only run on a GPU: Keras's own loader converts their weights into
        # plain LSTM / GRU(reset_after=True) layers, which are the reference.
        reference_model = model_cudnn(keras, case, plain=True)
        reference_model.load_weights(out / f"{name}.h5")
    reference: dict = {}
    layers = []
    initial_all: dict = {}
    for k, layer in enumerate(reference_model.layers):
        if not _is_recurrent(layer):
            continue
        seed = 300 + index * 10 + k if case.get("initial_state") else None
        ref, info, initial = reference_for_layer(keras, reference_model, layer, x_model, legacy, seed)
        reference.update(ref)
        initial_all.update(initial)
        layers.append(info)
    for key, value in reference.items():
        if value.dtype != bool:
            assert np.isfinite(value).all() and np.abs(value).max() < 100, (name, key)
    np.savez(out / f"{name}_reference.npz", **reference)
    entry = {"name": name, "files": files, "input": f"{name}_input.npy",
             "reference": f"{name}_reference.npz", "layers": layers}
    if "second_input" in case:
        entry["input2"] = f"{name}_input2.npy"
    if initial_all:
        np.savez(out / f"{name}_initial.npz", **initial_all)
        entry["initial_state"] = f"{name}_initial.npz"
    return entry


def main(out: Path) -> None:
    import os

    from common import write_manifest

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1"
    if legacy:
        import tf_keras as keras
    else:
        import keras
    version = "2" if legacy else "3"
    only = os.environ.get("LSTM_TRACE_ONLY_CASES")  # for debugging one builder case
    manifest = []
    for index, case in enumerate(CASES):
        if version not in case["versions"]:
            continue
        if only and case["name"] not in only.split(","):
            continue
        manifest.append(build_case(keras, case, index, out, legacy))
    write_manifest(out, manifest)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
