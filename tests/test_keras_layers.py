"""Every Keras recurrent layer kind, masks, initial states and upstream layers match the
framework at every step (atol 1e-5), in Keras 3 and Keras 2 (tf_keras) files.

Fixtures come from ``tests/builders/keras_layers.py``. For each recurrent layer the trace's
``hidden`` / ``cell`` are compared with the framework's cell stepped one input at a time,
its gates are recombined into those states (and a GRU's reset gate into its candidate
through Keras's own weights), its ``mask`` with the mask Keras hands the layer, and the
layer's merged output (``engine.run_layer``) with the layer's output in Keras.
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.keras_layers import CASE_BY_NAME, CASES
from click.testing import CliRunner
from conftest import build_fixtures, load_manifest
from error_record import record_error
from recombine import gru_candidate_from_reset, recombine_gru, recombine_lstm

import lstm_trace
from lstm_trace.activations import get_activation
from lstm_trace.cli import main as cli_main
from lstm_trace.engine import _keras_outputs, run_layer
from lstm_trace.layers import LayerReplayError
from lstm_trace.network import RecurrentLayer

ATOL = 1e-5
SPECIAL = {"two_inputs", "unsupported_upstream", "seq2seq"}
FORMATS = {3: ["keras", "h5", "weights_h5"], 2: ["h5", "weights_h5"]}


@pytest.fixture(scope="session")
def keras3_layers() -> object:
    return build_fixtures("keras_layers")


@pytest.fixture(scope="session")
def keras2_layers() -> object:
    return build_fixtures("keras_layers", legacy_keras=True)


def _params(version: str) -> list:
    out = []
    major = int(version)
    for case in CASES:
        if version not in case["versions"] or case["name"] in SPECIAL:
            continue
        for fmt in FORMATS[major]:
            if fmt == "weights_h5" and not case.get("weights_only"):
                continue
            out.append(pytest.param(case["name"], fmt, id=f"{case['name']}-{fmt}"))
    return out


def _entry(directory, name: str) -> dict:
    return next(c for c in load_manifest(directory) if c["name"] == name)


def _network_names(network, entry: dict, fmt: str) -> dict[str, str]:
    """Manifest direction prefixes -> the network's trace prefixes.

    Files with a config keep Keras's names; a Keras 3 ``.weights.h5`` names layers by
    class-derived paths, so weights-only layers are matched by position.
    """
    mapping: dict[str, str] = {}
    if fmt != "weights_h5":
        for info in entry["layers"]:
            for d in info["directions"]:
                mapping[d["prefix"]] = d["prefix"]
        return mapping
    recurrent = network.recurrent_layers
    assert len(recurrent) == len(entry["layers"])
    for layer, info in zip(recurrent, entry["layers"], strict=True):
        mapping[info["name"]] = layer.name
        for d in info["directions"]:
            mapping[d["prefix"]] = layer.name + d["prefix"][len(info["name"]):]
    return mapping


def _net_layers(network, info: dict, mapping: dict[str, str]) -> list[RecurrentLayer]:
    """The canonical layers one Keras layer became (several for StackedRNNCells)."""
    prefixes = [d["prefix"] for d in info["directions"]]
    if any("/cell_" in p for p in prefixes):
        return [network.layer(mapping[p]) for p in prefixes]
    return [network.layer(mapping.get(info["name"], info["name"]))]


def _direction(layers: list[RecurrentLayer], net_prefix: str):
    for layer in layers:
        for prefix, direction in layer.trace_prefixes():
            if prefix == net_prefix:
                return direction
    raise AssertionError(f"no direction {net_prefix}")


def check_layers(network, trace, reference, entry: dict, fmt: str,
                 initial: dict | None = None) -> dict[str, float]:
    """Compare every recorded layer of ``entry`` with the framework; worst error per kind."""
    # States the model wires in from other layers count as initial states too.
    initial = {**{k[len("__wired__/"):]: v for k, v in reference.items()
                  if k.startswith("__wired__/")}, **(initial or {})}
    mapping = _network_names(network, entry, fmt)
    worst: dict[str, float] = {}
    for info in entry["layers"]:
        name = info["name"]
        layers = _net_layers(network, info, mapping)
        mask = reference.get(f"{name}/__mask__")
        x_in = reference[f"{name}/__input__"]
        previous_hidden = None
        for d in info["directions"]:
            ref_prefix, prefix = d["prefix"], mapping[d["prefix"]]
            direction = _direction(layers, prefix)
            kind = direction.cell.kind
            assert kind == d["kind"], (prefix, kind)
            if fmt != "weights_h5":
                assert direction.reverse == d["reverse"], prefix
            quantities = ("hidden", "cell") if kind == "lstm" else ("hidden",)
            for q in quantities:
                err = float(np.abs(trace[f"{prefix}/{q}"] - reference[f"{ref_prefix}/{q}"]).max())
                assert err < ATOL, (prefix, q, err)
                worst[kind] = max(worst.get(kind, 0.0), err)
            if mask is not None:
                np.testing.assert_array_equal(trace[f"{prefix}/mask"], mask)
            else:
                assert f"{prefix}/mask" not in trace
            h0 = initial.get(f"{ref_prefix}/hidden")
            act = get_activation(direction.cell.activation)
            if kind == "lstm":
                h, c = recombine_lstm(trace, prefix, reverse=direction.reverse, activation=act,
                                      mask=mask, initial_hidden=h0,
                                      initial_cell=initial.get(f"{ref_prefix}/cell"))
                assert np.abs(c - reference[f"{ref_prefix}/cell"]).max() < ATOL, prefix
                assert np.abs(h - reference[f"{ref_prefix}/hidden"]).max() < ATOL, prefix
            elif kind == "gru":
                h = recombine_gru(trace, prefix, reverse=direction.reverse, mask=mask,
                                  initial_hidden=h0)
                assert np.abs(h - reference[f"{ref_prefix}/hidden"]).max() < ATOL, prefix
                weights = [reference[f"{ref_prefix}/__weights__{k}"] for k in range(3)
                           if f"{ref_prefix}/__weights__{k}" in reference]
                cell_x = previous_hidden if "/cell_" in ref_prefix and previous_hidden is not None else x_in
                g = gru_candidate_from_reset(
                    trace, prefix, cell_x, weights, reset_after=direction.cell.reset_after,
                    activation=act, reverse=direction.reverse, initial_hidden=h0)
                used = np.ones(g.shape[:2], bool) if mask is None else mask
                assert np.abs((g - trace[f"{prefix}/candidate"])[used]).max() < ATOL, prefix
            previous_hidden = reference[f"{ref_prefix}/hidden"]
        _check_output(layers, reference, name, x_in, mask, initial, mapping, info)
    return worst


def _check_output(layers, reference, name, x_in, mask, initial, mapping, info) -> None:
    """The layer's output as the next layer sees it (merge, go_backwards order, zeros)."""
    state = {}
    for d in info["directions"]:
        for q in ("hidden", "cell"):
            if f"{d['prefix']}/{q}" in initial:
                state[f"{mapping[d['prefix']]}/{q}"] = initial[f"{d['prefix']}/{q}"]
    out = x_in
    for layer in layers:
        result = run_layer(layer, out, mask=None if mask is None else mask.astype(bool),
                           initial_state=state)
        out = result.output
    if f"{name}/__output__" in reference:
        assert np.abs(out - reference[f"{name}/__output__"]).max() < ATOL, name
        return
    # Several outputs (merge_mode=None, return_state), numbered as Keras numbers them.
    outputs = _keras_outputs(layers[-1], result) if len(layers) == 1 else [(out, None)]
    count = sum(key.startswith(f"{name}/__output__") for key in reference)
    assert 1 < count <= len(outputs), name
    for k, (value, _) in enumerate(outputs[:count]):
        assert np.abs(value - reference[f"{name}/__output__{k}"]).max() < ATOL, (name, k)


KIND_NAMES = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}


def record_worst(worst: dict[str, float], version: str, name: str, fmt: str) -> None:
    """Feed the per-kind worst errors of one case to the family record (error_record.py)."""
    for kind, err in worst.items():
        family = "tf_keras CuDNN" if name == "cudnn" else (
            f"{'Keras 3' if version == '3' else 'tf_keras'} {KIND_NAMES[kind]}")
        record_error(family, f"{name}/{fmt}", err)


def run_case(directory, name: str, fmt: str) -> dict[str, float]:
    entry = _entry(directory, name)
    network = lstm_trace.load(directory / entry["files"][fmt])
    x = np.load(directory / entry["input"])
    reference = dict(np.load(directory / entry["reference"]))
    initial = dict(np.load(directory / entry["initial_state"])) if "initial_state" in entry else {}
    mapping = _network_names(network, entry, fmt)
    trace = network.trace(x, initial_state={mapping[k.rsplit("/", 1)[0]] + "/" + k.rsplit("/", 1)[1]: v
                                            for k, v in initial.items()})
    for key, value in trace.items():
        assert value.dtype == (bool if key.endswith("/mask") else np.float32), key
        assert value.shape[0] == x.shape[0]
    return check_layers(network, trace, reference, entry, fmt, initial)


@pytest.mark.parametrize(("name", "fmt"), _params("3"))
def test_keras3_layer_matches_keras(keras3_layers, name, fmt):
    record_worst(run_case(keras3_layers, name, fmt), "3", name, fmt)


@pytest.mark.parametrize(("name", "fmt"), _params("2"))
def test_keras2_layer_matches_keras(keras2_layers, name, fmt):
    record_worst(run_case(keras2_layers, name, fmt), "2", name, fmt)


# ------------------------------------------------------------------ specific behaviours


@pytest.fixture(params=["3", "2"])
def fixtures(request, keras3_layers, keras2_layers):
    return keras3_layers if request.param == "3" else keras2_layers


def _load(directory, name, fmt=None):
    entry = _entry(directory, name)
    fmt = fmt or ("keras" if "keras" in entry["files"] else "h5")
    return (entry, lstm_trace.load(directory / entry["files"][fmt]),
            np.load(directory / entry["input"]), dict(np.load(directory / entry["reference"])))


def test_unsupported_upstream_layer_names_layer_and_suggests_layer_input(fixtures):
    entry, network, x, reference = _load(fixtures, "unsupported_upstream")
    with pytest.raises(LayerReplayError, match=r"'deconv' \(Conv1DTranspose\).*--layer-input"):
        network.trace(x)
    trace = network.trace(reference["lstm/__input__"], layer_input=True)
    check_layers(network, trace, reference, entry, "keras")


def test_two_input_model_traces_what_the_first_input_reaches(fixtures):
    entry, network, x, reference = _load(fixtures, "two_inputs")
    trace = network.trace(x)
    assert {layer.name for layer in trace.layers} == {"lstm_first"}
    only_first = dict(entry, layers=[i for i in entry["layers"] if i["name"] == "lstm_first"])
    check_layers(network, trace, reference, only_first, "keras")
    with pytest.raises(lstm_trace.TraceError, match="gru_second.*--layer-input"):
        network.trace(x, layers=["gru_second"])
    for name in ("gru_second", "rnn_joined"):
        trace = network.trace(reference[f"{name}/__input__"], layers=[name], layer_input=True)
        one = dict(entry, layers=[i for i in entry["layers"] if i["name"] == name])
        check_layers(network, trace, reference, one, "keras")


def test_initial_states_wired_from_other_layers(fixtures):
    """seq2seq: Keras ``initial_state=[h, c]`` from another layer's ``return_state``."""
    entry, network, x, reference = _load(fixtures, "seq2seq")
    trace = network.trace(x)
    reached = {"encoder", "refine", "bi_enc", "bi_dec"}
    assert {layer.name for layer in trace.layers} == reached
    check_layers(network, trace, reference, dict(
        entry, layers=[i for i in entry["layers"] if i["name"] in reached]), "keras")
    x_dec = reference["decoder/__input__"]
    with pytest.raises(lstm_trace.TraceError, match=r"decoder.*encoder.*--initial-state"):
        network.trace(x_dec, layers=["decoder"], layer_input=True)
    given = {f"decoder/{q}": reference[f"__wired__/decoder/{q}"] for q in ("hidden", "cell")}
    trace = network.trace(x_dec, layers=["decoder"], layer_input=True, initial_state=given)
    check_layers(network, trace, reference, dict(
        entry, layers=[i for i in entry["layers"] if i["name"] == "decoder"]), "keras")


def test_bidirectional_mask_is_recorded_per_direction(fixtures):
    _, network, x, reference = _load(fixtures, "mask_bidi")
    trace = network.trace(x)
    assert "bi_lstm/mask" not in trace
    for direction in ("forward", "backward"):
        np.testing.assert_array_equal(trace[f"bi_lstm/{direction}/mask"],
                                      reference["bi_lstm/__mask__"])


def test_masked_steps_record_zero_gates_and_carry_states(fixtures):
    _, network, x, reference = _load(fixtures, "mask_stack")
    trace = network.trace(x)
    masked = ~reference["lstm/__mask__"]
    assert masked.any()
    for q in ("input_gate", "forget_gate", "candidate", "output_gate"):
        assert not trace[f"lstm/{q}"][masked].any()
    b, t = np.argwhere(masked & (np.arange(masked.shape[1]) > 0))[0]
    np.testing.assert_array_equal(trace["lstm/cell"][b, t], trace["lstm/cell"][b, t - 1])


def test_embedding_takes_token_ids(fixtures):
    _, network, x, _ = _load(fixtures, "embedding_text")
    assert x.dtype.kind == "i"
    assert getattr(network.layers[0], "takes_token_ids", False)
    with pytest.raises(lstm_trace.TraceError, match="token id"):
        network.trace(np.full_like(x, 10_000))


def test_cudnn_layers_load_as_keras_converts_them(keras2_layers):
    """Keras's converter (tf_keras hdf5_format._convert_rnn_weights) gives the reference."""
    entry, network, _, _ = _load(keras2_layers, "cudnn", "h5")
    kinds = {layer.name: layer.kind for layer in network.recurrent_layers}
    assert kinds == {"cudnn_lstm": "lstm", "cudnn_gru": "gru", "bi_cudnn": "lstm"}
    gru = network.layer("cudnn_gru").directions[0].cell
    assert gru.reset_after and gru.recurrent_bias is not None


def test_weights_only_embedding_notes_unknown_mask_zero(fixtures):
    entry = _entry(fixtures, "embedding_no_mask")
    network = lstm_trace.load(fixtures / entry["files"]["weights_h5"])
    assert getattr(network.layers[0], "takes_token_ids", False)
    assert any("mask_zero" in note for note in network.notes)


# ------------------------------------------------------------------ CLI


def test_cli_unsupported_layer_exits_2_with_one_line(tmp_path, keras3_layers):
    entry = _entry(keras3_layers, "unsupported_upstream")
    result = CliRunner().invoke(cli_main, [
        str(keras3_layers / entry["files"]["keras"]), str(keras3_layers / entry["input"]),
        "--format", "csv"])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1
    assert "layer 'deconv' (Conv1DTranspose) cannot be replayed" in lines[0]
    assert "--layer-input" in lines[0]
    assert "Traceback" not in result.output


def test_cli_layer_input_skips_unsupported_layer(tmp_path, keras3_layers):
    entry = _entry(keras3_layers, "unsupported_upstream")
    reference = dict(np.load(keras3_layers / entry["reference"]))
    np.save(tmp_path / "lstm_in.npy", reference["lstm/__input__"])
    out = tmp_path / "trace.npz"
    result = CliRunner().invoke(cli_main, [
        str(keras3_layers / entry["files"]["keras"]), str(tmp_path / "lstm_in.npy"),
        "--layer-input", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with np.load(out) as got:
        assert np.abs(got["lstm/hidden"] - reference["lstm/hidden"]).max() < ATOL


@pytest.mark.parametrize("name", ["initial_state", "initial_state_masked"])
def test_cli_initial_state_matches_keras(tmp_path, fixtures, name):
    entry = _entry(fixtures, name)
    model = fixtures / entry["files"]["h5"]
    out = tmp_path / "trace.npz"
    result = CliRunner().invoke(cli_main, [
        str(model), str(fixtures / entry["input"]), "--initial-state",
        str(fixtures / entry["initial_state"]), "-o", str(out)])
    assert result.exit_code == 0, result.output
    reference = dict(np.load(fixtures / entry["reference"]))
    with np.load(out) as got:
        for key in ("lstm/hidden", "lstm/cell", "gru/hidden", "rnn/hidden",
                    "bi/forward/cell", "bi/backward/hidden"):
            assert np.abs(got[key] - reference[key]).max() < ATOL, key


def test_cli_initial_state_with_unknown_key_exits_2(tmp_path, keras3_layers):
    entry = _entry(keras3_layers, "initial_state")
    np.savez(tmp_path / "bad.npz", **{"nope/hidden": np.zeros(5, np.float32)})
    result = CliRunner().invoke(cli_main, [
        str(keras3_layers / entry["files"]["keras"]), str(keras3_layers / entry["input"]),
        "--initial-state", str(tmp_path / "bad.npz"), "--format", "csv"])
    assert result.exit_code == 2
    assert "nope/hidden" in result.stderr


def test_every_case_is_built_for_the_versions_it_names(keras3_layers, keras2_layers):
    built3 = {c["name"] for c in load_manifest(keras3_layers)}
    built2 = {c["name"] for c in load_manifest(keras2_layers)}
    assert built3 == {n for n, c in CASE_BY_NAME.items() if "3" in c["versions"]}
    assert built2 == {n for n, c in CASE_BY_NAME.items() if "2" in c["versions"]}


def test_cli_traces_a_text_model_on_token_ids(tmp_path, fixtures):
    entry = _entry(fixtures, "embedding_text")
    model = fixtures / entry["files"]["h5"]
    out = tmp_path / "trace.npz"
    result = CliRunner().invoke(cli_main, [str(model), str(fixtures / entry["input"]),
                                           "-o", str(out)])
    assert result.exit_code == 0, result.output
    reference = dict(np.load(fixtures / entry["reference"]))
    with np.load(out) as got:
        assert np.abs(got["lstm/cell"] - reference["lstm/cell"]).max() < ATOL
        np.testing.assert_array_equal(got["lstm/mask"], reference["lstm/__mask__"])
        assert np.abs(got["bi_gru/backward/hidden"]
                      - reference["bi_gru/backward/hidden"]).max() < ATOL
