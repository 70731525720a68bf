"""Keras model files with a config: ``.keras`` archives (Keras 3) and full-model ``.h5``.

``.keras`` is a zip of ``metadata.json``, ``config.json`` and ``model.weights.h5``. The
weights file names layers by *class-derived* paths (``layers/lstm``, ``layers/lstm_1``:
the snake-cased class name made unique in layer order), not by the user's layer names,
so layers are matched to their weights through the config order.

A full-model ``.h5`` (Keras 2, tf.keras, tf_keras, and Keras 3's legacy writer) keeps
the config as the ``model_config`` attribute and each layer's weights under
``model_weights/<layer name>``, listed in order by the group's ``weight_names`` attribute.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

from ...safe_zip import ZipLimitError, read_member
from .. import hdf5_guard
from ..errors import LoadError
from ..options import LoadOptions
from .config import build_network, parse_config, unique_names
from .keras1 import adapt_keras1
from .spec import CELL_CLASSES, KerasContext, LayerSpec
from .version import decode_attr, keras_major

#: Largest archive member lstm-trace reads into memory (with the ratio and declared-size
#: checks of :mod:`lstm_trace.safe_zip`, the guard against zip bombs).
MAX_MEMBER_BYTES = 8 << 30
MAX_CONFIG_BYTES = 256 << 20


#: Largest single weight array lstm-trace reads from an HDF5 file.
MAX_WEIGHT_BYTES = 4 << 30


def read_weight(data: h5py.Dataset, what: str) -> np.ndarray:
    """A weight dataset's values, refusing (one line each) what no Keras writer stores.

    Weights are plain numbers: compound (``[('re', '<f4'), ('im', '<f4')]``), complex,
    string and opaque dtypes are refused before reading. HDF5 keeps no checksum over Keras
    weights, so damage to a dataset's header can change its type or shape: a float wider
    than 64 bits, or a contiguous dataset larger than its own storage (which would read
    the bytes of its neighbours), is a damaged file. Arrays past :data:`MAX_WEIGHT_BYTES`
    and compressed datasets that would inflate more than ``MAX_RATIO`` times what they
    store (a decompression bomb) are refused before anything is read.
    """
    from ...safe_zip import MAX_RATIO, RATIO_FREE_BYTES

    dtype = data.dtype
    if dtype.names:
        raise LoadError(f"{what} has a compound data type {str(dtype)[:80]}, which Keras never "
                        "writes: lstm-trace reads weights of plain numbers only")
    if (dtype.kind not in "fiub" or dtype.subdtype is not None
            or (dtype.kind == "f" and dtype.itemsize > 8)):
        raise LoadError(f"{what} has data type {dtype}, which Keras never writes: the file "
                        "is damaged; re-save it from the framework")
    nbytes = int(data.size) * dtype.itemsize
    if nbytes > MAX_WEIGHT_BYTES:
        raise LoadError(f"{what} of shape {data.shape} is {nbytes:,} bytes, more than the "
                        f"{MAX_WEIGHT_BYTES >> 30} GiB lstm-trace reads per array")
    stored = data.id.get_storage_size()
    if data.chunks is None and stored not in (0, nbytes):
        raise LoadError(f"{what} claims {nbytes} bytes but stores {stored}: the file is "
                        "damaged; re-save it from the framework")
    if nbytes > RATIO_FREE_BYTES and nbytes > MAX_RATIO * max(stored, 1):
        raise LoadError(f"{what} would inflate {nbytes // max(stored, 1):,} times "
                        f"({stored:,} stored bytes to {nbytes:,}): refused as a decompression bomb")
    return np.asarray(data)


def own_vars(group: h5py.Group) -> list[np.ndarray]:
    vars_group = group.get("vars")
    if not isinstance(vars_group, h5py.Group):
        return []
    keys = sorted(vars_group.keys(), key=lambda k: (len(k), k))
    out = []
    for key in keys:
        data = vars_group[key]
        if not isinstance(data, h5py.Dataset):
            raise LoadError(f"{vars_group.name}/{key} is not a weight array (a {type(data).__name__})")
        out.append(read_weight(data, f"weight {data.name!r}"))
    return out


def collect_keras3_weights(group: h5py.Group, class_name: str, config: dict) -> list[np.ndarray]:
    """A layer's weights from a Keras 3 weights group, in ``layer.get_weights()`` order."""
    out = own_vars(group)

    def child(name: str) -> h5py.Group:
        sub = group.get(name)
        if not isinstance(sub, h5py.Group):
            raise LoadError(f"weights for {class_name} are missing {group.name}/{name}")
        return sub

    if class_name == "Bidirectional":
        forward = config["layer"]
        backward = config.get("backward_layer") or forward
        out += collect_keras3_weights(child("forward_layer"), forward["class_name"], forward["config"])
        out += collect_keras3_weights(child("backward_layer"), backward["class_name"], backward["config"])
    elif class_name == "RNN":
        cell = config["cell"]
        out += collect_keras3_weights(child("cell"), cell["class_name"], cell["config"])
    elif class_name == "StackedRNNCells":
        cells = config["cells"]
        holder = child("cells")
        for name, cell in zip(unique_names([c["class_name"] for c in cells]), cells, strict=True):
            sub = holder.get(name)
            if not isinstance(sub, h5py.Group):
                raise LoadError(f"weights for StackedRNNCells are missing {holder.name}/{name}")
            out += collect_keras3_weights(sub, cell["class_name"], cell["config"])
    elif "cell" in group and class_name not in CELL_CLASSES:
        out += own_vars(child("cell"))
    elif isinstance(group.get("layer"), h5py.Group) and isinstance(config.get("layer"), dict):
        inner = config["layer"]
        out += collect_keras3_weights(group["layer"], inner["class_name"], inner.get("config", {}))
    return out


class Keras3WeightSource:
    """Weights of a ``model.weights.h5`` matched to config layers by class-derived paths."""

    def __init__(self, h5: h5py.File, specs: list[LayerSpec], where: str):
        self.h5 = h5
        self.where = where

    def layer_weights(self, spec: LayerSpec) -> list[np.ndarray]:
        # parse_model_config gave every layer its class-derived path, nested models included.
        group = self.h5.get(spec.keras3_path)
        if not isinstance(group, h5py.Group):
            raise LoadError(
                f"{self.where}: no weights for layer {spec.name!r} "
                f"(expected group {spec.keras3_path})"
            )
        try:
            return collect_keras3_weights(group, spec.class_name, spec.config)
        except LoadError as err:
            raise LoadError(f"{self.where}: {err}") from None


class H5WeightSource:
    """Weights of a Keras full-model or weights-only ``.h5``, by layer name and ``weight_names``."""

    def __init__(self, root: h5py.Group, where: str):
        self.root = root
        self.where = where

    def layer_weights(self, spec: LayerSpec) -> list[np.ndarray]:
        if spec.scope:
            return read_h5_nested_layer(self.root, spec, self.where)
        return read_h5_layer(self.root, spec.name, self.where)


def read_h5_nested_layer(root: h5py.Group, spec: LayerSpec, where: str) -> list[np.ndarray]:
    """A layer inside a nested model: the outer model's group lists all of the sub-model's
    weights; this layer's are those whose path names it (``encoder/lstm/lstm_cell/kernel``)."""
    group = root.get(spec.scope[0])
    if not isinstance(group, h5py.Group):
        raise LoadError(f"{where}: no weights group for sub-model {spec.scope[0]!r}")
    out = []
    for raw in group.attrs.get("weight_names", []):
        weight_name = decode_attr(raw) or ""
        if spec.own_name in weight_name.split("/")[:-1]:
            data = group.get(weight_name)
            if not isinstance(data, h5py.Dataset):
                raise LoadError(f"{where}: weight {weight_name!r} of layer {spec.name!r} is missing")
            out.append(read_weight(data, f"{where}: weight {weight_name!r}"))
    return out


def read_h5_layer(root: h5py.Group, name: str, where: str) -> list[np.ndarray]:
    group = root.get(name)
    if not isinstance(group, h5py.Group):
        raise LoadError(f"{where}: no weights group for layer {name!r}")
    names = [decode_attr(n) for n in group.attrs.get("weight_names", [])]
    out = []
    for weight_name in names:
        data = group.get(weight_name)
        if not isinstance(data, h5py.Dataset):
            raise LoadError(f"{where}: weight {weight_name!r} of layer {name!r} is missing")
        out.append(read_weight(data, f"{where}: weight {weight_name!r}"))
    return out


def load_keras_archive(path: Path, options: LoadOptions):  # -> Network
    """Read a Keras 3 ``.keras`` archive without executing anything in it."""
    where = path.name
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise LoadError(f"{where}: not a readable .keras archive ({err})") from None
    with archive:
        members = set(archive.namelist())
        # Keras 2.11 / 2.12 named the weights member variables.h5 (same layout inside).
        weights_member = "variables.h5" if "model.weights.h5" not in members and \
            "variables.h5" in members else "model.weights.h5"
        for required in ("config.json", weights_member):
            if required not in members:
                raise LoadError(
                    f"{where}: .keras archive has no {required} (members: "
                    f"{', '.join(sorted(members)[:8]) or 'none'}); it may not be a Keras model"
                )
        config = _read_json_member(archive, "config.json", where)
        metadata = (
            _read_json_member(archive, "metadata.json", where) if "metadata.json" in members else {}
        )
        try:
            weights_bytes = read_member(archive, weights_member, MAX_MEMBER_BYTES)
        except ZipLimitError as err:
            raise LoadError(f"{where}: {err}") from None
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
            raise LoadError(f"{where}: cannot read {weights_member} ({err})") from None
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    specs, input_shape, input_dtype = parse_config(config, where)
    ctx = KerasContext(keras_major(version, 3), options, [], f"Keras {version or '3'} .keras")
    hdf5_guard.check(weights_bytes, f"{where}: {weights_member}")
    try:
        h5 = h5py.File(io.BytesIO(weights_bytes), "r")
    except OSError as err:
        raise LoadError(f"{where}: {weights_member} is not valid HDF5 ({err})") from None
    with h5:
        return build_network(
            specs, Keras3WeightSource(h5, specs, where), ctx,
            input_shape=input_shape, input_dtype=input_dtype, keras_version=version,
        )


def _read_json_member(archive: zipfile.ZipFile, name: str, where: str) -> dict:
    try:
        return json.loads(read_member(archive, name, MAX_CONFIG_BYTES))
    except ZipLimitError as err:
        raise LoadError(f"{where}: {err}") from None
    except (ValueError, zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
        raise LoadError(f"{where}: {name} is not valid JSON ({err})") from None


def load_keras_h5_model(h5: h5py.File, path: Path, options: LoadOptions):  # -> Network
    """A full-model ``.h5``: ``model_config`` attribute plus ``model_weights/<layer>``."""
    where = path.name
    raw = decode_attr(h5.attrs.get("model_config"))
    try:
        config = json.loads(raw or "")
    except ValueError as err:
        raise LoadError(f"{where}: model_config attribute is not valid JSON ({err})") from None
    root = h5.get("model_weights", h5)
    version = decode_attr(h5.attrs.get("keras_version") or root.attrs.get("keras_version"))
    major = keras_major(version, 2)
    specs, input_shape, input_dtype = parse_config(config, where)
    specs, source, major = adapt_keras1(specs, H5WeightSource(root, where), major, where)
    label = "Keras 3 legacy .h5" if major >= 3 else f"Keras {version or major} .h5"
    ctx = KerasContext(major, options, [], label)
    return build_network(
        specs, source, ctx,
        input_shape=input_shape, input_dtype=input_dtype, keras_version=version,
    )


def read_config_file(path: str) -> dict:
    """A ``model.to_json()`` file (``--config``): the config of a config-less weights file."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise LoadError(f"{path}: cannot read the --config file ({err.strerror or err})") from None
    try:
        config = json.loads(text)
    except ValueError as err:
        raise LoadError(f"{path}: --config is not valid JSON ({err})") from None
    if isinstance(config, dict) and "model_config" in config:  # a saved metadata wrapper
        config = config["model_config"]
    return config


def load_weights_with_config(h5: h5py.File, path: Path, options: LoadOptions):  # -> Network
    """A weights-only ``.h5`` plus ``--config model.json``: exact names and options."""
    config = read_config_file(options.config_path or "")
    specs, input_shape, input_dtype = parse_config(config, Path(options.config_path or "").name)
    if isinstance(h5.get("layers"), h5py.Group) and "layer_names" not in h5.attrs:
        version = None
        source = Keras3WeightSource(h5, specs, path.name)
        major = 3
    else:
        root = h5.get("model_weights", h5)
        version = decode_attr(root.attrs.get("keras_version"))
        source = H5WeightSource(root, path.name)
        major = keras_major(version, 2)
    specs, source, major = adapt_keras1(specs, source, major, path.name)
    ctx = KerasContext(major, options, [], f"Keras {version or major} weights + --config")
    return build_network(
        specs, source, ctx, input_shape=input_shape, input_dtype=input_dtype, keras_version=version,
    )
