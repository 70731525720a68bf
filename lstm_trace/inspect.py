"""What is in a model file, without any input: layers, options, parameters, gate slices.

:func:`describe` turns a loaded :class:`~lstm_trace.network.Network` into plain data
(JSON-ready dicts and lists); the ``inspect`` command renders it as tables or JSON.

The question users ask most is *where each gate lives* in the file's fused tensors.
Frameworks store the per-gate matrices of a cell side by side, each ``units`` wide, in
their own order (:data:`lstm_trace.gates.GATE_ORDERS`); the loader remembers that order in
``Cell.layout`` and :func:`gate_locations` spells out the slices in the file's own terms,
e.g. for a Keras ``LSTM(64)``::

    input_gate   kernel[:, 0:64]     recurrent_kernel[:, 0:64]     bias[0:64]
    forget_gate  kernel[:, 64:128]   recurrent_kernel[:, 64:128]   bias[64:128]
    candidate    kernel[:, 128:192]  recurrent_kernel[:, 128:192]  bias[128:192]
    output_gate  kernel[:, 192:256]  recurrent_kernel[:, 192:256]  bias[192:256]
"""

from __future__ import annotations

from typing import Any

from .gates import CANONICAL_ORDER, GATE_ORDERS, LAYOUTS, storage_slices
from .layers import UpstreamLayer
from .network import Cell, Direction, Network, RecurrentLayer

#: What the fused tensors of each layout are called in the file, and how they are laid out.
#: ``rows``: the gates are stacked along rows (``weight[a:b, :]``, PyTorch/ONNX) instead of
#: columns (``kernel[:, a:b]``, Keras/TF); ``joint``: one TF1 ``kernel`` holds the input
#: rows and then the recurrent rows (``[x, h] @ kernel``).
LAYOUT_TENSORS: dict[str, dict[str, Any]] = {
    "keras_lstm": {"kernel": "kernel", "recurrent": "recurrent_kernel", "bias": "bias"},
    "keras_gru": {"kernel": "kernel", "recurrent": "recurrent_kernel", "bias": "bias"},
    "simple_rnn": {"kernel": "kernel", "recurrent": "recurrent_kernel", "bias": "bias"},
    "tf1_rnn": {"kernel": "kernel", "recurrent": "kernel", "bias": "bias", "joint": True},
    "tf1_lstm": {"kernel": "kernel", "recurrent": "kernel", "bias": "bias", "joint": True},
    "torch_lstm": {"kernel": "weight_ih", "recurrent": "weight_hh", "bias": "bias_ih",
                   "recurrent_bias": "bias_hh", "rows": True},
    "torch_gru": {"kernel": "weight_ih", "recurrent": "weight_hh", "bias": "bias_ih",
                  "recurrent_bias": "bias_hh", "rows": True},
    "onnx_lstm": {"kernel": "W", "recurrent": "R", "bias": "B", "rows": True},
    "onnx_gru": {"kernel": "W", "recurrent": "R", "bias": "B", "rows": True},
}


def describe(network: Network) -> dict[str, Any]:
    """Everything ``inspect`` shows, as JSON-ready data.

    Returns ``{"source", "keras_version", "input_shape", "input_dtype", "parameters",
    "recurrent_parameters", "other_parameters", "layers": [...], "notes": [...],
    "unexplained": [...]}``; ``parameters`` counts the whole model as Keras's
    ``count_params`` does (every stored value of every layer, heads after the recurrent
    layers included), ``recurrent_parameters`` the recurrent layers' part. Each layer is a
    dict with ``name``, ``class_name``, ``role`` (``recurrent``, ``upstream``, or
    ``downstream`` for a layer no recurrent layer needs, which the loader did not convert:
    ``replayable`` is then ``None``), ``parameters`` (``None`` where unknown),
    ``position`` (``before``, ``between`` or ``after`` the recurrent layers, or
    ``recurrent``) and, for a recurrent layer, its options, directions and gate slices.
    """
    indices = [i for i, layer in enumerate(network.layers) if isinstance(layer, RecurrentLayer)]
    first, last = (indices[0], indices[-1]) if indices else (len(network.layers), -1)
    layers: list[dict[str, Any]] = []
    for name, class_name in getattr(network, "front", None) or []:
        # Before the first recurrent layer, not read by the loader: INPUT starts after them.
        layers.append({"name": name, "class_name": class_name, "role": "upstream",
                       "position": "before", "replayable": False, "description": class_name,
                       "reason": f"the trace starts at {_start_after(network, name)}: INPUT "
                                 "is its input (as with --layer-input)",
                       "parameters": network.layer_parameters.get(name), "inputs": []})
    for i, layer in enumerate(network.layers):
        inputs = list(network.sources(i)) or ["(model input)"]
        if isinstance(layer, RecurrentLayer):
            entry = describe_recurrent(layer, network, i)
        else:
            entry = describe_upstream(layer, network.layer_parameters.get(layer.name))
            entry["position"] = "before" if i < first else "after" if i > last else "between"
        entry["inputs"] = inputs
        layers.append(entry)
    for name, class_name in getattr(network, "downstream", None) or []:
        # Heads after the last recurrent layer: kept out of the Network, never needed to trace.
        layers.append({"name": name, "class_name": class_name, "role": "downstream",
                       "position": "after", "replayable": None,
                       "description": f"{class_name} (not needed to trace)",
                       "parameters": network.layer_parameters.get(name), "inputs": []})
    recurrent_params = sum(layer.parameter_count() for layer in network.recurrent_layers)
    other_params = sum(layer["parameters"] or 0 for layer in layers if layer["role"] != "recurrent")
    return {
        "source": network.source,
        "keras_version": network.keras_version,
        "input_shape": None if network.input_shape is None else list(network.input_shape),
        "input_dtype": network.input_dtype,
        "parameters": recurrent_params + other_params,
        "recurrent_parameters": recurrent_params,
        "other_parameters": other_params,
        "layers": layers,
        "notes": list(network.notes),
        "unexplained": list(getattr(network, "unexplained", []) or []),
    }


def _start_after(network: Network, front: str) -> str:
    """The layer a trace starts at instead of the unread ``front`` module: the first
    recurrent layer under the same top-level module (a sibling model's own), else the
    network's first layer."""
    top = front.split(".")[0] + "."
    return next((layer.name for layer in network.recurrent_layers if layer.name.startswith(top)),
                network.layers[0].name if network.layers else "the first recurrent layer")


def describe_upstream(layer: UpstreamLayer, stored: int | None = None) -> dict[str, Any]:
    """A non-recurrent layer: its class, whether lstm-trace can replay it, how, or why not.

    ``stored``: how many values the file holds for it (the loader's count); without it,
    the sizes of the arrays the replay keeps.
    """
    return {
        "name": layer.name,
        "class_name": layer.class_name,
        "role": "upstream",
        "replayable": bool(layer.replayable),
        "description": layer.describe(),
        "reason": None if layer.replayable else getattr(layer, "reason", "") or None,
        "parameters": _upstream_parameters(layer) if stored is None else stored,
    }


def describe_recurrent(layer: RecurrentLayer, network: Network | None = None,
                       index: int | None = None) -> dict[str, Any]:
    """A recurrent layer: kind, sizes, options, parameters, and each direction's gates."""
    entry: dict[str, Any] = {
        "name": layer.name,
        "class_name": layer.class_name or layer.kind,
        "role": "recurrent",
        "position": "recurrent",
        "replayable": True,
        "kind": layer.kind,
        "units": layer.directions[0].cell.units,
        "input_size": layer.input_size,
        "output_size": layer.output_size,
        "return_sequences": layer.return_sequences,
        "bidirectional": layer.bidirectional,
        "merge_mode": layer.merge_mode if layer.bidirectional else None,
        "mask_source": mask_source(network, index) if network is not None and index is not None
        else None,
        "parameters": layer.parameter_count(),
        "trace_keys": [f"{prefix}/<quantity>" for prefix, _ in layer.trace_prefixes()],
        "options": {k: _plain(v) for k, v in layer.options.items()},
        "directions": [describe_direction(d, layer.class_name) for d in layer.directions],
    }
    return entry


def describe_direction(direction: Direction, class_name: str = "") -> dict[str, Any]:
    cell = direction.cell
    out: dict[str, Any] = {
        "direction": direction.name,
        "go_backwards": direction.reverse,
        "units": cell.units,
        "input_size": cell.input_size,
        "activation": cell.activation,
        "use_bias": cell.bias is not None,
        "parameters": cell.parameter_count(),
        "layout": cell.layout,
    }
    if cell.kind != "simple_rnn":
        out["recurrent_activation"] = cell.recurrent_activation
    conv = getattr(cell, "conv", None)
    if conv is not None:
        out["convolution"] = (f"kernel_size={conv.kernel_size}, strides={conv.strides}, "
                              f"padding={conv.padding}, dilation_rate={conv.dilation_rate}, "
                              f"{conv.data_format}")
    if cell.kind == "gru":
        out["reset_after"] = cell.reset_after
        out["recurrent_bias"] = cell.recurrent_bias is not None
    if cell.kind == "lstm":
        if cell.forget_bias:
            out["forget_bias"] = cell.forget_bias
        if cell.peepholes:
            out["peepholes"] = sorted(cell.peepholes)
        if cell.projection is not None:
            out["num_proj"] = int(cell.projection.shape[1])
        if cell.cell_clip is not None:
            out["cell_clip"] = cell.cell_clip
        if cell.proj_clip is not None:
            out["proj_clip"] = cell.proj_clip
    out["gates"] = gate_locations(cell, class_name)
    return out


def gate_locations(cell: Cell, class_name: str = "") -> list[dict[str, str]]:
    """Where each gate of ``cell`` lives in the file's fused tensors.

    One dict per gate in the file's storage order: ``{"gate", "kernel",
    "recurrent_kernel", "bias"[, "recurrent_bias"]}``, each value an indexing expression
    on the file's tensor (``"kernel[:, 0:64]"``). Without a known layout the canonical
    order is shown with a note. ``class_name`` tells TF1 cells (whose one ``kernel`` spans
    ``[x, h]``, and whose tensor names vary by class) from Keras layers.
    """
    layout = cell.layout if cell.layout in GATE_ORDERS else None
    if cell.kind == "gru" and layout == "tf1_gru_gates":
        return _tf1_gru_locations(cell, block=class_name == "GRUBlockCell")
    unknown = layout is None
    if layout is None:
        layout = LAYOUTS["keras"][cell.kind]
    slices = storage_slices(layout, cell.units)
    names = LAYOUT_TENSORS.get(layout, LAYOUT_TENSORS["keras_lstm"])
    if cell.tensor_names and not unknown:
        return _named_locations(cell, slices, rows=bool(names.get("rows")))
    rows = bool(names.get("rows"))
    joint = bool(names.get("joint"))
    n_in = cell.input_size
    out = []
    for gate, s in slices.items():
        cols = f"{s.start}:{s.stop}"
        entry = {"gate": gate}
        if rows:
            entry["kernel"] = f"{names['kernel']}[{cols}, :]"
            entry["recurrent_kernel"] = f"{names['recurrent']}[{cols}, :]"
        elif joint:
            entry["kernel"] = f"{names['kernel']}[0:{n_in}, {cols}]"
            entry["recurrent_kernel"] = f"{names['recurrent']}[{n_in}:{n_in + cell.state_size}, {cols}]"
        elif getattr(cell, "conv", None) is not None:  # a ConvLSTM: (*kernel_size, in, 4*filters)
            entry["kernel"] = f"{names['kernel']}[..., {cols}]"
            entry["recurrent_kernel"] = f"{names['recurrent']}[..., {cols}]"
        else:
            entry["kernel"] = f"{names['kernel']}[:, {cols}]"
            entry["recurrent_kernel"] = f"{names['recurrent']}[:, {cols}]"
        if cell.bias is not None:
            if cell.recurrent_bias is not None and "recurrent_bias" in names:
                entry["bias"] = f"{names['bias']}[{cols}]"
                entry["recurrent_bias"] = f"{names['recurrent_bias']}[{cols}]"
            elif cell.recurrent_bias is not None:
                # Keras GRU reset_after: bias (2, 3*units), row 0 input, row 1 recurrent.
                entry["bias"] = f"{names['bias']}[0, {cols}]"
                entry["recurrent_bias"] = f"{names['bias']}[1, {cols}]"
            else:
                entry["bias"] = f"{names['bias']}[{cols}]"
        if unknown:
            entry["note"] = "layout unknown: canonical order shown"
        out.append(entry)
    return out


def _named_locations(cell: Cell, slices: dict[str, slice], rows: bool) -> list[dict[str, str]]:
    """Gate slices on the file's own tensor names (``rnn.weight_ih_l0[0:8]``).

    A role read from several tensors shows their sum (``b_ih[0:8] + b_hh[0:8]``).
    """
    names = cell.tensor_names or {}
    out = []
    for gate, s in slices.items():
        cols = f"{s.start}:{s.stop}"
        entry = {"gate": gate}
        for role in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
            if role not in names:
                continue
            # Gates stacked along rows are indexed like the file's framework does (w[0:8]).
            index = f"[:, {cols}]" if role in ("kernel", "recurrent_kernel") and not rows \
                else f"[{cols}]"
            entry[role] = " + ".join(f"{name}{index}" for name in names[role])
        out.append(entry)
    return out


def _tf1_gru_locations(cell: Cell, block: bool = False) -> list[dict[str, str]]:
    """TF1 ``GRUCell``: ``gates/kernel`` holds r, u over ``[x, h]``; ``candidate/kernel`` the rest.

    ``GRUBlockCell`` names the same tensors ``w_ru``, ``b_ru``, ``w_c``, ``b_c``.
    """
    n_in, u = cell.input_size, cell.units
    w_g, b_g, w_c, b_c = (("w_ru", "b_ru", "w_c", "b_c") if block else
                          ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"))
    out = []
    for gate, s in storage_slices("tf1_gru_gates", u).items():
        cols = f"{s.start}:{s.stop}"
        entry = {"gate": gate, "kernel": f"{w_g}[0:{n_in}, {cols}]",
                 "recurrent_kernel": f"{w_g}[{n_in}:{n_in + u}, {cols}]"}
        if cell.bias is not None:
            entry["bias"] = f"{b_g}[{cols}]"
        out.append(entry)
    entry = {"gate": "candidate", "kernel": f"{w_c}[0:{n_in}, :]",
             "recurrent_kernel": f"{w_c}[{n_in}:{n_in + u}, :]"}
    if cell.bias is not None:
        entry["bias"] = f"{b_c}[:]"
    out.append(entry)
    order = {g: k for k, g in enumerate(CANONICAL_ORDER["gru"])}
    return sorted(out, key=lambda e: (e["gate"] == "candidate", order[e["gate"]]))


def mask_source(network: Network, index: int) -> str | None:
    """The layer whose mask reaches ``network.layers[index]`` (Masking, Embedding(mask_zero)...)."""
    seen: set[str] = set()
    frontier = list(network.sources(index))
    by_name = {layer.name: (i, layer) for i, layer in enumerate(network.layers)}
    while frontier:
        name = frontier.pop(0)
        if name in seen or name not in by_name:
            continue
        seen.add(name)
        i, layer = by_name[name]
        if isinstance(layer, RecurrentLayer):
            if not layer.return_sequences:
                return None  # a last-step output carries no mask
        elif layer.class_name == "Masking":
            return f"{name} (Masking)"
        elif getattr(layer, "mask_zero", False):
            return f"{name} ({layer.class_name}, mask_zero)"
        frontier.extend(network.sources(i))
    return None


def _upstream_parameters(layer: UpstreamLayer) -> int:
    """Sum of the sizes of the NumPy arrays an upstream layer holds (its weights)."""
    import numpy as np

    total = 0
    for value in vars(layer).values():
        if isinstance(value, np.ndarray):
            total += int(value.size)
    return total


def _plain(value: object) -> object:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


# ---------------------------------------------------------------- rendering


def render(info: dict[str, Any], width: int | None = None) -> str:
    """The ``inspect`` report as text: a summary, a table of layers, then each layer's gates."""
    import io

    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 120, highlight=False, emoji=False,
                      no_color=True, force_terminal=False, soft_wrap=False)
    # Only a Keras writer has a Keras version; a PyTorch, ONNX or TF1 file is not "unknown".
    version = f"Keras version: {info['keras_version']}   " if info["keras_version"] else ""
    shape = "?" if info["input_shape"] is None else str(tuple(info["input_shape"]))
    console.print(f"source: {info['source'] or 'unknown'}   {version}"
                  f"input: {shape} {info['input_dtype']}")
    console.print(f"parameters: {info['parameters']:,} ({info['recurrent_parameters']:,} in "
                  f"recurrent layers, {info['other_parameters']:,} in other layers)")

    table = Table(title="layers", title_justify="left", show_lines=False)
    for column in ("layer", "class", "kind", "units", "in → out", "activations", "params",
                   "replay"):
        table.add_column(column, no_wrap=True)
    details: list[str] = []  # free text (options, reasons) below the table, not squeezed in it
    for layer in info["layers"]:
        params = "" if not layer["parameters"] else f"{layer['parameters']:,}"
        if layer["role"] == "downstream":
            table.add_row(layer["name"], layer["class_name"], "(after)", "", "", "",
                          params if layer["parameters"] is not None else "?", "not needed")
            continue
        if layer["role"] == "upstream":
            table.add_row(layer["name"], layer["class_name"], f"({layer['position']})", "", "", "",
                          params, "yes" if layer["replayable"] else "NO")
            if not layer["replayable"]:
                why = layer["reason"] or "no reason recorded"
                details.append(f"{layer['name']}: not replayable: {why}")
            elif layer["description"] != layer["class_name"]:
                details.append(f"{layer['name']}: {layer['description']}")
            continue
        first = layer["directions"][0]
        acts = first["activation"]
        if "recurrent_activation" in first:
            acts = f"{first['recurrent_activation']} / {first['activation']}"
        table.add_row(
            layer["name"], layer["class_name"], layer["kind"], str(layer["units"]),
            f"{layer['input_size']} → {layer['output_size']}", acts,
            f"{layer['parameters']:,}", "yes",
        )
        options = _options_text(layer)
        if options:
            details.append(f"{layer['name']}: {options}")
    console.print(table)
    for line in details:
        console.print(f"  {line}", soft_wrap=True)  # one line each, however long

    for layer in info["layers"]:
        if layer["role"] != "recurrent":
            continue
        for direction in layer["directions"]:
            title = layer["name"] + (f" / {direction['direction']}" if layer["bidirectional"] else "")
            layout = direction["layout"] or "unknown (canonical order shown)"
            gates = Table(title=f"{title}: gate slices (file layout {layout})", title_justify="left")
            columns = ["gate", "kernel", "recurrent_kernel", "bias"]
            if any("recurrent_bias" in g for g in direction["gates"]):
                columns.append("recurrent_bias")
            for column in columns:
                gates.add_column(column)
            for gate in direction["gates"]:
                gates.add_row(*(gate.get(c, "") for c in columns))
            console.print(gates)
    if info["unexplained"]:
        console.print("stored but not used by any layer: " + ", ".join(info["unexplained"]))
    for line in info["notes"]:
        console.print(f"note: {line}")
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _options_text(layer: dict[str, Any]) -> str:
    first = layer["directions"][0]
    parts = []
    if layer["bidirectional"]:
        parts.append(f"bidirectional merge={layer['merge_mode']}")
    if not first["use_bias"]:
        parts.append("no bias")
    if "reset_after" in first:
        parts.append(f"reset_after={first['reset_after']}")
    if any(d["go_backwards"] for d in layer["directions"]) and not layer["bidirectional"]:
        parts.append("go_backwards")
    for key in ("forget_bias", "num_proj", "cell_clip", "proj_clip"):
        if key in first:
            parts.append(f"{key}={first[key]}")
    if first.get("peepholes"):
        parts.append("peepholes")
    if "convolution" in first:
        parts.append(first["convolution"])
    if not layer["return_sequences"]:
        parts.append("last step only")
    if layer["mask_source"]:
        parts.append(f"mask from {layer['mask_source']}")
    for key, value in layer["options"].items():
        if value:
            parts.append(f"{key}={value}")
    return ", ".join(parts)
