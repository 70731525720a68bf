"""``inspect`` lists PyTorch modules before the first recurrent module as ``(before)`` layers.

Found on real models: BeatNet's ``conv1`` / ``linear0`` front was listed only under "stored
but not used by any layer", while heads after the recurrent module were ``(after)`` rows;
in silero-vad's TorchScript ``_model.decoder.decoder.2`` was "not used" while its sibling
``_model_8k.decoder.decoder.2`` was an ``(after)`` row. Now front modules are ``(before)``
rows with torch's own parameter counts (not replayed, with the reason), and each sibling
model's modules are placed around its own recurrent module. The trace still starts at the
recurrent module and matches torch on the features the front hands it (atol 1e-5).
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import build_fixtures, load_manifest
from error_record import record_error

import lstm_trace
from lstm_trace.cli import main
from lstm_trace.inspect import describe, render

ATOL = 1e-5


@pytest.fixture(scope="module")
def fronts():
    out = build_fixtures("torch_fronts")
    return out, {c["name"]: c for c in load_manifest(out)}


CASES = [("front", "whole"), ("front", "torchscript"), ("two_rates", "torchscript")]


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_modules_before_and_after_the_recurrent_ones_are_listed_with_torch_counts(
        fronts, name, kind):
    out, cases = fronts
    case = cases[name]
    info = describe(lstm_trace.load(out / case["files"][kind]))
    rows = {layer["name"]: layer for layer in info["layers"] if layer["role"] != "recurrent"}
    before = [n for n, layer in rows.items() if layer["position"] == "before"]
    after = [n for n, layer in rows.items() if layer["position"] == "after"]
    assert before == case["before"]
    assert after == case["after"]
    assert info["unexplained"] == []
    for layer_name in before + after:
        assert rows[layer_name]["parameters"] == case["parameters"][layer_name]
    assert info["other_parameters"] == sum(case["parameters"].values())
    for layer_name in before:
        assert rows[layer_name]["replayable"] is False
        assert "INPUT is its input" in rows[layer_name]["reason"]


def test_inspect_table_shows_the_front_as_before_rows(fronts):
    out, cases = fronts
    text = render(describe(lstm_trace.load(out / cases["front"]["files"]["whole"])), width=160)
    assert "stored but not used" not in text
    rows = [line for line in text.splitlines() if "(before)" in line]
    assert [row.split("│")[1].strip() for row in rows] == ["conv1", "linear0"]
    assert "linear0: not replayable: the trace starts at lstm/l0: INPUT is its input" in text


def test_sibling_fronts_name_their_own_recurrent_module(fronts):
    out, cases = fronts
    info = describe(lstm_trace.load(out / cases["two_rates"]["files"]["torchscript"]))
    reasons = {layer["name"]: layer["reason"] for layer in info["layers"]
               if layer["position"] == "before"}
    assert "starts at _model.decoder.rnn:" in reasons["_model.encoder"]
    assert "starts at _model_8k.decoder.rnn:" in reasons["_model_8k.encoder"]


@pytest.mark.parametrize("kind", ["whole", "torchscript"])
def test_trace_starts_at_the_recurrent_module_and_matches_torch(fronts, kind, tmp_path):
    out, cases = fronts
    case = cases["front"]
    model = out / case["files"][kind]
    result = CliRunner().invoke(main, [str(model), str(out / case["input"]), "--format", "npz",
                                       "-o", str(tmp_path / "t.npz")])
    assert result.exit_code == 0, result.output
    hidden = np.load(tmp_path / "t.npz")["lstm/l0/hidden"]
    err = float(np.max(np.abs(hidden - np.load(out / case["output"]))))
    record_error("PyTorch files", f"front {kind}", err)
    assert err < ATOL
