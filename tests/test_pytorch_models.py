"""PyTorch files of every kind trace to torch's own states at every step (atol 1e-5).

Fixtures: tests/builders/torch_models.py (run with torch in its own process) saves each
module as a state_dict zip, a checkpoint dict, a Lightning-style checkpoint, a whole
pickled module, a legacy pickle, safetensors and TorchScript, and steps torch's own
single-layer modules for ``hidden``/``cell`` at every input position.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from builders.torch_cases import CASES, FILE_KINDS
from conftest import BUILDERS, build_fixtures, load_manifest
from error_record import record_error
from recombine import recombine_gru, recombine_lstm

import lstm_trace
from lstm_trace.activations import get_activation
from lstm_trace.loaders.pytorch import open as open_pytorch

ATOL = 1e-5
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def torch_fixtures() -> Path:
    return build_fixtures("torch_models", inputs=(BUILDERS / "torch_cases.py",))


def _case(directory: Path, name: str) -> dict:
    return next(c for c in load_manifest(directory) if c["name"] == name)


def _load(directory: Path, case: dict, kind: str) -> lstm_trace.Network:
    entry = case["files"][kind]
    options = {}
    if kind in case["activation_option"]:
        options["activation"] = case["activation_option"][kind]
    return lstm_trace.load(directory / entry["file"], **options)


def _trace_prefix(case: dict, kind: str) -> str:
    """The layer-name prefix of the (first) recurrent module in this file's trace."""
    return _trace_key(case, kind, _reference_name(case))


def _reference_name(case: dict) -> str:
    return case["module_path"] or case["default_name"]


def _trace_key(case: dict, kind: str, reference_key: str) -> str:
    """The trace key of a reference key: a checkpoint's own prefix (Lightning ``model.``) added;
    a module saved on its own is named after its class in both."""
    prefix = case["files"][kind]["path_prefix"]
    if not case["module_path"]:
        return (prefix or case["default_name"]) + reference_key[len(case["default_name"]):]
    return f"{prefix}.{reference_key}" if prefix else reference_key


@pytest.mark.parametrize("kind", FILE_KINDS)
@pytest.mark.parametrize("name", CASES)
def test_pytorch_file_matches_torch_states(torch_fixtures: Path, name: str, kind: str) -> None:
    case = _case(torch_fixtures, name)
    network = _load(torch_fixtures, case, kind)
    trace = network.trace(np.load(torch_fixtures / case["input"]))
    reference = np.load(torch_fixtures / case["reference"])
    separate = case["separate"]
    chained = [k for k in reference.files if k.split("/")[0] not in separate]
    assert chained
    for key in chained:
        mine = _trace_key(case, kind, key)
        assert mine in trace, (mine, sorted(trace.keys()))
        err = float(np.abs(trace[mine] - reference[key]).max())
        assert err < ATOL, (mine, err)
        record_error("PyTorch files", f"{name}/{kind}", err)
    # Every traced layer is the module's (nothing invented, nothing missing).
    traced = {k.rsplit("/", 1)[0] for k in trace}
    assert {_trace_key(case, kind, k.rsplit("/", 1)[0]) for k in chained} == traced
    # A module whose input size fits no earlier module is traced on its own input.
    for path, input_file in separate.items():
        own = [k for k in reference.files if k.split("/")[0] == path]
        layers = sorted({_trace_key(case, kind, k.rsplit("/", 1)[0]).removesuffix("/forward")
                         .removesuffix("/backward") for k in own})
        alone = network.trace(np.load(torch_fixtures / input_file), layers=layers,
                              layer_input=True)
        for key in own:
            assert np.abs(alone[_trace_key(case, kind, key)] - reference[key]).max() < ATOL


def _module_of(name: str) -> str:
    """``rnn/l0/forward`` -> ``rnn`` (a stacked module's layers), ``rnn`` -> ``rnn`` (a cell)."""
    parts = name.split("/")
    return parts[0] if len(parts) > 1 and parts[1].startswith("l") and parts[1][1:].isdigit() \
        else name


@pytest.mark.parametrize("name", CASES)
def test_frozen_torchscript_matches_torch_states(torch_fixtures: Path, name: str) -> None:
    """``torch.jit.freeze``: weights inlined as code constants; modules matched in call order."""
    case = _case(torch_fixtures, name)
    network = lstm_trace.load(torch_fixtures / case["frozen"])  # relu: the op says so
    if name != "bare_lstm":  # freezing a bare nn.LSTM keeps its parameters as attributes
        assert any("frozen TorchScript" in n for n in network.notes)
    trace = network.trace(np.load(torch_fixtures / case["input"]))
    reference = np.load(torch_fixtures / case["reference"])
    keys = [k for k in reference.files if k.split("/")[0] not in case["separate"]]
    ref_modules = list(dict.fromkeys(_module_of(k.rsplit("/", 1)[0]) for k in keys))
    ours = list(dict.fromkeys(_module_of(layer.name) for layer in network.recurrent_layers))
    assert len(ours) >= len(ref_modules)
    rename = dict(zip(ref_modules, ours, strict=False))
    for key in keys:
        module = _module_of(key.rsplit("/", 1)[0])
        mine = rename[module] + key[len(module):]
        assert np.abs(trace[mine] - reference[key]).max() < ATOL, mine


def test_checkpoint_of_several_state_dicts_is_merged_under_their_keys(torch_fixtures: Path) -> None:
    """``{"encoder": sd, "decoder": sd, "side": sd, "encoder_opt": ...}``: keys name the modules."""
    case = _case(torch_fixtures, "encoder_decoder")
    network = lstm_trace.load(torch_fixtures / "encoder_decoder-split.tar")
    assert [layer.name for layer in network.layers] == ["encoder/l0", "decoder/l0", "side/l0"]
    assert network.source.endswith("['encoder'] + ['decoder'] + ['side']")
    trace = network.trace(np.load(torch_fixtures / case["input"]))
    reference = np.load(torch_fixtures / case["reference"])
    for key in reference.files:
        if not key.startswith("side/"):
            assert np.abs(trace[key] - reference[key]).max() < ATOL


def test_several_modules_are_chained_by_size_with_notes(torch_fixtures: Path) -> None:
    case = _case(torch_fixtures, "encoder_decoder")
    network = lstm_trace.load(torch_fixtures / case["files"]["torchscript"]["file"])
    assert [layer.name for layer in network.layers] == ["encoder/l0", "decoder/l0", "side/l0"]
    assert any("chained encoder -> decoder" in n for n in network.notes)
    assert any(n.startswith("side/l0 takes 3 features") and "--layer-input" in n
               for n in network.notes)
    decoder = network.layer("decoder/l0")
    assert decoder.bidirectional and decoder.output_size == 10


@pytest.mark.parametrize("name", ["lstm", "lstm_3_layers_bi", "lstm_cell", "lstm_no_bias"])
def test_lstm_gates_recombine_into_torch_h_and_c(torch_fixtures: Path, name: str) -> None:
    case = _case(torch_fixtures, name)
    network = _load(torch_fixtures, case, "sd_zip")
    trace = network.trace(np.load(torch_fixtures / case["input"]))
    reference = np.load(torch_fixtures / case["reference"])
    prefix = _trace_prefix(case, "sd_zip")
    for layer in network.recurrent_layers:
        for key, direction in layer.trace_prefixes():
            h, c = recombine_lstm(trace, key, reverse=direction.reverse)
            ref_key = _reference_name(case) + key[len(prefix):]
            assert np.abs(h - reference[f"{ref_key}/hidden"]).max() < ATOL
            assert np.abs(c - reference[f"{ref_key}/cell"]).max() < ATOL


def test_projected_lstm_gates_recombine_through_weight_hr(torch_fixtures: Path) -> None:
    """With proj_size, h = (o ⊙ tanh(c)) W_hrᵀ: torch's h from our gates and the file's W_hr."""
    case = _case(torch_fixtures, "lstm_proj_bi")
    network = _load(torch_fixtures, case, "sd_zip")
    trace = network.trace(np.load(torch_fixtures / case["input"]))
    reference = np.load(torch_fixtures / case["reference"])
    for layer in network.recurrent_layers:
        for key, direction in layer.trace_prefixes():
            o, c = trace[f"{key}/output_gate"], trace[f"{key}/cell"]
            h = (o * np.tanh(c)) @ direction.cell.projection
            assert h.shape[-1] == 3
            assert np.abs(h - reference[f"{key}/hidden"]).max() < ATOL


@pytest.mark.parametrize("name", ["gru_bi", "gru_cell", "gru_no_bias"])
def test_gru_gates_recombine_into_torch_h(torch_fixtures: Path, name: str) -> None:
    case = _case(torch_fixtures, name)
    network = _load(torch_fixtures, case, "safetensors")
    trace = network.trace(np.load(torch_fixtures / case["input"]))
    reference = np.load(torch_fixtures / case["reference"])
    for layer in network.recurrent_layers:
        for key, direction in layer.trace_prefixes():
            h = recombine_gru(trace, key, reverse=direction.reverse)
            assert np.abs(h - reference[f"{key}/hidden"]).max() < ATOL


def test_rnn_nonlinearity_is_read_from_whole_module_and_torchscript(torch_fixtures: Path) -> None:
    case = _case(torch_fixtures, "rnn_relu")
    for kind in ("whole", "torchscript"):
        network = lstm_trace.load(torch_fixtures / case["files"][kind]["file"])
        assert network.recurrent_layers[0].directions[0].cell.activation == "relu"
        assert not any("nonlinearity" in n for n in network.notes)


def test_rnn_state_dict_assumes_tanh_with_a_note(torch_fixtures: Path) -> None:
    case = _case(torch_fixtures, "rnn_relu")
    network = lstm_trace.load(torch_fixtures / case["files"]["sd_zip"]["file"])
    assert network.recurrent_layers[0].directions[0].cell.activation == "tanh"
    assert any("assuming tanh" in n and "--activation relu" in n for n in network.notes)


def test_tagger_replays_embedding_from_token_ids(torch_fixtures: Path) -> None:
    case = _case(torch_fixtures, "tagger")
    network = lstm_trace.load(torch_fixtures / case["files"]["sd_zip"]["file"])
    assert [layer.name for layer in network.layers] == ["embedding", "lstm/l0"]
    assert network.layers[0].class_name == "Embedding"
    # The Linear head is not needed to trace, and it is listed, not dropped silently.
    assert network.downstream == [("fc", "unknown")]  # a state_dict stores no classes
    assert network.layer_parameters == {"fc": 21}
    assert network.unexplained == []
    whole = lstm_trace.load(torch_fixtures / case["files"]["whole"]["file"])
    assert whole.downstream == [("fc", "Linear")]


def test_checkpoint_source_names_where_the_weights_were(torch_fixtures: Path) -> None:
    case = _case(torch_fixtures, "lstm")
    network = lstm_trace.load(torch_fixtures / case["files"]["checkpoint"]["file"])
    assert network.source == "PyTorch torch.save zip, weights from ['model_state_dict']"
    lightning = lstm_trace.load(torch_fixtures / case["files"]["lightning"]["file"])
    assert [layer.name for layer in lightning.recurrent_layers] == ["model.rnn/l0"]


def test_gate_order_is_converted_from_torch_rows(torch_fixtures: Path) -> None:
    """Canonical input_gate columns are weight_ih rows 0:H, forget H:2H, candidate 2H:3H."""
    from lstm_trace.loaders.pytorch.safetensors import read_safetensors

    case = _case(torch_fixtures, "lstm")
    path = torch_fixtures / case["files"]["safetensors"]["file"]
    tensors, _ = read_safetensors(path)
    cell = open_pytorch(path, lstm_trace.LoadOptions()).recurrent_layers[0].directions[0].cell
    w = tensors["rnn.weight_ih_l0"]
    gates = cell.gate_weights()
    h = cell.units
    for k, gate in enumerate(("input_gate", "forget_gate", "candidate", "output_gate")):
        np.testing.assert_array_equal(gates[gate]["kernel"], w[k * h:(k + 1) * h].T)
    np.testing.assert_allclose(cell.bias, np.concatenate([
        (tensors["rnn.bias_ih_l0"] + tensors["rnn.bias_hh_l0"])[k * h:(k + 1) * h] for k in range(4)
    ]))


def test_tracing_pytorch_files_never_imports_torch(torch_fixtures: Path) -> None:
    """Every file kind loads and traces with torch absent and the stdlib unpickler disabled."""
    case = _case(torch_fixtures, "lstm_3_layers_bi")
    files = [str(torch_fixtures / entry["file"]) for entry in case["files"].values()]
    code = (
        "import sys, pickle, numpy as np, lstm_trace\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit('the standard unpickler was used')\n"
        "pickle.load = pickle.loads = pickle.Unpickler = pickle._Unpickler = refuse\n"
        f"x = np.load({str(torch_fixtures / case['input'])!r})\n"
        f"for f in {files!r}:\n"
        "    lstm_trace.load(f).trace(x)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'safetensors', 'tensorflow', 'onnx')]\n"
        "print('imported:', bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_relu_rnn_with_activation_option_matches_torch(torch_fixtures: Path) -> None:
    case = _case(torch_fixtures, "rnn_relu")
    network = lstm_trace.load(torch_fixtures / case["files"]["legacy"]["file"], activation="relu")
    trace = network.trace(np.load(torch_fixtures / case["input"]))
    reference = np.load(torch_fixtures / case["reference"])
    relu = get_activation("relu")
    assert np.all(trace["rnn/l0/hidden"] == relu(trace["rnn/l0/hidden"]))
    assert np.abs(trace["rnn/l0/hidden"] - reference["rnn/l0/hidden"]).max() < ATOL


def test_inspect_names_the_file_tensors_each_gate_lives_in(torch_fixtures: Path) -> None:
    from lstm_trace.inspect import describe

    case = _case(torch_fixtures, "lstm_3_layers_bi")
    info = describe(lstm_trace.load(torch_fixtures / case["files"]["checkpoint"]["file"]))
    backward = info["layers"][1]["directions"][1]
    assert info["layers"][1]["name"] == "rnn/l1"
    assert backward["gates"][1] == {
        "gate": "forget_gate", "kernel": "rnn.weight_ih_l1_reverse[5:10]",
        "recurrent_kernel": "rnn.weight_hh_l1_reverse[5:10]",
        "bias": "rnn.bias_ih_l1_reverse[5:10] + rnn.bias_hh_l1_reverse[5:10]",
    }
    gru = describe(lstm_trace.load(torch_fixtures / _case(torch_fixtures, "gru_cell")["files"]
                                   ["safetensors"]["file"]))
    gates = gru["layers"][0]["directions"][0]["gates"]
    assert [g["gate"] for g in gates] == ["reset_gate", "update_gate", "candidate"]
    assert gates[2]["bias"] == "rnn.bias_ih[12:18]"
    assert gates[2]["recurrent_bias"] == "rnn.bias_hh[12:18]"


@pytest.mark.parametrize("name", CASES)
def test_inspect_counts_parameters_as_torch_does(torch_fixtures: Path, name: str) -> None:
    """Both LSTM/RNN biases count (torch stores bias_ih and bias_hh; the replay sums them)."""
    from lstm_trace.inspect import describe

    case = _case(torch_fixtures, name)
    info = describe(lstm_trace.load(torch_fixtures / case["files"]["sd_zip"]["file"]))
    assert info["recurrent_parameters"] == case["recurrent_parameters"]


@pytest.mark.parametrize("name", ["brackets_torch.pt", "brackets_torch.safetensors",
                                  "brackets_torch_script.pt"])
def test_sample_pytorch_model_matches_torch(name: str) -> None:
    samples = ROOT / "sample_models"
    reference = np.load(samples / "brackets_torch_reference.npz")
    trace = lstm_trace.load(samples / name).trace(np.load(samples / "brackets_input.npy"))
    for q in ("hidden", "cell"):
        assert np.abs(trace[f"lstm/l0/{q}"] - reference[q]).max() < ATOL


def test_activation_options_are_ignored_for_lstm_with_a_note(torch_fixtures: Path) -> None:
    case = _case(torch_fixtures, "lstm")
    network = lstm_trace.load(torch_fixtures / case["files"]["sd_zip"]["file"], activation="relu")
    assert network.recurrent_layers[0].directions[0].cell.activation == "tanh"
    assert any("ignored" in n for n in network.notes)


def test_gru_variant_options_are_ignored_with_a_note(torch_fixtures: Path) -> None:
    case = _case(torch_fixtures, "gru_bi")
    network = lstm_trace.load(torch_fixtures / case["files"]["safetensors"]["file"],
                              reset_after=False, forget_bias=1.0)
    assert all(d.cell.reset_after for layer in network.recurrent_layers for d in layer.directions)
    assert any("--forget-bias, --reset-after ignored" in n and "reset_after GRU" in n
               for n in network.notes)
