"""SavedModel directories traced without TensorFlow match TensorFlow at every step (atol 1e-5).

tf_keras ``model.save(dir)`` directories carry the Keras config in ``keras_metadata.pb``
(names and every option); Keras 3 ``model.export`` and ``tf.saved_model.save`` directories
are inferred from their variables, or built from ``--config``.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from builders.tf2_models import CASES
from conftest import build_fixtures
from tf2_checks import ATOL, cases, check_against_framework, check_assumed_defaults
from workflow_common import assert_user_error, invoke

import lstm_trace
from lstm_trace.loaders import LoadError, detect_format

SAVED_MODELS = {"keras2": ["savedmodel"], "keras3": ["export", "tf_saved"]}
#: What a Keras 3 subclassed model's SavedModel can name its layer by (no layer names kept):
#: the attribute holding it where the object tree survives, the model's name where it is flat.
NAMES_NOT_STORED = {
    ("keras3", "subclassed", "tf_saved"): {"sub_lstm": "rnn"},
    ("keras3", "subclassed", "export"): {"sub_lstm": "tagger"},
}


@pytest.fixture(scope="session")
def tf2_keras2():
    return build_fixtures("tf2_models", legacy_keras=True)


@pytest.fixture(scope="session")
def tf2_keras3():
    return build_fixtures("tf2_models")


@pytest.fixture()
def fixtures(request):
    return lambda backend: request.getfixturevalue(f"tf2_{backend}")


def _params(*, with_config: bool = False):
    out = []
    for backend, fmts in SAVED_MODELS.items():
        for case in CASES:
            if backend not in case.get("backends", ["keras2", "keras3"]):
                continue
            if with_config and case.get("subclassed"):
                continue
            out += [pytest.param(backend, case["name"], fmt, id=f"{backend}-{case['name']}-{fmt}")
                    for fmt in fmts]
    return out


@pytest.mark.parametrize(("backend", "name", "fmt"), _params())
def test_saved_model_matches_tensorflow(fixtures, backend, name, fmt):
    directory = fixtures(backend)
    case = cases(directory)[name]
    spec = next(c for c in CASES if c["name"] == name)
    network = lstm_trace.load(directory / case["files"][fmt])
    has_config = backend == "keras2" and not spec.get("subclassed")
    if spec.get("needs_config") and not has_config:
        # Options only a config carries: traced as the notes say, which is not TensorFlow.
        configured = lstm_trace.load(directory / case["files"][fmt],
                                     config_path=str(directory / case["files"]["json"]))
        check_assumed_defaults(network, configured, case, directory)
        return
    layer_input = name == "dense_front" and not has_config
    check_against_framework(network, case, directory, family="SavedModels", layer_input=layer_input,
                            renamed=NAMES_NOT_STORED.get((backend, name, fmt)))


@pytest.mark.parametrize(("backend", "name", "fmt"), _params(with_config=True))
def test_saved_model_with_config_matches_tensorflow(fixtures, backend, name, fmt):
    directory = fixtures(backend)
    case = cases(directory)[name]
    network = lstm_trace.load(directory / case["files"][fmt],
                              config_path=str(directory / case["files"]["json"]))
    check_against_framework(network, case, directory, family="SavedModels")


def test_tf_keras_saved_model_carries_names_and_options(tf2_keras2):
    case = cases(tf2_keras2)["options"]
    network = lstm_trace.load(tf2_keras2 / case["files"]["savedmodel"])
    assert network.keras_version == "2.21.0"
    assert not any("assumed" in n for n in network.notes), network.notes
    direction = network.layer("opt_lstm").directions[0]
    assert direction.reverse
    assert direction.cell.activation == "relu"
    assert direction.cell.recurrent_activation == "hard_sigmoid_keras2"
    assert network.input_shape == (7, 3)


def test_tf_keras_saved_model_replays_the_layers_before_the_rnn(tf2_keras2):
    case = cases(tf2_keras2)["dense_front"]
    network = lstm_trace.load(tf2_keras2 / case["files"]["savedmodel"])
    assert [layer.name for layer in network.layers] == ["proj", "after_dense"]


def test_subclassed_tf_keras_saved_model_is_inferred_with_its_layer_names(tf2_keras2):
    case = cases(tf2_keras2)["subclassed"]
    network = lstm_trace.load(tf2_keras2 / case["files"]["savedmodel"])
    assert [layer.name for layer in network.recurrent_layers] == ["sub_lstm"]
    assert any("no layer graph" in n for n in network.notes)


def test_training_state_is_listed_not_used(tf2_keras2):
    case = cases(tf2_keras2)["lstm"]
    network = lstm_trace.load(tf2_keras2 / case["files"]["savedmodel"])
    text = "\n".join(network.unexplained)
    assert "optimizer variables" in text and "metrics variables" in text
    assert "enc_lstm" not in text


def test_saved_model_pb_file_and_directory_are_the_same_model(tf2_keras3):
    case = cases(tf2_keras3)["stacked"]
    folder = tf2_keras3 / case["files"]["export"]
    assert detect_format(folder) == "saved_model"
    assert detect_format(folder / "saved_model.pb") == "saved_model"
    x = np.load(tf2_keras3 / case["input"])
    a = lstm_trace.load(folder).trace(x)
    b = lstm_trace.load(folder / "saved_model.pb").trace(x)
    assert sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize(("backend", "fmt"), [("keras2", "savedmodel"), ("keras3", "export")])
def test_cli_traces_a_saved_model_directory(fixtures, tmp_path, backend, fmt):
    directory = fixtures(backend)
    case = cases(directory)["bidirectional"]
    out = tmp_path / "trace.npz"
    result = invoke(directory / case["files"][fmt], directory / case["input"], "-o", out)
    assert result.exit_code == 0, result.output
    reference = np.load(directory / case["reference"])
    with np.load(out) as got:
        for prefix in ("bi_lstm/forward", "bi_lstm/backward", "bi_gru/forward", "bi_gru/backward"):
            assert np.abs(got[f"{prefix}/hidden"] - reference[f"{prefix}/hidden"]).max() < ATOL


def test_cli_config_for_a_keras3_export(tf2_keras3, tmp_path):
    case = cases(tf2_keras3)["options"]
    out = tmp_path / "trace.npz"
    result = invoke(tf2_keras3 / case["files"]["export"], tf2_keras3 / case["input"],
                    "--config", tf2_keras3 / case["files"]["json"], "-o", out)
    assert result.exit_code == 0, result.output
    reference = np.load(tf2_keras3 / case["reference"])
    with np.load(out) as got:
        assert np.abs(got["opt_lstm/hidden"] - reference["opt_lstm/hidden"]).max() < ATOL


@pytest.fixture()
def saved_copy(tf2_keras2, tmp_path):
    case = cases(tf2_keras2)["lstm"]
    target = tmp_path / "model"
    shutil.copytree(tf2_keras2 / case["files"]["savedmodel"], target)
    return target, tf2_keras2 / case["input"]


def test_cli_saved_model_without_variables_exits_2(saved_copy):
    folder, x = saved_copy
    shutil.rmtree(folder / "variables")
    assert_user_error(invoke(folder, x), "no variables/variables.index")


def test_cli_corrupt_keras_metadata_exits_2(saved_copy):
    folder, x = saved_copy
    raw = bytearray((folder / "keras_metadata.pb").read_bytes())
    (folder / "keras_metadata.pb").write_bytes(bytes(raw[: len(raw) // 2]))
    assert_user_error(invoke(folder, x), "keras_metadata.pb is corrupt", "--config")


def test_saved_model_without_keras_metadata_falls_back_to_the_variables(saved_copy):
    folder, x = saved_copy
    (folder / "keras_metadata.pb").unlink()
    network = lstm_trace.load(folder)
    assert [layer.name for layer in network.recurrent_layers] == ["enc_lstm"]
    assert any("no keras_metadata.pb" in n for n in network.notes)


def test_cli_truncated_variables_exit_2(saved_copy):
    folder, x = saved_copy
    data = next((folder / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[:64])
    assert_user_error(invoke(folder, x), "truncated")


def test_cli_corrupt_variables_index_exits_2(saved_copy):
    folder, x = saved_copy
    index = folder / "variables" / "variables.index"
    index.write_bytes(b"\0" * 10)
    assert_user_error(invoke(folder, x), "variables.index")


def test_config_that_is_not_json_is_refused(tf2_keras3, tmp_path):
    case = cases(tf2_keras3)["lstm"]
    bad = tmp_path / "model.json"
    bad.write_text("{not json")
    with pytest.raises(LoadError, match="not valid JSON"):
        lstm_trace.load(tf2_keras3 / case["files"]["export"], config_path=str(bad))
