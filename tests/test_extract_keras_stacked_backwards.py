"""``extract --to keras`` of a reversed cell stack prints what reproduces the stack in Keras.

Found on real models: a ``go_backwards`` stack (Keras ``RNN(StackedRNNCells([...]),
go_backwards=True)``, a TF1 ``bidirectional_dynamic_rnn`` bw ``MultiRNNCell``) is exported as
one ``go_backwards=True`` layer per cell. A Keras ``go_backwards`` layer returns its sequence
last step first, but the next cell of the stack read its outputs by input position, so the
printed layers chained as they are give other numbers. Each such layer now carries a
``note:`` saying to flip its output (``keras.ops.flip(y, axis=1)``) before the next layer.

The test does what the output says in a Keras 3 process (TensorFlow never enters the
pytest process): the printed constructors, the extracted arrays, the flip where a note asks
for it; every layer's output must equal lstm-trace's trace of the source file (and the last
one Keras's own output of the original model), atol 1e-5.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import build_fixtures
from error_record import record_error

import lstm_trace
from lstm_trace.cli import main
from lstm_trace.extract import to_keras

ATOL = 1e-5
FLIP = "keras.ops.flip(layer(x), axis=1)"
KERAS_SCRIPT = """
import json, sys
import numpy as np
import keras

job = json.load(open(sys.argv[1]))
weights = np.load(job["weights"])
x = np.load(job["input"])
outputs = {}
model_input = x
for name, code, keys, flip, from_input in job["layers"]:
    layer = eval(code)  # the printed constructor, as a user runs it
    if from_input:  # a note: takes the model input, not the previous layer's output
        x = model_input
    y = layer(x)
    layer.set_weights([weights[k] for k in keys])
    y = layer(x)
    x = keras.ops.flip(y, axis=1) if flip else y  # what the note says
    outputs[name] = keras.ops.convert_to_numpy(y)
np.savez(job["output"], **outputs)
"""


@pytest.fixture(scope="module")
def keras3_layers():
    return build_fixtures("keras_layers")


@pytest.fixture(scope="module")
def tf1_cells():
    return build_fixtures("tf1_cells", legacy_keras=True)


def run_printed(model, x, tmp_path) -> tuple[dict, list, dict[str, np.ndarray]]:
    """``extract --to keras`` of ``model``, then its printed layers in Keras 3, chained as the
    notes say: ``(notes by layer, exported layers, Keras output of each layer)``."""
    weights = tmp_path / "w.npz"
    result = CliRunner().invoke(main, ["extract", str(model), "--to", "keras", "-o", str(weights)])
    assert result.exit_code == 0, result.output
    constructors = dict(line.strip().split(": ", 1) for line in result.stdout.splitlines()
                        if ": keras.layers." in line)
    notes: dict[str, list[str]] = {}
    for line in result.stderr.splitlines():
        if line.startswith("note: ") and ": " in line[6:]:
            layer, _, text = line[6:].partition(": ")
            notes.setdefault(layer, []).append(text)
    exported = to_keras(lstm_trace.load(model))
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "weights": str(weights), "input": str(x), "output": str(tmp_path / "keras3.npz"),
        "layers": [[e.name, constructors[e.name], list(e.weights),
                    any(FLIP in n for n in notes.get(e.name, [])),
                    any(n.startswith("takes the model input") for n in notes.get(e.name, []))]
                   for e in exported],
    }))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    env.pop("TF_USE_LEGACY_KERAS", None)
    proc = subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(job)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return notes, exported, dict(np.load(tmp_path / "keras3.npz"))


def worst_against_trace(exported, keras_out, trace) -> float:
    worst = 0.0
    for e in exported:
        y = keras_out[e.name]
        if e.kwargs.get("go_backwards"):
            y = y[:, ::-1]  # trace arrays are by input position
        worst = max(worst, float(np.max(np.abs(y - trace[f"{e.name}/hidden"]))))
    return worst


def test_reversed_stack_cells_flipped_as_noted_reproduce_the_trace(keras3_layers, tmp_path):
    model = keras3_layers / "rnn_stacked_backwards.keras"
    x = keras3_layers / "rnn_stacked_backwards_input.npy"
    reference = np.load(keras3_layers / "rnn_stacked_backwards_reference.npz")
    notes, exported, keras_out = run_printed(model, x, tmp_path)
    flipped = [name for name, texts in notes.items() if any(FLIP in n for n in texts)]
    assert flipped == ["stack/cell_0"]  # the last cell's output is Keras's own (reversed) one
    assert [e.name for e in exported if e.flip_output] == ["stack/cell_0"]
    trace = lstm_trace.load(model).trace(np.load(x))
    worst = worst_against_trace(exported, keras_out, trace)
    worst = max(worst, float(np.max(np.abs(keras_out["after"] - reference["after/__output__"]))))
    record_error("extract --to keras vs framework", "rnn_stacked_backwards chained", worst)
    assert worst < ATOL


def test_tf1_bw_multi_rnn_cell_chained_as_noted_reproduces_tensorflow(tf1_cells, tmp_path):
    """fw and bw MultiRNNCell stacks of a bidirectional_dynamic_rnn: the bw stack's first cell
    reads the model input (a note says so), its first cell's output is flipped (a note)."""
    model = tf1_cells / "bidirectional_stacks"
    x = tf1_cells / "bidirectional_stacks_input.npy"
    reference = np.load(tf1_cells / "bidirectional_stacks_reference.npz")
    bw = "bidirectional_rnn/bw/multi_rnn_cell/cell_{}/gru_cell"
    fw1 = "bidirectional_rnn/fw/multi_rnn_cell/cell_1/lstm_cell"
    notes, exported, keras_out = run_printed(model, x, tmp_path)
    assert any(FLIP in n for n in notes[bw.format(0)])
    assert any(n.startswith("takes the model input") for n in notes[bw.format(0)])
    assert not any(FLIP in n for n in notes.get(bw.format(1), []))
    trace = lstm_trace.load(model).trace(np.load(x))
    worst = worst_against_trace(exported, keras_out, trace)
    # TensorFlow's own outputs: output_fw, and output_bw flipped back to input positions.
    worst = max(worst, float(np.max(np.abs(keras_out[fw1] - reference[f"{fw1}/output"]))),
                float(np.max(np.abs(keras_out[bw.format(1)][:, ::-1]
                                    - reference[f"{bw.format(1)}/output"]))))
    record_error("extract --to keras vs framework", "TF1 bw MultiRNNCell chained", worst)
    assert worst < ATOL


def test_reversed_stack_cells_as_torch_modules_chained_as_noted(keras3_layers, tmp_path):
    """``--to pytorch`` of the same stack: each reversed module is fed ``x.flip(1)`` and the
    stacked cell's output flipped back before the next cell, as the notes say."""
    import torch

    model = keras3_layers / "rnn_stacked_backwards.keras"
    x = np.load(keras3_layers / "rnn_stacked_backwards_input.npy")
    out = tmp_path / "w.npz"
    result = CliRunner().invoke(main, ["extract", str(model), "--to", "pytorch", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "stack/cell_0: go_backwards=True has no PyTorch flag: feed the module x.flip(1); " \
           "flip its output back (output.flip(1)) before the next cell" in result.stderr
    constructors = dict(line.strip().split(": ", 1) for line in result.stdout.splitlines()
                        if ": torch.nn." in line)
    arrays = dict(np.load(out))
    trace = lstm_trace.load(model).trace(x)
    h = torch.from_numpy(x)
    worst = 0.0
    for name, code in constructors.items():
        module = eval(code, {"torch": torch})  # the printed constructor, as a user runs it
        module.load_state_dict({k.rpartition("/")[2]: torch.from_numpy(v)
                                for k, v in arrays.items() if k.rpartition("/")[0] == name})
        reverse = name.startswith("stack/")
        with torch.no_grad():
            y, _ = module(h.flip(1) if reverse else h)
        if name == "stack/cell_0":
            y = y.flip(1)  # the note: flip back before the next cell of the stack
        by_position = y.flip(1) if name == "stack/cell_1" else y
        worst = max(worst, float(np.abs(by_position.numpy() - trace[f"{name}/hidden"]).max()))
        h = y
    record_error("PyTorch export vs Keras", "rnn_stacked_backwards chained", worst)
    assert worst < ATOL
