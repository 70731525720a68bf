"""Pickled models are refused with one line that says what the file is and what to do.

lstm-trace never runs the standard pickle. Found on a real file: the ``basic-lstm-model``
package ships a pickled scikit-learn pipeline whose Keras model is a ``.keras`` zip inside
the pickle; the message used to call it "a zip archive of variables.h5, metadata.json,
config.json, without a .keras config.json".
"""

from __future__ import annotations

import io
import pickle
import zipfile

from click.testing import CliRunner

from lstm_trace.cli import main


def _inspect(path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["inspect", str(path)])
    return result.exit_code, result.output


def test_a_pickle_holding_a_keras_zip(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("variables.h5", "metadata.json", "config.json"):
            archive.writestr(name, b"{}")
    path = tmp_path / "pipeline.pkl"
    # As a pickled object that stores the archive's bytes (protocol 4: starts with 0x80).
    path.write_bytes(pickle.dumps({"steps": ["scaler"], "model": buffer.getvalue()}, protocol=4))
    code, output = _inspect(path)
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    assert "a Python pickle with a zip archive of variables.h5, metadata.json, config.json" in output
    assert "never runs the standard pickle: save the model itself" in output


def test_a_plain_pickle(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    code, output = _inspect(path)
    assert code == 2
    assert "a Python pickle that is not a torch.save file" in output, output
