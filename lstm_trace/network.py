"""The canonical, framework-free description of a recurrent network.

Loaders translate files into these dataclasses; the engine runs them. Nothing here
knows which framework or file a network came from, except the free-text
``Network.source`` and the ``notes`` a loader leaves about the defaults it assumed.

Fused tensors are kept in the canonical gate order of :data:`lstm_trace.gates.CANONICAL_ORDER`
(LSTM ``i, f, c, o``; GRU ``z, r, h``), whatever order the file used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from .cells import CELL_KINDS
from .gates import CANONICAL_ORDER, gate_slices
from .keys import key_prefix

if TYPE_CHECKING:
    from .layers import UpstreamLayer

#: Quantities each cell kind records, in contract order (from :mod:`lstm_trace.cells`).
QUANTITIES: dict[str, tuple[str, ...]] = {name: kind.quantities for name, kind in CELL_KINDS.items()}


@dataclass
class Cell:
    """Weights and options of one recurrent cell, in canonical form.

    ``kernel`` is ``(input_size, G*units)``, ``recurrent_kernel`` ``(state_size, G*units)``
    and ``bias`` ``(G*units,)``, with ``G`` gates fused in canonical order. ``state_size``
    is ``units``, or ``num_proj`` for a projected LSTM.

    LSTM (``σ`` = ``recurrent_activation``, ``φ`` = ``activation``, ``ψ`` =
    ``output_activation``, which is ``φ`` unless set; ``⌊·⌉`` clips to ±``gate_clip`` when set)::

        input_gate  i = σ(⌊x W_i + h U_i + b_i [+ p_i ⊙ c]⌉)
        forget_gate f = σ(⌊x W_f + h U_f + b_f + forget_bias [+ p_f ⊙ c]⌉)
                    f = 1 - i                        (coupled_input_forget)
        candidate   g = φ(⌊x W_c + h U_c + b_c⌉)
        cell        c' = f ⊙ c + i ⊙ g                 (clipped to ±cell_clip)
        output_gate o = σ(⌊x W_o + h U_o + b_o [+ p_o ⊙ c']⌉)
        hidden      h' = o ⊙ ψ(c')                    (then h' P, clipped to ±proj_clip)

    GRU::

        update_gate z = σ(⌊x W_z + b_z + h U_z + rb_z⌉)
        reset_gate  r = σ(⌊x W_r + b_r + h U_r + rb_r⌉)
        candidate   h̃ = φ(⌊x W_h + b_h + r ⊙ (h U_h + rb_h)⌉)      reset_after
                    h̃ = φ(⌊x W_h + b_h + (r ⊙ h) U_h + rb_h⌉)      not reset_after
        hidden      h' = z ⊙ h + (1 - z) ⊙ h̃

    SimpleRNN::

        hidden      h' = φ(⌊x W + h U + b⌉)

    Activation names may carry parameters (``leaky_relu(alpha=0.1)``, see
    :mod:`lstm_trace.activations`).
    """

    kind: str
    units: int
    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray | None = None
    activation: str = "tanh"
    recurrent_activation: str = "sigmoid"
    #: GRU: the second ("recurrent") bias of reset_after / CuDNN layouts, ``(3*units,)``.
    recurrent_bias: np.ndarray | None = None
    reset_after: bool = True
    #: Added to the forget gate's pre-activation at run time (TF1 ``forget_bias``).
    forget_bias: float = 0.0
    #: LSTM peephole weights by gate name (``input_gate``, ``forget_gate``, ``output_gate``).
    peepholes: dict[str, np.ndarray] | None = None
    #: LSTM projection ``(units, num_proj)``; ``hidden`` is then the projected output.
    projection: np.ndarray | None = None
    cell_clip: float | None = None
    proj_clip: float | None = None
    #: LSTM: ψ in ``h' = o ⊙ ψ(c')``; ``None``: the same as ``activation`` (ONNX sets its own ``h``).
    output_activation: str | None = None
    #: Every gate's pre-activation (bias and peepholes included) is clipped to ±gate_clip before
    #: its activation (ONNX ``clip``, as onnxruntime applies it); ``None``: no clipping.
    gate_clip: float | None = None
    #: LSTM: the forget gate is ``1 - i`` (ONNX ``input_forget``); the forget weights are unused.
    coupled_input_forget: bool = False
    #: The :data:`~lstm_trace.gates.GATE_ORDERS` layout the file stored its fused tensors in
    #: (``keras_lstm``, ``tf1_lstm``...); only ``inspect`` uses it. ``None``: not known.
    layout: str | None = None
    #: Names of the file's tensors each fused tensor was read from, by role (``kernel``,
    #: ``recurrent_kernel``, ``bias``, ``recurrent_bias``, ``projection``); several names are
    #: summed (PyTorch's LSTM ``bias`` is ``bias_ih_l0 + bias_hh_l0``). Only ``inspect`` uses it.
    tensor_names: dict[str, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        if self.kind not in QUANTITIES:
            raise ValueError(f"unknown cell kind {self.kind!r}")
        width = self.gate_count * self.units
        if self.kernel.ndim != 2 or self.kernel.shape[1] != width:
            raise ValueError(
                f"{self.kind} kernel must be (input_size, {width}), got {self.kernel.shape}"
            )
        if self.recurrent_kernel.shape != (self.state_size, width):
            raise ValueError(
                f"{self.kind} recurrent kernel must be ({self.state_size}, {width}), "
                f"got {self.recurrent_kernel.shape}"
            )
        for label, b in (("bias", self.bias), ("recurrent bias", self.recurrent_bias)):
            if b is not None and b.shape != (width,):
                raise ValueError(f"{self.kind} {label} must be ({width},), got {b.shape}")

    @property
    def gate_count(self) -> int:
        return len(CANONICAL_ORDER[self.kind])

    @property
    def input_size(self) -> int:
        return int(self.kernel.shape[0])

    @property
    def state_size(self) -> int:
        """Width of the recurrent input ``h`` (the projection size for a projected LSTM)."""
        if self.projection is not None:
            return int(self.projection.shape[1])
        return self.units

    @property
    def output_size(self) -> int:
        return self.state_size

    @property
    def quantities(self) -> tuple[str, ...]:
        return QUANTITIES[self.kind]

    def gate_weights(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-gate views ``{gate: {"kernel", "recurrent_kernel", "bias", ...}}``."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for gate, cols in gate_slices(self.kind, self.units).items():
            parts = {
                "kernel": self.kernel[:, cols],
                "recurrent_kernel": self.recurrent_kernel[:, cols],
            }
            if self.bias is not None:
                parts["bias"] = self.bias[cols]
            if self.recurrent_bias is not None:
                parts["recurrent_bias"] = self.recurrent_bias[cols]
            out[gate] = parts
        return out

    def parameter_count(self) -> int:
        """The values the file stores for this cell, as its framework counts them: an array
        summed from n stored tensors (``tensor_names``: PyTorch's LSTM ``bias_ih + bias_hh``,
        ONNX's ``Wb + Rb``) counts n times."""
        names = self.tensor_names or {}
        arrays = {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel, "bias": self.bias,
                  "recurrent_bias": self.recurrent_bias, "projection": self.projection}
        count = sum(a.size * max(1, len(names.get(role, ()))) for role, a in arrays.items() if a is not None)
        return int(count + sum(p.size for p in (self.peepholes or {}).values()))

    def astype(self, dtype: np.dtype) -> Cell:
        """A copy with every array cast to ``dtype``."""
        def cast(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else np.ascontiguousarray(a, dtype=dtype)

        peep = None if self.peepholes is None else {k: cast(v) for k, v in self.peepholes.items()}
        return replace(
            self, kernel=cast(self.kernel), recurrent_kernel=cast(self.recurrent_kernel),
            bias=cast(self.bias), recurrent_bias=cast(self.recurrent_bias), peepholes=peep,
            projection=cast(self.projection),
        )

    @property
    def hidden_activation(self) -> str:
        """ψ of ``h' = o ⊙ ψ(c')`` (LSTM): ``output_activation`` or else ``activation``."""
        return self.output_activation or self.activation


@dataclass
class Direction:
    """One direction of a recurrent layer: a cell and which way it walks the sequence.

    ``reverse`` is Keras's ``go_backwards``: the cell consumes ``x[T-1], ..., x[0]``.
    """

    name: str  # "forward" or "backward"
    cell: Cell
    reverse: bool = False


@dataclass
class RecurrentLayer:
    """A recurrent layer: one direction, or two merged like Keras ``Bidirectional``.

    ``merge_mode`` is one of ``concat``, ``sum``, ``mul``, ``ave`` or ``None`` (two outputs)
    and only matters for two directions. ``return_sequences`` decides whether the next
    layer sees the sequence or only the last output.
    """

    name: str
    directions: list[Direction]
    bidirectional: bool = False
    merge_mode: str | None = "concat"
    return_sequences: bool = True
    class_name: str = ""
    #: Keras ``stateful`` / ``unroll`` and similar options that do not change a replay.
    options: dict[str, object] = field(default_factory=dict)
    #: Keras ``zero_output_for_mask``: the returned sequence is 0 on masked steps instead of
    #: repeating the previous output (``Bidirectional`` always does this).
    zero_output_for_mask: bool = False
    #: A cell of ``RNN(StackedRNNCells)`` other than the last: the next cell consumes its
    #: outputs step by step, so they stay in input-position order even with ``go_backwards``.
    feeds_stacked_cell: bool = False
    #: Sources of the initial states the model wires in (Keras ``initial_state=[...]``), in
    #: order: ``hidden`` then ``cell`` of each direction. Names as in ``Network.inbound``.
    initial_state_from: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.directions[0].cell.kind

    @property
    def input_size(self) -> int:
        return self.directions[0].cell.input_size

    @property
    def output_size(self) -> int:
        size = self.directions[0].cell.output_size
        if self.bidirectional and self.merge_mode == "concat":
            return 2 * size
        return size

    def trace_prefixes(self) -> list[tuple[str, Direction]]:
        """The trace-key prefix of each direction (``layer`` or ``layer/forward``...)."""
        if not self.bidirectional:
            return [(self.name, self.directions[0])]
        return [(key_prefix(self.name, d.name, True), d) for d in self.directions]

    def parameter_count(self) -> int:
        return sum(d.cell.parameter_count() for d in self.directions)


class InputAdapter(Protocol):
    """A model's named inputs, fed as its framework feeds them (ONNX graph inputs).

    ``read`` turns INPUT (a path) into arrays by input name; ``feeds`` checks them and
    returns the engine's source values (``Network.inbound`` names, ``""`` the main input).
    """

    def read(self, path: str, key: str | None = None) -> dict[str, np.ndarray]: ...

    def feeds(
        self, x: np.ndarray | Mapping[str, np.ndarray], dtype: np.dtype
    ) -> dict[str, np.ndarray]: ...

    def describe(self) -> list[str]: ...


@dataclass
class Network:
    """A model as an ordered chain of layers, ready to replay.

    ``layers`` holds :class:`RecurrentLayer` objects and upstream layers
    (:class:`lstm_trace.layers.UpstreamLayer`) in execution order; each consumes the
    previous one's output. ``input_shape`` is the model's input without the batch axis,
    with ``None`` for unknown sizes. ``notes`` are the one-line assumptions a loader made.
    """

    layers: list[RecurrentLayer | UpstreamLayer]
    source: str = ""
    keras_version: str | None = None
    input_shape: tuple[int | None, ...] | None = None
    input_dtype: str = "float32"
    notes: list[str] = field(default_factory=list)
    #: Data inputs of each layer by name (``()``: the model input; ``""`` names the model
    #: input among several sources; ``"<layer>:<k>"`` is output ``k`` of a recurrent layer
    #: with ``return_state``: its final states, ``hidden`` then ``cell`` of each direction).
    #: A layer missing here takes the previous layer's output, so a plain chain needs none.
    inbound: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Stored variables the loader could not attribute to any layer (optimizer slots,
    #: ``global_step``, a dense head of a checkpoint...), each ``"name (shape)"``; ``inspect``
    #: lists them so nothing in a file is silently dropped.
    unexplained: list[str] = field(default_factory=list)
    #: Layers of the file that feed no recurrent layer (heads after the last one, side
    #: branches), each ``(name, class name)``: never replayed, listed by ``inspect``.
    downstream: list[tuple[str, str]] = field(default_factory=list)
    #: Layers of the file before the first recurrent layer that the loader does not replay
    #: (a PyTorch conv front: the trace starts at the first recurrent module, INPUT is its
    #: input), each ``(name, class name)``: listed by ``inspect`` as ``(before)``.
    front: list[tuple[str, str]] = field(default_factory=list)
    #: How many values each non-recurrent layer stores in the file (Keras's
    #: ``count_params``), by layer name, where the loader read them; ``inspect`` adds them
    #: to the recurrent layers' count for the model's total.
    layer_parameters: dict[str, int] = field(default_factory=dict)
    #: Named model inputs fed as the framework feeds them (ONNX: INPUT is what onnxruntime
    #: takes, an .npz feeds several graph inputs by name); ``None``: INPUT is
    #: ``(batch, steps, features)`` or token ids for the first layer.
    input_adapter: InputAdapter | None = None

    def sources(self, index: int) -> tuple[str, ...]:
        """Names of the layers whose outputs feed ``layers[index]`` (``()``: the model input)."""
        name = self.layers[index].name
        if name in self.inbound:
            return self.inbound[name]
        return (self.layers[index - 1].name,) if index else ()

    @property
    def recurrent_layers(self) -> list[RecurrentLayer]:
        return [layer for layer in self.layers if isinstance(layer, RecurrentLayer)]

    def layer(self, name: str) -> RecurrentLayer | UpstreamLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def trace(self, x: np.ndarray, **options: object):  # noqa: ANN201 - avoids an import cycle
        """Replay ``x`` and return a :class:`lstm_trace.trace.Trace` (see :func:`lstm_trace.engine.run`)."""
        from .engine import run

        return run(self, x, **options)

    def trace_chunks(self, x: np.ndarray, **options: object):  # noqa: ANN201
        """The trace of ``x`` in chunks (see :func:`lstm_trace.streaming.trace_chunks`)."""
        from .streaming import trace_chunks

        return trace_chunks(self, x, **options)
