"""TF1-style SavedModels of RNN cells (``tf.compat.v1.saved_model.simple_save`` / ``Builder``).

Such a directory is a ``saved_model.pb`` holding one ``MetaGraphDef`` per tag set plus a
``variables/`` checkpoint written by a TF1 ``Saver`` (named variables, no object graph, no
Keras metadata). The cells are read as in a TF1 checkpoint (:mod:`.tf1_checkpoint`), with
the MetaGraphDef as their graph: ``forget_bias``, ``cell_clip``, ``proj_clip`` and the
activation come from the ops that use each cell's kernel, as from a ``.meta`` file.

``SavedModel { int64 saved_model_schema_version = 1; repeated MetaGraphDef meta_graphs = 2; }``,
``MetaGraphDef { MetaInfoDef meta_info_def = 1 { repeated string tags = 4; } GraphDef graph_def = 2; }``.
The graph tagged ``serve`` is used (the first one if none is).
"""

from __future__ import annotations

from pathlib import Path

from ..network import Network
from .errors import LoadError
from .options import LoadOptions
from .protobuf_wire import (
    ProtobufDecodeError,
    get_message,
    parse_message,
    repeated_strings,
)
from .tf.bundle import TensorBundle
from .tf.meta_graph import MetaGraph, MetaGraphError
from .tf1_checkpoint import load_tf1_checkpoint

GRAPH_FILE = "saved_model.pb"
SERVING_TAG = "serve"


def serving_meta_graph(directory: Path, notes: list[str]) -> MetaGraph | None:
    """The ``serve`` MetaGraphDef of ``saved_model.pb``, or ``None`` (with a note) when the
    file is missing or unreadable: the cells are then read with TF's defaults."""
    path = directory / GRAPH_FILE
    if not path.is_file():
        return None
    try:
        saved_model = parse_message(path.read_bytes())
        candidates = [raw for raw in saved_model.get(2, []) if isinstance(raw, bytes)]
        chosen = None
        for raw in candidates:
            info = get_message(parse_message(raw), 1) or {}
            if SERVING_TAG in repeated_strings(info, 4):
                chosen = raw
                break
        chosen = chosen if chosen is not None else (candidates[0] if candidates else None)
        if chosen is None:
            notes.append(f"ignored {GRAPH_FILE}: it holds no MetaGraphDef; using TF defaults "
                         "for what it would say")
            return None
        return MetaGraph(chosen, GRAPH_FILE)
    except (ProtobufDecodeError, MetaGraphError, OSError) as err:
        notes.append(f"ignored {GRAPH_FILE}: not readable ({err}); using TF defaults for what "
                     "it would say")
        return None


def open_tf1_saved_model(bundle: TensorBundle, directory: Path, options: LoadOptions) -> Network:
    """The Network of the TF1 RNN cells in a SavedModel whose variables have no object graph."""
    notes: list[str] = []
    graph = serving_meta_graph(directory, notes)
    try:
        network = load_tf1_checkpoint(bundle, directory, options, graph=graph, graph_name=GRAPH_FILE)
    except LoadError as err:
        raise LoadError(f"TF1 SavedModel {directory.name}: {err}") from None
    network.source = f"TF1 SavedModel {directory.name}"
    network.notes[:0] = notes
    return network
