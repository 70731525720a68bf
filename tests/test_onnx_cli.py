"""ONNX files through the CLI: graph inputs fed by name, every command, hostile files, no onnx import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import lstm_trace
from lstm_trace.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def onnx_files():
    from conftest import build_fixtures

    return build_fixtures("onnx_files")


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_error_line(result, *phrases: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_npz_feeds_graph_inputs_by_name_and_masks_past_sequence_lens(onnx_files, tmp_path):
    out = tmp_path / "t.npz"
    result = run(onnx_files / "lstm.onnx", onnx_files / "feeds.npz", "-o", out)
    assert result.exit_code == 0, result.output
    trace = np.load(out)
    y = np.load(onnx_files / "reference.npz")["Y"]  # (steps, 2, batch, H), 0 past each length
    mask = trace["encoder/forward/mask"]
    assert mask.sum(axis=1).tolist() == [6, 3]
    for d, direction in enumerate(("forward", "backward")):
        hidden = trace[f"encoder/{direction}/hidden"]
        np.testing.assert_allclose(hidden * mask[:, :, None], y[:, d].transpose(1, 0, 2), atol=1e-5)
        assert not trace[f"encoder/{direction}/input_gate"][~mask].any()


def test_external_data_beside_the_model_gives_the_same_trace(onnx_files):
    feeds = dict(np.load(onnx_files / "feeds.npz"))
    inside = lstm_trace.load(onnx_files / "lstm.onnx").trace(feeds)
    outside = lstm_trace.load(onnx_files / "external" / "lstm.onnx").trace(feeds)
    for key in inside:
        np.testing.assert_array_equal(inside[key], outside[key])


def test_bare_node_takes_steps_batch_features_as_onnxruntime(onnx_files):
    ok = run(onnx_files / "gru.onnx", onnx_files / "gru_x.npy", "--format", "csv")
    assert ok.exit_code == 0, ok.output
    header = "sample,layer,direction,step,unit,update_gate,reset_gate,candidate,hidden"
    assert ok.output.splitlines()[0] == header
    assert len(ok.output.splitlines()) == 1 + 5 * 4  # batch 1, 5 steps, 4 units
    assert ok.output.splitlines()[1].startswith("0,GRU_0,forward,0,0,")  # an unnamed node
    _one_error_line(run(onnx_files / "gru.onnx", onnx_files / "x.npy"),
                    "graph input 'X' takes float [steps, 1, 3]", "(6, 2, 3)")


def test_missing_graph_input_names_the_npz_keys(onnx_files):
    _one_error_line(run(onnx_files / "lstm.onnx", onnx_files / "x.npy"),
                    "'sequence_lens'", "keys X, sequence_lens")


@pytest.mark.parametrize("command", ["inspect", "extract", "check", "plot", "stats"])
def test_every_command_works_on_onnx(onnx_files, tmp_path, command):
    model, feeds = onnx_files / "lstm.onnx", onnx_files / "feeds.npz"
    if command == "inspect":
        result = run("inspect", model)
        assert "encoder" in result.output and "onnx_lstm" in result.output
    elif command == "extract":
        result = run("extract", model, "-o", tmp_path / "w.npz")
        assert "encoder/forward/output_gate/kernel" in np.load(tmp_path / "w.npz")
    elif command == "check":
        golden = tmp_path / "g.npz"
        assert run(model, feeds, "-o", golden).exit_code == 0
        result = run("check", model, feeds, "--golden", golden)
    elif command == "plot":
        result = run("plot", model, feeds, "-o", tmp_path / "p.png")
        assert (tmp_path / "p.png").stat().st_size > 0
    else:
        result = run("stats", model, feeds)
        assert "encoder" in result.output
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name, phrases", [
    ("escape/model.onnx", ["'../secret.bin' outside the model's folder"]),
    ("absolute/model.onnx", ["'/etc/hostname' outside the model's folder"]),
    ("short_external/model.onnx", ["needs 384 bytes", "holds only 376 bytes"]),
    ("short_raw.onnx", ["declares shape [2, 16, 4]", "holds 508 bytes"]),
    ("huge_dims.onnx", ["declares shape [1048576, 1048576]", "holds 512 bytes"]),
    ("truncated.onnx", ["truncated or corrupt ONNX file"]),
    ("no_rnn.onnx", ["no LSTM, GRU or RNN node", "Relu"]),
    ("lstm_in_if.onnx", ["needs graph input 'cond' ('cond' decides the branch of If "
                         "'rate_switch')", "keys X, sequence_lens, cond"]),
    ("unsupported_front.onnx", ["node 'front' (Erf)", "--layer-input"]),
    ("bad_hidden_size.onnx", ["LSTM node 'encoder'", "hidden_size is [1, 2], expected an integer"]),
    ("bad_clip.onnx", ["attribute clip is 'wide', expected a number"]),
    ("bad_direction.onnx", ["direction 'sideways' (expected forward, reverse or bidirectional)"]),
])
def test_hostile_or_unsupported_files_fail_in_one_line(onnx_files, name, phrases):
    _one_error_line(run(onnx_files / name, onnx_files / "feeds.npz"), *phrases)


def test_inspect_says_why_a_front_is_not_replayable(onnx_files):
    result = run("inspect", onnx_files / "unsupported_front.onnx")
    assert result.exit_code == 0, result.output
    assert "not replayable: node 'front' (Erf) cannot be replayed in NumPy" in result.output
    assert "no reason recorded" not in result.output


def test_unsupported_front_is_skipped_with_layer_input(onnx_files):
    x = np.load(onnx_files / "x.npy").transpose(1, 0, 2)  # the engine's (batch, steps, features)
    trace = lstm_trace.load(onnx_files / "unsupported_front.onnx").trace(
        x, layers=["encoder"], layer_input=True)
    assert trace["encoder/forward/hidden"].shape == (2, 6, 4)


def test_tracing_onnx_imports_neither_onnx_nor_onnxruntime(onnx_files, tmp_path):
    """Both are blocked from import: the CLI must not need them."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('onnx', 'onnxruntime', 'torch', 'tensorflow'):\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from lstm_trace.cli import main\n"
        f"main([{str(onnx_files / 'lstm.onnx')!r}, {str(onnx_files / 'feeds.npz')!r}, "
        f"'-o', {str(tmp_path / 'out.csv')!r}], standalone_mode=False)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('onnx', 'onnxruntime', 'torch')]\n"
        "assert not bad, bad\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.csv").read_text().startswith("sample,layer,direction,step,unit,")


def test_decoder_starts_from_the_encoder_states_of_another_graph_input(onnx_files):
    feeds = dict(np.load(onnx_files / "seq2seq_feeds.npz"))
    network = lstm_trace.load(onnx_files / "seq2seq.onnx")
    assert network.layer("decoder").initial_state_from  # wired from the encoder's Y_h, Y_c
    trace = network.trace(feeds)
    y = np.load(onnx_files / "seq2seq_reference.npy")  # (4, 1, batch, H)
    np.testing.assert_allclose(trace["decoder/hidden"], y[:, 0].transpose(1, 0, 2), atol=1e-5)
    assert trace["encoder/hidden"].shape[1] == 6 and trace["decoder/hidden"].shape[1] == 4


def test_quantized_weights_are_dequantized_like_onnxruntime(onnx_files):
    trace = lstm_trace.load(onnx_files / "qdq.onnx").trace(np.load(onnx_files / "x.npy"))
    y = np.load(onnx_files / "qdq_reference.npy")
    np.testing.assert_allclose(trace["qlstm/hidden"], y[:, 0].transpose(1, 0, 2), atol=1e-5)
