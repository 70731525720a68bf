"""Weights-only Keras files: infer each recurrent layer from its weight shapes.

Two layouts carry no layer config:

- Keras 2 / tf.keras ``model.save_weights('x.h5')``: root attribute ``layer_names`` (the
  user's layer names, in order), ``keras_version``, and per layer a ``weight_names`` list
  such as ``bi/forward_gru/gru_cell/kernel:0``.
- Keras 3 ``model.save_weights('x.weights.h5')``: ``layers/<class-derived name>/...``
  groups with numbered ``vars``; no version, no user names (the class-derived names
  are used as layer names).

A recurrent cell is a ``kernel (inputs, G*units)``, ``recurrent_kernel (units, G*units)``
and optional bias; ``G`` tells the kind (LSTM 4, GRU 3, SimpleRNN 1). Everything else
(activations, ``go_backwards``, merge modes) is assumed from the writer's defaults and
each assumption is written to ``Network.notes``; options override them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ...layers import Embedding, Unsupported
from ...network import Direction, Network, RecurrentLayer
from ..configless import assumed_embedding, drop_trailing_heads, is_embedding_table
from ..errors import LoadError
from ..options import LoadOptions
from .config import make_cell
from .files import own_vars, read_h5_layer
from .keras1 import is_keras1_embedding, is_keras1_weight_names, keras1_weight_arrays
from .spec import MISSING, CellConfig, KerasContext
from .version import decode_attr, keras_major, version_tuple

KIND_BY_GATES = {4: "lstm", 3: "gru", 1: "simple_rnn"}
CLASS_BY_KIND = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}


@dataclass
class WeightGroup:
    """The weights of one layer (or one direction of one) with the names the file gave them."""

    names: list[str]
    arrays: list[np.ndarray]


def infer_cell_kind(arrays: list[np.ndarray]) -> tuple[str, int, bool] | None:
    """``(kind, units, cudnn)`` if ``arrays`` look like one recurrent cell, else ``None``."""
    if len(arrays) not in (2, 3):
        return None
    kernel, recurrent = arrays[0], arrays[1]
    if kernel.ndim != 2 or recurrent.ndim != 2:
        return None
    units = recurrent.shape[0]
    if units == 0 or recurrent.shape[1] % units or kernel.shape[1] != recurrent.shape[1]:
        return None
    gates = recurrent.shape[1] // units
    kind = KIND_BY_GATES.get(gates)
    if kind is None:
        return None
    cudnn = False
    if len(arrays) == 3:
        bias = arrays[2]
        width = gates * units
        if bias.shape == (2 * width,) and kind in ("lstm", "gru"):
            cudnn = True
        elif bias.shape not in ((width,), (2, width)):
            return None
    return kind, units, cudnn


def _defaults_for(version: str | None, major: int) -> str:
    """Keras before 2.3 defaulted LSTM/GRU recurrent_activation to hard_sigmoid."""
    v = version_tuple(version)
    if major < 3 and v and v < (2, 3):
        return "hard_sigmoid"
    return "sigmoid"


def _gru_reset_after_default(version: str | None) -> bool | None:
    """tf.keras (``-tf`` builds, and every Keras 2 from 2.4 on) made GRU ``reset_after=True``
    the default; standalone Keras 2 kept False. Only a GRU without a bias needs this guess."""
    if version and ("tf" in version or version_tuple(version) >= (2, 4)):
        return True
    return None


def layer_from_groups(
    name: str, groups: list[WeightGroup], ctx: KerasContext, version: str | None,
    *, reset_after_default: bool | None = None, what: str = "weights-only file",
) -> RecurrentLayer | None:
    """A recurrent layer from one group (or two: forward and backward), or None if not one.

    Shared by every config-less loader (weights-only ``.h5``, TF2 checkpoints). A GRU with
    a bias says ``reset_after`` by its shape (``(2, 3*units)``: reset_after); without one,
    ``reset_after_default`` (if given) replaces the writer's version default. ``what``
    names the kind of file in the notes of assumed defaults.
    """
    infos = [infer_cell_kind(g.arrays) for g in groups]
    if not infos or any(info is None for info in infos):
        return None
    cells = []
    for group, (kind, units, cudnn) in zip(groups, infos, strict=True):  # type: ignore[misc]
        use_bias = len(group.arrays) == 3
        class_name = f"CuDNN{CLASS_BY_KIND[kind]}" if cudnn else CLASS_BY_KIND[kind]
        reset_after = None
        if kind == "gru" and use_bias:
            reset_after = group.arrays[2].ndim == 2 or cudnn
        elif kind == "gru":
            reset_after = reset_after_default
        config = CellConfig(
            name=name, units=units, use_bias=use_bias, reset_after=reset_after,
            recurrent_activation=(_defaults_for(version, ctx.keras_major)
                                  if kind != "simple_rnn" and not cudnn else MISSING),
        )
        cells.append(make_cell(kind, class_name, config, group.arrays, ctx, f"layer {name!r}"))
        ctx.notes.append(_assumption_note(name, kind, cells[-1], cudnn, what))
    if len(cells) == 1:
        return RecurrentLayer(name=name, directions=[Direction("forward", cells[0])],
                              return_sequences=True, class_name=CLASS_BY_KIND[cells[0].kind])
    ctx.notes.append(f"{name}: assumed Bidirectional merge_mode='concat' (not stored in the file)")
    return RecurrentLayer(
        name=name,
        directions=[Direction("forward", cells[0]), Direction("backward", cells[1], reverse=True)],
        bidirectional=True, merge_mode="concat", return_sequences=True, class_name="Bidirectional",
    )


def _assumption_note(name: str, kind: str, cell, cudnn: bool, what: str) -> str:
    parts = [f"activation={cell.activation}"]
    if kind != "simple_rnn":
        parts.append(f"recurrent_activation={cell.recurrent_activation}")
    if kind == "gru":
        parts.append(f"reset_after={cell.reset_after}")
    why = "CuDNN layout" if cudnn else "defaults of the writer's Keras version"
    return (
        f"{name}: {what}, assumed {CLASS_BY_KIND[kind]} with {', '.join(parts)} "
        f"({why}; override with --activation/--recurrent-activation)"
    )


def _split_directions(names: list[str], arrays: list[np.ndarray]) -> list[WeightGroup]:
    """Keras 2 Bidirectional weights: ``forward_*`` names first, then ``backward_*``."""
    forward = [i for i, n in enumerate(names) if "/forward_" in f"/{n}"]
    backward = [i for i, n in enumerate(names) if "/backward_" in f"/{n}"]
    if forward and backward and len(forward) + len(backward) == len(names):
        return [
            WeightGroup([names[i] for i in forward], [arrays[i] for i in forward]),
            WeightGroup([names[i] for i in backward], [arrays[i] for i in backward]),
        ]
    return [WeightGroup(names, arrays)]


def _finish(layers: list, ctx: KerasContext, version: str | None) -> Network:
    if not any(isinstance(layer, RecurrentLayer) for layer in layers):
        raise LoadError(f"{ctx.source}: no recurrent layer found among the weights; a layer "
                        "whose weights alone do not describe it (a ConvLSTM: padding, strides) "
                        "needs --config model.json (the model's to_json())")
    ctx.notes.append(
        "weights-only file: layer options (go_backwards, return_sequences) are unknown; "
        "assumed a forward chain of the recurrent layers"
    )
    drop_trailing_heads(layers)
    return Network(layers=layers, source=ctx.source, keras_version=version, notes=ctx.notes)


def load_keras2_weights_h5(h5: h5py.File, path: Path, options: LoadOptions) -> Network:
    """A Keras 2 / tf.keras ``save_weights`` ``.h5`` (``layer_names`` at the root)."""
    version = decode_attr(h5.attrs.get("keras_version"))
    major = keras_major(version, 2)
    # Keras 1.0 wrote no keras_version; its weight names (lstm_1_W_i) still tell.
    keras1 = major == 1 or (version is None and _has_keras1_names(h5))
    defaults_version = (version or "1") if keras1 else version
    if keras1:
        major = 1
    ctx = KerasContext(major, options, [], f"Keras {version or major} weights-only .h5")
    if keras1:
        ctx.notes.append(
            "Keras 1 weights-only file: LSTM/GRU told apart by their 12/9 per-gate arrays; "
            "assumed inner_activation=hard_sigmoid (clip(0.2x+0.5)) and activation=tanh, "
            "the Keras 1 defaults"
        )
    layers: list = []
    for raw in h5.attrs["layer_names"]:
        name = decode_attr(raw) or ""
        arrays = read_h5_layer(h5, name, path.name)
        if not arrays:
            continue  # Dropout-like layers have no weights and nothing to replay
        names = [decode_attr(n) or "" for n in h5[name].attrs.get("weight_names", [])]
        if _is_embedding(names, arrays) or (keras1 and is_keras1_embedding(name, names, arrays)):
            layers.append(_embedding(name, arrays[0], ctx))
            continue
        groups = _split_directions(names, arrays)
        if keras1:
            groups = [WeightGroup(g.names, keras1_weight_arrays(g.arrays) or g.arrays)
                      for g in groups]
        layer = layer_from_groups(name, groups, ctx, defaults_version,
                                  reset_after_default=_gru_reset_after_default(version))
        layers.append(layer or Unsupported(
            name, "unknown", reason="weights-only file: the layer's configuration is unknown"
        ))
    return _finish(layers, ctx, version)


def _has_keras1_names(h5: h5py.Group) -> bool:
    """Every weight name of every layer is Keras 1 style (``lstm_1_W_i``, no ``/kernel:0``)."""
    names = [decode_attr(n) or "" for raw in h5.attrs["layer_names"]
             if isinstance(h5.get(decode_attr(raw) or ""), h5py.Group)
             for n in h5[decode_attr(raw) or ""].attrs.get("weight_names", [])]
    return is_keras1_weight_names(names)


def load_keras3_weights_h5(h5: h5py.File, path: Path, options: LoadOptions) -> Network:
    """A Keras 3 ``.weights.h5`` (``layers/<class-derived name>/...`` groups)."""
    ctx = KerasContext(3, options, [], "Keras 3 .weights.h5")
    layers: list = []
    skipped: list[str] = []
    embeddings: list[tuple[str, np.ndarray]] = []
    root = h5["layers"]
    for name in _ordered_keys(root):
        group = root[name]
        if not isinstance(group, h5py.Group):
            continue
        if "forward_layer" in group and "backward_layer" in group:
            groups = [
                WeightGroup([], own_vars(group[d]["cell"]) if "cell" in group[d] else own_vars(group[d]))
                for d in ("forward_layer", "backward_layer")
            ]
        elif "cell" in group:
            cell = group["cell"]
            if "cells" in cell:
                raise LoadError(
                    f"{path.name}: layer {name!r} is an RNN of StackedRNNCells; a weights-only file "
                    "cannot say the order of its cells — trace the .keras file instead"
                )
            groups = [WeightGroup([], own_vars(cell))]
        else:
            arrays = own_vars(group)
            if re.fullmatch(r"embedding(_\d+)?", name) and len(arrays) == 1 and arrays[0].ndim == 2:
                embeddings.append((name, arrays[0]))
            elif arrays:
                skipped.append(name)
            continue
        layer = layer_from_groups(name, groups, ctx, None)
        if layer is not None:
            layers.append(layer)
    layers = _chain_by_shapes(layers)
    if len(embeddings) == 1 and layers and embeddings[0][1].shape[1] == layers[0].input_size:
        layers.insert(0, _embedding(*embeddings[0], ctx))
    else:
        skipped = [name for name, _ in embeddings] + skipped
    if skipped:
        ctx.notes.append(
            f"layers {', '.join(skipped)} have weights but no configuration and are not replayed: "
            "INPUT is taken as the first recurrent layer's input"
        )
    ctx.notes.append(
        "Keras 3 .weights.h5 keeps no layer names or order: layers are named by their "
        "weight paths (lstm, lstm_1, ...) and ordered so that each one's input size is the "
        "previous one's output size"
    )
    return _finish(layers, ctx, None)


def _chain_by_shapes(layers: list) -> list:
    """Order recurrent layers into a chain where each input size matches the previous output.

    Keras 3 sorts nothing for us: ``gru`` and ``lstm`` groups come back alphabetically.
    Within one class the numbered order is kept; between classes, sizes decide: if exactly
    one ordering chains every layer, it is used. Otherwise the given order stays.
    """
    recurrent = [layer for layer in layers if isinstance(layer, RecurrentLayer)]
    if len({layer.class_name for layer in recurrent}) < 2 or len(recurrent) != len(layers):
        return layers
    queues: dict[str, list] = {}
    for layer in recurrent:
        queues.setdefault(layer.class_name, []).append(layer)
    found: list[list] = []

    def extend(chain: list, taken: dict[str, int]) -> None:
        if len(found) > 1:
            return  # ambiguous already
        if len(chain) == len(recurrent):
            found.append(list(chain))
            return
        for cls, queue in queues.items():
            if taken[cls] < len(queue):
                nxt = queue[taken[cls]]
                if not chain or nxt.input_size == chain[-1].output_size:
                    taken[cls] += 1
                    extend([*chain, nxt], taken)
                    taken[cls] -= 1

    extend([], dict.fromkeys(queues, 0))
    return found[0] if len(found) == 1 else layers


def _is_embedding(names: list[str], arrays: list[np.ndarray]) -> bool:
    """A Keras 2 ``Embedding``: one 2-D weight named ``.../embeddings:0``."""
    return is_embedding_table([n.split("/")[-1].split(":")[0] for n in names], [a.shape for a in arrays])


def _embedding(name: str, table: np.ndarray, ctx: KerasContext) -> Embedding:
    return assumed_embedding(name, table, ctx.notes, "weights-only file", "the file does not say",
                             "trace the full model (.keras/.h5) to replay its mask")


def _ordered_keys(group: h5py.Group) -> list[str]:
    """Group keys with Keras's numbered suffixes in numeric order (lstm, lstm_1, ..., lstm_10)."""
    def key(name: str) -> tuple:
        base, _, num = name.rpartition("_")
        if num.isdigit() and base:
            return (base, int(num))
        return (name, -1)

    return sorted(group.keys(), key=key)
