"""Damaged and hostile model files: a clean LoadError (CLI: one line, exit 2), or a model
whose only difference is weight values that the damaged file's bytes really hold.

Checksums: a ``.keras`` archive's members carry zip CRC-32s, which ``zipfile`` checks when
it reads a member, so any change to the config or weight bytes is an error. Keras's HDF5
files have no checksum over their weight values (Keras writes no fletcher32 filter), so
a changed weight byte can load as a different model; the tests below require that such a
file differs from the original in nothing but weight values, each equal to what the
file's bytes at that dataset's place now say ("weights") or, when a damaged object header
moved a dataset's address, to other bytes of the file ("moved"). A dataset written with
fletcher32 is checked.
"""

from __future__ import annotations

import dataclasses
import json
import random
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import lstm_trace
from lstm_trace.cli import main
from lstm_trace.engine import TraceError
from lstm_trace.layers import LayerReplayError
from lstm_trace.loaders import LoadError

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"
EXPECTED = (LoadError, TraceError, LayerReplayError)
STRIDE = 11
WEIGHT_FIELDS = ("kernel", "recurrent_kernel", "bias", "recurrent_bias", "projection")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Where an HDF5 dataset's values lie in the original file (contiguous storage)."""

    name: str
    offset: int
    size: int
    dtype: np.dtype
    shape: tuple[int, ...]

    def values_in(self, data: bytes) -> np.ndarray | None:
        """The dataset's values as ``data`` holds them at the original place."""
        raw = data[self.offset:self.offset + self.size]
        if len(raw) != self.size:
            return None
        return np.frombuffer(raw, self.dtype).reshape(self.shape)


def h5_datasets(path: Path) -> list[Dataset]:
    found: list[Dataset] = []

    def visit(name: str, obj) -> None:
        if isinstance(obj, h5py.Dataset):
            assert obj.chunks is None and obj.id.get_offset() is not None, name
            found.append(Dataset(name, obj.id.get_offset(), obj.id.get_storage_size(),
                                 obj.dtype, obj.shape))

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def structure(network) -> tuple:
    """Everything about a network's layers but their weight values."""
    layers = []
    for layer in network.layers:
        entry = [type(layer).__name__, layer.name]
        for direction in getattr(layer, "directions", []):
            cell = direction.cell
            entry.append((direction.name, direction.reverse, cell.kind, cell.units, cell.activation,
                          cell.recurrent_activation, cell.reset_after, cell.forget_bias,
                          cell.cell_clip, cell.proj_clip, sorted(cell.peepholes or {}),
                          [None if getattr(cell, f) is None else getattr(cell, f).shape
                           for f in WEIGHT_FIELDS]))
        layers.append(tuple(map(str, entry)))
    # input_shape / input_dtype are shown by inspect, not used by a trace: a damaged config
    # string there ("fl\x7fat32") still loads (see the report of issue 15).
    return tuple(layers)


def weights(network) -> dict[str, np.ndarray]:
    out = {}
    for layer in network.recurrent_layers:
        for direction in layer.directions:
            cell = direction.cell
            for f in WEIGHT_FIELDS:
                if getattr(cell, f) is not None:
                    out[f"{layer.name}/{direction.name}/{f}"] = getattr(cell, f)
            for gate, value in (cell.peepholes or {}).items():
                out[f"{layer.name}/{direction.name}/peephole/{gate}"] = value
    return out


class Original:
    """The undamaged file: bytes, network, trace, and (HDF5) where each dataset lies."""

    def __init__(self, name: str):
        self.path = SAMPLES / name
        self.data = self.path.read_bytes()
        self.x = np.load(SAMPLES / "brackets_input.npy")
        self.network = lstm_trace.load(self.path)
        self.trace = self.network.trace(self.x)
        self.datasets = h5_datasets(self.path) if name.endswith(".h5") else []

    def outcome(self, data: bytes, path: Path) -> str:
        """Load ``data`` as a model file: ``error``, ``same`` or ``weights`` (see the module)."""
        path.write_bytes(data)
        try:
            network = lstm_trace.load(path)
            trace = network.trace(self.x)
        except EXPECTED as err:
            message = str(err)
            assert message and "\n" not in message and "Traceback" not in message, message
            return "error"
        assert structure(network) == structure(self.network)
        if network.notes != self.network.notes:
            # A damaged attribute name (``model_config``) leaves a weights-only file: said so.
            assert any("weights-only file, assumed" in n for n in network.notes), network.notes
        common = min(len(data), len(self.data))
        changed_bytes = np.flatnonzero(np.frombuffer(data, np.uint8, common)
                                       != np.frombuffer(self.data, np.uint8, common))
        mine, theirs = weights(network), weights(self.network)
        assert mine.keys() == theirs.keys()
        changed = [k for k in mine if not np.array_equal(mine[k], theirs[k], equal_nan=True)]
        in_data = np.zeros(len(changed_bytes), bool)
        for d in self.datasets:
            in_data |= (changed_bytes >= d.offset) & (changed_bytes < d.offset + d.size)
        moved = False
        for key in changed:
            at_place = [d for d in self.datasets
                        if ((changed_bytes >= d.offset) & (changed_bytes < d.offset + d.size)).any()
                        and (v := d.values_in(data)) is not None
                        and np.array_equal(v, mine[key], equal_nan=True)]
            if at_place:
                continue
            # A damaged object header can move a dataset's address (no checksum covers it):
            # then the values are other bytes of the same file.
            assert not in_data.all() and data.find(mine[key].tobytes()) >= 0, (
                f"{key} changed, but its values are not bytes of the damaged file")
            moved = True
        if not changed:
            assert trace.keys() == self.trace.keys()
            for key in self.trace:
                np.testing.assert_array_equal(trace[key], self.trace[key], err_msg=key)
            return "same"
        for key, value in trace.items():
            assert value.shape == self.trace[key].shape, key
        return "moved" if moved else "weights"


@pytest.fixture(scope="module", params=["brackets.h5", "brackets.keras"])
def original(request) -> Original:
    return Original(request.param)


def test_randomly_damaged_files_fail_cleanly_or_differ_only_in_weights(original, tmp_path):
    rng = random.Random(original.path.name)
    path = tmp_path / original.path.name
    outcomes = []
    for _ in range(60):
        data = bytearray(original.data)
        for _ in range(rng.choice([1, 5, 40])):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.25:
            data = data[: rng.randrange(len(data))]
        outcomes.append(original.outcome(bytes(data), path))
    assert "error" in outcomes
    if original.path.suffix == ".keras":  # CRC-32 over every member: no silent change
        assert "weights" not in outcomes and "moved" not in outcomes


def test_single_byte_flips_across_the_file(original, tmp_path):
    """Every 11th byte of the file XOR 0x10, one at a time (about 2,700 loads per file).

    Not every byte: 30,000 loads per file take minutes of wall time on the shared 2-core
    test machine. Every 11th still lands in each object header, B-tree node, heap, the
    config attribute and every weight dataset many times (offsets up to 11 apart).
    """
    path = tmp_path / original.path.name
    counts: dict[str, int] = {}
    for offset in range(0, len(original.data), STRIDE):
        data = bytearray(original.data)
        data[offset] ^= 0x10
        result = original.outcome(bytes(data), path)
        counts[result] = counts.get(result, 0) + 1
    if original.path.suffix == ".keras":
        assert "weights" not in counts and "moved" not in counts, counts
    else:  # exactly the flips inside the LSTM's kernel, recurrent kernel and bias change it
        lstm = [d for d in original.datasets if d.name.startswith("model_weights/lstm/")]
        inside = sum(1 for offset in range(0, len(original.data), STRIDE)
                     if any(d.offset <= offset < d.offset + d.size for d in lstm))
        assert counts.get("weights", 0) == inside, counts


def test_fletcher32_checksum_of_an_hdf5_dataset_is_checked(tmp_path):
    """Where a dataset has a checksum (fletcher32, chunked), a changed value is a LoadError."""
    path = tmp_path / "checked.h5"
    with h5py.File(SAMPLES / "brackets.h5", "r") as src, h5py.File(path, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value

        def copy(name: str, obj) -> None:
            if isinstance(obj, h5py.Group):
                group = dst.require_group(name)
                for key, value in obj.attrs.items():
                    group.attrs[key] = value
            else:
                ds = dst.create_dataset(name, data=obj[()], **(
                    {"chunks": obj.shape, "fletcher32": True} if obj.ndim else {}))
                for key, value in obj.attrs.items():
                    ds.attrs[key] = value

        src.visititems(copy)
    x = np.load(SAMPLES / "brackets_input.npy")
    original = lstm_trace.load(SAMPLES / "brackets.h5").trace(x)
    checked = lstm_trace.load(path).trace(x)
    np.testing.assert_array_equal(checked["lstm/hidden"], original["lstm/hidden"])
    with h5py.File(path, "r") as f:
        kernel = f["model_weights/lstm/brackets/lstm/lstm_cell/kernel"]
        assert kernel.fletcher32
        offset = kernel.id.get_chunk_info(0).byte_offset
    data = bytearray(path.read_bytes())
    data[offset + 100] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match="checked.h5"):
        lstm_trace.load(path)


def test_changed_byte_in_a_keras_archive_member_fails_its_crc(tmp_path):
    with zipfile.ZipFile(SAMPLES / "brackets.keras") as archive:
        info = archive.getinfo("model.weights.h5")
        assert info.compress_type == zipfile.ZIP_STORED
        start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data = bytearray((SAMPLES / "brackets.keras").read_bytes())
    data[start + info.file_size // 2] ^= 0x10
    path = tmp_path / "damaged.keras"
    path.write_bytes(bytes(data))
    with pytest.raises(LoadError, match="damaged.keras"):
        lstm_trace.load(path)


def _rewrite_config(tmp_path: Path, edit) -> Path:
    path = tmp_path / "edited.keras"
    with zipfile.ZipFile(SAMPLES / "brackets.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data))).encode()
            dst.writestr(item, data)
    return path


def test_deeply_nested_config_is_a_load_error(tmp_path):
    path = tmp_path / "deep.keras"
    with zipfile.ZipFile(SAMPLES / "brackets.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for item in src.infolist():
            data = b"[" * 200000 + b"]" * 200000 if item.filename == "config.json" else src.read(item)
            dst.writestr(item, data)
    with pytest.raises(LoadError):
        lstm_trace.load(path)


def test_lambda_layer_is_never_run(tmp_path):
    def add_lambda(config):
        layers = config["config"]["layers"]
        lam = {"module": "keras.layers", "class_name": "Lambda", "config": {
            "name": "evil", "function": {"class_name": "__lambda__", "config": {
                "code": "aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ3RvdWNoIC90bXAvcHduZWQnKQ==",
                "defaults": None, "closure": None}}}}
        layers.insert(1, lam)
        return config

    path = _rewrite_config(tmp_path, add_lambda)
    result = CliRunner().invoke(main, [str(path), str(SAMPLES / "brackets_input.npy")])
    assert result.exit_code == 2
    assert "Lambda" in result.output and "--layer-input" in result.output
    assert "Traceback" not in result.output


def test_wrong_units_in_config_is_a_load_error(tmp_path):
    def bad_units(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["units"] = 7
        return config

    with pytest.raises(LoadError, match="lstm"):
        lstm_trace.load(_rewrite_config(tmp_path, bad_units))


def test_non_numeric_units_is_a_load_error(tmp_path):
    def bad_units(config):
        for layer in config["config"]["layers"]:
            if layer["class_name"] == "LSTM":
                layer["config"]["units"] = "many"
        return config

    with pytest.raises(LoadError):
        lstm_trace.load(_rewrite_config(tmp_path, bad_units))


def test_subclassed_model_config_is_a_clear_error(tmp_path):
    path = _rewrite_config(tmp_path, lambda c: {"class_name": "MyModel", "config": {}})
    with pytest.raises(LoadError, match="subclassed"):
        lstm_trace.load(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    with pytest.raises(LoadError, match="empty.h5"):
        lstm_trace.load(path)


def test_directory_that_is_no_model(tmp_path):
    with pytest.raises(LoadError, match="neither a SavedModel"):
        lstm_trace.load(tmp_path)
