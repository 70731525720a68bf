"""Per-gate weights of every recurrent layer, and the same weights as Keras layers or PyTorch
state dicts.

:func:`gate_weights` splits each cell's fused tensors into one array per gate, with the
keys ``<layer>[/<direction>]/<gate>/<tensor>`` (``<layer>`` and ``<direction>`` as in
trace keys)::

    lstm/input_gate/kernel             (input_size, units)   x W_i
    lstm/input_gate/recurrent_kernel   (state_size, units)   h U_i
    lstm/input_gate/bias               (units,)              b_i
    gru/forward/reset_gate/input_bias      (units,)   b_r, added to x W_r
    gru/forward/reset_gate/recurrent_bias  (units,)   rb_r, added to h U_r
    lstm/forget_gate/peephole          (units,)   p_f (TF1 use_peepholes)
    lstm/projection                    (units, num_proj)

Matrices keep the Keras orientation (``x @ kernel``). Gates are the canonical names
(LSTM ``input_gate, forget_gate, candidate, output_gate``; GRU ``update_gate,
reset_gate, candidate``; SimpleRNN ``candidate``). A GRU with two biases (Keras
``reset_after=True``, CuDNN) has ``input_bias`` and ``recurrent_bias`` instead of ``bias``.
An LSTM's ``forget_gate/bias`` includes any run-time ``forget_bias`` (TF1), as the
``forget_gate`` of a trace does.

:func:`to_pytorch` lays the same weights out as ``torch.nn.LSTM`` / ``GRU`` / ``RNN``
state dicts, one module per recurrent layer (PyTorch stacks only layers of equal width,
so each layer is its own single-layer module)::

    weight_ih_l0  (G*hidden, input)    gates stacked along rows: LSTM i,f,g,o; GRU r,z,n
    weight_hh_l0  (G*hidden, hidden)
    bias_ih_l0, bias_hh_l0  (G*hidden,)
    weight_hr_l0  (proj, hidden)        LSTM projection (proj_size)
    ..._reverse   the backward direction of a Bidirectional layer

PyTorch's GRU computes ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``, which is
Keras's ``reset_after=True``; a ``reset_after=False`` GRU, peepholes, clipping and any
activation other than sigmoid gates with a tanh cell (tanh/relu for SimpleRNN) cannot
be expressed by ``torch.nn`` modules and raise :class:`ExportError`.

:func:`to_keras` lays them out as Keras ``LSTM`` / ``GRU`` / ``SimpleRNN`` weights, the
arrays ``layer.set_weights`` takes (the reverse of :func:`to_pytorch`)::

    <layer>[/<direction>]/kernel            (input_size, G*units)   gates in Keras order
    <layer>[/<direction>]/recurrent_kernel  (units, G*units)
    <layer>[/<direction>]/bias              (G*units,); GRU reset_after: (2, 3*units)
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from .atomic import atomic_write
from .gates import GATE_ORDERS, LAYOUTS, gate_slices
from .network import Cell, Network, RecurrentLayer

FORMATS = ("npz", "json", "csv")
TORCH_MODULE = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


class ExportError(ValueError):
    """The network cannot be written in the requested layout (e.g. not expressible in PyTorch)."""


def select_layers(network: Network, layers: Iterable[str] | None) -> list[RecurrentLayer]:
    """The recurrent layers named in ``layers`` (default: all), in network order."""
    recurrent = network.recurrent_layers
    wanted = list(layers or ())
    if not wanted:
        return recurrent
    names = [layer.name for layer in recurrent]
    unknown = [name for name in wanted if name not in names]
    if unknown:
        raise ExportError(
            f"no recurrent layer named {', '.join(map(repr, unknown))}; "
            f"the model's recurrent layers are: {', '.join(names)}"
        )
    return [layer for layer in recurrent if layer.name in wanted]


def gate_weights(network: Network, layers: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Every recurrent layer's weights split by gate, keyed ``<prefix>/<gate>/<tensor>``."""
    out: dict[str, np.ndarray] = {}
    for layer in select_layers(network, layers):
        for prefix, direction in layer.trace_prefixes():
            out.update(cell_gate_weights(direction.cell, prefix))
    return out


def cell_gate_weights(cell: Cell, prefix: str) -> dict[str, np.ndarray]:
    """One cell's per-gate arrays (see the module docstring for the keys)."""
    out: dict[str, np.ndarray] = {}
    two_biases = cell.kind == "gru" and cell.recurrent_bias is not None
    for gate, cols in gate_slices(cell.kind, cell.units).items():
        base = f"{prefix}/{gate}"
        out[f"{base}/kernel"] = np.ascontiguousarray(cell.kernel[:, cols])
        out[f"{base}/recurrent_kernel"] = np.ascontiguousarray(cell.recurrent_kernel[:, cols])
        if cell.bias is not None:
            bias = np.array(cell.bias[cols])
            if gate == "forget_gate" and cell.forget_bias:
                bias += bias.dtype.type(cell.forget_bias)
            out[f"{base}/{'input_bias' if two_biases else 'bias'}"] = bias
        if cell.recurrent_bias is not None:
            out[f"{base}/recurrent_bias"] = np.array(cell.recurrent_bias[cols])
        elif two_biases:
            out[f"{base}/recurrent_bias"] = np.zeros(cell.units, cell.kernel.dtype)
        if cell.peepholes and gate in cell.peepholes:
            out[f"{base}/peephole"] = np.array(cell.peepholes[gate])
    if cell.projection is not None:
        out[f"{prefix}/projection"] = np.array(cell.projection)
    return out


# ------------------------------------------------------------------ PyTorch


@dataclass
class TorchLayer:
    """One recurrent layer as a ``torch.nn`` module: its class, arguments and state dict."""

    name: str
    module: str  # "LSTM", "GRU" or "RNN"
    kwargs: dict[str, Any]
    state_dict: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)

    def constructor(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"torch.nn.{self.module}({args})"


def to_pytorch(network: Network, layers: Iterable[str] | None = None) -> list[TorchLayer]:
    """Each selected recurrent layer as a single-layer ``torch.nn.LSTM``/``GRU``/``RNN``.

    Modules are ``batch_first=True`` (lstm-trace's ``(batch, steps, features)``).
    Raises :class:`ExportError` for what PyTorch cannot express.
    """
    from .inspect import mask_source

    index = {layer.name: i for i, layer in enumerate(network.layers)}
    exported = []
    for layer in select_layers(network, layers):
        torch = torch_layer(layer, masked=mask_source(network, index[layer.name]) is not None)
        torch.notes.extend(_input_notes(network, index[layer.name]))
        exported.append(torch)
    return exported


def torch_layer(layer: RecurrentLayer, masked: bool = False) -> TorchLayer:
    """One layer as a module; ``masked``: the layer receives a Keras mask (padded steps)."""
    where = f"layer {layer.name!r}"
    directions = layer.directions
    cells = [d.cell for d in directions]
    first = cells[0]
    for cell in cells:
        _check_torch_cell(cell, where)
    notes: list[str] = []
    if layer.bidirectional:
        if len(directions) != 2 or directions[0].reverse or not directions[1].reverse:
            raise ExportError(
                f"{where}: PyTorch's bidirectional modules run the first direction forward and "
                "the second backward; this layer's directions do not"
            )
        shapes = {(c.kind, c.units, c.input_size, c.state_size, c.bias is not None,
                   c.activation) for c in cells}
        if len(shapes) > 1:
            raise ExportError(
                f"{where}: the two directions differ in kind, size, bias or activation, "
                "which one PyTorch module cannot hold"
            )
        if layer.merge_mode != "concat":
            notes.append(
                f"{layer.name}: PyTorch concatenates the two directions; Keras merged them with "
                f"merge_mode={layer.merge_mode!r}: split output[..., :H] and output[..., H:] "
                "and merge them yourself"
            )
    elif directions[0].reverse:
        notes.append(
            f"{layer.name}: go_backwards=True has no PyTorch flag: feed the module x.flip(1); "
            + ("flip its output back (output.flip(1)) before the next cell of this stack, which "
               "read it by input position" if layer.feeds_stacked_cell else
               "its output is then in Keras's (processing) order")
        )
    notes.extend(_output_notes(layer, masked))

    kwargs: dict[str, Any] = {"input_size": first.input_size, "hidden_size": first.units}
    if first.kind == "simple_rnn":
        kwargs["nonlinearity"] = first.activation
    kwargs["batch_first"] = True
    if first.bias is None:
        kwargs["bias"] = False
    if layer.bidirectional:
        kwargs["bidirectional"] = True
    if first.projection is not None:
        kwargs["proj_size"] = int(first.projection.shape[1])
    state: dict[str, np.ndarray] = {}
    for direction, cell in zip(directions, cells, strict=True):
        suffix = "_reverse" if layer.bidirectional and direction.name == "backward" else ""
        state.update(_torch_params(cell, suffix))
    return TorchLayer(layer.name, TORCH_MODULE[first.kind], kwargs, state, notes)


def _output_notes(layer: RecurrentLayer, masked: bool) -> list[str]:
    """How to get the Keras layer's output from the torch module's ``output, h_n``.

    Without ``return_sequences`` Keras returns each direction's *final* state: the forward
    direction's after the last step, the backward direction's after it consumed ``x[0]``,
    which is ``h_n`` (not ``output[:, -1]``, whose backward half saw one step only). With a
    mask, Keras skips padded steps; torch does that only for a packed sequence.
    """
    name = layer.name
    notes: list[str] = []
    if not layer.return_sequences:
        if layer.bidirectional:
            notes.append(
                f"{name}: Keras returns each direction's final state: the forward one after the "
                "last step, the backward one after the first: take torch.cat([h_n[0], h_n[1]], "
                "-1) (= torch.cat([output[:, -1, :H], output[:, 0, H:]], -1)), not output[:, -1]"
            )
        else:
            notes.append(f"{name}: Keras returns only the final state: take h_n[0] "
                         "(= output[:, -1] without padding)")
    if masked:
        notes.append(
            f"{name}: Keras skips masked (padded) steps: feed torch.nn.utils.rnn."
            "pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) "
            + ("and take h_n" if not layer.return_sequences else
               "and unpack with pad_packed_sequence" + (
                   "" if layer.bidirectional else
                   " (padded steps come out 0; Keras repeats the last state there)"))
        )
    return notes


def _check_torch_cell(cell: Cell, where: str) -> None:
    if getattr(cell, "conv", None) is not None:
        raise ExportError(f"{where}: a ConvLSTM's convolutions have no torch.nn module; "
                          "use --to keras (per-gate convolution kernels)")
    if cell.gate_clip is not None or cell.coupled_input_forget or cell.output_activation not in (
        None, cell.activation
    ):
        raise ExportError(
            f"{where}: torch.nn.{TORCH_MODULE[cell.kind]} cannot clip gate pre-activations, couple "
            "the input and forget gates or use a separate output activation (ONNX clip, "
            "input_forget, activations)"
        )
    if cell.kind == "simple_rnn":
        if cell.activation not in ("tanh", "relu"):
            raise ExportError(
                f"{where}: torch.nn.RNN supports the tanh and relu activations, not "
                f"{cell.activation!r}"
            )
        return
    if cell.recurrent_activation != "sigmoid" or cell.activation != "tanh":
        raise ExportError(
            f"{where}: torch.nn.{TORCH_MODULE[cell.kind]} always uses sigmoid gates and tanh; this "
            f"layer uses recurrent_activation={cell.recurrent_activation!r}, "
            f"activation={cell.activation!r}"
        )
    if cell.kind == "gru" and not cell.reset_after:
        raise ExportError(
            f"{where}: a GRU with reset_after=False applies the reset gate before the recurrent "
            "matmul; torch.nn.GRU applies it after (reset_after=True) and cannot express it"
        )
    if cell.peepholes:
        raise ExportError(f"{where}: torch.nn.LSTM has no peephole connections")
    if cell.cell_clip is not None or cell.proj_clip is not None:
        raise ExportError(f"{where}: torch.nn.LSTM cannot clip the cell or projection")


def _torch_params(cell: Cell, suffix: str) -> dict[str, np.ndarray]:
    """``weight_ih_l0`` etc. of one direction: canonical columns -> PyTorch rows in its order."""
    cols = gate_slices(cell.kind, cell.units)
    order = GATE_ORDERS[LAYOUTS["torch"][cell.kind]]

    def rows(matrix: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate([matrix[:, cols[g]] for g in order], axis=1).T)

    def vector(v: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.concatenate([v[cols[g]] for g in order]))

    out = {f"weight_ih_l0{suffix}": rows(cell.kernel),
           f"weight_hh_l0{suffix}": rows(cell.recurrent_kernel)}
    if cell.bias is not None:
        bias = np.array(cell.bias)
        if cell.kind == "lstm" and cell.forget_bias:
            u = cell.units
            bias[u:2 * u] += bias.dtype.type(cell.forget_bias)
        recurrent = cell.recurrent_bias if cell.recurrent_bias is not None else np.zeros_like(bias)
        out[f"bias_ih_l0{suffix}"] = vector(bias)
        out[f"bias_hh_l0{suffix}"] = vector(recurrent)
    if cell.projection is not None:
        out[f"weight_hr_l0{suffix}"] = np.ascontiguousarray(cell.projection.T)
    return out


def torch_arrays(exported: list[TorchLayer]) -> dict[str, np.ndarray]:
    """All state dicts in one mapping, keyed ``<layer>/<parameter>``.

    A layer's state dict is ``{k.rpartition("/")[2]: v for k, v in arrays.items()
    if k.rpartition("/")[0] == layer}`` (layer names may contain ``/``).
    """
    return {f"{t.name}/{key}": value for t in exported for key, value in t.state_dict.items()}


# ------------------------------------------------------------------ Keras


KERAS_CLASS = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "SimpleRNN"}
#: Canonical activations that are no Keras 3 activation name: the constructor names a
#: function of that name, defined (serializable, so Bidirectional and model.save take it) by
#: this Keras 3 code. Keras 3's own "hard_sigmoid" is clip(x/6 + 0.5), not Keras 2's.
KERAS_ACTIVATION_CODE = {
    "hard_sigmoid_keras2": "@keras.saving.register_keras_serializable() "
                           "def hard_sigmoid_keras2(x): return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)",
}


@dataclass
class KerasLayer:
    """One recurrent layer as a Keras layer: its constructor and ``set_weights`` arrays.

    ``weights`` keys are ``<layer>[/<direction>]/kernel``, ``.../recurrent_kernel`` and
    ``.../bias``, in the order ``layer.set_weights`` takes them (forward before backward).
    """

    name: str
    class_name: str
    kwargs: dict[str, Any]
    weights: dict[str, np.ndarray]
    bidirectional: bool = False
    notes: list[str] = field(default_factory=list)
    #: A reversed cell of a stack (Keras ``StackedRNNCells``, TF1 ``MultiRNNCell``) that feeds
    #: the next cell: a ``go_backwards`` layer returns its sequence last step first, but the
    #: next cell read it by input position, so the layer's output must be flipped along
    #: time (``keras.ops.flip(y, axis=1)``) before the next layer to reproduce the model.
    flip_output: bool = False

    def constructor(self) -> str:
        """The Keras 3 expression that builds this layer (``extract --to keras`` prints it)."""
        def arg(key: str, value: Any) -> str:
            if key.endswith("activation") and value in KERAS_ACTIVATION_CODE:
                return f"{key}={value}"
            return f"{key}={value!r}"

        args = ", ".join([str(self.kwargs["units"])] + [
            arg(k, v) for k, v in self.kwargs.items() if k != "units"])
        inner = f"keras.layers.{self.class_name}({args})"
        return f"keras.layers.Bidirectional({inner})" if self.bidirectional else inner


def to_keras(network: Network, layers: Iterable[str] | None = None) -> list[KerasLayer]:
    """Each selected recurrent layer as a Keras ``LSTM``/``GRU``/``SimpleRNN`` (the fused
    Keras layout: gates side by side in columns, LSTM ``i,f,c,o``, GRU ``z,r,h``).

    A GRU with two biases is ``reset_after=True`` with ``bias`` ``(2, 3*units)`` (input row,
    then recurrent row): PyTorch's ``nn.GRU`` is exactly that. Raises :class:`ExportError`
    for what Keras layers cannot express (projections, peepholes, clipping).
    """
    index = {layer.name: i for i, layer in enumerate(network.layers)}
    exported = []
    for layer in select_layers(network, layers):
        keras = keras_layer(layer)
        keras.notes.extend(_input_notes(network, index[layer.name]))
        exported.append(keras)
    return exported


def _input_notes(network: Network, i: int) -> list[str]:
    """A note when ``layers[i]`` does not take the output of the layer listed before it
    (a TF1 bw stack reads the model input, not the fw stack's output; a second input; a
    decoder), so the printed layers are not chained blindly."""
    sources = network.sources(i)
    if i == 0 or sources == (network.layers[i - 1].name,):
        return []

    def label(source: str) -> str:
        if not source:
            return "the model input"
        layer, _, k = source.rpartition(":")
        return f"{layer}'s final states (output {k})" if layer and k.isdigit() else source

    what = ", ".join(label(s) for s in sources) if sources else "the model input"
    return [f"{network.layers[i].name}: takes {what}, not the output of "
            f"{network.layers[i - 1].name} listed before it"]


def keras_layer(layer: RecurrentLayer) -> KerasLayer:
    where = f"layer {layer.name!r}"
    cells = [d.cell for d in layer.directions]
    first = cells[0]
    for cell in cells:
        if cell.projection is not None:
            raise ExportError(f"{where}: Keras recurrent layers have no projection (proj_size / "
                              "num_proj); there is no Keras layout for this layer")
        if cell.peepholes:
            raise ExportError(f"{where}: Keras LSTM has no peephole connections")
        if cell.cell_clip is not None or cell.proj_clip is not None:
            raise ExportError(f"{where}: Keras LSTM cannot clip the cell or projection")
    if layer.bidirectional and (len(cells) != 2 or layer.directions[0].reverse
                                or not layer.directions[1].reverse):
        raise ExportError(f"{where}: Keras Bidirectional runs the first direction forward and "
                          "the second backward; this layer's directions do not")
    kwargs: dict[str, Any] = {"units": first.units, "activation": first.activation}
    if first.kind != "simple_rnn":
        kwargs["recurrent_activation"] = first.recurrent_activation
    kwargs["use_bias"] = first.bias is not None
    if first.kind == "gru":
        kwargs["reset_after"] = first.reset_after
    kwargs["return_sequences"] = layer.return_sequences
    if not layer.bidirectional and layer.directions[0].reverse:
        kwargs["go_backwards"] = True
    class_name = KERAS_CLASS[first.kind]
    conv = getattr(first, "conv", None)
    if conv is not None:  # a ConvLSTM: the weights are already Keras's (kernel, recurrent, bias)
        class_name = f"ConvLSTM{conv.rank}D"
        kwargs.update(kernel_size=conv.kernel_size, strides=conv.strides, padding=conv.padding,
                      data_format=conv.data_format, dilation_rate=conv.dilation_rate)
    weights: dict[str, np.ndarray] = {}
    for prefix, direction in layer.trace_prefixes():
        weights.update(_keras_weights(direction.cell, prefix, where))
    notes = []
    for name in sorted({first.activation, first.recurrent_activation} & set(KERAS_ACTIVATION_CODE)):
        notes.append(f"{layer.name}: {name} is Keras 2's hard_sigmoid, clip(0.2x + 0.5) ('hard_sigmoid' "
                     "in tf_keras; Keras 3's is clip(x/6 + 0.5)); in Keras 3 define it first: "
                     f"{KERAS_ACTIVATION_CODE[name]}")
    if layer.bidirectional and layer.merge_mode != "concat":
        notes.append(f"{layer.name}: merge_mode={layer.merge_mode!r}")
    flip = layer.feeds_stacked_cell and kwargs.get("go_backwards", False)
    if flip:
        notes.append(f"{layer.name}: go_backwards=True returns the sequence last step first, but "
                     "the next cell of this stack read it by input position: flip it before the "
                     "next layer: y = keras.ops.flip(layer(x), axis=1)")
    return KerasLayer(layer.name, class_name, kwargs, weights, layer.bidirectional, notes, flip)


def _keras_weights(cell: Cell, prefix: str, where: str) -> dict[str, np.ndarray]:
    """``kernel``, ``recurrent_kernel``, ``bias`` of one cell: the canonical order is Keras's."""
    out = {f"{prefix}/kernel": np.ascontiguousarray(cell.kernel),
           f"{prefix}/recurrent_kernel": np.ascontiguousarray(cell.recurrent_kernel)}
    if cell.bias is None:
        if cell.recurrent_bias is not None:
            raise ExportError(f"{where}: a recurrent bias without an input bias has no Keras form")
        return out
    bias = np.array(cell.bias)
    if cell.kind == "lstm" and cell.forget_bias:
        u = cell.units
        bias[u:2 * u] += bias.dtype.type(cell.forget_bias)
    if cell.kind == "gru" and cell.reset_after:
        recurrent = cell.recurrent_bias if cell.recurrent_bias is not None else np.zeros_like(bias)
        bias = np.stack([bias, recurrent])
    elif cell.recurrent_bias is not None:
        raise ExportError(f"{where}: a GRU with reset_after=False has one bias; this one has two")
    out[f"{prefix}/bias"] = bias
    return out


def keras_arrays(exported: list[KerasLayer]) -> dict[str, np.ndarray]:
    """All layers' weights in one mapping, in ``set_weights`` order per layer."""
    return {key: value for layer in exported for key, value in layer.weights.items()}


# ------------------------------------------------------------------ writing


def write_arrays(arrays: dict[str, np.ndarray], fmt: str, output: str) -> None:
    """Write ``arrays`` as ``npz`` (a member per key), ``json`` (``{key: nested lists}``)
    or ``csv`` (``key,row,column,value``, a row per value; ``column`` empty for vectors).

    Floats are written in their shortest round-trip form. ``output`` ``"-"`` is stdout
    (text formats only); files are written atomically.
    """
    if fmt == "npz":
        if output == "-":
            raise ExportError("--format npz needs -o FILE.npz (binary output is not written to a terminal)")
        with atomic_write(output, "wb") as f:
            np.savez(f, **arrays)
    elif fmt == "json":
        with atomic_write(output, "w") as f:
            _write_json(arrays, f)
    elif fmt == "csv":
        with atomic_write(output, "w", newline="") as f:
            _write_csv(arrays, f)
    else:
        raise ExportError(f"unknown format {fmt!r}; expected one of: {', '.join(FORMATS)}")


def _shortest(values: np.ndarray) -> np.ndarray:
    """Shortest round-trip decimal of each value, as a bytes array (``b"0.1"``)."""
    from .writers._text import float_chars

    flat = np.asarray(values).ravel()
    if flat.size == 0:
        return np.zeros(0, dtype="S1")
    chars = float_chars(flat)
    # Move each row's NUL padding (sign slot included) to the end; bytes_ drops trailing NULs.
    order = np.argsort(chars == 0, axis=1, kind="stable")
    packed = np.ascontiguousarray(np.take_along_axis(chars, order, axis=1))
    return packed.view(f"S{chars.shape[1]}").ravel()


def _write_json(arrays: dict[str, np.ndarray], f: IO[str]) -> None:
    f.write("{")
    for k, (key, value) in enumerate(arrays.items()):
        # Parsing the shortest float32 text into float64 and printing that with repr
        # gives back the same short text.
        values = _shortest(value).astype(np.float64).reshape(value.shape).tolist()
        f.write(("," if k else "") + "\n " + json.dumps(key) + ": " + json.dumps(values))
    f.write("\n}\n")


def _write_csv(arrays: dict[str, np.ndarray], f: IO[str]) -> None:
    f.write("key,row,column,value\n")
    for key, value in arrays.items():
        texts = _shortest(value).astype(str)
        quoted = '"' + key.replace('"', '""') + '"' if any(c in key for c in ',"\n') else key
        if value.ndim == 1:
            for r, text in enumerate(texts):
                f.write(f"{quoted},{r},,{text}\n")
        else:
            matrix = value.reshape(value.shape[0], -1)
            cols = matrix.shape[1]
            for n, text in enumerate(texts):
                f.write(f"{quoted},{n // cols},{n % cols},{text}\n")


def describe_keys(arrays: dict[str, np.ndarray]) -> list[tuple[str, tuple[int, ...]]]:
    """``(key, shape)`` of each array, for the command's summary."""
    return [(key, tuple(value.shape)) for key, value in arrays.items()]


__all__ = [
    "ExportError", "KerasLayer", "TorchLayer", "cell_gate_weights", "gate_weights",
    "keras_arrays", "to_keras", "to_pytorch", "torch_arrays", "write_arrays",
]
