"""Damaged and hostile model files: every one gives a LoadError (CLI: one line, exit 2)."""

from __future__ import annotations

import contextlib
import json
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_trace
from lstm_trace.cli import main
from lstm_trace.engine import TraceError
from lstm_trace.layers import LayerReplayError
from lstm_trace.loaders import LoadError

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
EXPECTED = (LoadError, TraceError, LayerReplayError)


@pytest.mark.parametrize("name", ["brackets.h5", "brackets.keras"])
def test_randomly_damaged_files_fail_cleanly(name, tmp_path):
    source = (SAMPLES / name).read_bytes()
    x = np.load(SAMPLES / "brackets_input.npy")
    rng = random.Random(name)
    path = tmp_path / name
    for _ in range(60):
        data = bytearray(source)
        for _ in range(rng.choice([1, 5, 40])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.25:
            data = data[: rng.randrange(len(data))]
        path.write_bytes(bytes(data))
        with contextlib.suppress(EXPECTED):
            lstm_trace.load(path).trace(x)


def _rewrite_config(tmp_path: Path, edit) -> Path:
    path = tmp_path / "edited.keras"
    with zipfile.ZipFile(SAMPLES / "brackets.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            dst.writestr(item, data)
    return path


def test_deeply_nested_config_is_a_load_error(tmp_path):
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(SAMPLES / "brackets.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = b"[" * 200000 + b"]" * 200000 if item.filename == "config.json" else src.read(item)
            dst.writestr(item, data)
    with pytest.raises(LoadError):
        lstm_trace.load(path)


def test_lambda_layer_is_never_run(tmp_path):
    def add_lambda(config):
        layers = config["config"]["layers"]
        lam = {"module": "keras.layers", "class_name": "Lambda", "config": {
            "name": "evil", "function": {"class_name": "__lambda__", "config": {
                "code": "aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ3RvdWNoIC90bXAvcHduZWQnKQ==",
                "defaults": None, "closure": None}}}}
        layers.insert(1, lam)
        return config

    path = _rewrite_config(tmp_path, add_lambda)
    result = CliRunner().invoke(main, [str(path), str(SAMPLES / "brackets_input.npy")])
    assert result.exit_code == 2
    assert "Lambda" in result.output and "--layer-input" in result.output
    assert "Traceback" not in result.output


def test_wrong_units_in_config_is_a_load_error(tmp_path):
    def bad_units(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["units"] = 7
        return config

    with pytest.raises(LoadError, match="lstm"):
        lstm_trace.load(_rewrite_config(tmp_path, bad_units))


def test_non_numeric_units_is_a_load_error(tmp_path):
    def bad_units(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["units"] = "many"
        return config

    with pytest.raises(LoadError):
        lstm_trace.load(_rewrite_config(tmp_path, bad_units))


def test_subclassed_model_config_is_a_clear_error(tmp_path):
    path = _rewrite_config(tmp_path, lambda c: {"class_name": "MyModel", "config": {}})
    with pytest.raises(LoadError, match="subclassed"):
        lstm_trace.load(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    with pytest.raises(LoadError, match="empty.h5"):
        lstm_trace.load(path)


def test_directory_that_is_no_model(tmp_path):
    with pytest.raises(LoadError, match="neither a SavedModel"):
        lstm_trace.load(tmp_path)
