"""Shared checks for TF2 checkpoint and SavedModel tests: a trace against TensorFlow's states.

The reference of every cell is ``hidden`` (and ``cell``) at every step, computed by the
framework's own cell (``tests/builders/common.cell_reference``); gates are checked by
recombining them into those states (``tests/recombine.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from recombine import recombine_gru, recombine_lstm

import lstm_trace
from lstm_trace.activations import get_activation

ATOL = 1e-5


def cases(directory: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads((directory / "manifest.json").read_text())["cases"]}


def directions_by_prefix(network) -> dict:
    return {prefix: d for layer in network.recurrent_layers for prefix, d in layer.trace_prefixes()}


def check_against_framework(
    network, case: dict, directory: Path, *, layer_input: bool = False,
    renamed: dict[str, str] | None = None,
) -> float:
    """Trace the case's input and compare every cell with TensorFlow; return the largest error.

    The traced prefixes must be exactly the framework's layer names (no positions), or
    ``renamed[name]`` for a format that cannot store a layer's name.
    """
    x = np.load(directory / (case["layer_input"] if layer_input else case["input"]))
    trace = network.trace(x, layer_input=layer_input)
    reference = dict(np.load(directory / case["reference"]))
    if renamed:
        def rename(key: str) -> str:
            head, _, rest = key.partition("/")
            return "/".join(filter(None, (renamed.get(head, head), rest)))

        reference = {rename(k): v for k, v in reference.items()}
        case = {**case, "prefixes": [
            {**p, "prefix": rename(p["prefix"])} for p in case["prefixes"]]}
    by_prefix = directions_by_prefix(network)
    assert sorted(by_prefix) == sorted(p["prefix"] for p in case["prefixes"])
    worst = 0.0
    for spec in case["prefixes"]:
        prefix, reverse = spec["prefix"], spec["reverse"]
        cell = by_prefix[prefix].cell
        assert cell.kind == spec["kind"], (prefix, cell.kind)
        quantities = ("hidden", "cell") if spec["kind"] == "lstm" else ("hidden",)
        for q in quantities:
            got, want = trace[f"{prefix}/{q}"], reference[f"{prefix}/{q}"]
            assert got.shape == want.shape and got.dtype == np.float32
            err = float(np.abs(got - want).max())
            assert err < ATOL, (case["name"], prefix, q, err)
            worst = max(worst, err)
        # On a masked step the state carries over and the gates are not applied.
        used = trace[f"{prefix}/mask"] if f"{prefix}/mask" in trace else np.ones(x.shape[:2], bool)
        if spec["kind"] == "lstm":
            h, c = recombine_lstm(trace, prefix, reverse=reverse,
                                  activation=get_activation(cell.activation))
            assert np.abs(c - reference[f"{prefix}/cell"])[used].max() < ATOL
            assert np.abs(h - reference[f"{prefix}/hidden"])[used].max() < ATOL
        elif spec["kind"] == "gru":
            h = recombine_gru(trace, prefix, reverse=reverse)
            assert np.abs(h - reference[f"{prefix}/hidden"])[used].max() < ATOL
    return worst


def load(directory: Path, case: dict, fmt: str, **options):
    if fmt == "json":
        raise ValueError("json is a config, not a model")
    return lstm_trace.load(directory / case["files"][fmt], **options)
