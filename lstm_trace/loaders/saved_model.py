"""SavedModel directories: ``saved_model.pb`` + ``variables/variables.{index,data-*}``.

Only the variables and the Keras metadata are read; the graph in ``saved_model.pb`` holds
TensorFlow functions, which lstm-trace never executes (nor needs).

- **tf_keras** ``model.save('dir')`` (``TF_USE_LEGACY_KERAS=1``) also writes
  ``keras_metadata.pb``: a ``SavedMetadata`` proto whose nodes carry each Keras object's
  JSON metadata. The root node's metadata holds the model config (Sequential or
  Functional) and ``keras_version``, so such a directory is traced with the layers'
  real names and options, the weights found by their full names in the variables.
- **Keras 3** ``model.export('dir')`` and ``tf.saved_model.save`` keep no Keras config:
  the recurrent layers are inferred from the variables' full names and shapes, like a
  TF2 checkpoint (:mod:`.tf2_checkpoint`), or built from ``--config model.json``.
- A TF1 SavedModel (variables without an object graph) goes to :mod:`.tf1_saved_model`.

``SavedMetadata`` (``keras/protobuf/saved_metadata.proto``)::

    SavedMetadata { repeated SavedObject nodes = 1; }
    SavedObject   { int32 node_id = 2; string node_path = 3; string identifier = 4;
                    string metadata = 5;   // JSON
                    VersionDef version = 6; }
"""

from __future__ import annotations

import json
from pathlib import Path

from ..network import Network
from .errors import LoadError
from .keras.spec import KerasContext
from .options import LoadOptions
from .protobuf_wire import ProtobufDecodeError, get_string, parse_message, repeated_messages
from .tf.bundle import TensorBundle
from .tf.object_graph import parse_object_graph
from .tf2_checkpoint import (
    Inventory,
    config_keras_major,
    infer_network,
    looks_like_keras3,
    network_from_config,
    network_with_config_file,
    take_inventory,
    untuple,
)

GRAPH_FILES = ("saved_model.pb", "saved_model.pbtxt")
METADATA_FILE = "keras_metadata.pb"
#: ``keras_metadata.pb`` larger than this is not a metadata file lstm-trace should parse.
MAX_METADATA_BYTES = 512 << 20


def match(path: Path) -> bool:
    """A directory holding ``saved_model.pb`` (or ``.pbtxt``), or that file itself."""
    if path.is_dir():
        return any((path / name).is_file() for name in GRAPH_FILES)
    return path.name in GRAPH_FILES and path.is_file()


def open(path: Path, options: LoadOptions) -> Network:  # noqa: A001 - the registry's verb
    """Read a SavedModel directory into a canonical Network, without TensorFlow."""
    directory = path if path.is_dir() else path.parent
    where = directory.name or str(directory)
    prefix = directory / "variables" / "variables"
    if not Path(f"{prefix}.index").is_file():
        raise LoadError(
            f"{where}: SavedModel has no variables/variables.index, so it stores no weights "
            "lstm-trace can read (a graph with constants folded in?); save the model with "
            "its variables, or as .keras / a checkpoint"
        )
    bundle = TensorBundle.open(prefix)
    graph_bytes = bundle.object_graph()
    if graph_bytes is None:
        return _tf1_saved_model(bundle, directory, options)
    graph = parse_object_graph(graph_bytes)
    inv = take_inventory(bundle, graph)
    major = 3 if looks_like_keras3(graph) else 2
    if options.config_path:
        return network_with_config_file(options, bundle, inv, major, f"SavedModel {where}")
    metadata = read_keras_metadata(directory)
    if metadata is not None:
        network = _from_metadata(metadata, bundle, inv, options, where)
        if network is not None:
            return network
    return _inferred(bundle, inv, options, where, major, has_metadata=metadata is not None)


def _tf1_saved_model(bundle: TensorBundle, directory: Path, options: LoadOptions) -> Network:
    from .tf1_saved_model import open_tf1_saved_model

    return open_tf1_saved_model(bundle, directory, options)


def read_keras_metadata(directory: Path) -> list[dict] | None:
    """The JSON metadata of each node in ``keras_metadata.pb`` (root first), or ``None``.

    Each item is ``{"node_path": "root.layer-1", "identifier": "_tf_keras_layer",
    "metadata": {...}}``.
    """
    path = directory / METADATA_FILE
    if not path.is_file():
        return None
    where = f"{directory.name}/{METADATA_FILE}"
    size = path.stat().st_size
    if size > MAX_METADATA_BYTES:
        raise LoadError(f"{where}: {size} bytes, too large for Keras metadata")
    try:
        message = parse_message(path.read_bytes())
        nodes = []
        for node in repeated_messages(message, 1):
            text = get_string(node, 5)
            nodes.append({
                "node_path": get_string(node, 3),
                "identifier": get_string(node, 4),
                "metadata": untuple(json.loads(text)) if text else {},
            })
    except (ProtobufDecodeError, ValueError, UnicodeDecodeError) as err:
        raise LoadError(
            f"{where} is corrupt ({err}); remove it to trace from the variables alone, "
            "or pass --config model.json"
        ) from None
    return nodes


def _from_metadata(
    metadata: list[dict], bundle: TensorBundle, inv: Inventory, options: LoadOptions, where: str,
) -> Network | None:
    """A network from the root node's model config, or ``None`` if it has none (subclassed)."""
    root = next((n["metadata"] for n in metadata if n["node_path"] == "root"), None)
    if not isinstance(root, dict):
        return None
    config = root.get("model_config")
    if not isinstance(config, dict) and isinstance(root.get("config"), dict):
        config = {"class_name": root.get("class_name"), "config": root["config"]}
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict) \
            or "layers" not in config["config"]:
        return None  # a subclassed model: no layer graph, infer from the variables
    version = root.get("keras_version")
    major, version = config_keras_major({"keras_version": version} if version else config, 2)
    ctx = KerasContext(major, options, [], f"Keras {version or major} SavedModel {where}")
    return network_from_config(
        config, bundle, inv, ctx, where=f"{where}/{METADATA_FILE}", keras_version=version,
    )


def _inferred(
    bundle: TensorBundle, inv: Inventory, options: LoadOptions, where: str, major: int,
    *, has_metadata: bool,
) -> Network:
    writer = "Keras 3" if major == 3 else "tf_keras"
    ctx = KerasContext(major, options, [], f"SavedModel {where} ({writer} objects, no Keras config)")
    why = (
        "its keras_metadata.pb has no layer graph (a subclassed model)" if has_metadata
        else "it has no keras_metadata.pb (Keras 3 export / tf.saved_model.save)"
    )
    if not inv.model:
        raise LoadError(
            f"{where}: SavedModel has no model variables with names and {why}; "
            "pass --config model.json (the model's to_json()) or trace a .keras file"
        )
    try:
        network = infer_network(bundle, inv, ctx, what="SavedModel")
    except LoadError as err:
        raise LoadError(
            f"{err}; {why} — pass --config model.json (the model's to_json()) or trace a "
            ".keras file"
        ) from None
    network.notes.insert(0, f"{where}: {why}; layers inferred from the variables")
    return network
