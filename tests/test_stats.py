"""``lstm-trace stats``: gate means, saturation fractions and top-varying units.

The expected numbers are computed here straight from the definitions, with plain loops
over the trace's values, independently of :mod:`lstm_trace.stats`'s vectorised code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from workflow_common import (
    assert_user_error,
    input_file,
    invoke,
    model_file,
)

import lstm_trace
from lstm_trace.stats import gate_stats
from lstm_trace.trace import Trace, TracedLayer


def reference_stats(values: np.ndarray, mask: np.ndarray | None):
    """Mean, fraction < 0.1 and > 0.9 over unmasked values, by plain iteration."""
    kept = []
    batch, steps, units = values.shape
    for b in range(batch):
        for t in range(steps):
            if mask is not None and not mask[b, t]:
                continue
            kept.extend(float(v) for v in values[b, t])
    return (sum(kept) / len(kept), sum(v < 0.1 for v in kept) / len(kept),
            sum(v > 0.9 for v in kept) / len(kept))


def reference_variance(values: np.ndarray, mask: np.ndarray | None) -> list[float]:
    """Per unit: variance over the unmasked steps of each sequence, averaged over sequences."""
    batch, steps, units = values.shape
    out = []
    for u in range(units):
        per_sequence = []
        for b in range(batch):
            series = [float(values[b, t, u]) for t in range(steps) if mask is None or mask[b, t]]
            if series:
                mean = sum(series) / len(series)
                per_sequence.append(sum((s - mean) ** 2 for s in series) / len(series))
        out.append(sum(per_sequence) / len(per_sequence))
    return out


def _json(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.parametrize(("name", "fmt", "fixture"), [
    ("stacked_lstm", "keras", "wf3"), ("bigru", "keras", "wf3"), ("bigru", "h5", "wf2"),
    ("simple_rnn", "h5", "wf3"),
])
def test_json_matches_the_definitions(request, name, fmt, fixture):
    directory = request.getfixturevalue(fixture)
    model, x = model_file(directory, name, fmt), input_file(directory, name)
    report = _json(invoke("stats", model, x, "--format", "json", "--top", "3"))
    trace = lstm_trace.load(model).trace(np.load(x))
    assert (report["low"], report["high"]) == (0.1, 0.9)
    assert len(report["layers"]) == len(list(trace.rows()))
    for entry, (layer, direction, arrays) in zip(report["layers"], trace.rows(), strict=True):
        assert (entry["layer"], entry["direction"]) == (layer.name, direction)
        for gate, numbers in entry["gates"].items():
            mean, left, right = reference_stats(arrays[gate], None)
            assert numbers["mean"] == pytest.approx(mean, abs=1e-6)
            assert numbers["left_saturated"] == pytest.approx(left)
            assert numbers["right_saturated"] == pytest.approx(right)
        state = "cell" if layer.kind == "lstm" else "hidden"
        assert entry["state"] == state
        variance = reference_variance(arrays[state], None)
        expected = sorted(range(len(variance)), key=lambda u: -variance[u])[:3]
        assert [u["unit"] for u in entry["top_units"]] == expected
        for u in entry["top_units"]:
            assert u["variance"] == pytest.approx(variance[u["unit"]], rel=1e-6)
    kinds = {entry["kind"]: set(entry["gates"]) for entry in report["layers"]}
    assert kinds.get("lstm", {"input_gate", "forget_gate", "output_gate"}) == {
        "input_gate", "forget_gate", "output_gate"}
    assert kinds.get("gru", {"update_gate", "reset_gate"}) == {"update_gate", "reset_gate"}


def test_masked_steps_are_excluded():
    rng = np.random.default_rng(0)
    batch, steps, units = 3, 6, 4
    arrays = {q: rng.uniform(0, 1, (batch, steps, units)).astype(np.float32)
              for q in ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")}
    mask = np.ones((batch, steps), bool)
    mask[1, 3:] = False
    mask[2, :] = False  # a sequence with no step at all
    for q in ("input_gate", "forget_gate", "candidate", "output_gate"):
        arrays[q][~mask] = 0.0  # what the engine records on masked steps
    arrays["mask"] = mask
    trace = Trace({f"l/{q}": a for q, a in arrays.items()},
                  [TracedLayer("l", "lstm", ("forward",), False, masked=True)])
    (entry,) = gate_stats(trace, top=units)
    assert entry["steps_used"] == int(mask.sum())
    for gate in ("input_gate", "forget_gate", "output_gate"):
        mean, left, right = reference_stats(arrays[gate], mask)
        assert entry["gates"][gate]["mean"] == pytest.approx(mean)
        assert entry["gates"][gate]["left_saturated"] == pytest.approx(left)
        assert entry["gates"][gate]["right_saturated"] == pytest.approx(right)
    variance = reference_variance(arrays["cell"], mask)
    for u in entry["top_units"]:
        assert u["variance"] == pytest.approx(variance[u["unit"]], rel=1e-6)


def test_token_model_excludes_padding(wf3):
    network = lstm_trace.load(model_file(wf3, "tokens"))
    assert network.layers[0].replayable
    x = np.load(input_file(wf3, "tokens"))
    report = _json(invoke("stats", model_file(wf3, "tokens"), input_file(wf3, "tokens"),
                          "--format", "json"))
    assert report["layers"][0]["steps_used"] == int((x != 0).sum())


def test_table_output(wf3):
    result = invoke("stats", model_file(wf3, "bigru"), input_file(wf3, "bigru"))
    assert result.exit_code == 0, result.output
    for fragment in ("gate saturation", "left-saturated", "right-saturated", "update_gate",
                     "reset_gate", "backward", "units whose state varies most", "hidden"):
        assert fragment in result.stdout, fragment


def test_top_option_and_output_file(wf3, tmp_path):
    out = tmp_path / "stats.json"
    result = invoke("stats", model_file(wf3, "stacked_lstm"), input_file(wf3, "stacked_lstm"),
                    "--top", "2", "--format", "json", "-o", out, "--layer", "lstm_2")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert [e["layer"] for e in report["layers"]] == ["lstm_2"]
    assert len(report["layers"][0]["top_units"]) == 2


def test_errors(wf3, tmp_path):
    model, x = model_file(wf3, "bigru"), input_file(wf3, "bigru")
    assert_user_error(invoke("stats", model, x, "--top", "-1"), "--top")
    assert_user_error(invoke("stats", model, tmp_path / "none.npy"), "none.npy")
    assert_user_error(invoke("stats", model, x, "--layer", "nope"), "nope")


@pytest.fixture(scope="session")
def tf_models():
    from conftest import build_fixtures

    return {"tf1": build_fixtures("tf1_cells", legacy_keras=True),
            "tf2": build_fixtures("tf2_models", legacy_keras=True)}


@pytest.mark.parametrize(("kind", "model", "x"), [
    ("tf1", "multi_dynamic/model", "multi_dynamic_input.npy"),
    ("tf1", "gru_block_cell/model", "gru_block_cell_input.npy"),
    ("tf2", "bidirectional_savedmodel", "bidirectional_input.npy"),
    ("tf2", "bidirectional_tfckpt", "bidirectional_input.npy"),
])
def test_every_workflow_command_runs_on_tf_checkpoints_and_savedmodels(tf_models, kind, model, x,
                                                                       tmp_path):
    directory = tf_models[kind]
    model, x = directory / model, directory / x
    assert model.exists() or model.with_name(model.name + ".index").exists(), (
        f"{model} not in the {kind} fixtures")
    report = _json(invoke("stats", model, x, "--format", "json"))
    trace = lstm_trace.load(model).trace(np.load(x))
    assert [e["layer"] for e in report["layers"]] == [layer.name for layer, _, _ in trace.rows()]
    assert invoke("inspect", model).exit_code == 0
    assert invoke("extract", model, "-o", tmp_path / "w.npz").exit_code == 0
    golden = tmp_path / "g.npz"
    assert invoke(model, x, "-o", golden).exit_code == 0
    assert invoke("check", model, x, "--golden", golden).exit_code == 0
    assert invoke("plot", model, x, "-o", tmp_path / "g.png").exit_code == 0
