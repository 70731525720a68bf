"""PyTorch modules carried into real Keras by ``extract --to keras``, and traced back.

For each torch-made module: ``lstm-trace extract MODEL.pt --to keras -o W.npz``; then, in a
separate TensorFlow process, Keras 3 layers built from the printed constructors take those
arrays with ``set_weights``, run the input and save a ``.keras`` file. Keras's outputs
must equal torch's own states (atol 1e-5), and lstm-trace tracing the ``.keras`` file must
give torch's per-step ``hidden``/``cell`` of every layer: torch -> Keras -> lstm-trace.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import BUILDERS, build_fixtures, load_manifest

import lstm_trace
from lstm_trace.cli import main
from lstm_trace.extract import to_keras

ATOL = 1e-5
CASES = ["lstm", "lstm_3_layers_bi", "lstm_no_bias", "gru_bi", "gru_no_bias", "rnn_relu",
         "rnn_tanh", "lstm_cell", "gru_cell", "rnn_cell_relu"]

KERAS_SCRIPT = """
import json, sys
import numpy as np
import keras

for case in json.load(open(sys.argv[1])):
    weights = np.load(case["weights"])
    x = np.load(case["input"])
    inputs = keras.Input((None, x.shape[-1]))
    h = inputs
    for k, spec in enumerate(case["layers"]):
        kwargs = dict(spec["kwargs"])
        units = kwargs.pop("units")
        cls = getattr(keras.layers, spec["class_name"])
        if spec["bidirectional"]:
            layer = keras.layers.Bidirectional(cls(units, **kwargs), name=f"l{k}")
        else:
            layer = cls(units, **kwargs, name=f"l{k}")
        h = layer(h)
        layer.set_weights([weights[key] for key in spec["keys"]])
    model = keras.Model(inputs, h)
    np.save(case["output"], model.predict(x, verbose=0))
    model.save(case["keras_file"])
"""


@pytest.fixture(scope="module")
def carried(tmp_path_factory) -> dict[str, dict]:
    """Each case extracted with the CLI, loaded into Keras, run and saved (one TF process)."""
    fixtures = build_fixtures("torch_models", inputs=(BUILDERS / "torch_cases.py",))
    work = tmp_path_factory.mktemp("torch_to_keras")
    manifest = {c["name"]: c for c in load_manifest(fixtures)}
    jobs, out = [], {}
    for name in CASES:
        case = manifest[name]
        model = fixtures / case["files"]["whole"]["file"]
        weights = work / f"{name}.npz"
        result = CliRunner().invoke(main, ["extract", str(model), "--to", "keras",
                                           "-o", str(weights)])
        assert result.exit_code == 0, result.output
        assert "keras.layers." in result.output
        exported = to_keras(lstm_trace.load(model))
        jobs.append({
            "weights": str(weights), "input": str(fixtures / case["input"]),
            "output": str(work / f"{name}-keras-output.npy"),
            "keras_file": str(work / f"{name}.keras"),
            "layers": [{"class_name": e.class_name, "kwargs": e.kwargs,
                        "bidirectional": e.bidirectional, "keys": list(e.weights)}
                       for e in exported],
        })
        out[name] = {"case": case, "fixtures": fixtures, **jobs[-1]}
    spec = work / "spec.json"
    spec.write_text(json.dumps(jobs))
    script = work / "keras_side.py"
    script.write_text(KERAS_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    env.pop("TF_USE_LEGACY_KERAS", None)
    proc = subprocess.run([sys.executable, str(script), str(spec)], capture_output=True,
                          text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _torch_last_hidden(reference, case: dict, n_layers: int, bidirectional: bool) -> np.ndarray:
    name = case["module_path"] or case["default_name"]
    if case["module"].endswith("Cell"):
        return reference[f"{name}/hidden"]
    last = f"{name}/l{n_layers - 1}"
    if bidirectional:
        return np.concatenate([reference[f"{last}/forward/hidden"],
                               reference[f"{last}/backward/hidden"]], axis=-1)
    return reference[f"{last}/hidden"]


@pytest.mark.parametrize("name", CASES)
def test_keras_layers_with_extracted_weights_reproduce_torch(carried, name):
    job = carried[name]
    reference = np.load(job["fixtures"] / job["case"]["reference"])
    keras_out = np.load(job["output"])
    expected = _torch_last_hidden(reference, job["case"], len(job["layers"]),
                                  job["layers"][-1]["bidirectional"])
    assert keras_out.shape == expected.shape
    assert np.abs(keras_out - expected).max() < ATOL


@pytest.mark.parametrize("name", CASES)
def test_keras_file_made_from_torch_weights_traces_to_torch_states(carried, name):
    job = carried[name]
    case = job["case"]
    reference = np.load(job["fixtures"] / case["reference"])
    trace = lstm_trace.load(job["keras_file"]).trace(np.load(job["fixtures"] / case["input"]))
    torch_name = case["module_path"] or case["default_name"]
    compared = 0
    for key in reference.files:
        rest = key[len(torch_name) + 1:]  # "l0/forward/hidden" or "hidden" for a cell
        mine = rest if not case["module"].endswith("Cell") else f"l0/{rest}"
        err = np.abs(trace[mine] - reference[key]).max()
        assert err < ATOL, (mine, err)
        compared += 1
    assert compared >= 1
