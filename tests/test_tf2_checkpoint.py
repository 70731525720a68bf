"""TF2 object checkpoints (tf_keras ``save_weights``, ``tf.train.Checkpoint`` of tf_keras and
Keras 3 models) traced without TensorFlow match TensorFlow at every step (atol 1e-5)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from builders.tf2_models import CASES
from conftest import build_fixtures
from tf2_checks import (
    ATOL,
    cases,
    check_against_framework,
    check_assumed_defaults,
    directions_by_prefix,
)
from workflow_common import assert_user_error, invoke

import lstm_trace
from lstm_trace.loaders import LoadError

CHECKPOINTS = {"keras2": ["ckpt", "tfckpt"], "keras3": ["tfckpt"]}
#: Keras 3 builds the layers of a subclassed model inside the model's name scope: the
#: checkpoint keeps only attribute names (``self.rnn``), not the layer name.
NAMES_NOT_STORED = {("keras3", "subclassed"): {"sub_lstm": "rnn"}}
#: Keras 3 leaves the cells of RNN(StackedRNNCells) out of TF checkpoints (see the test).
NOT_SAVED = {("keras3", "stacked_cells")}


@pytest.fixture(scope="session")
def tf2_keras2():
    return build_fixtures("tf2_models", legacy_keras=True)


@pytest.fixture(scope="session")
def tf2_keras3():
    return build_fixtures("tf2_models")


def _params(formats: dict[str, list[str]], *, with_config: bool = False):
    out = []
    for backend, fmts in formats.items():
        for case in CASES:
            if backend not in case.get("backends", ["keras2", "keras3"]):
                continue
            if with_config and case.get("subclassed"):
                continue  # a subclassed model has no to_json()
            if (backend, case["name"]) in NOT_SAVED:
                continue
            out += [pytest.param(backend, case["name"], fmt, id=f"{backend}-{case['name']}-{fmt}")
                    for fmt in fmts]
    return out


@pytest.fixture()
def fixtures(request):
    def get(backend: str):
        return request.getfixturevalue(f"tf2_{backend}")
    return get


@pytest.mark.parametrize(("backend", "name", "fmt"), _params(CHECKPOINTS))
def test_checkpoint_without_config_matches_tensorflow(fixtures, backend, name, fmt):
    directory = fixtures(backend)
    case = cases(directory)[name]
    spec = next(c for c in CASES if c["name"] == name)
    network = lstm_trace.load(directory / case["files"][fmt])
    if spec.get("needs_config"):
        # relu / hard_sigmoid / go_backwards / mask_zero are not in the weights: the trace
        # must be what the notes say was assumed, and differ from TensorFlow.
        configured = lstm_trace.load(directory / case["files"][fmt],
                                     config_path=str(directory / case["files"]["json"]))
        check_assumed_defaults(network, configured, case, directory)
        return
    check_against_framework(network, case, directory, family="TF2 checkpoints",
                            layer_input=name == "dense_front",
                            renamed=NAMES_NOT_STORED.get((backend, name)))


@pytest.mark.parametrize(("backend", "name", "fmt"), _params(CHECKPOINTS, with_config=True))
def test_checkpoint_with_config_matches_tensorflow(fixtures, backend, name, fmt):
    """--config model.json: real names and options, upstream layers replayed (dense_front)."""
    directory = fixtures(backend)
    case = cases(directory)[name]
    network = lstm_trace.load(directory / case["files"][fmt],
                              config_path=str(directory / case["files"]["json"]))
    check_against_framework(network, case, directory, family="TF2 checkpoints")


def test_config_supplies_options(tf2_keras2, tf2_keras3):
    for directory, hard_sigmoid in ((tf2_keras2, "hard_sigmoid_keras2"), (tf2_keras3, "hard_sigmoid")):
        case = cases(directory)["options"]
        network = lstm_trace.load(directory / case["files"]["tfckpt"],
                                  config_path=str(directory / case["files"]["json"]))
        direction = network.layer("opt_lstm").directions[0]
        assert direction.reverse
        assert direction.cell.activation == "relu"
        assert direction.cell.recurrent_activation == hard_sigmoid


def test_gru_reset_after_is_read_from_the_bias_shape(tf2_keras2, tf2_keras3):
    for directory in (tf2_keras2, tf2_keras3):
        by_name = cases(directory)
        after = lstm_trace.load(directory / by_name["gru_reset_after"]["files"]["tfckpt"])
        before = lstm_trace.load(directory / by_name["gru_reset_before"]["files"]["tfckpt"])
        assert after.layer("gru_ra").directions[0].cell.reset_after is True
        assert before.layer("gru_rb").directions[0].cell.reset_after is False


def test_names_come_from_full_names_not_positions(tf2_keras2, tf2_keras3):
    """Sequential layers get generated names (lstm_1...) and Keras 3 prefixes the model name."""
    for directory in (tf2_keras2, tf2_keras3):
        case = cases(directory)["sequential"]
        network = lstm_trace.load(directory / case["files"]["tfckpt"])
        assert [layer.name for layer in network.recurrent_layers] == case["layers"]
    bi = lstm_trace.load(tf2_keras3 / cases(tf2_keras3)["bidirectional"]["files"]["tfckpt"])
    assert sorted(directions_by_prefix(bi)) == [
        "bi_gru/backward", "bi_gru/forward", "bi_lstm/backward", "bi_lstm/forward"]
    assert bi.layer("bi_lstm").directions[1].reverse


def test_keras2_stacked_cells_are_named_cell_k(tf2_keras2):
    case = cases(tf2_keras2)["stacked_cells"]
    for fmt in ("ckpt", "tfckpt"):
        network = lstm_trace.load(tf2_keras2 / case["files"][fmt])
        assert [layer.name for layer in network.recurrent_layers] == [
            "rnn_stack/cell_0", "rnn_stack/cell_1"]


def test_keras3_checkpoint_without_stacked_cells_says_why(tf2_keras3):
    """Keras 3 writes no variables for the cells of RNN(StackedRNNCells) into a checkpoint."""
    case = cases(tf2_keras3)["stacked_cells"]
    path = tf2_keras3 / case["files"]["tfckpt"]
    with pytest.raises(LoadError, match=r"holds no variables \(Keras 3 does not save the cells"):
        lstm_trace.load(path)
    with pytest.raises(LoadError, match="does not save the cells of RNN.StackedRNNCells."):
        lstm_trace.load(path, config_path=str(tf2_keras3 / case["files"]["json"]))


def test_optimizer_and_counters_are_listed_not_used(tf2_keras2, tf2_keras3):
    for directory in (tf2_keras2, tf2_keras3):
        case = cases(directory)["lstm"]
        network = lstm_trace.load(directory / case["files"]["tfckpt"])
        assert [layer.name for layer in network.recurrent_layers] == ["enc_lstm"]
        text = "\n".join(network.unexplained)
        assert "optimizer variables" in text
        assert "save_counter" in text
        assert "head/kernel (5, 2)" in text  # the Dense head: stored, not interpreted
        with_config = lstm_trace.load(directory / case["files"]["tfckpt"],
                                      config_path=str(directory / case["files"]["json"]))
        assert not any("head" in u for u in with_config.unexplained)


def test_directory_follows_the_checkpoint_state_file(tf2_keras3):
    """The builder saved twice; the state file names the second (real) checkpoint."""
    case = cases(tf2_keras3)["lstm"]
    folder = tf2_keras3 / case["files"]["tfckpt"]
    latest = lstm_trace.load(folder)
    explicit = lstm_trace.load(folder / "ckpt-2")
    stale = lstm_trace.load(folder / "ckpt-1.index")
    k_latest = latest.recurrent_layers[0].directions[0].cell.kernel
    assert np.array_equal(k_latest, explicit.recurrent_layers[0].directions[0].cell.kernel)
    assert not np.allclose(k_latest, stale.recurrent_layers[0].directions[0].cell.kernel)


def test_keras2_prefix_and_directory_load_the_same(tf2_keras2):
    case = cases(tf2_keras2)["stacked"]
    prefix = tf2_keras2 / case["files"]["ckpt"]
    a, b = lstm_trace.load(prefix), lstm_trace.load(prefix.parent)
    x = np.load(tf2_keras2 / case["input"])
    ta, tb = a.trace(x), b.trace(x)
    assert sorted(ta) == sorted(tb)
    assert all(np.array_equal(ta[k], tb[k]) for k in ta)


@pytest.mark.parametrize("backend", ["keras2", "keras3"])
@pytest.mark.parametrize("name", [c["name"] for c in CASES
                                  if not c.get("subclassed") and c["name"] != "stacked_cells"])
def test_weights_h5_and_checkpoint_give_the_same_trace(fixtures, backend, name):
    """The same model saved as .weights.h5 and as a TF checkpoint traces identically.

    Keras 3 ``.weights.h5`` keeps no layer names or order, so that side gets --config; the
    tf_keras ``.h5`` is compared config-less too.
    """
    directory = fixtures(backend)
    case = cases(directory)[name]
    config = str(directory / case["files"]["json"])
    x = np.load(directory / case["input"])
    pairs = [({"config_path": config}, {"config_path": config})]
    spec = next(c for c in CASES if c["name"] == name)
    if backend == "keras2" and not spec.get("needs_config"):
        pairs.append(({}, {}))
    for h5_options, ckpt_options in pairs:
        from_h5 = lstm_trace.load(directory / case["files"]["weights_h5"], **h5_options)
        from_ckpt = lstm_trace.load(directory / case["files"]["tfckpt"], **ckpt_options)
        layer_input = name == "dense_front" and not h5_options
        xi = np.load(directory / case["layer_input"]) if layer_input else x
        t_h5 = from_h5.trace(xi, layer_input=layer_input)
        t_ckpt = from_ckpt.trace(xi, layer_input=layer_input)
        assert sorted(t_h5) == sorted(t_ckpt)
        for key in t_h5:
            assert np.array_equal(t_h5[key], t_ckpt[key]), key


# ------------------------------------------------------------------------------- errors


def test_config_from_another_model_is_refused(tf2_keras3):
    by_name = cases(tf2_keras3)
    with pytest.raises(LoadError, match="is the config from this model"):
        lstm_trace.load(tf2_keras3 / by_name["lstm"]["files"]["tfckpt"],
                        config_path=str(tf2_keras3 / by_name["stacked"]["files"]["json"]))


def test_config_with_wrong_units_is_refused(tf2_keras2, tmp_path):
    import json

    case = cases(tf2_keras2)["lstm"]
    config = json.loads((tf2_keras2 / case["files"]["json"]).read_text())
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "LSTM":
            layer["config"]["units"] = 7
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(config))
    with pytest.raises(LoadError, match="units=7 in the config"):
        lstm_trace.load(tf2_keras2 / case["files"]["ckpt"], config_path=str(path))


# ------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("form", ["prefix", "directory", "index"])
def test_cli_traces_a_checkpoint(tf2_keras2, tmp_path, form):
    case = cases(tf2_keras2)["bidirectional"]
    prefix = tf2_keras2 / case["files"]["ckpt"]
    model = {"prefix": prefix, "directory": prefix.parent,
             "index": prefix.with_name(prefix.name + ".index")}[form]
    out = tmp_path / "trace.npz"
    result = invoke(model, tf2_keras2 / case["input"], "-o", out)
    assert result.exit_code == 0, result.output
    assert "note:" in result.output  # the assumptions are printed
    reference = np.load(tf2_keras2 / case["reference"])
    with np.load(out) as got:
        for key in ("bi_lstm/forward/hidden", "bi_lstm/backward/cell", "bi_gru/backward/hidden"):
            assert np.abs(got[key] - reference[key]).max() < ATOL


def test_cli_config_option(tf2_keras3, tmp_path):
    case = cases(tf2_keras3)["dense_front"]
    out = tmp_path / "trace.npz"
    result = invoke(tf2_keras3 / case["files"]["tfckpt"], tf2_keras3 / case["input"],
                    "--config", tf2_keras3 / case["files"]["json"], "-o", out)
    assert result.exit_code == 0, result.output
    reference = np.load(tf2_keras3 / case["reference"])
    with np.load(out) as got:
        assert np.abs(got["after_dense/hidden"] - reference["after_dense/hidden"]).max() < ATOL


def test_cli_without_config_names_the_layer_it_cannot_replay(tf2_keras3):
    case = cases(tf2_keras3)["dense_front"]
    result = invoke(tf2_keras3 / case["files"]["tfckpt"], tf2_keras3 / case["input"])
    assert_user_error(result, "'proj'", "--layer-input")
    ok = invoke(tf2_keras3 / case["files"]["tfckpt"], tf2_keras3 / case["layer_input"],
                "--layer-input", "--format", "csv")
    assert ok.exit_code == 0, ok.output
    assert "after_dense" in ok.output


@pytest.fixture()
def ckpt_copy(tf2_keras2, tmp_path):
    case = cases(tf2_keras2)["lstm"]
    source = (tf2_keras2 / case["files"]["ckpt"]).parent
    target = tmp_path / "ckpt"
    shutil.copytree(source, target)
    return target, tf2_keras2 / case["input"]


def test_cli_truncated_data_file_exits_2(ckpt_copy):
    folder, x = ckpt_copy
    data = next(folder.glob("*.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    assert_user_error(invoke(folder, x), "truncated")


def test_cli_corrupt_data_file_exits_2(ckpt_copy):
    folder, x = ckpt_copy
    data = next(folder.glob("*.data-*"))
    raw = bytearray(data.read_bytes())
    for k in range(0, len(raw), 7):
        raw[k] ^= 0x5A
    data.write_bytes(bytes(raw))
    assert_user_error(invoke(folder, x), "corrupt")


def test_cli_corrupt_index_exits_2(ckpt_copy):
    folder, x = ckpt_copy
    index = next(folder.glob("*.index"))
    raw = bytearray(index.read_bytes())
    raw[len(raw) // 3] ^= 0xFF
    raw[len(raw) // 2] ^= 0xFF
    index.write_bytes(bytes(raw))
    assert_user_error(invoke(folder, x), "weights.index")


def test_cli_truncated_index_exits_2(ckpt_copy):
    folder, x = ckpt_copy
    index = next(folder.glob("*.index"))
    index.write_bytes(index.read_bytes()[:40])
    assert_user_error(invoke(folder, x), "index")


def test_cli_missing_data_file_exits_2(ckpt_copy):
    folder, x = ckpt_copy
    next(folder.glob("*.data-*")).unlink()
    assert_user_error(invoke(folder, x), "missing")


def test_cli_state_file_pointing_nowhere_exits_2(ckpt_copy):
    folder, x = ckpt_copy
    (folder / "checkpoint").write_text('model_checkpoint_path: "gone"\n')
    assert_user_error(invoke(folder, x), "gone")


def test_tracing_a_checkpoint_never_imports_tensorflow(tf2_keras3):
    import subprocess
    import sys

    case = cases(tf2_keras3)["bidirectional"]
    code = (
        "import sys, numpy as np, lstm_trace\n"
        f"n = lstm_trace.load({str(tf2_keras3 / case['files']['tfckpt'])!r})\n"
        f"n.trace(np.load({str(tf2_keras3 / case['input'])!r}))\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_embedding_is_inferred_from_its_table_and_its_mask_is_noted(tf2_keras2, tf2_keras3):
    for directory in (tf2_keras2, tf2_keras3):
        by_name = cases(directory)
        network = lstm_trace.load(directory / by_name["embedding"]["files"]["tfckpt"])
        assert [layer.name for layer in network.layers] == ["tokens", "after_emb"]
        assert network.layers[0].embeddings.shape == (12, 4)
        assert any("Embedding(mask_zero=False)" in n for n in network.notes)
        masked = lstm_trace.load(directory / by_name["embedding_masked"]["files"]["tfckpt"],
                                 config_path=str(directory / by_name["embedding_masked"]["files"]["json"]))
        assert masked.layers[0].mask_zero
