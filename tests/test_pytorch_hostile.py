"""Hostile and damaged PyTorch files: nothing in them runs, and the result is clean.

Each malicious pickle calls something that would create a marker file (``os.system``,
``builtins.eval``, ``subprocess.Popen``, via ``GLOBAL`` and ``STACK_GLOBAL``), in the zip
and the legacy format, alone or hidden inside an otherwise valid state_dict built by
torch. The marker must never appear; the load either refuses with one line (exit 2) or
returns the real weights with the intruder listed as unexplained.
"""

from __future__ import annotations

import contextlib
import pickle
import random
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from builders.torch_cases import CASES  # noqa: F401 - keeps the fixture cache key in sync
from click.testing import CliRunner
from conftest import BUILDERS, build_fixtures, load_manifest

import lstm_trace
from lstm_trace.cli import main
from lstm_trace.engine import TraceError
from lstm_trace.loaders import LoadError
from lstm_trace.loaders.pytorch.pickle_vm import Opaque, load_pickle
from lstm_trace.loaders.pytorch.state_dict import find_weights

ORDERED_DICT_OPEN = b"ccollections\nOrderedDict\nq\x00)Rq\x01("


@pytest.fixture(scope="module")
def torch_fixtures() -> Path:
    return build_fixtures("torch_models", inputs=(BUILDERS / "torch_cases.py",))


@pytest.fixture(scope="module")
def lstm_case(torch_fixtures: Path) -> dict:
    return next(c for c in load_manifest(torch_fixtures) if c["name"] == "lstm")


def _text(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _calls(marker: Path) -> dict[str, bytes]:
    """Opcodes that would create ``marker`` if anything ran them (each leaves one value)."""
    cmd = f"touch {marker}"
    return {
        "os_system": b"cos\nsystem\n" + _text(cmd) + b"\x85R",
        "posix_system": b"cposix\nsystem\n" + _text(cmd) + b"\x85R",
        "stack_global": _text("os") + _text("system") + b"\x93" + _text(cmd) + b"\x85R",
        "eval": b"cbuiltins\neval\n" + _text(f"__import__('os').system({cmd!r})") + b"\x85R",
        "popen": b"csubprocess\nPopen\n](" + _text("touch") + _text(str(marker)) + b"e\x85R",
        "newobj_popen": b"csubprocess\nPopen\n](" + _text("touch") + _text(str(marker))
                        + b"e\x85\x81",
        "build_setstate": b"cos\nsystem\n)\x81" + b"}" + _text("__setstate__") + b"cos\nsystem\nsb",
    }


def _torch_zip(path: Path, data_pkl: bytes, members: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        for name, data in (members or {}).items():
            z.writestr(name, data)
    return path


def _legacy(path: Path, object_pickle: bytes) -> Path:
    head = b"".join(pickle.dumps(v, protocol=2) for v in (
        0x1950A86A20F9469CFC6C, 1001,
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"int": 4}}))
    path.write_bytes(head + object_pickle + pickle.dumps([], protocol=2))
    return path


def _splice_into_state_dict(pkl: bytes, entry: bytes) -> bytes:
    """Insert ``'intruder': <entry>`` as the first item of the pickled OrderedDict."""
    at = pkl.index(ORDERED_DICT_OPEN) + len(ORDERED_DICT_OPEN)
    return pkl[:at] + _text("intruder") + entry + pkl[at:]


@pytest.mark.parametrize("call", list(_calls(Path("m"))))
@pytest.mark.parametrize("container", ["zip", "legacy"])
def test_malicious_pickle_alone_is_refused_without_running(tmp_path, call, container):
    marker = tmp_path / "pwned"
    pkl = b"\x80\x02" + _calls(marker)[call] + b"."
    path = (_torch_zip(tmp_path / "evil.pt", pkl) if container == "zip"
            else _legacy(tmp_path / "evil.pt", pkl))
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 2, result.output
    assert "no model weights found" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists()


@pytest.mark.parametrize("call", list(_calls(Path("m"))))
def test_malicious_entry_hidden_in_a_state_dict_zip_never_runs(tmp_path, torch_fixtures,
                                                              lstm_case, call):
    marker = tmp_path / "pwned"
    source = torch_fixtures / lstm_case["files"]["sd_zip"]["file"]
    path = tmp_path / "hidden.pt"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data.pkl"):
                data = _splice_into_state_dict(data, _calls(marker)[call])
            dst.writestr(item, data)
    network = lstm_trace.load(path)
    x = np.load(torch_fixtures / lstm_case["input"])
    reference = np.load(torch_fixtures / lstm_case["reference"])
    assert np.abs(network.trace(x)["rnn/l0/hidden"] - reference["rnn/l0/hidden"]).max() < 1e-5
    assert any(item.startswith("intruder (") for item in network.unexplained)
    assert not marker.exists()


@pytest.mark.parametrize("call", ["os_system", "eval", "popen"])
def test_malicious_entry_hidden_in_a_legacy_state_dict_never_runs(tmp_path, torch_fixtures,
                                                                 lstm_case, call):
    marker = tmp_path / "pwned"
    source = (torch_fixtures / lstm_case["files"]["legacy"]["file"]).read_bytes()
    path = tmp_path / "hidden-legacy.pt"
    path.write_bytes(_splice_into_state_dict(source, _calls(marker)[call]))
    network = lstm_trace.load(path)
    assert [layer.name for layer in network.recurrent_layers] == ["rnn/l0"]
    assert "intruder (os.system)" in network.unexplained or call != "os_system"
    assert not marker.exists()


def test_placeholders_record_what_they_were_asked_to_do():
    pkl = b"\x80\x02" + _calls(Path("/nonexistent/m"))["os_system"] + b"."
    value, _ = load_pickle(pkl)
    assert isinstance(value, Opaque)
    assert value.qualname == "os.system"
    assert value.args == ("touch /nonexistent/m",)


def test_a_pickled_user_module_is_inert_data():
    """``torch.save(model)`` of an unknown class: its state is read, the class never imported."""
    class_global = b"cmy_project.models\nTagger\n)\x81}("
    state = _text("_parameters") + b"}" + _text("_modules") + b"}" + _text("hidden") + b"K\x07u"
    value, _ = load_pickle(b"\x80\x02" + class_global + state + b"b.")
    assert value.qualname == "my_project.models.Tagger"
    assert value.state["hidden"] == 7
    with pytest.raises(LoadError, match="no model weights found"):
        find_weights(value)
    import sys
    assert "my_project" not in sys.modules


def test_storage_declaring_more_bytes_than_its_member_is_refused(tmp_path, torch_fixtures,
                                                                 lstm_case):
    source = torch_fixtures / lstm_case["files"]["sd_zip"]["file"]
    path = tmp_path / "short.pt"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data/0"):
                data = data[: len(data) // 2]
            dst.writestr(item, data)
    with pytest.raises(LoadError, match="declares .* bytes but its member holds only"):
        lstm_trace.load(path)


def test_legacy_storage_block_past_the_end_is_refused(tmp_path, torch_fixtures, lstm_case):
    source = (torch_fixtures / lstm_case["files"]["legacy"]["file"]).read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(source[:-40])
    with pytest.raises(LoadError, match="past the end of the file"):
        lstm_trace.load(path)


def test_zip_member_with_dotdot_name_is_refused(tmp_path, torch_fixtures, lstm_case):
    source = torch_fixtures / lstm_case["files"]["sd_zip"]["file"]
    path = tmp_path / "dotdot.pt"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        dst.writestr("../../evil.py", b"print('hi')")
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 2
    assert "path-like name" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_storage_key_with_a_path_is_refused(tmp_path, torch_fixtures, lstm_case):
    source = torch_fixtures / lstm_case["files"]["sd_zip"]["file"]
    path = tmp_path / "key.pt"
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data.pkl"):
                data = data.replace(_text("0"), _text("../0"), 1)
            dst.writestr(item, data)
    with pytest.raises(LoadError, match="not a plain member name"):
        lstm_trace.load(path)


def test_zip_bomb_storage_is_refused_before_inflating(tmp_path, torch_fixtures, lstm_case):
    source = torch_fixtures / lstm_case["files"]["sd_zip"]["file"]
    path = tmp_path / "bomb.pt"
    with zipfile.ZipFile(source) as src, \
            zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("/data/0"):
                data = data + bytes(48 << 20)
            dst.writestr(item.filename, data)
    with pytest.raises(LoadError, match="zip bomb"):
        lstm_trace.load(path)


@pytest.mark.parametrize("kind", ["sd_zip", "legacy", "safetensors", "torchscript"])
def test_randomly_damaged_pytorch_files_fail_cleanly(tmp_path, torch_fixtures, kind):
    case = next(c for c in load_manifest(torch_fixtures) if c["name"] == "lstm_3_layers_bi")
    source = (torch_fixtures / case["files"][kind]["file"]).read_bytes()
    x = np.load(torch_fixtures / case["input"])
    rng = random.Random(kind)
    path = tmp_path / "damaged.pt"
    for _ in range(80):
        data = bytearray(source)
        for _ in range(rng.choice([1, 5, 40])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.25:
            data = data[: rng.randrange(len(data))]
        path.write_bytes(bytes(data))
        with contextlib.suppress(LoadError, TraceError):
            lstm_trace.load(path).trace(x)


def test_damaged_pickles_fail_cleanly(torch_fixtures, lstm_case):
    """Byte flips inside data.pkl itself (zip CRCs would catch them first in a real file)."""
    from lstm_trace.loaders.pytorch.pickle_vm import PickleError

    with zipfile.ZipFile(torch_fixtures / lstm_case["files"]["whole"]["file"]) as z:
        pkl = z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    rng = random.Random(0)
    for _ in range(300):
        data = bytearray(pkl)
        for _ in range(rng.choice([1, 3, 10])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        with contextlib.suppress(PickleError, LoadError):
            value, _ = load_pickle(bytes(data), persistent_load=lambda pid: pid)
            with contextlib.suppress(LoadError):
                find_weights(value)


def test_rebuilding_one_big_list_many_times_is_refused():
    """``tuple(L)`` on a memoised 100k-item list, repeated: a memory bomb of a few bytes each."""
    from lstm_trace.loaders.pytorch.pickle_vm import PickleError

    big = b"](" + b"K\x01" * 100_000 + b"eq\x00"
    call = b"cbuiltins\ntuple\nh\x00\x85R0"
    with pytest.raises(PickleError, match="memory bomb"):
        load_pickle(b"\x80\x02" + big + call * 1000 + b"N.")


def test_weights_inside_an_unknown_dict_subclass_are_found():
    """``mylib.AttrDict({...})`` pickles as a call plus SETITEMS: its items are searched."""
    from lstm_trace.loaders.pytorch.pickle_vm import Global

    weights = {"rnn.weight_ih_l0": np.zeros((8, 3)), "rnn.weight_hh_l0": np.zeros((8, 2))}
    checkpoint = Opaque(Global("mylib", "AttrDict"), entries={"state_dict": weights, "epoch": 3})
    found = find_weights(checkpoint)
    assert found.where == "['state_dict']"
    assert list(found.tensors) == ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]


def test_zip_naming_an_impossible_zip_version_is_a_load_error(tmp_path, torch_fixtures,
                                                              lstm_case):
    """A flipped 'version needed to extract' makes zipfile raise NotImplementedError."""
    data = bytearray((torch_fixtures / lstm_case["files"]["sd_zip"]["file"]).read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6:central + 8] = b"\xff\x00"
    path = tmp_path / "version.pt"
    path.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["inspect", str(path)])
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1


def test_zip_with_a_damaged_signature_and_impossible_version_is_a_load_error(
        tmp_path, torch_fixtures, lstm_case):
    """No format claims it (first bytes damaged); describing it must not crash either."""
    data = bytearray((torch_fixtures / lstm_case["files"]["sd_zip"]["file"]).read_bytes())
    data[0:4] = b"XXXX"
    central = data.index(b"PK\x01\x02")
    data[central + 6:central + 8] = b"\xff\x00"
    path = tmp_path / "unknown.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match="not a model file"):
        lstm_trace.load(path)
