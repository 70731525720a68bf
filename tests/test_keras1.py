"""Keras 1.x ``.h5`` files (full model and weights-only) replay the Keras 1 equations.

Keras 1 cannot be installed next to TensorFlow 2.21, so the files are written here with h5py
in the exact Keras 1 layout (``keras_version``, Keras 1 ``model_config`` JSON, per-gate
weights named ``lstm_1_W_i``... in Keras 1's storage order), and the reference is an
independent NumPy implementation of the Keras 1 layer equations that uses the per-gate
matrices directly (LSTM gates i, c, f, o stored in that order; GRU with the reset gate
applied to ``h`` before ``U_h``; ``hard_sigmoid`` = clip(0.2x + 0.5, 0, 1)). Nothing in the
reference goes through lstm-trace's gate tables or fused layouts.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from error_record import record_error

import lstm_trace
from lstm_trace.cli import main as cli_main

ATOL = 1e-5
STEPS, FEATURES, BATCH = 7, 3, 2

# ----------------------------------------------------------------------------- reference


def hard_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


ACT = {"tanh": np.tanh, "hard_sigmoid": hard_sigmoid, "relu": lambda x: np.maximum(x, 0),
       "sigmoid": lambda x: 1 / (1 + np.exp(-x))}


def _positions(steps: int, backwards: bool) -> range:
    return range(steps - 1, -1, -1) if backwards else range(steps)


def ref_lstm(x: np.ndarray, g: dict, act: str = "tanh", inner: str = "hard_sigmoid",
             backwards: bool = False) -> dict[str, np.ndarray]:
    """Keras 1 LSTM.step with per-gate W_*, U_*, b_* (``g`` maps 'W_i' -> array...)."""
    phi, sig = ACT[act], ACT[inner]
    batch, steps, _ = x.shape
    units = g["U_i"].shape[0]
    h, c = np.zeros((batch, units)), np.zeros((batch, units))
    out = {k: np.zeros((batch, steps, units))
           for k in ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")}
    for t in _positions(steps, backwards):
        xt = x[:, t].astype(np.float64)
        i = sig(xt @ g["W_i"] + h @ g["U_i"] + g["b_i"])
        f = sig(xt @ g["W_f"] + h @ g["U_f"] + g["b_f"])
        cand = phi(xt @ g["W_c"] + h @ g["U_c"] + g["b_c"])
        c = f * c + i * cand
        o = sig(xt @ g["W_o"] + h @ g["U_o"] + g["b_o"])
        h = o * phi(c)
        for key, val in (("input_gate", i), ("forget_gate", f), ("candidate", cand),
                         ("output_gate", o), ("cell", c), ("hidden", h)):
            out[key][:, t] = val
    return out


def ref_gru(x: np.ndarray, g: dict, act: str = "tanh", inner: str = "hard_sigmoid",
            backwards: bool = False) -> dict[str, np.ndarray]:
    """Keras 1 GRU.step: hh = φ(x W_h + b_h + (r ⊙ h) U_h); h' = z ⊙ h + (1 - z) ⊙ hh."""
    phi, sig = ACT[act], ACT[inner]
    batch, steps, _ = x.shape
    units = g["U_z"].shape[0]
    h = np.zeros((batch, units))
    out = {k: np.zeros((batch, steps, units))
           for k in ("update_gate", "reset_gate", "candidate", "hidden")}
    for t in _positions(steps, backwards):
        xt = x[:, t].astype(np.float64)
        z = sig(xt @ g["W_z"] + h @ g["U_z"] + g["b_z"])
        r = sig(xt @ g["W_r"] + h @ g["U_r"] + g["b_r"])
        hh = phi(xt @ g["W_h"] + g["b_h"] + (r * h) @ g["U_h"])
        h = z * h + (1 - z) * hh
        for key, val in (("update_gate", z), ("reset_gate", r), ("candidate", hh), ("hidden", h)):
            out[key][:, t] = val
    return out


def ref_simple_rnn(x: np.ndarray, g: dict, act: str = "tanh", backwards: bool = False) -> dict:
    phi = ACT[act]
    batch, steps, _ = x.shape
    h = np.zeros((batch, g["U"].shape[0]))
    out = np.zeros((batch, steps, h.shape[1]))
    for t in _positions(steps, backwards):
        h = phi(x[:, t].astype(np.float64) @ g["W"] + h @ g["U"] + g["b"])
        out[:, t] = h
    return {"hidden": out}


# ----------------------------------------------------------------------------- Keras 1 files

LSTM_STORAGE = ("i", "c", "f", "o")  # Keras 1 LSTM.trainable_weights order
GRU_STORAGE = ("z", "r", "h")


def gate_weights(rng: np.random.Generator, kind: str, inputs: int, units: int) -> dict:
    """Per-gate W/U/b; large enough that hard_sigmoid saturates on some steps."""
    gates = {"lstm": LSTM_STORAGE, "gru": GRU_STORAGE}[kind]
    out = {}
    for gate in gates:
        out[f"W_{gate}"] = rng.normal(0, 0.8, (inputs, units)).astype(np.float32)
        out[f"U_{gate}"] = rng.normal(0, 0.5, (units, units)).astype(np.float32)
        out[f"b_{gate}"] = rng.normal(0, 0.5, (units,)).astype(np.float32)
    return out


def separate_arrays(name: str, kind: str, g: dict, suffix: str = "") -> list[tuple[str, np.ndarray]]:
    """Keras 1 storage: W_g, U_g, b_g per gate, gates in Keras 1 order."""
    gates = {"lstm": LSTM_STORAGE, "gru": GRU_STORAGE}[kind]
    return [(f"{name}_{p}_{gate}{suffix}", g[f"{p}_{gate}"]) for gate in gates for p in "WUb"]


def fused_arrays(name: str, kind: str, g: dict) -> list[tuple[str, np.ndarray]]:
    """consume_less='gpu': W, U, b fused in the order the gpu step slices them (i, f, c, o)."""
    order = {"lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}[kind]
    return [(f"{name}_{p}", np.concatenate([g[f"{p}_{gate}"] for gate in order], axis=-1))
            for p in "WUb"]


def rnn_config(name: str, class_name: str, units: int, **extra: object) -> dict:
    """A Keras 1.2 recurrent layer config (what Recurrent/LSTM.get_config wrote)."""
    cfg = {
        "name": name, "trainable": True, "return_sequences": True, "go_backwards": False,
        "stateful": False, "unroll": False, "consume_less": "cpu", "input_dim": None,
        "input_length": None, "output_dim": units, "init": "glorot_uniform",
        "inner_init": "orthogonal", "activation": "tanh", "W_regularizer": None,
        "U_regularizer": None, "b_regularizer": None, "dropout_W": 0.0, "dropout_U": 0.0,
    }
    if class_name != "SimpleRNN":
        cfg["inner_activation"] = "hard_sigmoid"
    if class_name == "LSTM":
        cfg["forget_bias_init"] = "one"
    cfg.update(extra)
    return {"class_name": class_name, "config": cfg}


def write_model(path: Path, model_config: dict, layers: list[tuple[str, list]],
                version: str | None = "1.2.2") -> Path:
    """A Keras 1 ``model.save()`` file: attrs + ``model_weights/<layer>`` groups."""
    with h5py.File(path, "w") as f:
        if version is not None:
            f.attrs["keras_version"] = version.encode()
        f.attrs["model_config"] = json.dumps(model_config).encode()
        _write_layers(f.create_group("model_weights"), layers)
    return path


def write_weights(path: Path, layers: list[tuple[str, list]], version: str | None = None) -> Path:
    """A Keras 1 ``model.save_weights()`` file (Keras 1.0 wrote no keras_version)."""
    with h5py.File(path, "w") as f:
        if version is not None:
            f.attrs["keras_version"] = version.encode()
        _write_layers(f, layers)
    return path


def _write_layers(group: h5py.Group, layers: list[tuple[str, list]]) -> None:
    group.attrs["layer_names"] = [name.encode() for name, _ in layers]
    for name, weights in layers:
        g = group.create_group(name)
        g.attrs["weight_names"] = [w.encode() for w, _ in weights]
        for wname, value in weights:
            g.create_dataset(wname, data=value)


def sequential(layers: list[dict], steps: int | None = STEPS, features: int = FEATURES) -> dict:
    """Keras 1 Sequential config: a plain list of layers, the first with batch_input_shape."""
    layers[0]["config"]["batch_input_shape"] = [None, steps, features]
    return {"class_name": "Sequential", "config": layers}


def _x(rng: np.random.Generator, features: int = FEATURES) -> np.ndarray:
    return rng.normal(0, 1.5, (BATCH, STEPS, features)).astype(np.float32)


def _close(trace, prefix: str, ref: dict) -> float:
    worst = 0.0
    for quantity, expected in ref.items():
        got = np.asarray(trace[f"{prefix}/{quantity}"], dtype=np.float64)
        assert got.shape == expected.shape, (prefix, quantity)
        err = float(np.max(np.abs(got - expected)))
        assert err <= ATOL, f"{prefix}/{quantity}: max error {err}"
        record_error("Keras 1 (own NumPy reference)", prefix, err)
        worst = max(worst, err)
    return worst


# ----------------------------------------------------------------------------- cases


def case_lstm_separate(tmp: Path, rng: np.random.Generator):
    g = gate_weights(rng, "lstm", FEATURES, 5)
    # TensorFlow-backend Keras 1 named variables "lstm_1_W_i:0".
    path = write_model(tmp / "lstm_separate.h5", sequential([rnn_config("lstm_1", "LSTM", 5)]),
                       [("lstm_1", separate_arrays("lstm_1", "lstm", g, suffix=":0"))])
    x = _x(rng)
    return path, x, {"lstm_1": ref_lstm(x, g)}


def case_lstm_fused(tmp: Path, rng: np.random.Generator):
    g = gate_weights(rng, "lstm", FEATURES, 4)
    cfg = rnn_config("lstm_1", "LSTM", 4, consume_less="gpu", go_backwards=True)
    path = write_model(tmp / "lstm_fused.h5", sequential([cfg]),
                       [("lstm_1", fused_arrays("lstm_1", "lstm", g))], version="1.1.2")
    x = _x(rng)
    return path, x, {"lstm_1": ref_lstm(x, g, backwards=True)}


def case_gru(tmp: Path, rng: np.random.Generator):
    g = gate_weights(rng, "gru", FEATURES, 6)
    # Keras 1.0.x: no keras_version attribute, only the config says Keras 1.
    cfg = rnn_config("gru_1", "GRU", 6, go_backwards=True)
    del cfg["config"]["consume_less"]
    path = write_model(tmp / "gru.h5", sequential([cfg]),
                       [("gru_1", separate_arrays("gru_1", "gru", g))], version=None)
    x = _x(rng)
    return path, x, {"gru_1": ref_gru(x, g, backwards=True)}


def case_gru_fused(tmp: Path, rng: np.random.Generator):
    g = gate_weights(rng, "gru", FEATURES, 4)
    cfg = rnn_config("gru_1", "GRU", 4, consume_less="gpu", inner_activation="sigmoid")
    path = write_model(tmp / "gru_fused.h5", sequential([cfg]),
                       [("gru_1", fused_arrays("gru_1", "gru", g))])
    x = _x(rng)
    return path, x, {"gru_1": ref_gru(x, g, inner="sigmoid")}


def case_simple_rnn(tmp: Path, rng: np.random.Generator):
    w = {"W": rng.normal(0, 0.8, (FEATURES, 5)).astype(np.float32),
         "U": rng.normal(0, 0.5, (5, 5)).astype(np.float32),
         "b": rng.normal(0, 0.5, (5,)).astype(np.float32)}
    cfg = rnn_config("simplernn_1", "SimpleRNN", 5, activation="relu")
    path = write_model(tmp / "simple_rnn.h5", sequential([cfg]),
                       [("simplernn_1", [(f"simplernn_1_{k}", w[k]) for k in "WUb"])])
    x = _x(rng)
    return path, x, {"simplernn_1": ref_simple_rnn(x, w, act="relu")}


def case_bidirectional(tmp: Path, rng: np.random.Generator):
    """Keras 1.2 functional Model with Bidirectional(LSTM): forward_*, then backward_* weights."""
    fw, bw = gate_weights(rng, "lstm", FEATURES, 3), gate_weights(rng, "lstm", FEATURES, 3)
    config = {"class_name": "Model", "config": {
        "name": "model_1",
        "layers": [
            {"name": "input_1", "class_name": "InputLayer", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, None, FEATURES], "input_dtype": "float32",
                        "sparse": False, "name": "input_1"}},
            {"name": "bidirectional_1", "class_name": "Bidirectional",
             "inbound_nodes": [[["input_1", 0, 0]]],
             "config": {"name": "bidirectional_1", "trainable": True, "merge_mode": "concat",
                        "layer": rnn_config("lstm_1", "LSTM", 3)}},
        ],
        "input_layers": [["input_1", 0, 0]],
        "output_layers": [["bidirectional_1", 0, 0]],
    }}
    weights = (separate_arrays("forward_lstm_1", "lstm", fw)
               + separate_arrays("backward_lstm_1", "lstm", bw))
    path = write_model(tmp / "bidirectional.h5", config, [("bidirectional_1", weights)])
    x = _x(rng)
    return path, x, {"bidirectional_1/forward": ref_lstm(x, fw),
                     "bidirectional_1/backward": ref_lstm(x, bw, backwards=True)}


def case_stacked(tmp: Path, rng: np.random.Generator):
    """Embedding -> LSTM -> GRU, Keras 1.2 Sequential, integer token ids as INPUT."""
    table = rng.normal(0, 1.0, (10, 4)).astype(np.float32)
    lstm = gate_weights(rng, "lstm", 4, 5)
    gru = gate_weights(rng, "gru", 5, 3)
    embedding = {"class_name": "Embedding", "config": {
        "name": "embedding_1", "trainable": True, "input_dim": 10, "output_dim": 4,
        "init": "uniform", "input_length": None, "mask_zero": False, "dropout": 0.0,
        "input_dtype": "int32", "W_regularizer": None, "activity_regularizer": None,
        "W_constraint": None}}
    config = sequential([embedding, rnn_config("lstm_1", "LSTM", 5),
                         rnn_config("gru_1", "GRU", 3, return_sequences=False)], features=None)
    config["config"][0]["config"]["batch_input_shape"] = [None, STEPS]
    path = write_model(tmp / "stacked.h5", config, [
        ("embedding_1", [("embedding_1_W", table)]),
        ("lstm_1", separate_arrays("lstm_1", "lstm", lstm)),
        ("gru_1", separate_arrays("gru_1", "gru", gru)),
    ])
    ids = rng.integers(0, 10, (BATCH, STEPS))
    first = ref_lstm(table[ids], lstm)
    return path, ids, {"lstm_1": first, "gru_1": ref_gru(first["hidden"], gru)}


def case_weights_only(tmp: Path, rng: np.random.Generator):
    """Keras 1.0 ``save_weights``: no version, no config; Bidirectional(LSTM) -> GRU."""
    fw, bw = gate_weights(rng, "lstm", FEATURES, 3), gate_weights(rng, "lstm", FEATURES, 3)
    gru = gate_weights(rng, "gru", 6, 4)
    path = write_weights(tmp / "weights_only.h5", [
        ("bidirectional_1", separate_arrays("forward_lstm_1", "lstm", fw)
         + separate_arrays("backward_lstm_1", "lstm", bw)),
        ("dropout_1", []),
        ("gru_1", separate_arrays("gru_1", "gru", gru)),
    ])
    x = _x(rng)
    forward, backward = ref_lstm(x, fw), ref_lstm(x, bw, backwards=True)
    merged = np.concatenate([forward["hidden"], backward["hidden"]], axis=-1)
    return path, x, {"bidirectional_1/forward": forward, "bidirectional_1/backward": backward,
                     "gru_1": ref_gru(merged, gru)}


CASES = {
    "lstm_separate": case_lstm_separate, "lstm_fused": case_lstm_fused, "gru": case_gru,
    "gru_fused": case_gru_fused, "simple_rnn": case_simple_rnn,
    "bidirectional": case_bidirectional, "stacked": case_stacked,
    "weights_only": case_weights_only,
}


@pytest.mark.parametrize("name", list(CASES))
def test_trace_matches_keras1_equations(name: str, tmp_path: Path) -> None:
    path, x, refs = CASES[name](tmp_path, np.random.default_rng(sorted(CASES).index(name)))
    network = lstm_trace.load(path)
    trace = network.trace(x)
    for prefix, ref in refs.items():
        _close(trace, prefix, ref)


def test_keras1_defaults_and_notes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    lstm_path = case_lstm_separate(tmp_path, rng)[0]
    cell = lstm_trace.load(lstm_path).recurrent_layers[0].directions[0].cell
    assert cell.recurrent_activation == "hard_sigmoid_keras2"  # clip(0.2x + 0.5), not x/6
    gru_net = lstm_trace.load(case_gru(tmp_path, rng)[0])
    gru_cell = gru_net.recurrent_layers[0].directions[0].cell
    assert gru_cell.reset_after is False and gru_cell.recurrent_activation == "hard_sigmoid_keras2"
    weights_only = lstm_trace.load(case_weights_only(tmp_path, rng)[0])
    assert any("Keras 1 weights-only" in note for note in weights_only.notes)
    assert [layer.name for layer in weights_only.recurrent_layers] == ["bidirectional_1", "gru_1"]


def test_keras1_bad_weight_count_is_a_clear_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    g = gate_weights(rng, "lstm", FEATURES, 3)
    path = write_model(tmp_path / "broken.h5", sequential([rnn_config("lstm_1", "LSTM", 3)]),
                       [("lstm_1", separate_arrays("lstm_1", "lstm", g)[:7])])
    np.save(tmp_path / "x.npy", _x(rng))
    result = CliRunner().invoke(cli_main, [str(path), str(tmp_path / "x.npy"), "--format", "csv"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "lstm_1" in result.output and "found 7" in result.output


@pytest.mark.parametrize("name", ["lstm_separate", "bidirectional", "stacked", "weights_only"])
def test_cli_traces_keras1_files(name: str, tmp_path: Path) -> None:
    path, x, refs = CASES[name](tmp_path, np.random.default_rng(7))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "trace.npz"
    result = CliRunner().invoke(cli_main, [str(path), str(tmp_path / "x.npy"), "--format", "npz",
                                           "-o", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as npz:
        for prefix, ref in refs.items():
            _close(npz, prefix, ref)
