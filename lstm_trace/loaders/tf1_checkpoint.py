"""TF1 ``tf.compat.v1.train.Saver`` checkpoints of RNN cells, read without TensorFlow.

A TF1 checkpoint is a bag of named variables with no architecture. Cells are
recognised from their variable names and shapes; each becomes a canonical
:class:`~lstm_trace.network.Cell` named by its variable scope, which is also its
trace key (``rnn/basic_lstm_cell``, ``rnn/multi_rnn_cell/cell_1/lstm_cell``).

Layouts (``n`` = input size, ``u`` = units, ``p`` = ``num_proj``; every kernel takes
``[x, h]``, x rows first)::

    BasicLSTMCell   basic_lstm_cell/kernel (n+u, 4u), bias (4u)          gates i, j, f, o
    LSTMCell        lstm_cell/kernel (n+p|u, 4u), bias, w_{i,f,o}_diag (u),
                    projection/kernel (u, p)
    LSTMBlockCell   lstm_cell/... as LSTMCell (no projection); LSTMBlockFusedCell:
                    lstm_fused_cell/...; CudnnCompatibleLSTMCell: cudnn_compatible_lstm_cell/
                    (forget_bias 0)
    GRUCell         gru_cell/gates/kernel (n+u, 2u) gates r, u; gates/bias;
                    gru_cell/candidate/kernel (n+u, u) over [x, r*h]; candidate/bias
    GRUBlockCell    gru_cell/w_ru, b_ru, w_c, b_c (the same math)
    CudnnCompatibleGRUCell  gates/kernel, candidate/input_projection/kernel (n, u),
                    candidate/hidden_projection/kernel (u, u) and their biases
    BasicRNNCell    basic_rnn_cell/kernel (n+u, u), bias (u)

TF before 1.0 named the same tensors ``weights``/``biases`` (and, before 0.12,
``Linear/Matrix``/``Linear/Bias``, ``W_0``/``B``, ``W_F_diag``...); all are accepted.

The TF1 LSTM, in canonical names (σ sigmoid, φ the cell's activation, tanh by default)::

    i, j, f, o = split([x, h] · kernel + bias)                  (TF1 order)
    input_gate  = σ(i + w_i_diag ⊙ c)
    forget_gate = σ(f + forget_bias + w_f_diag ⊙ c)         forget_bias: not stored (1.0)
    candidate   = φ(j)
    cell        c' = clip(forget_gate ⊙ c + input_gate ⊙ candidate, ±cell_clip)
    output_gate = σ(o + w_o_diag ⊙ c')
    hidden      h' = clip((output_gate ⊙ φ(c')) · projection, ±proj_clip)

and the TF1 GRU, whose ``u`` is the canonical update gate ``z``::

    r, z = σ(split([x, h] · gates/kernel + gates/bias))
    candidate h̃ = φ([x, r ⊙ h] · candidate/kernel + candidate/bias)
    hidden    h' = z ⊙ h + (1 - z) ⊙ h̃                  (Keras GRU, reset_after=False)

Numbers a cell was built with (``forget_bias``, ``activation``, ``cell_clip``,
``proj_clip``) are not in the checkpoint. They are read from the ``<prefix>.meta``
graph when one is beside it (:mod:`.tf.meta_graph`), else the TF defaults are assumed
and said in a note; options override both.

Structure: cells under ``multi_rnn_cell/cell_<k>`` (``MultiRNNCell/Cell<k>``) chain in
``k`` order; a scope with one ``fw`` and one ``bw`` cell is a bidirectional layer named
by the scope above them (``bidirectional_rnn`` → ``bidirectional_rnn/forward/...``);
stacks inside ``fw``/``bw`` become one-direction layers named by their full scopes, the
``bw`` ones walking the sequence backwards, each fed from its own direction's stack.
Separate cells are chained when one's input size is the previous output size, else
tracing the later one needs ``--layer-input``. Every variable that is not part of a
cell (optimizer slots, ``global_step``, dense layers) is listed in
:attr:`Network.unexplained`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..activations import get_activation
from ..gates import fuse_gates, reorder_gates, split_gates
from ..layers import Unsupported, UpstreamLayer
from ..network import Cell, Direction, Network, RecurrentLayer
from .errors import LoadError
from .options import LoadOptions
from .tf.bundle import TensorBundle
from .tf.meta_graph import CellFacts, MetaGraph, MetaGraphError

KERNEL_NAMES = ("kernel", "weights", "Linear/Matrix", "W_0")
BIAS_NAMES = ("bias", "biases", "Linear/Bias", "B")
PEEPHOLE_NAMES = {
    "input_gate": ("w_i_diag", "W_I_diag"),
    "forget_gate": ("w_f_diag", "W_F_diag"),
    "output_gate": ("w_o_diag", "W_O_diag"),
}
PROJECTION_NAMES = tuple(f"projection/{k}" for k in KERNEL_NAMES) + ("W_P_0",)
GRU_GATES = ("gates", "Gates")
GRU_CANDIDATE = ("candidate", "Candidate")

#: Cell class by the last component of its scope (a ``_<n>`` uniquifier removed).
LSTM_SCOPES = {
    "basic_lstm_cell": "BasicLSTMCell", "BasicLSTMCell": "BasicLSTMCell",
    "lstm_cell": "LSTMCell", "LSTMCell": "LSTMCell",
    "lstm_fused_cell": "LSTMBlockFusedCell",
    "cudnn_compatible_lstm_cell": "CudnnCompatibleLSTMCell",
}
RNN_SCOPES = {"basic_rnn_cell": "BasicRNNCell", "BasicRNNCell": "BasicRNNCell"}
#: Class-derived scope names of tf.contrib cells whose math differs from every layout
#: here: never guessed from shapes (their kernels can look like an LSTM's).
UNSUPPORTED_SCOPES = {
    "ugrnn_cell": "UGRNNCell", "intersection_rnn_cell": "IntersectionRNNCell",
    "nas_cell": "NASCell", "layer_norm_basic_lstm_cell": "LayerNormBasicLSTMCell",
    "layer_norm_lstm_cell": "LayerNormLSTMCell",
    "coupled_input_forget_gate_lstm_cell": "CoupledInputForgetGateLSTMCell",
    "glstm_cell": "GLSTMCell", "phased_lstm_cell": "PhasedLSTMCell",
    "indy_lstm_cell": "IndyLSTMCell", "indy_gru_cell": "IndyGRUCell", "ind_rnn_cell": "IndRNNCell",
    "sru_cell": "SRUCell", "weight_norm_lstm_cell": "WeightNormLSTMCell",
    "minimal_rnn_cell": "MinimalRNNCell", "cfn_cell": "CFNCell", "conv_lstm_cell": "ConvLSTMCell",
    "TimeFreqLSTMCell": "TimeFreqLSTMCell", "GridLSTMCell": "GridLSTMCell",
}
#: Cells without clipping: a missing cell_clip is a fact, not an assumption.
NO_CLIP = frozenset({"BasicLSTMCell", "CudnnCompatibleLSTMCell"})
#: Scope components that only appear inside an RNN driver or cell wrapper.
DRIVER_COMPONENT = re.compile(
    r"^(rnn|RNN|fw|bw|FW|BW|multi_rnn_cell|MultiRNNCell|bidirectional_rnn|BiRNN|cell_\d+|Cell\d+)$"
)
DIRECTIONS = {"fw": "forward", "FW": "forward", "bw": "backward", "BW": "backward"}
STACK = re.compile(r"^(?:cell_(\d+)|Cell(\d+))$")
STACK_PARENTS = ("multi_rnn_cell", "MultiRNNCell")

DEFAULT_FORGET_BIAS = 1.0
OVERRIDE_FLAGS = (("forget_bias", "--forget-bias"), ("cell_clip", "--cell-clip"),
                  ("proj_clip", "--proj-clip"), ("activation", "--activation"))


@dataclass
class CellMatch:
    """One recognised cell: its scope, class, the checkpoint keys it uses and its sizes."""

    scope: str
    kind: str  # lstm | gru | simple_rnn
    class_name: str
    keys: dict[str, str]  # role -> checkpoint key
    units: int
    input_size: int
    guessed: bool = False

    @property
    def kernel_key(self) -> str:
        return self.keys.get("kernel") or self.keys["gates_kernel"]


@dataclass
class _Placement:
    """Where a cell sits: bidirectional scope and direction, MultiRNNCell stack and index."""

    bidi: str | None = None
    direction: str | None = None
    stack: str | None = None
    index: int = 0


@dataclass
class _Driver:
    """Cells that run as one unit (one cell, a MultiRNNCell, or a fw/bw pair or stacks)."""

    name: str
    forward: list[CellMatch] = field(default_factory=list)
    backward: list[CellMatch] = field(default_factory=list)
    bidirectional: bool = False



# ------------------------------------------------------------------ recognition


def _natural_key(text: str) -> tuple:
    """``cell_10`` after ``cell_9``: digits compare as numbers."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _first(shapes: dict[str, tuple[int, ...]], scope: str, names: tuple[str, ...]) -> str | None:
    for name in names:
        key = f"{scope}/{name}"
        if key in shapes:
            return key
    return None


def _base_name(scope: str) -> str:
    """The class-derived last component of a scope (``lstm_cell_1`` -> ``lstm_cell``)."""
    return re.sub(r"_\d+$", "", scope.rsplit("/", 1)[-1])


def _shape_error(key: str, shape: tuple[int, ...], expected: str) -> LoadError:
    return LoadError(
        f"TF1 checkpoint variable {key!r} has shape {shape}, expected {expected}; "
        "the checkpoint does not have the layout its names say"
    )


def _match_gru(shapes: dict, scope: str) -> CellMatch | None:
    gates = next((k for g in GRU_GATES if (k := _first(shapes, f"{scope}/{g}", KERNEL_NAMES))), None)
    if gates is None and f"{scope}/w_ru" in shapes and f"{scope}/w_c" in shapes:
        keys = {"gates_kernel": f"{scope}/w_ru", "candidate_kernel": f"{scope}/w_c"}
        for role, name in (("gates_bias", "b_ru"), ("candidate_bias", "b_c")):
            if f"{scope}/{name}" in shapes:
                keys[role] = f"{scope}/{name}"
        class_name = "GRUBlockCell"
    elif gates is not None:
        gates_scope = gates.rsplit("/", 1)[0] if "/Linear/" not in gates else gates.rsplit("/", 2)[0]
        keys = {"gates_kernel": gates}
        if bias := _first(shapes, gates_scope, BIAS_NAMES):
            keys["gates_bias"] = bias
        candidate = next((f"{scope}/{c}" for c in GRU_CANDIDATE
                          if _first(shapes, f"{scope}/{c}", KERNEL_NAMES)
                          or _first(shapes, f"{scope}/{c}/input_projection", KERNEL_NAMES)), None)
        if candidate is None:
            return None
        if kernel := _first(shapes, candidate, KERNEL_NAMES):
            keys["candidate_kernel"] = kernel
            if bias := _first(shapes, candidate, BIAS_NAMES):
                keys["candidate_bias"] = bias
            class_name = "GRUCell"
        else:
            for part in ("input", "hidden"):
                sub = f"{candidate}/{part}_projection"
                kernel = _first(shapes, sub, KERNEL_NAMES)
                if kernel is None:
                    return None
                keys[f"candidate_{part}_kernel"] = kernel
                if bias := _first(shapes, sub, BIAS_NAMES):
                    keys[f"candidate_{part}_bias"] = bias
            class_name = "CudnnCompatibleGRUCell"
    else:
        return None
    g_shape = shapes[keys["gates_kernel"]]
    if len(g_shape) != 2 or g_shape[1] % 2 or g_shape[1] == 0:
        raise _shape_error(keys["gates_kernel"], g_shape, "(input + units, 2*units)")
    units = g_shape[1] // 2
    if g_shape[0] <= units:
        raise _shape_error(keys["gates_kernel"], g_shape, f"more than {units} rows (input + units)")
    input_size = g_shape[0] - units
    expected = {
        "gates_bias": (2 * units,), "candidate_kernel": (input_size + units, units),
        "candidate_bias": (units,), "candidate_input_kernel": (input_size, units),
        "candidate_input_bias": (units,), "candidate_hidden_kernel": (units, units),
        "candidate_hidden_bias": (units,),
    }
    for role, key in keys.items():
        if role in expected and shapes[key] != expected[role]:
            raise _shape_error(key, shapes[key], str(expected[role]))
    return CellMatch(scope, "gru", class_name, keys, units, input_size)


def _match_kernel_cell(shapes: dict, scope: str) -> CellMatch | None:
    kernel = _first(shapes, scope, KERNEL_NAMES)
    if kernel is None:
        return None
    shape = shapes[kernel]
    keys = {"kernel": kernel}
    if bias := _first(shapes, scope, BIAS_NAMES):
        keys["bias"] = bias
    for gate, names in PEEPHOLE_NAMES.items():
        if peep := _first(shapes, scope, names):
            keys[gate] = peep
    if proj := next((f"{scope}/{p}" for p in PROJECTION_NAMES if f"{scope}/{p}" in shapes), None):
        keys["projection"] = proj
    base = _base_name(scope)
    lstm_parts = any(role in keys for role in (*PEEPHOLE_NAMES, "projection"))
    guessed = False
    if base in LSTM_SCOPES or lstm_parts:
        kind, class_name = "lstm", LSTM_SCOPES.get(base, "LSTMCell")
    elif base in RNN_SCOPES:
        kind, class_name = "simple_rnn", RNN_SCOPES[base]
    elif base in UNSUPPORTED_SCOPES:
        return None
    elif len(shape) == 2 and any(DRIVER_COMPONENT.match(c) for c in scope.split("/")):
        # A cell with a custom name inside an RNN driver: the kernel's width decides.
        rows, cols = shape
        if cols % 4 == 0 and rows > cols // 4:
            kind, class_name = "lstm", "LSTMCell"
        elif rows > cols:
            kind, class_name = "simple_rnn", "BasicRNNCell"
        else:
            return None
        guessed = True
    else:
        return None
    if len(shape) != 2:
        raise _shape_error(kernel, shape, "a matrix (input + hidden, gates*units)")
    rows, cols = shape
    if kind == "simple_rnn":
        units = cols
        state = units
    else:
        if cols % 4 or cols == 0:
            raise _shape_error(kernel, shape, "(input + hidden, 4*units)")
        units = cols // 4
        state = units
        if "projection" in keys:
            p_shape = shapes[keys["projection"]]
            if len(p_shape) != 2 or p_shape[0] != units:
                raise _shape_error(keys["projection"], p_shape, f"({units}, num_proj)")
            state = p_shape[1]
        for gate in PEEPHOLE_NAMES:
            if gate in keys and shapes[keys[gate]] != (units,):
                raise _shape_error(keys[gate], shapes[keys[gate]], f"({units},)")
    if rows <= state:
        raise _shape_error(kernel, shape, f"more than {state} rows (input + hidden)")
    if "bias" in keys and shapes[keys["bias"]] != (cols,):
        raise _shape_error(keys["bias"], shapes[keys["bias"]], f"({cols},)")
    return CellMatch(scope, kind, class_name, keys, units, rows - state, guessed)


def find_cells(shapes: dict[str, tuple[int, ...]]) -> list[CellMatch]:
    """Every TF1 cell among the checkpoint's variables (``name -> shape``), by scope."""
    scopes: set[str] = set()
    for key in shapes:
        for name in (*KERNEL_NAMES, "w_ru"):
            if key.endswith("/" + name):
                scope = key[: -len(name) - 1]
                scopes.add(scope)
                # gru_cell/gates/kernel, lstm_cell/projection/kernel: the cell is the parent.
                while "/" in scope:
                    scope = scope.rsplit("/", 1)[0]
                    scopes.add(scope)
    claimed: set[str] = set()
    matches: list[CellMatch] = []
    # Shallow scopes first, so a cell claims its gates/, candidate/, projection/ parts
    # before they could be mistaken for cells of their own.
    for scope in sorted(scopes, key=lambda s: (s.count("/"), _natural_key(s))):
        kernel = _first(shapes, scope, (*KERNEL_NAMES, "w_ru"))
        if kernel is not None and kernel in claimed:
            continue
        match = _match_gru(shapes, scope) or _match_kernel_cell(shapes, scope)
        if match is None or any(k in claimed for k in match.keys.values()):
            continue
        claimed.update(match.keys.values())
        matches.append(match)
    return matches


def unsupported_cells(shapes: dict[str, tuple[int, ...]]) -> dict[str, str]:
    """Scopes of known tf.contrib cells lstm-trace cannot replay, with their class names."""
    found: dict[str, str] = {}
    for key in shapes:
        scope = key.rsplit("/", 1)[0] if "/" in key else ""
        while scope:
            class_name = UNSUPPORTED_SCOPES.get(_base_name(scope))
            if class_name:
                found.setdefault(scope, class_name)
                break
            scope = scope.rsplit("/", 1)[0] if "/" in scope else ""
    return found


def foreign_variables(shapes: dict[str, tuple[int, ...]], match: CellMatch) -> list[str]:
    """Variables inside a cell's scope that its layout does not use.

    Optimizer slots and moving averages of the cell's own variables (``kernel/Adam``)
    are not foreign. Anything else (a LayerNormBasicLSTMCell's ``input/gamma``, a sharded
    ``W_1``) means the cell computes something this layout does not describe.
    """
    own = set(match.keys.values())
    return [
        key for key in shapes
        if key.startswith(match.scope + "/") and key not in own
        and not any(key.startswith(k + "/") for k in own)
    ]


def _placement(scope: str) -> _Placement:
    parts = scope.split("/")
    place = _Placement()
    for i, part in enumerate(parts):
        if part in DIRECTIONS:
            place.bidi, place.direction = "/".join(parts[:i]), DIRECTIONS[part]
        m = STACK.match(part)
        if m and i and parts[i - 1] in STACK_PARENTS:
            place.stack = "/".join(parts[: i - 1])
            place.index = int(m.group(1) or m.group(2))
    return place


def _drivers(matches: list[CellMatch], order: dict[str, int]) -> list[_Driver]:
    """Group cells into drivers and order them (graph creation order if known, else by name)."""
    drivers: dict[str, _Driver] = {}
    for match in matches:
        place = _placement(match.scope)
        if place.bidi is not None and place.bidi:
            driver = drivers.setdefault(place.bidi, _Driver(place.bidi, bidirectional=True))
            (driver.forward if place.direction == "forward" else driver.backward).append(match)
        else:
            name = place.stack if place.stack is not None else match.scope
            drivers.setdefault(name, _Driver(name)).forward.append(match)

    def cell_order(match: CellMatch) -> tuple:
        return (_placement(match.scope).index, _natural_key(match.scope))

    for driver in drivers.values():
        driver.forward.sort(key=cell_order)
        driver.backward.sort(key=cell_order)

    def driver_order(driver: _Driver) -> tuple:
        first = min(order.get(m.kernel_key, len(order)) for m in driver.forward + driver.backward)
        return (first, _natural_key(driver.name))

    return sorted(drivers.values(), key=driver_order)


# ------------------------------------------------------------------ canonical cells


@dataclass
class _Settings:
    activation: str
    recurrent_activation: str = "sigmoid"
    forget_bias: float = 0.0
    cell_clip: float | None = None
    proj_clip: float | None = None
    layout: str = "tf1_lstm"
    assumed: list[str] = field(default_factory=list)
    from_meta: list[str] = field(default_factory=list)


def _fmt(value: float) -> str:
    """A float32 value as TF would print it (0.3, not 0.30000001192092896)."""
    return str(np.float32(value))


def _float32_literal(value: float) -> float:
    """The shortest decimal of a float32 graph constant (0.3): the same float32, clean to show."""
    return float(_fmt(value))


def _settings(match: CellMatch, facts: CellFacts | None, options: LoadOptions) -> _Settings:
    """The build-time numbers of one cell: option > .meta graph > TF default (noted)."""
    settings = _Settings(activation="tanh", recurrent_activation=options.recurrent_activation or "sigmoid")
    if options.activation:
        settings.activation = options.activation
    elif facts is not None and facts.activation:
        settings.activation = facts.activation
        if facts.activation != "tanh":
            settings.from_meta.append(f"activation={facts.activation}")
    elif facts is not None and facts.unknown_activation:
        raise LoadError(
            f"TF1 cell {match.scope!r} uses the activation op {facts.unknown_activation!r} "
            "(from the .meta graph), which lstm-trace does not know; pass --activation NAME"
        )
    else:
        settings.assumed.append("activation=tanh")
    if match.kind != "lstm":
        return settings
    # The forget bias matters most: say it first.
    activation_assumed = settings.assumed[:]
    settings.assumed.clear()
    if facts is not None and facts.layout:
        settings.layout = facts.layout
    no_clip = match.class_name in NO_CLIP
    if options.forget_bias is not None:
        settings.forget_bias = options.forget_bias
    elif facts is not None and facts.forget_bias is not None:
        settings.forget_bias = _float32_literal(facts.forget_bias)
        settings.from_meta.append(f"forget_bias={_fmt(facts.forget_bias)}")
    else:
        default = 0.0 if match.class_name == "CudnnCompatibleLSTMCell" else DEFAULT_FORGET_BIAS
        settings.forget_bias = default
        settings.assumed.append(f"forget_bias={_fmt(default)}")
    settings.cell_clip = _resolve_clip(
        settings, "cell_clip", options.cell_clip, facts, facts and facts.cell_clip,
        note_default=not no_clip,
    )
    if "projection" in match.keys:
        settings.proj_clip = _resolve_clip(
            settings, "proj_clip", options.proj_clip, facts, facts and facts.proj_clip,
        )
    settings.assumed += activation_assumed
    return settings


def _resolve_clip(
    settings: _Settings, name: str, option: float | None, facts: CellFacts | None,
    meta_value: float | None, *, note_default: bool = True,
) -> float | None:
    """A clip: the option, else the ``.meta``'s value (noted), else none (noted as assumed
    when there is no ``.meta`` to say so)."""
    if option is not None:
        return option
    if facts is not None:
        if meta_value is None:
            return None
        settings.from_meta.append(f"{name}={_fmt(meta_value)}")
        return _float32_literal(meta_value)
    if note_default:
        settings.assumed.append(f"no {name}")
    return None


def _facts(meta: MetaGraph | None, match: CellMatch) -> CellFacts | None:
    if meta is None:
        return None
    if match.kind == "lstm":
        return meta.lstm_facts(match.keys["kernel"], match.keys.get("projection"))
    if match.kind == "gru":
        key = match.keys.get("candidate_kernel") or match.keys.get("candidate_input_kernel")
        return meta.activation_facts(key) if key else None
    return meta.activation_facts(match.keys["kernel"])


def _lstm_cell(match: CellMatch, arrays: dict[str, np.ndarray], s: _Settings) -> Cell:
    kernel = arrays["kernel"]
    x_rows = match.input_size  # x rows first, then the h (or projected m) rows
    bias = arrays.get("bias")
    return Cell(
        kind="lstm", units=match.units,
        kernel=reorder_gates(kernel[:x_rows], s.layout, "lstm"),
        recurrent_kernel=reorder_gates(kernel[x_rows:], s.layout, "lstm"),
        bias=None if bias is None else reorder_gates(bias, s.layout, "lstm"),
        activation=s.activation, recurrent_activation=s.recurrent_activation,
        forget_bias=s.forget_bias,
        peepholes={g: arrays[g] for g in PEEPHOLE_NAMES if g in arrays} or None,
        projection=arrays.get("projection"),
        cell_clip=s.cell_clip, proj_clip=s.proj_clip if "projection" in arrays else None,
        layout=s.layout,
    )


def _gru_cell(match: CellMatch, arrays: dict[str, np.ndarray], s: _Settings) -> Cell:
    u, n = match.units, match.input_size
    gates = arrays["gates_kernel"]
    wx = split_gates(gates[:n], "tf1_gru_gates")
    wh = split_gates(gates[n:], "tf1_gru_gates")
    dtype = gates.dtype
    gates_bias = arrays.get("gates_bias", np.zeros(2 * u, dtype))
    b = split_gates(gates_bias, "tf1_gru_gates")
    if match.class_name == "CudnnCompatibleGRUCell":
        # candidate = φ(x W_x + b_x + r ⊙ (h W_h + b_h)): Keras's reset_after form.
        wx["candidate"] = arrays["candidate_input_kernel"]
        wh["candidate"] = arrays["candidate_hidden_kernel"]
        b["candidate"] = arrays.get("candidate_input_bias", np.zeros(u, dtype))
        recurrent_bias = np.concatenate([
            np.zeros(2 * u, dtype), arrays.get("candidate_hidden_bias", np.zeros(u, dtype))
        ])
        reset_after = True
    else:
        candidate = arrays["candidate_kernel"]
        wx["candidate"], wh["candidate"] = candidate[:n], candidate[n:]
        b["candidate"] = arrays.get("candidate_bias", np.zeros(u, dtype))
        recurrent_bias, reset_after = None, False
    return Cell(
        kind="gru", units=u, kernel=fuse_gates(wx, "gru"), recurrent_kernel=fuse_gates(wh, "gru"),
        bias=fuse_gates(b, "gru"), recurrent_bias=recurrent_bias, reset_after=reset_after,
        activation=s.activation, recurrent_activation=s.recurrent_activation, layout="tf1_gru_gates",
    )


def _rnn_cell(match: CellMatch, arrays: dict[str, np.ndarray], s: _Settings) -> Cell:
    kernel = arrays["kernel"]
    n = match.input_size
    return Cell(
        kind="simple_rnn", units=match.units, kernel=kernel[:n], recurrent_kernel=kernel[n:],
        bias=arrays.get("bias"), activation=s.activation, layout="tf1_rnn",
    )


def _make_cell(match: CellMatch, read: Callable[[str], np.ndarray], s: _Settings) -> Cell:
    arrays = {role: read(key) for role, key in match.keys.items()}
    build = {"lstm": _lstm_cell, "gru": _gru_cell, "simple_rnn": _rnn_cell}[match.kind]
    try:
        return build(match, arrays, s)
    except ValueError as err:
        raise LoadError(f"TF1 cell {match.scope!r}: {err}") from None


# ------------------------------------------------------------------ network


def _read_meta(prefix: str, notes: list[str]) -> MetaGraph | None:
    path = Path(prefix + ".meta")
    if not path.is_file():
        return None
    try:
        return MetaGraph.open(path)
    except MetaGraphError as err:
        notes.append(f"ignored {path.name}: {err}; using TF defaults for what it would say")
        return None


def _one_direction(match: CellMatch, cell: Cell, reverse: bool = False) -> RecurrentLayer:
    # A one-direction layer is "forward" in trace keys and CSV rows (contract), even
    # when it walks the sequence backwards like a Keras go_backwards layer.
    return RecurrentLayer(
        name=match.scope, directions=[Direction("forward", cell, reverse=reverse)],
        class_name=match.class_name,
    )


@dataclass
class WeightSource:
    """Where a TF1 network's cells come from: their variables, and the graph they ran in.

    A ``Saver`` checkpoint reads variables from its bundle (the graph, if any, is the
    ``.meta`` beside it); a frozen GraphDef has the same tensors as ``Const`` nodes and is
    its own graph; a TF1 SavedModel has a variables bundle and its MetaGraphDef. The cell
    translation is the same for all of them (:func:`build_tf1_network`).
    """

    shapes: dict[str, tuple[int, ...]]  # variable name -> shape
    read: Callable[[str], np.ndarray]
    graph: MetaGraph | None  # None: no graph, the TF defaults are assumed (with a note)
    graph_name: str  # how notes name the graph: "model-0.meta", "frozen.pb"
    source: str  # Network.source: "TF1 checkpoint model-0"
    what: str = "TF1 checkpoint"  # the kind of file, in messages
    #: Why a build-time number is assumed when there is no graph at all.
    no_graph: str = "not stored in a TF1 checkpoint and no .meta graph beside it"
    #: Why the ops between two separate RNNs are not replayed.
    between: str = "a TF1 checkpoint does not store the ops between separate RNNs"


def load_tf1_checkpoint(
    bundle: TensorBundle, path: Path, options: LoadOptions, graph: MetaGraph | None = None,
    graph_name: str | None = None,
) -> Network:
    """A Network of the RNN cells of a name-based (TF1 ``Saver``) checkpoint.

    ``graph`` is the graph the variables belong to when the caller has it (a TF1
    SavedModel's MetaGraphDef); otherwise the ``<prefix>.meta`` beside the checkpoint
    is read when there is one.
    """
    notes: list[str] = []
    prefix_name = Path(bundle.prefix).name
    if graph is None:
        graph = _read_meta(bundle.prefix, notes)
        graph_name = f"{prefix_name}.meta"
    source = WeightSource(
        shapes={key: bundle.shape(key) for key in bundle}, read=bundle.read, graph=graph,
        graph_name=graph_name or "the graph", source=f"TF1 checkpoint {prefix_name}",
    )
    if graph is not None and graph_name and not graph_name.endswith(".meta"):
        source.between = f"the ops between separate RNNs in {graph_name} are not replayed"
    return build_tf1_network(source, options, notes, name=prefix_name)


def build_tf1_network(
    weights: WeightSource, options: LoadOptions, notes: list[str], *, name: str
) -> Network:
    """The canonical Network of every TF1 RNN cell among ``weights`` (``name``: the file,
    in messages). ``notes`` may already hold notes of the caller; more are appended."""
    if options.activation:
        try:
            get_activation(options.activation)
        except ValueError as err:
            raise LoadError(f"--activation: {err}") from None
    shapes = weights.shapes
    for scope, class_name in unsupported_cells(shapes).items():
        notes.append(f"{scope}: not traced: looks like a {class_name}, which lstm-trace does not support")
    matches = []
    for match in find_cells(shapes):
        foreign = foreign_variables(shapes, match)
        if foreign:
            notes.append(
                f"{match.scope}: not traced: it has variables a {match.class_name} does not have "
                f"({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}), so it is a "
                "cell type lstm-trace does not support"
            )
            continue
        matches.append(match)
    if not matches:
        listed = ", ".join(f"{k} {shapes[k]}" for k in list(shapes)[:8])
        skipped = f"; {notes[-1]}" if notes else ""
        raise LoadError(
            f"{name}: {weights.what} holds no recognisable RNN cell (expected variables "
            f"like rnn/lstm_cell/kernel or rnn/gru_cell/gates/kernel; found {listed or 'none'}"
            f"{', ...' if len(shapes) > 8 else ''}){skipped}"
        )
    meta = weights.graph
    order = {key: i for i, key in enumerate(meta.variables())} if meta is not None else {}

    cells: dict[str, Cell] = {}
    assumed: dict[str, list[str]] = {}
    for match in matches:
        settings = _settings(match, _facts(meta, match), options)
        cells[match.scope] = _make_cell(match, weights.read, settings)
        if settings.assumed:
            assumed.setdefault(", ".join(settings.assumed), []).append(match.scope)
        if settings.from_meta:
            notes.append(f"{match.scope}: {', '.join(settings.from_meta)} (read from {weights.graph_name})")
        if match.guessed:
            notes.append(
                f"{match.scope}: unknown cell name, taken as a {match.class_name} from its kernel "
                f"shape {shapes[match.kernel_key]}; if it is another cell type, this trace is wrong"
            )
    why = weights.no_graph if meta is None else f"not found in {weights.graph_name}"
    for what, scopes in assumed.items():
        flags = [flag for word, flag in OVERRIDE_FLAGS if word in what]
        notes.append(
            f"{', '.join(scopes)}: assumed {what} (TF defaults; {why}); override with "
            f"{', '.join(flags)}"
        )

    if meta is not None:
        for placeholder in meta.time_major_inputs():
            notes.append(
                f"{placeholder}: {weights.graph_name} feeds it to the RNN time-major (steps, batch, "
                "features); INPUT is (batch, steps, features) all the same: transpose it, "
                "x.transpose(1, 0, 2)"
            )
    drivers = _drivers(matches, order)
    inputs = {}
    if meta is not None:
        for driver in drivers:
            first_cell = (driver.forward or driver.backward)[0]
            inputs[driver.name] = meta.input_placeholder(first_cell.kernel_key)
    layers, inbound = _assemble(drivers, cells, notes, weights.between, inputs)
    used = {key for match in matches for key in match.keys.values()}
    unexplained = unused_summary(shapes, used)
    first = next(layer for layer in layers if isinstance(layer, RecurrentLayer))
    return Network(
        layers=layers, source=weights.source, input_shape=(None, first.input_size),
        notes=notes, inbound=inbound, unexplained=unexplained,
    )


def _first_layer_name(driver: _Driver) -> str:
    """The name of the first layer a driver becomes (its own name for a fw/bw pair)."""
    if (driver.bidirectional and len(driver.forward) == 1 and len(driver.backward) == 1
            and _placement(driver.forward[0].scope).stack is None
            and _placement(driver.backward[0].scope).stack is None):
        return driver.name
    return (driver.forward or driver.backward)[0].scope


def _assemble(
    drivers: list[_Driver], cells: dict[str, Cell], notes: list[str], between: str,
    inputs: dict[str, str | None] | None = None,
) -> tuple[list[RecurrentLayer | UpstreamLayer], dict[str, tuple[str, ...]]]:
    """Lay the drivers out as a chain of layers, with ``inbound`` where a chain branches.

    ``inputs`` names the graph input each driver reads, where the graph says (a frozen
    graph, a SavedModel's, a ``.meta``): a later driver reading the first one's input is
    traced from INPUT too, one reading another graph input is left to ``--layer-input``.
    Otherwise a driver whose input size fits is assumed to read the previous one's output.
    """
    inputs = inputs or {}
    layers: list[RecurrentLayer | UpstreamLayer] = []
    inbound: dict[str, tuple[str, ...]] = {}
    previous_output: int | None = None  # output size of the last driver, None: unknown
    previous_bidirectional = False
    chained: list[str] = []
    model_input = inputs.get(drivers[0].name) if drivers else None
    for driver in drivers:
        first = (driver.forward or driver.backward)[0]
        reads = inputs.get(driver.name)
        own_input: tuple[str, ...] | None = None
        if layers and model_input is not None and reads is not None:
            own_input = () if reads == model_input else (f"<graph input {reads}>",)
            notes.append(
                f"{driver.name}: reads the graph input {reads!r}"
                + (" like the first RNN: traced from INPUT" if reads == model_input else
                   f", not {model_input!r}: trace it with --layer {_first_layer_name(driver)} "
                   "--layer-input and that input")
            )
        elif layers:
            if previous_output == first.input_size:
                chained.append(driver.name + (" (fw and bw outputs concatenated)"
                                              if previous_bidirectional else ""))
            else:
                layers.append(Unsupported(
                    name=f"<graph before {driver.name}>", class_name="TF1 graph",
                    reason=between,
                ))
        source: tuple[str, ...] = (layers[-1].name,) if layers else ()
        if own_input is not None:
            source = own_input
            inbound[_first_layer_name(driver)] = own_input
        pair = (driver.bidirectional and len(driver.forward) == 1 and len(driver.backward) == 1
                and _placement(driver.forward[0].scope).stack is None
                and _placement(driver.backward[0].scope).stack is None
                and driver.forward[0].input_size == driver.backward[0].input_size)
        if pair:
            fw, bw = driver.forward[0], driver.backward[0]
            layers.append(RecurrentLayer(
                name=driver.name,
                directions=[Direction("forward", cells[fw.scope]),
                            Direction("backward", cells[bw.scope], reverse=True)],
                bidirectional=True, merge_mode="concat", class_name="bidirectional_dynamic_rnn",
            ))
            previous_output = layers[-1].output_size
            previous_bidirectional = True
            continue
        for match in driver.forward:
            layers.append(_one_direction(match, cells[match.scope]))
        if driver.backward:
            # A bw stack walks the reversed sequence: each cell reads the previous cell's
            # outputs step by step in that same walk, i.e. in input positions, which is what
            # a cell that feeds a stacked cell hands on (as in Keras StackedRNNCells).
            for k, match in enumerate(driver.backward):
                if k == 0 and driver.forward:
                    inbound[match.scope] = source
                layer = _one_direction(match, cells[match.scope], reverse=True)
                layer.feeds_stacked_cell = k < len(driver.backward) - 1
                layers.append(layer)
        previous_output = None if driver.forward and driver.backward else layers[-1].output_size
        previous_bidirectional = False
    if chained:
        notes.append(
            f"{', '.join(chained)}: assumed to take the previous RNN's output as input (its "
            f"size fits; {between}); otherwise trace it with --layer NAME --layer-input"
        )
    return layers, inbound


#: Variables a TF1 training loop adds beside the weights (AdamOptimizer, the step counter).
TRAINING_COUNTERS = frozenset({"beta1_power", "beta2_power", "global_step"})


def unused_summary(shapes: dict[str, tuple[int, ...]], used: set[str]) -> list[str]:
    """The stored variables no layer uses, for :attr:`Network.unexplained`: one entry each,
    except optimizer slots (a variable named after another stored one: ``<var>/Adam``,
    ``<var>/Adam_1``, ``<var>/Momentum``...) and training counters, one summary line each."""
    plain: list[str] = []
    slots: list[str] = []
    counters: list[str] = []
    for key in shapes:
        if key in used:
            continue
        if key.rpartition("/")[0] in shapes:
            slots.append(key)
        elif key.rpartition("/")[2] in TRAINING_COUNTERS:
            counters.append(key)
        else:
            plain.append(f"{key} {shapes[key]}")
    if slots:
        kinds = ", ".join(sorted({key.rpartition("/")[2] for key in slots}))
        plain.append(f"{len(slots)} optimizer slot variables ({kinds}; e.g. {slots[0]})")
    if len(counters) > 1:
        plain.append(f"training counters ({', '.join(counters)})")
    else:
        plain += [f"{key} {shapes[key]}" for key in counters]
    return plain
