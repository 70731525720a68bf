"""Shared checks for TF2 checkpoint and SavedModel tests: a trace against TensorFlow's states.

The reference of every cell is ``hidden`` (and ``cell``) at every step, computed by the
framework's own cell (``tests/builders/common.cell_reference``); gates are checked by
recombining them into those states (``tests/recombine.py``), a GRU's reset gate through
Keras's own weights into its candidate, the mask against the one Keras handed the layer,
and each layer's ``hidden`` against the layer's own output in Keras.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np
from error_record import record_error
from recombine import gru_candidate_from_reset, recombine_gru, recombine_lstm
from reference_cells import reference_direction

import lstm_trace
from lstm_trace.activations import get_activation

ATOL = 1e-5


def cases(directory: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads((directory / "manifest.json").read_text())["cases"]}


def directions_by_prefix(network) -> dict:
    return {prefix: d for layer in network.recurrent_layers for prefix, d in layer.trace_prefixes()}


def check_against_framework(
    network, case: dict, directory: Path, *, family: str, layer_input: bool = False,
    renamed: dict[str, str] | None = None,
) -> float:
    """Trace the case's input and compare every cell with TensorFlow; return the largest error.

    The traced prefixes must be exactly the framework's layer names (no positions), or
    ``renamed[name]`` for a format that cannot store a layer's name. Every error is
    recorded under ``family`` (tests/error_record.py).
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
            record_error(family, f"{case['name']}/{prefix}", err)
            worst = max(worst, err)
        # The mask is the one Keras handed the layer (from the input), not the trace's own.
        mask = reference.get(f"{prefix}/__mask__")
        if mask is None:
            assert f"{prefix}/mask" not in trace, prefix
        else:
            np.testing.assert_array_equal(trace[f"{prefix}/mask"], mask)
        # On a masked step the state carries over and the gates are not applied.
        used = np.ones(x.shape[:2], bool) if mask is None else mask
        activation = get_activation(cell.activation)
        if spec["kind"] == "lstm":
            h, c = recombine_lstm(trace, prefix, reverse=reverse, activation=activation, mask=mask)
            assert np.abs(c - reference[f"{prefix}/cell"])[used].max() < ATOL
            assert np.abs(h - reference[f"{prefix}/hidden"])[used].max() < ATOL
        elif spec["kind"] == "gru":
            h = recombine_gru(trace, prefix, reverse=reverse, mask=mask)
            assert np.abs(h - reference[f"{prefix}/hidden"])[used].max() < ATOL
            weights = [reference[f"{prefix}/__weights__{k}"] for k in range(3)
                       if f"{prefix}/__weights__{k}" in reference]
            g = gru_candidate_from_reset(trace, prefix, reference[f"{prefix}/__input__"], weights,
                                         reset_after=cell.reset_after, activation=activation,
                                         reverse=reverse)
            assert np.abs(g - trace[f"{prefix}/candidate"])[used].max() < ATOL, prefix
    _check_layer_outputs(trace, reference, case["prefixes"])
    return worst


def _check_layer_outputs(trace, reference: dict, prefixes: list[dict]) -> None:
    """Each layer's ``hidden`` (merged as Keras merges it) is the layer's output in Keras.

    Bidirectional: ``concat(forward, backward)``; RNN(StackedRNNCells): its last cell;
    ``go_backwards``: the output is in processing order. Masked steps are not compared.
    """
    for key, output in reference.items():
        if not key.endswith("/__output__"):
            continue
        layer = key[: -len("/__output__")]
        own = [p for p in prefixes if p["prefix"] == layer or p["prefix"].startswith(layer + "/")]
        assert own, key
        if len(own) == 2 and own[1]["prefix"].endswith("/backward"):
            hidden = np.concatenate([trace[f"{p['prefix']}/hidden"] for p in own], -1)
        else:
            hidden = trace[f"{own[-1]['prefix']}/hidden"]
            if own[-1]["reverse"]:
                hidden = hidden[:, ::-1]
        mask = reference.get(f"{own[0]['prefix']}/__mask__")
        used = np.ones(hidden.shape[:2], bool) if mask is None else mask
        assert hidden.shape == output.shape, (key, hidden.shape, output.shape)
        assert np.abs(hidden - output)[used].max() < ATOL, key


def load(directory: Path, case: dict, fmt: str, **options):
    if fmt == "json":
        raise ValueError("json is a config, not a model")
    return lstm_trace.load(directory / case["files"][fmt], **options)


ASSUMED = re.compile(r"^(?P<layer>[^:]+): .*assumed (?P<kind>LSTM|GRU|SimpleRNN) with "
                     r"activation=(?P<activation>\w+), recurrent_activation=(?P<recurrent>\w+)")


def check_assumed_defaults(network, configured, case: dict, directory: Path) -> None:
    """A file without a config is traced as its notes say, and that is not the framework.

    ``network`` was loaded without a config, ``configured`` from the same file with the
    model's own config (checked against TensorFlow elsewhere). The notes must name what
    was assumed; the trace must be exactly those weights run with those assumptions
    (recomputed by the naive cells of ``tests/reference_cells.py``: the activations of
    the note, forward, no mask) and must differ from TensorFlow's states, since the case
    was built with options only a config carries.
    """
    notes = [m for m in (ASSUMED.match(n) for n in network.notes) if m]
    assert any("forward chain" in n for n in network.notes), network.notes
    (layer,) = network.recurrent_layers
    (real,) = configured.recurrent_layers
    (note,) = [m for m in notes if m["layer"] == layer.name]
    (direction,) = layer.directions
    cell, real_cell = direction.cell, real.directions[0].cell
    assert not direction.reverse
    assert (cell.activation, cell.recurrent_activation) == (note["activation"], note["recurrent"])
    for name in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
        np.testing.assert_array_equal(getattr(cell, name), getattr(real_cell, name), err_msg=name)
    x = np.load(directory / case["input"])
    trace = network.trace(x)
    tokens = x.dtype.kind == "i"
    if tokens:
        assert any("assumed Embedding(mask_zero=False)" in n for n in network.notes), network.notes
    assert f"{layer.name}/mask" not in trace
    assumed = dataclasses.replace(real_cell, activation=note["activation"],
                                  recurrent_activation=note["recurrent"])
    expected = reference_direction(assumed, np.load(directory / case["layer_input"]))
    for q in ("hidden", "cell") if cell.kind == "lstm" else ("hidden",):
        err = np.abs(trace[f"{layer.name}/{q}"] - expected[q]).max()
        assert err < ATOL, (layer.name, q, err)
    framework = dict(np.load(directory / case["reference"]))[f"{real.name}/hidden"]
    assert np.abs(trace[f"{layer.name}/hidden"] - framework).max() > 1e-3
