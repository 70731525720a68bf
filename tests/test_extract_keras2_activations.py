"""``extract --to keras`` of a Keras 2 ``hard_sigmoid`` layer prints Keras 3 code that works.

Found on a real model: crema 0.2.0's chord model (Keras 2.2.2, ``Bidirectional(GRU)`` with
``recurrent_activation='hard_sigmoid'``) printed ``recurrent_activation='hard_sigmoid_keras2'``,
which no Keras knows. Now the constructor names a function ``hard_sigmoid_keras2`` and a
``note:`` gives its Keras 3 definition. The test runs what was printed in a Keras 3 process
(a separate one: TensorFlow never enters the pytest process), loads the extracted arrays
and compares its outputs with tf_keras's own states of the layer (atol 1e-5).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from click.testing import CliRunner
from error_record import record_error

from lstm_trace.cli import main

ATOL = 1e-5
KERAS_SCRIPT = """
import json, sys
import numpy as np
import keras

job = json.load(open(sys.argv[1]))
exec(job["definition"].replace(") def ", ")\\ndef "))
x = np.load(job["input"])
layers = [eval(code) for code in job["constructors"]]
model = keras.Sequential([keras.Input((None, x.shape[-1])), *layers])
weights = np.load(job["weights"])
for layer, keys in zip(layers, job["keys"]):
    layer.set_weights([weights[k] for k in keys])
np.save(job["output"], model.predict(x, verbose=0))
model.save(job["keras_file"])  # the named function is serializable (a lambda is not)
"""


def test_keras2_hard_sigmoid_constructor_runs_in_keras3(keras2_lstm_fixtures, tmp_path):
    out = keras2_lstm_fixtures
    model, x = out / "hard_sigmoid.h5", out / "hard_sigmoid_input.npy"
    reference = np.load(out / "hard_sigmoid_reference.npz")["hard_sigmoid_lstm_0/hidden"]
    result = CliRunner().invoke(main, ["extract", str(model), "--to", "keras",
                                       "-o", str(tmp_path / "w.npz")])
    assert result.exit_code == 0, result.output
    assert "recurrent_activation=hard_sigmoid_keras2," in result.stdout
    assert "'hard_sigmoid_keras2'" not in result.stdout
    constructors = [line.split(": ", 1)[1] for line in result.stdout.splitlines() if ": keras." in line]
    note = next(line for line in result.stderr.splitlines() if "define it first: " in line)
    job = tmp_path / "job.json"
    job.write_text(json.dumps({
        "definition": note.split("define it first: ", 1)[1], "constructors": constructors,
        "input": str(x), "weights": str(tmp_path / "w.npz"),
        "keys": [[f"hard_sigmoid_lstm_0/{k}" for k in ("kernel", "recurrent_kernel", "bias")]],
        "output": str(tmp_path / "keras3.npy"), "keras_file": str(tmp_path / "keras3.keras"),
    }))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="-1")
    env.pop("TF_USE_LEGACY_KERAS", None)
    proc = subprocess.run([sys.executable, "-c", KERAS_SCRIPT, str(job)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    err = float(np.max(np.abs(np.load(tmp_path / "keras3.npy") - reference)))
    record_error("extract --to keras vs framework", "keras2_hard_sigmoid", err)
    assert err < ATOL
    assert (tmp_path / "keras3.keras").exists()
