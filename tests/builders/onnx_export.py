"""Source models for ``extract --to onnx``: Keras layers and PyTorch modules with their outputs.

    python onnx_export.py OUTDIR

Each case writes the model file (``.keras`` or a torch ``state_dict`` ``.pt``), ``x.npy``
``(batch, steps, features)`` and ``output.npy``: the framework's own output sequence of
the recurrent layer (Keras: the layer's output, processing order for ``go_backwards``;
Bidirectional concatenated; torch: ``output`` of the batch_first module).

``CASES`` is plain data, so tests can parametrize on it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

CASES: list[dict] = [
    {"name": "keras_lstm", "source": "keras", "layer": "LSTM", "options": {}},
    {"name": "keras_lstm_hard_sigmoid_relu", "source": "keras", "layer": "LSTM",
     "options": {"recurrent_activation": "hard_sigmoid", "activation": "relu"}},
    {"name": "keras_lstm_linear_softsign", "source": "keras", "layer": "LSTM",
     "options": {"recurrent_activation": "softsign", "activation": "linear"}},
    {"name": "keras_gru_reset_after", "source": "keras", "layer": "GRU", "options": {}},
    {"name": "keras_gru_reset_before", "source": "keras", "layer": "GRU",
     "options": {"reset_after": False}},
    {"name": "keras_gru_go_backwards", "source": "keras", "layer": "GRU",
     "options": {"go_backwards": True}},
    {"name": "keras_simple_rnn_elu", "source": "keras", "layer": "SimpleRNN",
     "options": {"activation": "elu"}},
    {"name": "keras_bidirectional_lstm", "source": "keras", "layer": "LSTM", "options": {},
     "bidirectional": True},
    {"name": "keras_lstm_no_bias", "source": "keras", "layer": "LSTM", "options": {"use_bias": False}},
    {"name": "torch_lstm_bidirectional", "source": "torch", "layer": "LSTM", "options": {},
     "bidirectional": True},
    {"name": "torch_gru", "source": "torch", "layer": "GRU", "options": {}},
    # A state dict does not say relu: the user passes --activation, as for tracing.
    {"name": "torch_rnn_relu", "source": "torch", "layer": "RNN", "options": {"nonlinearity": "relu"},
     "cli": ["--activation", "relu"]},
]
FEATURES, UNITS, BATCH, STEPS = 3, 5, 2, 7


def build_keras(case: dict, d: Path) -> None:
    import keras
    import numpy as np

    rng = np.random.default_rng(3)
    layer = getattr(keras.layers, case["layer"])(UNITS, return_sequences=True, name="rnn",
                                                 **case["options"])
    if case.get("bidirectional"):
        layer = keras.layers.Bidirectional(layer, name="rnn")
    model = keras.Sequential([keras.Input((STEPS, FEATURES)), layer])
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32)
                       for w in model.get_weights()])
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    np.save(d / "x.npy", x)
    np.save(d / "output.npy", model.predict(x, verbose=0))
    model.save(d / "model.keras")


def build_torch(case: dict, d: Path) -> None:
    import numpy as np
    import torch

    torch.manual_seed(4)

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = getattr(torch.nn, case["layer"])(
                FEATURES, UNITS, batch_first=True, bidirectional=bool(case.get("bidirectional")),
                **case["options"])

    net = Net()
    x = torch.randn(BATCH, STEPS, FEATURES)
    with torch.no_grad():
        out = net.rnn(x)[0]
    np.save(d / "x.npy", x.numpy())
    np.save(d / "output.npy", out.numpy())
    torch.save(net.state_dict(), d / "model.pt")


def main(out: Path) -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    for case in CASES:
        d = out / case["name"]
        d.mkdir(parents=True)
        (build_keras if case["source"] == "keras" else build_torch)(case, d)
    (out / "manifest.json").write_text(json.dumps({"cases": CASES}, indent=1))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
