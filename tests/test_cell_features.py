"""The canonical cell features ONNX brought (output_activation, gate_clip,
coupled_input_forget, parametric activations) are data every path honours.

Their numbers are checked against onnxruntime in tests/test_onnx_nodes.py; here: the
fast fused LSTM loop declines such cells, and the features survive a dtype cast.
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_trace.activations import get_activation, parametric_name
from lstm_trace.network import Cell
from lstm_trace.step_loops import lstm_fusable


def _cell(**options) -> Cell:
    rng = np.random.default_rng(0)
    return Cell(kind="lstm", units=3, kernel=rng.standard_normal((2, 12)),
                recurrent_kernel=rng.standard_normal((3, 12)), bias=rng.standard_normal(12),
                **options)


def test_plain_lstm_is_fused():
    assert lstm_fusable(_cell(), None)


@pytest.mark.parametrize("options", [
    {"output_activation": "relu"}, {"gate_clip": 1.0}, {"coupled_input_forget": True},
    {"recurrent_activation": "hard_sigmoid(alpha=0.2, beta=0.5)"},
], ids=["output_activation", "gate_clip", "coupled_input_forget", "parametric_activation"])
def test_cells_with_new_features_take_the_general_loop(options):
    assert not lstm_fusable(_cell(**options), None)


def test_output_activation_equal_to_tanh_keeps_the_fused_loop():
    assert lstm_fusable(_cell(output_activation="tanh"), None)


def test_features_survive_a_dtype_cast():
    cell = _cell(output_activation="softsign", gate_clip=0.5, coupled_input_forget=True,
                 activation=parametric_name("scaled_tanh", alpha=1.5, beta=0.5))
    cast = cell.astype(np.dtype("float64"))
    assert (cast.output_activation, cast.gate_clip, cast.coupled_input_forget, cast.activation) == (
        "softsign", 0.5, True, "scaled_tanh(alpha=1.5, beta=0.5)")
    assert cast.kernel.dtype == np.float64


def test_parametric_names_are_canonical_and_round_trip():
    name = parametric_name("leaky_relu", alpha=np.float32(0.1))
    assert name == "leaky_relu(alpha=0.1)"
    x = np.array([-2.0, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(get_activation(name)(x), np.array([-0.2, 3.0], np.float32))
    with pytest.raises(ValueError, match="has no parameter"):
        get_activation("elu(beta=1)")
