"""PyTorch recurrent modules, recognised in a flat state_dict and translated to canonical cells.

``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN`` store, for layer ``k`` (and ``_reverse`` for the
backward direction of a bidirectional module)::

    weight_ih_l{k}  (G*H, input)     gates stacked along rows: LSTM i,f,g,o; GRU r,z,n
    weight_hh_l{k}  (G*H, H or P)
    bias_ih_l{k}, bias_hh_l{k}  (G*H,)        absent with bias=False
    weight_hr_l{k}  (P, H)                    LSTM with proj_size=P

``nn.LSTMCell`` / ``nn.GRUCell`` / ``nn.RNNCell`` store the same without the ``_l{k}``
suffix. PyTorch's equations, and how they map to :class:`~lstm_trace.network.Cell`::

    LSTM  i,f,o = σ(W_i* x + b_i* + W_h* h + b_h*)   g = tanh(...)   -> bias = b_ih + b_hh
          c' = f ⊙ c + i ⊙ g    h' = o ⊙ tanh(c')   [h' = W_hr h']    -> projection = W_hr.T
    GRU   r,z = σ(W_i* x + b_i* + W_h* h + b_h*)
          n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))               -> Keras reset_after:
          h' = (1 - z) ⊙ n + z ⊙ h                                        bias = b_ih,
                                                                          recurrent_bias = b_hh
    RNN   h' = tanh|relu(W_ih x + b_ih + W_hh h + b_hh)               -> bias = b_ih + b_hh

The kind comes from the module's class or ``mode`` where the file stored it, else from
the shapes (``weight_hh`` rows / hidden size: 4 LSTM, 3 GRU, 1 RNN).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ...cells import CELL_KINDS
from ...gates import LAYOUTS, reorder_gates
from ...layers import Embedding
from ...network import Cell, Direction, Network, RecurrentLayer
from ..errors import LoadError
from ..options import LoadOptions
from .state_dict import ModuleInfo, Tensor, Weights, materialize

_PARAM = re.compile(
    r"^(?:(?P<path>.+)\.)?(?P<param>weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)"
    r"(?:_l(?P<layer>\d+)(?P<reverse>_reverse)?)?$"
)
MODULE_CLASS = {
    ("lstm", True): "LSTM", ("gru", True): "GRU", ("simple_rnn", True): "RNN",
    ("lstm", False): "LSTMCell", ("gru", False): "GRUCell", ("simple_rnn", False): "RNNCell",
}
CLASS_KIND = {"LSTM": "lstm", "GRU": "gru", "RNN": "simple_rnn", "LSTMCell": "lstm",
              "GRUCell": "gru", "RNNCell": "simple_rnn"}
MODE_KIND = {"LSTM": "lstm", "GRU": "gru", "RNN_TANH": "simple_rnn", "RNN_RELU": "simple_rnn"}
#: Layer name for a module saved on its own (state_dict keys without a path).
DEFAULT_NAMES = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn", "LSTMCell": "lstm_cell",
                 "GRUCell": "gru_cell", "RNNCell": "rnn_cell"}


@dataclass
class RecurrentModule:
    """The parameters of one recurrent module, by (layer index or None, reverse) and name."""

    path: str
    stacked: bool  # nn.LSTM/GRU/RNN (True) or an nn.*Cell (False)
    params: dict[tuple[int | None, bool], dict[str, tuple[str, Tensor]]] = field(default_factory=dict)
    first_key: int = 0  # position of its first tensor in the state_dict

    def tensor_keys(self) -> list[str]:
        return [full for group in self.params.values() for full, _ in group.values()]


def group_modules(tensors: dict[str, Tensor]) -> list[RecurrentModule]:
    """Recurrent modules by path, in state_dict order (cells and stacked modules apart)."""
    found: dict[tuple[str, bool], RecurrentModule] = {}
    for position, (key, value) in enumerate(tensors.items()):
        m = _PARAM.match(key)
        if not m:
            continue
        stacked = m["layer"] is not None
        path = m["path"] or ""
        module = found.setdefault((path, stacked), RecurrentModule(path, stacked, first_key=position))
        index = int(m["layer"]) if stacked else None
        module.params.setdefault((index, bool(m["reverse"])), {})[m["param"]] = (key, value)
    return [m for m in found.values() if any("weight_hh" in g for g in m.params.values())]


@dataclass
class ModuleSettings:
    """Facts about a module: from its pickled state or TorchScript constants, else inferred."""

    kind: str
    class_name: str
    activation: str | None = None  # nn.RNN / RNNCell nonlinearity where stored
    batch_first: bool | None = None


def module_settings(module: RecurrentModule, info: ModuleInfo | None, where: str) -> ModuleSettings:
    group = module.params[min(module.params, key=lambda k: (k[0] or 0, k[1]))]
    settings = info.settings if info else {}
    kind = None
    short = info.short_class if info else ""
    if short in CLASS_KIND:
        kind = CLASS_KIND[short]
    mode = settings.get("mode")
    if isinstance(mode, str) and mode in MODE_KIND:
        kind = MODE_KIND[mode]
    if kind is None:
        kind = _kind_from_shapes(group, where)
    activation = None
    if isinstance(mode, str) and mode.startswith("RNN_"):
        activation = mode[4:].lower()
    nonlinearity = settings.get("nonlinearity")
    if isinstance(nonlinearity, str):
        activation = nonlinearity
    batch_first = settings.get("batch_first")
    return ModuleSettings(kind, MODULE_CLASS[(kind, module.stacked)], activation,
                          batch_first if isinstance(batch_first, bool) else None)


def _kind_from_shapes(group: dict[str, tuple[str, Tensor]], where: str) -> str:
    key, w_hh = group["weight_hh"]
    if "weight_hr" in group:
        return "lstm"
    rows, cols = _shape2(w_hh, key)
    for kind in CELL_KINDS.values():
        if rows == kind.gate_count * cols:
            return kind.name
    raise LoadError(f"{where}: {key} has shape ({rows}, {cols}), which is no LSTM (4H, H), GRU "
                    "(3H, H) or RNN (H, H) recurrent weight")


def _shape2(tensor: Tensor, key: str) -> tuple[int, int]:
    shape = tuple(tensor.shape)
    if len(shape) != 2:
        raise LoadError(f"{key} has shape {shape}; a recurrent weight is a matrix")
    return int(shape[0]), int(shape[1])


def build_cell(group: dict[str, tuple[str, Tensor]], kind: str, activation: str,
               where: str) -> Cell:
    """One direction of one layer as a canonical Cell (``tensor_names``: the file's names)."""
    for needed in ("weight_ih", "weight_hh"):
        if needed not in group:
            present = ", ".join(sorted(k for k, _ in group.values()))
            raise LoadError(f"{where}: {needed} is missing (found {present})")
    names = {param: key for param, (key, _) in group.items()}
    arrays = {param: _as_float(materialize(t), key, where) for param, (key, t) in group.items()}
    gates = CELL_KINDS[kind].gate_count
    w_ih, w_hh = arrays["weight_ih"], arrays["weight_hh"]
    _shape2(w_ih, names["weight_ih"])
    rows, state = _shape2(w_hh, names["weight_hh"])
    if rows % gates:
        raise LoadError(f"{where}: {names['weight_hh']} has {rows} rows, not a multiple of "
                        f"{gates} gates")
    hidden = rows // gates
    projection = None
    if "weight_hr" in arrays:
        if kind != "lstm":
            raise LoadError(f"{where}: {names['weight_hr']} (a projection) belongs to an LSTM only")
        w_hr = arrays["weight_hr"]
        if w_hr.shape != (state, hidden):
            raise LoadError(f"{where}: {names['weight_hr']} is {w_hr.shape}, expected "
                            f"({state}, {hidden}) for hidden size {hidden}")
        projection = np.ascontiguousarray(w_hr.T)
    elif state != hidden:
        raise LoadError(f"{where}: {names['weight_hh']} is ({rows}, {state}); without a projection "
                        f"it must be ({rows}, {hidden})")
    if w_ih.shape[0] != rows:
        raise LoadError(f"{where}: {names['weight_ih']} has {w_ih.shape[0]} rows but "
                        f"{names['weight_hh']} has {rows}")
    layout = LAYOUTS["torch"][kind]
    # Gates are row blocks in torch: reorder the rows (contiguous copies), then transpose once.
    kernel = np.ascontiguousarray(reorder_gates(w_ih, layout, kind, axis=0).T)
    recurrent = np.ascontiguousarray(reorder_gates(w_hh, layout, kind, axis=0).T)
    biases = {}
    for param in ("bias_ih", "bias_hh"):
        if param in arrays:
            b = arrays[param]
            if b.shape != (rows,):
                raise LoadError(f"{where}: {names[param]} has shape {b.shape}, expected ({rows},)")
            biases[param] = reorder_gates(b, layout, kind)
    bias = recurrent_bias = None
    if kind == "gru":
        bias, recurrent_bias = biases.get("bias_ih"), biases.get("bias_hh")
        if bias is None and recurrent_bias is not None:
            bias = np.zeros_like(recurrent_bias)
    elif biases:
        bias = sum(biases.values())
    def cast(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.ascontiguousarray(a)

    sources: dict[str, tuple[str, ...]] = {"kernel": (names["weight_ih"],),
                                           "recurrent_kernel": (names["weight_hh"],)}
    bias_names = tuple(names[p] for p in ("bias_ih", "bias_hh") if p in names)
    if kind == "gru":
        if "bias_ih" in names:
            sources["bias"] = (names["bias_ih"],)
        if "bias_hh" in names:
            sources["recurrent_bias"] = (names["bias_hh"],)
    elif bias_names:
        sources["bias"] = bias_names
    if "weight_hr" in names:
        sources["projection"] = (names["weight_hr"],)
    cell = Cell(kind=kind, units=hidden, kernel=cast(kernel), recurrent_kernel=cast(recurrent),
                bias=cast(bias), recurrent_bias=cast(recurrent_bias), activation=activation,
                recurrent_activation="sigmoid", reset_after=True, projection=cast(projection),
                layout=layout, tensor_names=sources)
    return cell


def _as_float(a: np.ndarray, key: str, where: str) -> np.ndarray:
    """float32 (float64 stays float64): half-precision weights are widened before any sum."""
    if a.dtype.kind != "f":
        raise LoadError(f"{where}: {key} holds {a.dtype} values, not floats")
    return a.astype(np.result_type(a.dtype, np.float32), copy=False)


@dataclass
class Built:
    """The layers built from one recurrent module, with what the file said about it."""

    module: RecurrentModule
    settings: ModuleSettings
    layers: list[RecurrentLayer]

    @property
    def input_size(self) -> int:
        return self.layers[0].input_size

    @property
    def output_size(self) -> int:
        return self.layers[-1].output_size


def build_module(module: RecurrentModule, settings: ModuleSettings, name: str,
                 options: LoadOptions, notes: list[str]) -> Built:
    """The module's RecurrentLayers: ``<name>/l<k>`` per layer of a stacked module, else ``<name>``."""
    kind = settings.kind
    activation = "tanh"
    if kind == "simple_rnn":
        if options.activation:
            activation = options.activation
        elif settings.activation:
            activation = settings.activation
        else:
            notes.append(f"{name}: the file does not store nn.{settings.class_name}'s nonlinearity; "
                         "assuming tanh (pass --activation relu for nonlinearity='relu')")
    else:
        given = [flag for flag, value in (
            ("--activation", options.activation),
            ("--recurrent-activation", options.recurrent_activation),
            ("--forget-bias", options.forget_bias), ("--cell-clip", options.cell_clip),
            ("--proj-clip", options.proj_clip), ("--reset-after", options.reset_after),
        ) if value is not None]
        if given:
            notes.append(f"{name}: {', '.join(given)} ignored: nn.{settings.class_name} always "
                         "uses sigmoid gates and tanh, no forget bias or clipping"
                         + (", and the reset_after GRU" if kind == "gru" else ""))
    layers: list[RecurrentLayer] = []
    if module.stacked:
        indices = sorted({k for k, _ in module.params})
        if indices != list(range(len(indices))):
            raise LoadError(f"{name}: layers {indices} are not numbered 0..{len(indices) - 1}")
        for k in indices:
            layer_name = f"{name}/l{k}"
            directions = [("forward", False)]
            if (k, True) in module.params:
                directions.append(("backward", True))
            layers.append(_layer(module, layer_name, k, directions, kind, activation, settings))
    else:
        layers.append(_layer(module, name, None, [("forward", False)], kind, activation, settings))
    for prev, nxt in zip(layers, layers[1:], strict=False):
        if nxt.input_size != prev.output_size:
            raise LoadError(f"{nxt.name} takes {nxt.input_size} inputs but {prev.name} gives "
                            f"{prev.output_size}: the state_dict is inconsistent")
    return Built(module, settings, layers)


def _layer(module: RecurrentModule, name: str, index: int | None,
           directions: list[tuple[str, bool]], kind: str, activation: str,
           settings: ModuleSettings) -> RecurrentLayer:
    built: list[Direction] = []
    bidirectional = len(directions) == 2
    for direction, reverse in directions:
        cell = build_cell(module.params[(index, reverse)], kind, activation, name)
        built.append(Direction(direction, cell, reverse))
    if bidirectional:
        a, b = (d.cell for d in built)
        if (a.input_size, a.units, a.state_size) != (b.input_size, b.units, b.state_size):
            raise LoadError(f"{name}: the forward and _reverse weights have different shapes")
    options: dict[str, object] = {}
    if settings.batch_first is not None:
        options["batch_first"] = settings.batch_first
    return RecurrentLayer(name=name, directions=built, bidirectional=bidirectional,
                          merge_mode="concat", return_sequences=True,
                          class_name=settings.class_name, options=options)


def layer_name(path: str, settings: ModuleSettings) -> str:
    return path or DEFAULT_NAMES[settings.class_name]


def find_embedding(weights: Weights, input_size: int, used: set[str]) -> tuple[str, np.ndarray] | None:
    """An ``nn.Embedding`` feeding the first recurrent module: ``(path, weight)`` or None.

    A module whose stored class is ``Embedding``, or (plain state_dict) whose path names an
    embedding (``embed``) and holds only a 2-D ``weight``, of width ``input_size``.
    """
    for key, tensor in weights.tensors.items():
        if not key.endswith("weight") or key in used:
            continue
        path = key[: -len("weight")].rstrip(".")
        info = weights.modules.get(path)
        is_embedding = (info.short_class == "Embedding") if info and info.class_name else \
            "embed" in path.lower() and f"{path}.bias" not in weights.tensors
        if is_embedding and len(tensor.shape) == 2 and tensor.shape[1] == input_size:
            return path, _as_float(materialize(tensor), key, path)
    return None


def _module_name(built: Built) -> str:
    return built.module.path or built.layers[0].name


def parallel_copies(a: Built, b: Built) -> bool:
    """Whether two modules are the same module of two sibling models (``_model.decoder.rnn``
    and ``_model_8k.decoder.rnn``: one path under two different top-level modules), which
    run side by side, not one after the other."""
    pa, pb = a.module.path.split("."), b.module.path.split(".")
    return len(pa) >= 2 and pa[1:] == pb[1:] and pa[0] != pb[0]


def chain_by_size(built: list[Built], ordered: bool = True) -> tuple[list[Built], list[Built]]:
    """The recurrent modules as a chain whose sizes fit, and the ones left out.

    The chain starts at the first module in file order (a pickle stores modules in the
    order the model defines them). Without a meaningful order (safetensors headers are
    sorted by name) it starts at the first module whose input size no other module
    produces. Each next link is the first unused module that takes the current output size.
    """
    start = built[0]
    if not ordered:
        start = next((b for b in built if all(b.input_size != o.output_size for o in built
                                              if o is not b)), built[0])
    chain = [start]
    rest = [b for b in built if b is not start]
    while True:
        nxt = next((b for b in rest if b.input_size == chain[-1].output_size
                    and not parallel_copies(b, chain[-1])), None)
        if nxt is None:
            break
        chain.append(nxt)
        rest.remove(nxt)
    return chain, rest


def modules_around(weights: Weights, used: set[str], built: list[Built], ordered: bool = True
                   ) -> tuple[list[tuple[str, str]], list[tuple[str, str]], dict[str, int]]:
    """Modules stored before the first recurrent module (a conv or ``Linear`` front) and
    after the last one (a ``Linear`` head...): never replayed, listed by ``inspect`` with
    their class (where the file says it) and parameter count. Returns ``(front, heads,
    parameters by path)``.

    Sibling models in one file (``_model.*`` and ``_model_8k.*``, each with its own
    recurrent module) are placed apart: a module is before or after the recurrent modules
    of its own top-level module. Without a meaningful order (``ordered=False``: safetensors
    sorts names) no module is called a front.
    """
    siblings = any(parallel_copies(a, b) for a in built for b in built if a is not b)

    def top(path: str) -> str:
        return path.split(".")[0] if siblings and "." in path else ""

    spans: dict[str, tuple[int, int]] = {}
    for b in built:
        group = top(b.module.path)
        lo, hi = spans.get(group, (b.module.first_key, b.module.first_key))
        spans[group] = (min(lo, b.module.first_key), max(hi, b.module.first_key))
    overall = (min(lo for lo, _ in spans.values()), max(hi for _, hi in spans.values()))
    front: dict[str, int] = {}
    heads: dict[str, int] = {}
    for position, (key, tensor) in enumerate(weights.tensors.items()):
        path = key.rpartition(".")[0]
        if key in used or not path or _PARAM.match(key):
            continue
        first, last = spans.get(top(path), overall)
        size = int(np.prod(tensor.shape, dtype=np.int64))
        if position > last:
            heads[path] = heads.get(path, 0) + size
        elif position < first and ordered:
            front[path] = front.get(path, 0) + size

    def classes(paths: dict[str, int]) -> list[tuple[str, str]]:
        return [(path, weights.modules[path].short_class if path in weights.modules
                 and weights.modules[path].class_name else "unknown") for path in paths]

    return classes(front), classes(heads), {**front, **heads}


def assemble(weights: Weights, options: LoadOptions, source: str, ordered: bool = True) -> Network:
    """The canonical Network of the recurrent modules in ``weights``.

    ``ordered``: the state_dict lists modules in the model's own order (pickles do;
    safetensors sorts names).
    """
    modules = group_modules(weights.tensors)
    if not modules:
        shown = ", ".join(list(weights.tensors)[:6])
        raise LoadError(
            f"{source}: no nn.LSTM/GRU/RNN or LSTMCell/GRUCell/RNNCell weights found "
            f"(state_dict keys: {shown}{', ...' if len(weights.tensors) > 6 else ''}); "
            "lstm-trace reads recurrent modules only"
        )
    notes: list[str] = list(weights.notes)
    built: list[Built] = []
    for module in modules:
        settings = module_settings(module, weights.modules.get(module.path), module.path or source)
        built.append(build_module(module, settings, layer_name(module.path, settings), options,
                                  notes))
    chain, loose = chain_by_size(built, ordered)
    layers: list = []
    inbound: dict[str, tuple[str, ...]] = {}
    used = {key for b in built for key in b.module.tensor_keys()}
    first = chain[0]
    embedding = find_embedding(weights, first.input_size, used)
    if embedding is not None:
        path, table = embedding
        layers.append(Embedding(name=path, class_name="Embedding", embeddings=table))
        used.add(f"{path}.weight")
        notes.append(f"{path}: replayed as the nn.Embedding before {first.layers[0].name}; "
                     "INPUT holds integer token ids (or pass --layer-input with float features)")
    for b in chain:
        layers.extend(b.layers)
    for b in loose:
        layers.extend(b.layers)
        inbound[b.layers[0].name] = (f"(input of {b.layers[0].name}: not connected)",)
        twin = next((c for c in chain if parallel_copies(b, c)), None)
        if twin is not None and b.input_size == twin.input_size:
            notes.append(
                f"{b.layers[0].name} is {_module_name(twin)}'s counterpart in a sibling model "
                f"(not its next layer): traced only on its own (--layer {b.layers[0].name} "
                "--layer-input)"
            )
            continue
        notes.append(
            f"{b.layers[0].name} takes {b.input_size} features, which no other module gives: "
            f"traced only on its own (--layer {b.layers[0].name} --layer-input)"
        )
    if len(chain) > 1:
        notes.append(
            "chained " + " -> ".join(_module_name(b) for b in chain) + " because their sizes "
            "fit (lstm-trace does not read the model's data flow; use --layer to trace one)"
        )
    for b in built:
        if b.settings.batch_first:
            notes.append(f"{b.module.path or b.layers[0].name}: batch_first=True; lstm-trace "
                         "always takes (batch, steps, features)")
    front, downstream, layer_parameters = modules_around(weights, used, built, ordered)
    used |= {key for key in weights.tensors if key.rpartition(".")[0] in layer_parameters}
    unexplained = [f"{key} ({'x'.join(map(str, t.shape))})"
                   for key, t in weights.tensors.items() if key not in used]
    unexplained += weights.skipped
    first_layer = layers[0]
    if isinstance(first_layer, Embedding):
        input_shape: tuple[int | None, ...] = (None,)
        input_dtype = "int64"
    else:
        input_shape, input_dtype = (None, first.input_size), "float32"
    network = Network(layers=layers, source=source, input_shape=input_shape,
                      input_dtype=input_dtype, notes=notes, inbound=inbound,
                      unexplained=unexplained, front=front, downstream=downstream,
                      layer_parameters=layer_parameters)
    return network
