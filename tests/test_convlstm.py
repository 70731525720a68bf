"""Keras ConvLSTM1D/2D/3D traces match Keras 3 and tf_keras at every step and grid position
(atol 1e-5), with the gates recombined into the framework's own cell and hidden states.

Fixtures: ``tests/builders/convlstm.py`` (every option: padding, strides, dilation,
data_format, use_bias, activations, go_backwards, return_sequences, per-position masks,
a ConvLSTM feeding a ConvLSTM, a ConvLSTM on a second model input).
"""

from __future__ import annotations

import numpy as np
import pytest
from builders.convlstm import CASES
from conftest import build_fixtures, load_manifest
from error_record import record_error
from workflow_common import assert_user_error, invoke

import lstm_trace
from lstm_trace.activations import get_activation
from lstm_trace.conv_lstm import ConvLSTMCell, ConvSpec, run_conv_lstm

ATOL = 1e-5
CASE = {c["name"]: c for c in CASES}
#: weights_h5 is traced with --config (the model's to_json()): weights alone do not say a
#: ConvLSTM's padding or strides.
FORMATS = {3: ["keras", "h5", "weights_h5"], 2: ["h5", "keras", "weights_h5"]}


@pytest.fixture(scope="session")
def conv3():
    return build_fixtures("convlstm")


@pytest.fixture(scope="session")
def conv2():
    return build_fixtures("convlstm", legacy_keras=True)


def _fixtures(request, major: int):
    return request.getfixturevalue("conv3" if major == 3 else "conv2")


def _entry(directory, name: str) -> dict:
    return next(c for c in load_manifest(directory) if c["name"] == name)


def recombine(trace, prefix: str, cell, reverse: bool):
    """``c = f ⊙ c_prev + i ⊙ g`` and ``h = o ⊙ φ(c)`` from the recorded gates; on masked
    positions (gates recorded as 0) the states carry over."""
    phi = get_activation(cell.activation)
    i, f = trace[f"{prefix}/input_gate"], trace[f"{prefix}/forget_gate"]
    g, o = trace[f"{prefix}/candidate"], trace[f"{prefix}/output_gate"]
    recorded = trace[f"{prefix}/cell"]
    steps = recorded.shape[1]
    keep = np.ones(recorded.shape, bool)
    if f"{prefix}/mask" in trace:
        m = trace[f"{prefix}/mask"]
        keep = np.broadcast_to(m.reshape(m.shape + (1,) * (recorded.ndim - m.ndim)), recorded.shape)
    c = np.empty_like(recorded)
    h = np.empty_like(recorded)
    hidden = trace[f"{prefix}/hidden"]
    for t in range(steps):
        prev_t = t + 1 if reverse else t - 1
        inside = 0 <= prev_t < steps
        c_prev = recorded[:, prev_t] if inside else np.zeros_like(recorded[:, 0])
        h_prev = hidden[:, prev_t] if inside else np.zeros_like(hidden[:, 0])
        c_new = f[:, t] * c_prev + i[:, t] * g[:, t]
        c[:, t] = np.where(keep[:, t], c_new, c_prev)
        h[:, t] = np.where(keep[:, t], o[:, t] * phi(c_new), h_prev)
    return h, c


@pytest.mark.parametrize("major", [3, 2])
@pytest.mark.parametrize("name", list(CASE))
def test_convlstm_trace_matches_keras(request, major, name):
    directory = _fixtures(request, major)
    entry = _entry(directory, name)
    reference = np.load(directory / entry["reference"])
    inputs = [np.load(directory / f) for f in entry["inputs"]]
    spec = CASE[name]
    for fmt in FORMATS[major]:
        config = str(directory / entry["files"]["config"]) if fmt == "weights_h5" else None
        network = lstm_trace.load(directory / entry["files"][fmt], config_path=config)
        main_layers = entry["layers"][: len(spec["layers"])]
        traces = {layer: network.trace(inputs[0], layers=main_layers) for layer in main_layers}
        for layer in entry["layers"][len(spec["layers"]):]:  # on their own model input
            traces[layer] = network.trace(inputs[1], layers=[layer], layer_input=True)
        for layer_name, trace in traces.items():
            layer = network.layer(layer_name)
            for prefix, direction in layer.trace_prefixes():
                cell = direction.cell
                assert isinstance(cell, ConvLSTMCell)
                for q in ("hidden", "cell"):
                    got, want = trace[f"{prefix}/{q}"], reference[f"{prefix}/{q}"]
                    assert got.shape == want.shape and got.dtype == np.float32, (fmt, q, got.shape)
                    family = "Keras 3 ConvLSTM" if major == 3 else "tf_keras ConvLSTM"
                    record_error(family, f"{name}/{fmt}/{prefix}/{q}", np.abs(got - want).max())
                h, c = recombine(trace, prefix, cell, direction.reverse)
                assert np.abs(c - reference[f"{prefix}/cell"]).max() < ATOL, (fmt, prefix)
                assert np.abs(h - reference[f"{prefix}/hidden"]).max() < ATOL, (fmt, prefix)
                assert set(trace) >= {f"{prefix}/{q}" for q in cell.quantities}


def test_convlstm_feeding_convlstm_hands_on_keras_output(conv3):
    """The second layer of the stack reads the first one's (masked) output, as Keras does."""
    entry = _entry(conv3, "masked_stack")
    network = lstm_trace.load(conv3 / entry["files"]["keras"])
    x = np.load(conv3 / entry["inputs"][0])
    trace = network.trace(x)
    first, second = entry["layers"]
    reference = np.load(conv3 / entry["reference"])
    assert np.abs(trace[f"{second}/hidden"] - reference[f"{second}/hidden"]).max() < ATOL
    mask = trace[f"{first}/mask"]
    assert mask.shape == x.shape[:-1] and not mask.all() and mask.any()  # per position


def test_convlstm_keys_and_shapes_follow_the_contract(conv3):
    entry = _entry(conv3, "c2d_valid_strides")
    network = lstm_trace.load(conv3 / entry["files"]["keras"])
    x = np.load(conv3 / entry["inputs"][0])
    trace = network.trace(x)
    (name,) = entry["layers"]
    # (batch, steps, *grid, filters): a 9x7 grid, kernel (3, 2), strides (2, 1), valid -> 4x6.
    assert {k: trace[k].shape for k in trace} == {
        f"{name}/{q}": (2, 4, 4, 6, 4) for q in
        ("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden")}


def test_convlstm_channels_first_records_channels_last(conv3):
    entry = _entry(conv3, "c2d_channels_first")
    network = lstm_trace.load(conv3 / entry["files"]["keras"])
    x = np.load(conv3 / entry["inputs"][0])  # (batch, steps, channels, 6, 5)
    assert network.trace(x)[f"{entry['layers'][0]}/hidden"].shape == (2, 4, 6, 5, 3)


def test_convlstm_side_input_needs_layer_input(conv3):
    entry = _entry(conv3, "side_input")
    model = conv3 / entry["files"]["keras"]
    side = np.load(conv3 / entry["inputs"][1])
    network = lstm_trace.load(model)
    with pytest.raises(ValueError, match="--layer-input"):
        network.trace(np.load(conv3 / entry["inputs"][0]), layers=["side"])
    result = invoke(model, conv3 / entry["inputs"][1], "--layer", "side", "--layer-input",
                    "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = result.stdout.strip().splitlines()
    # 2 samples x 4 steps x (5 positions x 3 filters) units, one row each.
    assert len(rows) == 1 + 2 * 4 * 15
    assert side.shape == (2, 4, 6, 3)


def test_convlstm_csv_flattens_positions_into_units(conv3, tmp_path):
    entry = _entry(conv3, "c2d_same")
    model, x_path = conv3 / entry["files"]["keras"], conv3 / entry["inputs"][0]
    (name,) = entry["layers"]
    result = invoke(model, x_path, "--format", "csv", "--samples", "1", "--steps", "2")
    assert result.exit_code == 0, result.output
    header, *rows = result.stdout.strip().splitlines()
    quantities = "input_gate,forget_gate,candidate,output_gate,cell,hidden"
    assert header == f"sample,layer,direction,step,unit,{quantities}"
    assert len(rows) == 6 * 7 * 3
    trace = lstm_trace.load(model).trace(np.load(x_path))
    # unit = (row * width + column) * filters + filter
    row, col, filt = 4, 5, 2
    unit = (row * 7 + col) * 3 + filt
    fields = rows[unit].split(",")
    assert fields[:5] == ["1", name, "forward", "2", str(unit)]
    assert np.float32(fields[-1]) == trace[f"{name}/hidden"][1, 2, row, col, filt]


def test_convlstm_commands(conv3, tmp_path):
    entry = _entry(conv3, "masked_stack")
    model, x_path = conv3 / entry["files"]["keras"], conv3 / entry["inputs"][0]
    result = invoke("inspect", model)
    assert result.exit_code == 0 and "kernel_size=(3, 3)" in result.output, result.output
    golden = tmp_path / "golden.npz"
    for args in (("trace", model, x_path, "-o", golden),
                 ("check", model, x_path, "--golden", golden),
                 ("extract", model, "-o", tmp_path / "w.npz"),
                 ("stats", model, x_path),
                 ("trace", model, x_path, "--summary", "--format", "table"),
                 ("trace", model, x_path, "--format", "table", "--units", "0:4"),
                 ("plot", model, x_path, "-o", tmp_path / "p.png")):
        result = invoke(*args)
        assert result.exit_code == 0, (args[0], result.output)
    assert np.load(golden)[f"{entry['layers'][0]}/hidden"].shape == (2, 5, 6, 6, 3)
    weights = np.load(tmp_path / "w.npz")
    assert any(weights[k].ndim == 4 for k in weights.files)  # per-gate conv kernels


def test_convlstm_wrong_input_is_exit_2(conv3, tmp_path):
    entry = _entry(conv3, "c2d_same")
    bad = tmp_path / "flat.npy"
    np.save(bad, np.zeros((2, 5, 3), np.float32))
    assert_user_error(invoke(conv3 / entry["files"]["keras"], bad), "flat.npy")
    wrong = tmp_path / "channels.npy"
    np.save(wrong, np.zeros((2, 5, 6, 7, 4), np.float32))
    assert_user_error(invoke(conv3 / entry["files"]["keras"], wrong), "c2d_same_0", "(2, 5, 6, 7, 4)")


def test_convolution_is_the_windowed_sum_it_claims():
    """The im2col product against a direct loop over positions (strides, dilation, same)."""
    rng = np.random.default_rng(3)
    conv = ConvSpec(kernel_size=(3, 2), strides=(2, 1), dilation_rate=(1, 1), padding="same")
    cell = ConvLSTMCell(kind="lstm", units=2, kernel=rng.standard_normal((3, 2, 3, 8)),
                        recurrent_kernel=np.zeros((3, 2, 2, 8)), bias=None, conv=conv)
    x = rng.standard_normal((1, 1, 5, 4, 3))
    from lstm_trace.conv_lstm import input_projection

    got = input_projection(cell, x)[0, 0]
    (top, _), (left, _) = conv.pads((5, 4))
    padded = np.pad(x[0, 0], [(top, 3), (left, 3), (0, 0)])
    oh, ow = conv.output_grid((5, 4))
    want = np.zeros((oh, ow, 8))
    for r in range(oh):
        for q in range(ow):
            patch = padded[r * 2:r * 2 + 3, q:q + 2]
            want[r, q] = np.einsum("abc,abcd->d", patch, cell.kernel)
    assert np.allclose(got, want)
    arrays, h, c = run_conv_lstm(cell.astype(np.float64), x)
    assert h.shape == (1, 3, 4, 2) and arrays["hidden"].shape == (1, 1, 3, 4, 2)


def test_convlstm_is_not_exported_as_a_torch_lstm(conv3, tmp_path):
    entry = _entry(conv3, "c2d_same")
    result = invoke("extract", conv3 / entry["files"]["keras"], "--to", "pytorch", "-o",
                    tmp_path / "w.npz")
    assert_user_error(result, "ConvLSTM", "--to keras")
    assert not (tmp_path / "w.npz").exists()


def test_convlstm_extract_to_keras_is_a_convlstm_constructor(conv3, tmp_path):
    entry = _entry(conv3, "c2d_valid_strides")
    result = invoke("extract", conv3 / entry["files"]["keras"], "--to", "keras", "-o",
                    tmp_path / "w.npz")
    assert result.exit_code == 0, result.output
    assert "keras.layers.ConvLSTM2D(4," in result.output
    assert "kernel_size=(3, 2), strides=(2, 1), padding='valid'" in result.output
    weights = np.load(tmp_path / "w.npz")
    name = entry["layers"][0]
    assert weights[f"{name}/kernel"].shape == (3, 2, 2, 16)
    assert weights[f"{name}/recurrent_kernel"].shape == (3, 2, 4, 16)


def test_convlstm_weights_only_file_points_to_config(conv3, tmp_path):
    """A .weights.h5 cannot say a ConvLSTM's padding or strides: the error says --config."""
    import h5py

    entry = _entry(conv3, "c2d_same")
    path = tmp_path / "conv.weights.h5"
    with h5py.File(conv3 / entry["files"]["h5"], "r") as full, h5py.File(path, "w") as out:
        group = full["model_weights"]
        for key, value in group.attrs.items():
            out.attrs[key] = value
        for name in group:
            group.copy(name, out)
    assert_user_error(invoke(path, conv3 / entry["inputs"][0]), "--config model.json")


def test_convlstm_units_selection_picks_flattened_units(conv3, tmp_path):
    entry = _entry(conv3, "c2d_same")
    model, x_path = conv3 / entry["files"]["keras"], conv3 / entry["inputs"][0]
    out = tmp_path / "sel.npz"
    result = invoke(model, x_path, "--format", "npz", "-o", out, "--units", "3:7")
    assert result.exit_code == 0, result.output
    (name,) = entry["layers"]
    full = lstm_trace.load(model).trace(np.load(x_path))[f"{name}/hidden"]
    got = np.load(out)[f"{name}/hidden"]
    assert np.array_equal(got, full.reshape(*full.shape[:2], -1)[:, :, 3:7])
