"""What the Keras toolkit passes around: a layer of a config, a source of weights, the context.

Also the tables of layer classes by role (recurrent, cell, identity at inference, mask-only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..options import LoadOptions

#: Keras recurrent layer classes and the cell kind they hold.
RECURRENT_CLASSES = {
    "LSTM": "lstm", "GRU": "gru", "SimpleRNN": "simple_rnn",
    "CuDNNLSTM": "lstm", "CuDNNGRU": "gru",
    "LSTMV1": "lstm", "GRUV1": "gru",
    # Convolutional LSTMs: the LSTM quantities over a grid (lstm_trace.conv_lstm).
    "ConvLSTM1D": "lstm", "ConvLSTM2D": "lstm", "ConvLSTM3D": "lstm",
}
CELL_CLASSES = {
    "LSTMCell": "lstm", "GRUCell": "gru", "SimpleRNNCell": "simple_rnn",
    "LSTMCellV1": "lstm", "GRUCellV1": "gru",
}

#: Layers that are the identity at inference time.
IDENTITY_CLASSES = frozenset({
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "InputLayer",
})

#: Layers that only compute a mask for the layers after them (Keras 3 functional configs).
MASK_OP_CLASSES = frozenset({"NotEqual", "Any"})


@dataclass
class LayerSpec:
    """One layer of a Keras config: its class, config and data inputs (layer names)."""

    name: str
    class_name: str
    config: dict
    inbound: list[str] = field(default_factory=list)
    #: Position among the model's layers (weights of a ``.keras`` file are found by it).
    index: int = 0
    #: For an InputLayer: its position among the model's inputs (INPUT feeds input 0).
    input_index: int = 0
    #: Tensor references (``name`` or ``name:k``) of the initial states the model passes in.
    state_inbound: list[str] = field(default_factory=list)
    #: Names of the sub-models (nested Sequential/Functional) this layer sits in, outermost first.
    scope: tuple[str, ...] = ()
    #: The layer's name inside its sub-model (``name`` may be prefixed to stay unique).
    own_name: str = ""
    #: Where a Keras 3 weights file keeps this layer (``layers/sequential/layers/lstm``).
    keras3_path: str = ""


class WeightSource(Protocol):
    """Gives a layer's weights as a list in Keras ``layer.get_weights()`` order."""

    def layer_weights(self, spec: LayerSpec) -> list[np.ndarray]: ...


@dataclass
class KerasContext:
    keras_major: int
    options: LoadOptions
    notes: list[str]
    source: str


#: A config key that is absent (``None`` is a value: Keras's "no activation").
MISSING: object = type("Missing", (), {"__repr__": lambda self: "MISSING"})()


@dataclass(frozen=True)
class CellConfig:
    """What a Keras LSTM/GRU/SimpleRNN layer or cell config says about its cell, read once.

    Fields left :data:`MISSING` (or ``None`` for ``reset_after``) are not in the config: the
    cell builder then applies the default of the file's Keras version, or the user's override.
    Config-less readers (weights-only files, checkpoints) build one from the weights' shapes.
    """

    name: str
    units: int
    use_bias: bool = True
    activation: object = MISSING
    recurrent_activation: object = MISSING
    reset_after: bool | None = None

    @classmethod
    def from_keras(cls, config: dict) -> CellConfig:
        """Read a layer's (or cell's) ``config`` dict; a malformed one raises KeyError/TypeError."""
        reset_after = config.get("reset_after")
        return cls(
            name=str(config.get("name", "")),
            units=int(config["units"]),
            use_bias=bool(config.get("use_bias", True)),
            activation=config.get("activation", MISSING),
            recurrent_activation=config.get("recurrent_activation", MISSING),
            reset_after=None if reset_after is None else bool(reset_after),
        )
