"""Two copies of one module in sibling models are not chained as if stacked.

Found on a real file: silero-vad's ``silero_vad.jit`` holds a 16 kHz model ``_model`` and
an 8 kHz model ``_model_8k``, each with a ``decoder.rnn`` ``LSTMCell(128, 128)``. Their sizes
fit, so lstm-trace chained ``_model.decoder.rnn -> _model_8k.decoder.rnn`` and fed the
8 kHz cell the 16 kHz cell's states. The same layout is written here as a safetensors
file (random weights): the second copy is traced only on its own, with a note saying why.
"""

from __future__ import annotations

import numpy as np
from safetensors.numpy import save_file

import lstm_trace


def _cell(prefix: str, rng: np.random.Generator, units: int = 6) -> dict[str, np.ndarray]:
    return {f"{prefix}.weight_ih": rng.standard_normal((4 * units, units)).astype(np.float32),
            f"{prefix}.weight_hh": rng.standard_normal((4 * units, units)).astype(np.float32),
            f"{prefix}.bias_ih": rng.standard_normal(4 * units).astype(np.float32),
            f"{prefix}.bias_hh": rng.standard_normal(4 * units).astype(np.float32)}


def test_sibling_copies_are_not_chained(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "two_rates.safetensors"
    save_file({**_cell("_model.decoder.rnn", rng), **_cell("_model_8k.decoder.rnn", rng)}, str(path))
    network = lstm_trace.load(path)
    assert not any(n.startswith("chained") for n in network.notes), network.notes
    assert any("_model_8k.decoder.rnn is _model.decoder.rnn's counterpart in a sibling model"
               in n for n in network.notes), network.notes
    x = rng.standard_normal((2, 5, 6)).astype(np.float32)
    assert {k.split("/")[0] for k in network.trace(x)} == {"_model.decoder.rnn"}
    alone = network.trace(x, layers=["_model_8k.decoder.rnn"], layer_input=True)
    assert alone["_model_8k.decoder.rnn/hidden"].shape == (2, 5, 6)


def test_a_stack_under_one_parent_is_still_chained(tmp_path):
    rng = np.random.default_rng(4)
    path = tmp_path / "stack.safetensors"
    save_file({**_cell("model.rnn1", rng), **_cell("model.rnn2", rng)}, str(path))
    network = lstm_trace.load(path)
    assert any(n.startswith("chained model.rnn1 -> model.rnn2") for n in network.notes), network.notes
