"""TF2 object checkpoints: ``model.save_weights`` (TF format) and ``tf.train.Checkpoint``.

An object checkpoint stores variables under *object paths* (``layer_with_weights-0/cell/
kernel/.ATTRIBUTES/VARIABLE_VALUE`` from tf_keras, ``model/_operations/1/cell/kernel/...``
from Keras 3) and, in its object graph, each variable's ``full_name``: the name the
variable had in the model, which is the same in both Keras versions::

    my_lstm/lstm_cell/kernel                      LSTM layer "my_lstm"
    bi/forward_gru/gru_cell/bias                  Bidirectional "bi", forward direction
    rnn/stacked_rnn_cells/lstm_cell/kernel        RNN(StackedRNNCells) "rnn", a cell of it
    sequential/lstm/lstm_cell/kernel              Keras 3 Sequential: the model name first
    Adam/m/my_lstm/lstm_cell/kernel               an optimizer slot (tf_keras), not a weight

Layer names come from those full names, never from positions. Object paths say which
variables are training state: everything reached only through an ``optimizer`` (or
``metrics``) edge, slot variables, ``save_counter`` and random-generator states. Those are
listed in :attr:`Network.unexplained` as summaries, not used.

Without a config, each recurrent cell is inferred from its shapes (``kernel (inputs,
G*units)``, ``recurrent_kernel (units, G*units)``, ``bias``; ``G`` = 4 LSTM, 3 GRU, 1
SimpleRNN; a GRU bias of shape ``(2, 3*units)`` means ``reset_after``) exactly like a
weights-only ``.h5`` (:func:`.keras.weights_only.layer_from_groups`), and every default
assumed is noted. With ``--config model.json`` (``model.to_json()``) the layers, options
and upstream layers come from the config, and each config layer takes the variables whose
full names lie under its name (:class:`CheckpointWeightSource`).

:mod:`.saved_model` reuses all of this for the variables of a SavedModel.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from ..layers import Embedding, Unsupported
from ..network import Network, RecurrentLayer
from .configless import assumed_embedding, drop_trailing_heads, is_embedding_table
from .errors import LoadError
from .keras.config import build_network, is_recurrent, parse_config
from .keras.spec import RECURRENT_CLASSES, KerasContext, LayerSpec
from .keras.version import keras_major
from .keras.weights_only import WeightGroup, layer_from_groups
from .options import LoadOptions
from .tf.bundle import TensorBundle
from .tf.object_graph import ObjectGraph, parse_object_graph

#: Object-graph edges that lead to training state, not to the model's weights.
TRAINING_EDGES = frozenset({"optimizer", "metrics", "save_counter", "_metrics"})
#: The weights of a Keras recurrent cell, in ``get_weights()`` order.
CELL_LEAVES = ("kernel", "recurrent_kernel", "bias")
_STACKED = re.compile(r"^stacked_rnn_cells(_\d+)?$")
_VALUE = "VARIABLE_VALUE"


@dataclass(frozen=True)
class StoredVariable:
    """One saved variable: its model name, bundle key, shape and first object path."""

    full_name: str
    key: str
    shape: tuple[int, ...]
    path: tuple[str, ...]
    #: Depth-first position in the object graph: the model's creation order.
    order: int

    @property
    def scope(self) -> str:
        return self.full_name.rpartition("/")[0]

    @property
    def leaf(self) -> str:
        return self.full_name.rpartition("/")[2]

    def describe(self) -> str:
        return f"{self.full_name} {self.shape}"


@dataclass
class Inventory:
    """The variables of an object checkpoint, sorted by what they are."""

    #: Model weights in depth-first (creation) order; a copy listed twice is kept once.
    model: list[StoredVariable] = field(default_factory=list)
    #: Optimizer slots and counters, ``save_counter``, metrics, RNG states.
    training: list[StoredVariable] = field(default_factory=list)
    #: Full names held by two different variables (Keras 3 names the variables of layers
    #: built inside a subclassed model's ``call`` by the model alone: ``tagger/kernel``).
    clashing: set[str] = field(default_factory=set)
    #: Object paths of recurrent cells that hold no variables at all (Keras 3 does not
    #: track the cells of ``RNN(StackedRNNCells)`` in TF checkpoints).
    empty_cells: list[str] = field(default_factory=list)

    def training_summary(self) -> list[str]:
        """One line per kind of training state, for :attr:`Network.unexplained`."""
        groups: dict[str, list[StoredVariable]] = {}
        for var in self.training:
            kind = next((p for p in var.path if p in TRAINING_EDGES), None)
            if kind is None:
                kind = "save_counter" if var.full_name == "save_counter" else "random generator"
            groups.setdefault(kind, []).append(var)
        out = []
        for kind, members in groups.items():
            if len(members) == 1:
                out.append(f"{members[0].describe()} [{kind}]")
            else:
                out.append(f"{len(members)} {kind} variables (e.g. {members[0].full_name})")
        return out


def take_inventory(bundle: TensorBundle, graph: ObjectGraph) -> Inventory:
    """Walk the object graph depth-first and sort its variables into model and training state.

    Depth-first over children in stored order gives the model's own order (tf_keras
    ``layer_with_weights-0, -1...``; Keras 3 ``_operations/0, 1...``; a SavedModel's
    ``variables/0, 1...``). A model variable is one reachable without crossing a
    :data:`TRAINING_EDGES` edge; Keras 3 optimizers also *reference* the model's variables,
    which is why reachability, not the first path found, decides.
    """
    inv = Inventory()
    seen_nodes: set[int] = set()
    by_name: dict[str, list[StoredVariable]] = {}
    counter = 0
    stack: list[tuple[tuple[str, ...], int]] = [((), 0)] if graph.nodes else []
    while stack:
        path, node_id = stack.pop()
        if node_id in seen_nodes:
            continue
        seen_nodes.add(node_id)
        node = graph.nodes[node_id]
        for attr in node.attributes:
            if attr.name != _VALUE or attr.checkpoint_key not in bundle:
                continue
            var = StoredVariable(
                attr.full_name or attr.checkpoint_key.split("/.ATTRIBUTES/")[0],
                attr.checkpoint_key, bundle.shape(attr.checkpoint_key), path, counter,
            )
            counter += 1
            if var.full_name == "save_counter" or var.leaf == "seed_generator_state":
                inv.training.append(var)
                continue
            same_name = by_name.setdefault(var.full_name, [])
            if any(_same_tensor(bundle, var, other) for other in same_name):
                continue  # a copy listed again (a SavedModel's ``_all_variables``)
            if same_name:
                inv.clashing.add(var.full_name)
            same_name.append(var)
            inv.model.append(var)
        for ref in reversed(node.children):
            if ref.local_name not in TRAINING_EDGES and ref.node_id not in seen_nodes:
                stack.append(((*path, ref.local_name), ref.node_id))
    inv.empty_cells = _empty_cells(graph, seen_nodes)
    # Second pass: what only training edges (or slot references) reach.
    paths = dict((node_id, path) for path, node_id in graph.walk())
    for node_id, node in enumerate(graph.nodes):
        if node_id in seen_nodes:
            continue
        for attr in node.attributes:
            if attr.name != _VALUE or attr.checkpoint_key not in bundle:
                continue
            path = paths.get(node_id, ("optimizer",))  # unreachable: an optimizer slot
            inv.training.append(StoredVariable(
                attr.full_name or attr.checkpoint_key, attr.checkpoint_key,
                bundle.shape(attr.checkpoint_key), path, counter,
            ))
            counter += 1
    return inv


def _same_tensor(bundle: TensorBundle, a: StoredVariable, b: StoredVariable) -> bool:
    """Two entries with one full name hold the same tensor (compared by stored checksum)."""
    if a.shape != b.shape:
        return False
    ea, eb = bundle.entry(a.key), bundle.entry(b.key)
    if ea.dtype_enum != eb.dtype_enum:
        return False
    if ea.slices or eb.slices:  # partitioned: no checksum of the whole
        return bool(np.array_equal(bundle.read(a.key), bundle.read(b.key)))
    return ea.crc32c_masked == eb.crc32c_masked


def _empty_cells(graph: ObjectGraph, model_nodes: set[int]) -> list[str]:
    """Paths of ``cell`` objects of the model with no variable anywhere below them."""
    def has_variables(node_id: int) -> bool:
        stack, seen = [node_id], set()
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            node = graph.nodes[current]
            if any(a.name == _VALUE for a in node.attributes):
                return True
            stack.extend(r.node_id for r in node.children if r.local_name not in TRAINING_EDGES)
        return False

    out = []
    for path, node_id in graph.walk():
        if node_id in model_nodes and path and path[-1] == "cell" and not has_variables(node_id):
            out.append("/".join(path))
    return out


def looks_like_keras3(graph: ObjectGraph) -> bool:
    """Whether Keras 3 made the objects: tf_keras tracks ``layer_with_weights-N``, ``layer-N``,
    ``state_spec`` (every RNN layer) and ``keras_api``; Keras 3 none of them.
    """
    for path, _ in graph.walk():
        last = path[-1] if path else ""
        if last.startswith(("layer_with_weights-", "layer-")) or last in ("state_spec", "keras_api"):
            return False
    return True


def read_array(bundle: TensorBundle, var: StoredVariable) -> np.ndarray:
    """A variable's value; half-precision storage is widened to float32 for the replay."""
    array = bundle.read(var.key)
    if array.dtype == np.float16:
        array = array.astype(np.float32)
    return array


# --------------------------------------------------------------------------- inference


@dataclass
class _CellVars:
    """The variables of one cell scope (``bi/forward_gru/gru_cell``)."""

    where: tuple[str, ...]
    leaves: dict[str, StoredVariable]

    @property
    def order(self) -> int:
        return min(v.order for v in self.leaves.values())

    def stack_index(self) -> int:
        """Position in a StackedRNNCells: ``cells/<k>`` in the object path, else creation order."""
        path = self.leaves["kernel"].path
        for i, part in enumerate(path[:-1]):
            if part == "cells" and path[i + 1].isdigit():
                return int(path[i + 1])
        return self.order


@dataclass
class _InferredLayer:
    """Cells grouped into one model layer (``directions`` or ``stack``) or plain variables."""

    path: tuple[str, ...]
    cells: list[_CellVars] = field(default_factory=list)
    directions: dict[str, _CellVars] = field(default_factory=dict)
    stacked: bool = False
    plain: list[StoredVariable] = field(default_factory=list)

    @property
    def order(self) -> int:
        orders = [c.order for c in self.cells] + [c.order for c in self.directions.values()]
        orders += [v.order for v in self.plain]
        return min(orders)


def _locate(inv: Inventory) -> list[tuple[StoredVariable, tuple[str, ...], str]]:
    """``(variable, scope, leaf)`` of each model variable: where it sits in the model.

    The scope is the full name's (``bi/forward_gru/gru_cell``) unless full names clash; then
    the object path says it (``model/rnn/cell``: attribute names, as no layer name is
    stored), and in a flat list (``variables/3``) a repeated leaf starts the next layer.
    """
    clashing_scopes = {name.rpartition("/")[0] for name in inv.clashing}
    runs: dict[str, tuple[int, set[str]]] = {}
    out = []
    for var in inv.model:
        scope = tuple(var.scope.split("/")) if var.scope else ()
        if var.scope not in clashing_scopes:
            out.append((var, scope, var.leaf))
        elif len(var.path) >= 2 and not var.path[-1].isdigit():
            out.append((var, var.path[:-1], var.path[-1].lstrip("_")))
        else:
            run, leaves = runs.get(var.scope, (0, set()))
            if var.leaf in leaves:
                run, leaves = run + 1, set()
            leaves.add(var.leaf)
            runs[var.scope] = (run, leaves)
            out.append((var, scope + ((f"#{run}",) if run else ()), var.leaf))
    return out


def _cell_scopes(inv: Inventory) -> tuple[list[_CellVars], list[tuple[StoredVariable, tuple]]]:
    """Scopes holding ``kernel`` + ``recurrent_kernel`` (+ ``bias``) are cells; the rest is plain."""
    by_scope: dict[tuple[str, ...], dict[str, StoredVariable]] = {}
    for var, scope, leaf in _locate(inv):
        by_scope.setdefault(scope, {})[leaf] = var
    cells, plain = [], []
    for scope, leaves in by_scope.items():
        if "kernel" in leaves and "recurrent_kernel" in leaves:
            cells.append(_CellVars(scope, {k: v for k, v in leaves.items() if k in CELL_LEAVES}))
            plain.extend((v, scope) for k, v in leaves.items() if k not in CELL_LEAVES)
        else:
            plain.extend((v, scope) for v in leaves.values())
    return cells, plain


def _group_layers(cells: list[_CellVars], plain: list[tuple[StoredVariable, tuple]]) -> list[_InferredLayer]:
    """Attribute cells to layers by their full names, in the model's order.

    ``<layer path>/<cell>/kernel``: the last scope component is the cell's own name (a one-
    component scope is a layer holding its weights itself, like CuDNNLSTM). Then
    ``.../stacked_rnn_cells`` means an RNN of stacked cells and ``<bi>/forward_x`` +
    ``<bi>/backward_x`` a Bidirectional layer.
    """
    layers: dict[tuple[str, ...], _InferredLayer] = {}
    pending: list[tuple[tuple[str, ...], _CellVars]] = []
    for cell in cells:
        parts = cell.where
        layer_path = parts[:-1] if len(parts) >= 2 else parts
        if len(layer_path) >= 2 and _STACKED.match(layer_path[-1]):
            layer = layers.setdefault(layer_path[:-1], _InferredLayer(layer_path[:-1], stacked=True))
            layer.cells.append(cell)
        else:
            pending.append((layer_path, cell))
    # Bidirectional: a parent with exactly one forward_* and one backward_* child.
    children: dict[tuple[str, ...], dict[str, list[_CellVars]]] = {}
    for layer_path, cell in pending:
        head = layer_path[-1]
        for direction in ("forward", "backward"):
            if len(layer_path) >= 2 and head.startswith(f"{direction}_"):
                children.setdefault(layer_path[:-1], {}).setdefault(direction, []).append(cell)
    bidirectional = {
        parent: {d: cs[0] for d, cs in dirs.items()}
        for parent, dirs in children.items()
        if len(dirs.get("forward", [])) == 1 and len(dirs.get("backward", [])) == 1
    }
    for layer_path, cell in pending:
        parent = layer_path[:-1]
        if parent in bidirectional and cell in bidirectional[parent].values():
            layer = layers.setdefault(parent, _InferredLayer(parent))
            layer.directions = bidirectional[parent]
        else:
            layers.setdefault(layer_path, _InferredLayer(layer_path)).cells.append(cell)
    for var, scope in plain:
        parts = scope or (var.full_name,)
        # A stray variable inside a recurrent layer stays with it (and is reported).
        owner = next((p for p in layers if parts[: len(p)] == p), parts)
        layers.setdefault(owner, _InferredLayer(owner)).plain.append(var)
    for layer in layers.values():
        layer.cells.sort(key=_CellVars.stack_index if layer.stacked else (lambda c: c.order))
    return sorted(layers.values(), key=lambda layer: layer.order)


def _display_names(layers: list[_InferredLayer]) -> dict[tuple[str, ...], str]:
    """A layer's own name is the last component; the whole path only where that collides."""
    counts: dict[str, int] = {}
    for layer in layers:
        counts[layer.path[-1]] = counts.get(layer.path[-1], 0) + 1
    return {
        layer.path: layer.path[-1] if counts[layer.path[-1]] == 1 else "/".join(layer.path)
        for layer in layers
    }


def _is_embedding(plain: list[StoredVariable]) -> bool:
    return is_embedding_table([v.leaf for v in plain], [tuple(v.shape) for v in plain])


def _embedding(bundle: TensorBundle, name: str, var: StoredVariable, ctx: KerasContext,
               what: str) -> Embedding:
    return assumed_embedding(name, read_array(bundle, var), ctx.notes, f"{what} without a config",
                             "the weights do not say", "pass --config model.json to replay its mask")


def _group(bundle: TensorBundle, cell: _CellVars) -> WeightGroup:
    names = [cell.leaves[k].full_name for k in CELL_LEAVES if k in cell.leaves]
    arrays = [read_array(bundle, cell.leaves[k]) for k in CELL_LEAVES if k in cell.leaves]
    return WeightGroup(names, arrays)


def infer_network(
    bundle: TensorBundle, inv: Inventory, ctx: KerasContext, *, what: str
) -> Network:
    """Recurrent layers inferred from variable shapes and full names (no config).

    ``what`` names the file kind in notes and errors ("checkpoint", "SavedModel").
    """
    cells, plain = _cell_scopes(inv)
    inferred = _group_layers(cells, plain)
    names = _display_names(inferred)
    layers: list = []
    unexplained: list[str] = []
    assumed = f"{what} without a config"
    for item in inferred:
        name = names[item.path]
        if not item.cells and not item.directions and _is_embedding(item.plain):
            layers.append(_embedding(bundle, name, item.plain[0], ctx, what))
            continue
        unexplained += [v.describe() for v in item.plain]
        built: list[RecurrentLayer] = []
        if item.directions:
            layer = layer_from_groups(
                name, [_group(bundle, item.directions["forward"]),
                       _group(bundle, item.directions["backward"])],
                ctx, None, reset_after_default=True, what=assumed,
            )
            built = [layer] if layer is not None else []
        elif item.stacked:
            for k, cell in enumerate(item.cells):
                layer = layer_from_groups(f"{name}/cell_{k}", [_group(bundle, cell)], ctx, None,
                                          reset_after_default=True, what=assumed)
                if layer is None:
                    built = []
                    break
                layer.class_name = "RNN"
                built.append(layer)
            else:
                ctx.notes.append(
                    f"{name}: RNN of {len(built)} stacked cells, traced as {name}/cell_0.."
                    f"{name}/cell_{len(built) - 1} in their stored order"
                )
        elif len(item.cells) == 1:
            layer = layer_from_groups(name, [_group(bundle, item.cells[0])], ctx, None,
                                      reset_after_default=True, what=assumed)
            built = [layer] if layer is not None else []
        if built:
            layers.extend(built)
            continue
        # Not a recurrent layer lstm-trace can infer: keep its place, list its variables.
        cells_here = list(item.directions.values()) or item.cells
        unexplained += [v.describe() for c in cells_here for v in c.leaves.values()]
        layers.append(Unsupported(
            name, "unknown",
            reason=f"a {what} without a layer config does not say what this layer computes "
                   "(pass --config model.json)",
        ))
    for cell_path in inv.empty_cells:
        ctx.notes.append(
            f"the {what}'s object {cell_path!r} is a recurrent cell without variables (Keras 3 "
            "saves no weights for the cells of RNN(StackedRNNCells) in TF checkpoints); that "
            "layer cannot be traced from this file"
        )
    ctx.notes[:] = list(dict.fromkeys(ctx.notes))  # a Bidirectional notes each direction
    recurrent = [layer for layer in layers if isinstance(layer, RecurrentLayer)]
    if not recurrent:
        hint = (
            f"; its recurrent cell {inv.empty_cells[0]!r} holds no variables (Keras 3 does not "
            "save the cells of RNN(StackedRNNCells) in TF checkpoints: trace the .keras file "
            "or a model.export() SavedModel)" if inv.empty_cells else ""
        )
        raise LoadError(
            f"{ctx.source}: no recurrent layer found among the {what}'s {len(inv.model)} model "
            f"variables (expected kernel and recurrent_kernel pairs of LSTM/GRU/SimpleRNN cells){hint}"
        )
    drop_trailing_heads(layers)
    for before, after in pairwise(recurrent):
        if after.input_size != before.output_size:
            ctx.notes.append(
                f"{after.name} takes {after.input_size} features but {before.name} gives "
                f"{before.output_size}: they may not be a chain; trace one with --layer and "
                "--layer-input, or pass --config model.json"
            )
    ctx.notes.append(
        f"{what} without a layer config: layers are named by their variables' full names and "
        "assumed to be a forward chain (no go_backwards, return_sequences, Bidirectional "
        "merge_mode='concat'); pass --config model.json for the real options"
    )
    if inv.clashing:
        ctx.notes.append(
            f"the {what}'s variables share full names ({', '.join(sorted(inv.clashing)[:3])}): "
            "the model (a Keras 3 subclassed model?) stored no layer names, so layers are "
            "named by the object paths that hold them"
        )
    unexplained += inv.training_summary()
    first = layers[0]
    input_shape = (None, first.input_size) if isinstance(first, RecurrentLayer) else None
    return Network(layers=layers, source=ctx.source, notes=ctx.notes, input_shape=input_shape,
                   unexplained=unexplained)


# --------------------------------------------------------------------------- with a config


class CheckpointWeightSource:
    """Weights of config layers, found by full name (``<layer>/...``) in a checkpoint.

    A variable belongs to the first component of its full name that is a config layer's
    name (so ``sequential/lstm/lstm_cell/kernel`` belongs to ``lstm``, and the inner
    ``forward_lstm`` of a Bidirectional ``bi`` stays with ``bi``). Within a layer the
    order is Keras's ``get_weights()``: forward before backward, stacked cells in config
    order, ``kernel, recurrent_kernel, bias`` in each cell; other layers keep creation order.
    """

    def __init__(self, bundle: TensorBundle, variables: Iterable[StoredVariable],
                 layer_names: Iterable[str], where: str):
        self.bundle = bundle
        self.where = where
        names = set(layer_names)
        self.owned: dict[str, list[StoredVariable]] = {}
        self.unowned: list[StoredVariable] = []
        for var in variables:
            parts = var.full_name.split("/")
            owner = next((p for p in parts[:-1] if p in names), None)
            if owner is None:
                self.unowned.append(var)
            else:
                self.owned.setdefault(owner, []).append(var)

    def layer_weights(self, spec: LayerSpec) -> list[np.ndarray]:
        owned = self.owned.get(spec.name, [])
        if not owned:
            if is_recurrent(spec.class_name):
                raise LoadError(missing_layer_message(self.where, spec))
            return []
        if is_recurrent(spec.class_name):
            owned = self._recurrent_order(spec, owned)
        return [read_array(self.bundle, v) for v in owned]

    @staticmethod
    def _recurrent_order(spec: LayerSpec, owned: list[StoredVariable]) -> list[StoredVariable]:
        cell_names: list[str] = []
        cell = spec.config.get("cell") if spec.class_name == "RNN" else None
        if isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells":
            cell_names = [c.get("config", {}).get("name", "") for c in cell["config"]["cells"]]

        # Scopes keep creation order (``owned`` is in it), not alphabetical order.
        first: dict[str, int] = {}
        for var in owned:
            first.setdefault(var.scope, var.order)

        def key(var: StoredVariable) -> tuple:
            parts = var.full_name.split("/")
            below = parts[parts.index(spec.name) + 1:-1]  # scopes between layer and leaf
            direction = 1 if below and below[0].startswith("backward_") else 0
            named = [cell_names.index(p) for p in below if p in cell_names]
            cell = (0, named[0]) if named else (1, first[var.scope])
            leaf = CELL_LEAVES.index(var.leaf) if var.leaf in CELL_LEAVES else len(CELL_LEAVES)
            return (direction, cell, leaf, var.order)

        return sorted(owned, key=key)


def read_keras_config(path: str) -> dict:
    """The ``--config`` file (``model.to_json()``), with its tf_keras ``__tuple__`` wrappers undone."""
    from .keras.files import read_config_file

    return untuple(read_config_file(path))


def untuple(value: object) -> object:
    """tf_keras serializes tuples as ``{"class_name": "__tuple__", "items": [...]}``."""
    if isinstance(value, dict):
        if value.get("class_name") == "__tuple__" and isinstance(value.get("items"), list):
            return [untuple(v) for v in value["items"]]
        return {k: untuple(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untuple(v) for v in value]
    return value


def config_keras_major(config: dict, fallback: int) -> tuple[int, str | None]:
    """``(major, version)`` of the Keras that wrote a model config (Keras 3 adds ``module``)."""
    version = config.get("keras_version") if isinstance(config, dict) else None
    if version:
        return keras_major(str(version)), str(version)
    if isinstance(config, dict) and "module" in config:
        return 3, None
    return fallback, None


def network_from_config(
    config: dict, bundle: TensorBundle, inv: Inventory, ctx: KerasContext, *,
    where: str, keras_version: str | None,
) -> Network:
    """Build the network a Keras config describes, with weights found by full name."""
    specs, input_shape, input_dtype = parse_config(config, where)
    source = CheckpointWeightSource(bundle, inv.model, [s.name for s in specs], ctx.source)
    _check_config_matches(specs, source)
    network = build_network(
        specs, source, ctx, input_shape=input_shape, input_dtype=input_dtype,
        keras_version=keras_version,
    )
    if not network.recurrent_layers:
        raise LoadError(f"{where}: the model config has no recurrent layer (LSTM, GRU, SimpleRNN, RNN)")
    network.unexplained = (
        [v.describe() for v in source.unowned] + inv.training_summary()
    )
    return network


def missing_layer_message(where: str, spec: LayerSpec) -> str:
    """The config names a recurrent layer the file has no variables for."""
    cell = spec.config.get("cell") if spec.class_name == "RNN" else None
    stacked = isinstance(cell, dict) and cell.get("class_name") == "StackedRNNCells"
    why = (
        "Keras 3 does not save the cells of RNN(StackedRNNCells) in TF checkpoints; trace "
        "the .keras file or a model.export() SavedModel" if stacked
        else "is the config from this model?"
    )
    return (
        f"{where}: no stored variable is named {spec.name}/... for the config's layer "
        f"{spec.name!r} ({spec.class_name}); {why}"
    )


def _check_config_matches(specs: list[LayerSpec], source: CheckpointWeightSource) -> None:
    """A config from another model fails loudly, not with a silently wrong trace."""
    if not source.owned:
        raise LoadError(
            f"{source.where}: none of the config's layer names "
            f"({', '.join(s.name for s in specs[:6])}) appear in the stored variables' names; "
            "is the config from this model?"
        )
    for spec in specs:
        if is_recurrent(spec.class_name) and spec.name not in source.owned:
            raise LoadError(missing_layer_message(source.where, spec))
        if spec.class_name in RECURRENT_CLASSES and spec.name in source.owned:
            units = spec.config.get("units")
            shapes = {v.leaf: v.shape for v in source.owned[spec.name]}
            rk = shapes.get("recurrent_kernel")
            if units is not None and rk is not None and rk[0] != int(units):
                raise LoadError(
                    f"{source.where}: layer {spec.name!r} has units={units} in the config but "
                    f"its recurrent_kernel is {rk}; is the config from this model?"
                )


# --------------------------------------------------------------------------- entry point


def network_with_config_file(
    options: LoadOptions, bundle: TensorBundle, inv: Inventory, major: int, label: str
) -> Network:
    """The network of ``--config model.json`` with its weights taken from ``bundle``."""
    config = read_keras_config(options.config_path or "")
    major, version = config_keras_major(config, major)
    ctx = KerasContext(major, options, [], f"{label} + --config")
    return network_from_config(
        config, bundle, inv, ctx, where=Path(options.config_path or "").name, keras_version=version,
    )


def load_tf2_checkpoint(bundle: TensorBundle, path: Path, options: LoadOptions) -> Network:
    """A TF2 object checkpoint (bundle with an object graph) as a canonical Network."""
    graph = parse_object_graph(bundle.object_graph() or b"")
    inv = take_inventory(bundle, graph)
    major = 3 if looks_like_keras3(graph) else 2
    writer = "Keras 3" if major == 3 else "tf_keras"
    where = Path(bundle.prefix).name
    if options.config_path:
        return network_with_config_file(options, bundle, inv, major, f"TF2 checkpoint {where}")
    ctx = KerasContext(major, options, [], f"TF2 checkpoint {where} ({writer} objects)")
    _check_not_empty(inv, where)
    return infer_network(bundle, inv, ctx, what="checkpoint")


def _check_not_empty(inv: Inventory, where: str) -> None:
    if not inv.model:
        raise LoadError(
            f"{where}: the checkpoint holds no model variables "
            f"({len(inv.training)} training-state variables only); was it saved before the "
            "model was built, or from an object without the model?"
        )
