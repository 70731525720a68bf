"""Keras model configs (JSON) plus per-layer weight lists -> canonical :class:`Network`.

Shared by every loader that has a Keras config: ``.keras`` archives, full-model
``.h5`` files (Keras 2 and 3), tf_keras SavedModels, and config-less files given
``--config model.json``. Only JSON is read; no class named in the config is imported
or executed. Layers lstm-trace does not know become :class:`~lstm_trace.layers.Unsupported`
nodes, which only matter if a traced layer needs their output.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ...activations import keras_activation_name
from ...cells import CELL_KINDS
from ...gates import LAYOUTS, reorder_gates
from ...layers import UpstreamLayer
from ...network import Cell, Direction, Network, RecurrentLayer
from ..errors import LoadError
from .spec import (
    CELL_CLASSES,
    MASK_OP_CLASSES,
    MISSING,
    RECURRENT_CLASSES,
    CellConfig,
    KerasContext,
    LayerSpec,
    WeightSource,
)
from .upstream import convert_upstream

# --------------------------------------------------------------------------- model config


def parse_config(config: object, where: str) -> tuple[list[LayerSpec], tuple | None, str]:
    """:func:`parse_model_config` on JSON from a file: a config of unexpected shape (a list
    where a dict belongs, a missing key) is the file's fault, so it becomes one
    :class:`LoadError` naming ``where``."""
    try:
        return parse_model_config(config)  # type: ignore[arg-type]
    except LoadError as err:
        raise LoadError(f"{where}: {err}") from None
    except (KeyError, TypeError, AttributeError, IndexError) as err:
        raise LoadError(f"{where}: malformed model config ({type(err).__name__}: {err})") from None


def parse_model_config(model_config: dict) -> tuple[list[LayerSpec], tuple | None, str]:
    """Layers of a Sequential or Functional config, with their data inputs resolved.

    Returns ``(layers, input_shape_without_batch, input_dtype)``.
    """
    if not isinstance(model_config, dict) or "class_name" not in model_config:
        raise LoadError("the model config is not a Keras model config (no class_name)")
    class_name = model_config["class_name"]
    config = model_config.get("config")
    if class_name == "Sequential":
        raw = config["layers"] if isinstance(config, dict) else config
        parsed = _sequential_specs(raw, config if isinstance(config, dict) else {})
    elif _is_model_config(class_name, config):
        parsed = _functional_specs(config)
    else:
        raise LoadError(
            f"model class {str(class_name)[:60]!r} is not a Sequential or Functional Keras model; "
            "subclassed models keep no layer graph in the file"
        )
    specs, input_shape, input_dtype = parsed
    for spec, path in zip(specs, unique_names([s.class_name for s in specs]), strict=True):
        spec.keras3_path = f"layers/{path}"
        spec.own_name = spec.name
    return _flatten_submodels(specs), input_shape, input_dtype


def _is_model_config(class_name: str, config: object) -> bool:
    return class_name in ("Functional", "Model") or (
        isinstance(config, dict) and "input_layers" in config and "layers" in config
    )


def is_submodel(spec: LayerSpec) -> bool:
    """A nested Sequential or Functional model used as a layer."""
    return isinstance(spec.config, dict) and "layers" in spec.config and (
        spec.class_name == "Sequential" or _is_model_config(spec.class_name, spec.config)
    )


def _flatten_submodels(specs: list[LayerSpec]) -> list[LayerSpec]:
    """Replace each nested model by its layers, wired into the outer graph.

    The sub-model's inputs become the outer layers feeding it; whatever read the
    sub-model's output now reads its output layer. Inner layers keep their own names
    (Keras names are unique in a session) unless that would clash, then they become
    ``<submodel>/<layer>``; ``scope`` and ``keras3_path`` say where their weights are.
    """
    if not any(is_submodel(spec) for spec in specs):
        return specs
    taken = {spec.name for spec in specs if not is_submodel(spec)}
    out: list[LayerSpec] = []
    renames: dict[str, str] = {}
    for spec in specs:
        if not is_submodel(spec):
            out.append(spec)
            continue
        inner, _, _ = parse_model_config({"class_name": spec.class_name, "config": spec.config})
        inner_inputs = [s for s in inner if s.class_name == "InputLayer"]
        feeds = {s.name: [spec.inbound[k]] if k < len(spec.inbound) else []
                 for k, s in enumerate(sorted(inner_inputs, key=lambda s: s.input_index))}
        local: dict[str, str] = {}
        for s in inner:
            if s.class_name != "InputLayer":
                local[s.name] = s.name if s.name not in taken else f"{spec.name}/{s.name}"
                taken.add(local[s.name])
        for s in inner:
            if s.class_name == "InputLayer":
                continue
            sources: list[str] = []
            for ref in s.inbound:
                base, sep, k = ref.partition(":")
                sources += feeds[base] if base in feeds else [local.get(base, base) + sep + k]
            if not s.inbound:  # the first layer of a Sequential without an InputLayer
                sources = list(spec.inbound)
            s.inbound = sources
            s.state_inbound = [local.get(r.partition(":")[0], r) for r in s.state_inbound]
            s.name = local[s.name]
            s.scope = (spec.own_name, *s.scope)
            s.keras3_path = f"{spec.keras3_path}/{s.keras3_path}"
            out.append(s)
        renames[spec.name] = local.get(_submodel_output(spec, inner), spec.name)
    for s in out:
        s.inbound = [_renamed(ref, renames) for ref in s.inbound]
        s.state_inbound = [_renamed(ref, renames) for ref in s.state_inbound]
    return out


def _submodel_output(spec: LayerSpec, inner: list[LayerSpec]) -> str:
    outputs = spec.config.get("output_layers")
    if outputs:
        first = outputs if isinstance(outputs[0], str) else outputs[0]
        return first[0]
    return inner[-1].own_name if inner else spec.name


def _renamed(ref: str, renames: dict[str, str]) -> str:
    base, sep, k = ref.partition(":")
    return renames[base] + sep + k if base in renames else ref


def snake_case(class_name: str) -> str:
    """Keras's class-name-to-path rule: ``SimpleRNN`` -> ``simple_rnn``, ``LSTMCell`` -> ``lstm_cell``."""
    name = re.sub(r"\W+", "", class_name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub(r"([a-z])([A-Z])", r"\1_\2", name)
    return name.lower()


def unique_names(class_names: list[str]) -> list[str]:
    """Paths Keras 3 gives a list of objects: ``lstm``, ``lstm_1``, ``dense``, ``lstm_2``..."""
    used: dict[str, int] = {}
    out = []
    for class_name in class_names:
        base = snake_case(class_name)
        if base in used:
            used[base] += 1
            out.append(f"{base}_{used[base]}")
        else:
            used[base] = 0
            out.append(base)
    return out


def _sequential_specs(raw: Sequence[dict], config: dict) -> tuple[list[LayerSpec], tuple | None, str]:
    specs: list[LayerSpec] = []
    previous: list[str] = []
    input_shape = None
    input_dtype = "float32"
    build = config.get("build_input_shape")
    if isinstance(build, list) and len(build) > 1:
        input_shape = tuple(build[1:])
    for index, layer in enumerate(raw):
        cfg = layer.get("config", {})
        name = cfg.get("name", f"layer_{index}")
        shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
        if shape and input_shape is None:
            input_shape = tuple(shape[1:])
        if index == 0 and isinstance(cfg.get("dtype"), str):
            input_dtype = cfg["dtype"]
        specs.append(LayerSpec(name, layer["class_name"], cfg, list(previous), index))
        previous = [name]
    return specs, input_shape, input_dtype


def _functional_specs(config: dict) -> tuple[list[LayerSpec], tuple | None, str]:
    specs: list[LayerSpec] = []
    input_shape = None
    input_dtype = "float32"
    inputs = config.get("input_layers") or []
    # Keras 3 writes a single input as ["name", 0, 0]; Keras 2 as [["name", 0, 0]].
    if inputs and isinstance(inputs[0], str):
        inputs = [inputs]
    first_input = inputs[0][0] if inputs else None
    input_names = [entry[0] for entry in inputs if isinstance(entry, list) and entry]
    for index, layer in enumerate(config.get("layers", [])):
        cfg = layer.get("config", {})
        name = layer.get("name") or cfg.get("name", f"layer_{index}")
        class_name = layer["class_name"]
        if class_name == "InputLayer" and name == first_input:
            shape = cfg.get("batch_shape") or cfg.get("batch_input_shape")
            if shape:
                input_shape = tuple(shape[1:])
            if isinstance(cfg.get("dtype"), str):
                input_dtype = cfg["dtype"]
        inbound, states = _node_inputs(layer.get("inbound_nodes") or [], class_name)
        spec = LayerSpec(name, class_name, cfg, inbound, index, state_inbound=states)
        if class_name == "InputLayer":
            spec.input_index = input_names.index(name) if name in input_names else -1
        specs.append(spec)
    return specs, input_shape, input_dtype


def _tensor_ref(name: str, tensor_index: object) -> str:
    """``name`` for a layer's main output, ``name:k`` for its output ``k`` (return_state)."""
    return f"{name}:{tensor_index}" if isinstance(tensor_index, int) and tensor_index > 0 else name


def _node_inputs(nodes: list, class_name: str) -> tuple[list[str], list[str]]:
    """A layer's data inputs and the inputs of its initial states, as tensor references.

    Masks passed as kwargs are excluded (lstm-trace propagates masks itself). Keras 3
    passes initial states as the ``initial_state`` kwarg; Keras 2 lists them after the
    data input of a recurrent layer.
    """
    if not nodes:
        return [], []
    node = nodes[0]
    names: list[str] = []
    states: list[str] = []
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        _collect_history(node.get("args", []), names)
        _collect_history((node.get("kwargs") or {}).get("initial_state"), states)
    else:  # Keras 2: [["name", node_index, tensor_index, kwargs], ...]
        for entry in node:
            if isinstance(entry, list) and entry and isinstance(entry[0], str):
                names.append(_tensor_ref(entry[0], entry[2] if len(entry) > 2 else 0))
        if is_recurrent(class_name) and len(names) > 1:
            names, states = names[:1], names[1:]
    return names, states


def _collect_history(value: object, names: list[str]) -> None:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = value.get("config", {}).get("keras_history")
            if history:
                names.append(_tensor_ref(history[0], history[2] if len(history) > 2 else 0))
            return
        for v in value.values():
            _collect_history(v, names)
    elif isinstance(value, list):
        for v in value:
            _collect_history(v, names)


# --------------------------------------------------------------------------- layers


def weight_count(class_name: str, config: dict) -> int:
    """How many weight arrays a recurrent layer (or cell) config owns, in get_weights() order."""
    if class_name in RECURRENT_CLASSES or class_name in CELL_CLASSES:
        return 3 if config.get("use_bias", True) else 2
    if class_name == "Bidirectional":
        forward = config["layer"]
        backward = config.get("backward_layer") or forward
        return weight_count(forward["class_name"], forward["config"]) + weight_count(
            backward["class_name"], backward["config"]
        )
    if class_name == "RNN":
        return weight_count(config["cell"]["class_name"], config["cell"]["config"])
    if class_name == "StackedRNNCells":
        return sum(weight_count(c["class_name"], c["config"]) for c in config["cells"])
    raise LoadError(f"no weight layout known for {class_name}")


def make_cell(
    kind: str, class_name: str, config: CellConfig, weights: Sequence[np.ndarray],
    ctx: KerasContext, where: str,
) -> Cell:
    """A canonical cell from a Keras LSTM/GRU/SimpleRNN (layer or cell) config and weights."""
    units = config.units
    use_bias = config.use_bias
    expected = 3 if use_bias else 2
    if len(weights) != expected:
        raise LoadError(
            f"{where}: {class_name} with use_bias={use_bias} should have {expected} weight arrays, "
            f"found {len(weights)}"
        )
    kernel, recurrent = (np.asarray(w) for w in weights[:2])
    bias = np.asarray(weights[2]) if use_bias else None
    cudnn = class_name.startswith("CuDNN")
    activation = _activation(config.name, config.activation, "activation", "tanh", ctx, cudnn)
    recurrent_activation = _activation(
        config.name, config.recurrent_activation, "recurrent_activation", "sigmoid", ctx, cudnn
    ) if kind != "simple_rnn" else "sigmoid"
    order = LAYOUTS["keras"][kind]
    recurrent_bias = None
    reset_after = True
    if kind == "gru":
        stated = config.reset_after
        reset_after = (ctx.keras_major >= 3 if stated is None else stated) or cudnn
        if ctx.options.reset_after is not None:
            reset_after = ctx.options.reset_after
    if bias is not None:
        width = CELL_KINDS[kind].gate_count * units
        if bias.ndim == 2 and bias.shape == (2, width):
            bias, recurrent_bias = bias[0], bias[1]
        elif bias.shape == (2 * width,) and cudnn:
            bias, recurrent_bias = bias[:width], bias[width:]
        if kind == "lstm" and recurrent_bias is not None:
            # An LSTM adds both biases to the same pre-activation.
            bias, recurrent_bias = bias + recurrent_bias, None
        if bias.shape != (width,):
            raise LoadError(
                f"{where}: {class_name} bias has shape {bias.shape}, expected ({width},)"
            )
    if cudnn:
        kernel, recurrent = _from_cudnn_layout(kernel, recurrent, units, where)
    try:
        return Cell(
            kind=kind,
            units=units,
            kernel=reorder_gates(kernel, order, kind),
            recurrent_kernel=reorder_gates(recurrent, order, kind),
            bias=None if bias is None else reorder_gates(bias, order, kind),
            recurrent_bias=None if recurrent_bias is None else reorder_gates(recurrent_bias, order, kind),
            activation=activation,
            recurrent_activation=recurrent_activation,
            reset_after=reset_after,
            layout=order,
        )
    except ValueError as err:
        raise LoadError(f"{where}: {err}") from None


def _from_cudnn_layout(
    kernel: np.ndarray, recurrent: np.ndarray, units: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """Keras 2 CuDNNLSTM/CuDNNGRU kernels as the plain layer's ``x W`` / ``h U`` matrices.

    A CuDNN layer hands each gate's stored block to cuDNN flattened row-major, and cuDNN
    reads it as a row-major ``(units, in)`` matrix ``M`` applied as ``M x``. So the plain
    Keras kernel of a gate is ``block.reshape(units, in).T``: for the recurrent kernel
    (square) that is the transpose, for the input kernel a reshuffle unless ``in == units``.
    This is the conversion tf_keras applies when it loads CuDNN weights into LSTM/GRU
    (``hdf5_format._convert_rnn_weights``); the gate order stays ``i, f, c, o`` / ``z, r, h``.
    """
    gates = kernel.shape[1] // units if units else 0
    if gates * units != kernel.shape[1] or recurrent.shape != (units, gates * units):
        raise LoadError(f"{where}: CuDNN kernels of shapes {kernel.shape}, {recurrent.shape} "
                        f"do not fit {units} units")
    inputs = kernel.shape[0]
    k_blocks = np.split(kernel, gates, axis=1)
    r_blocks = np.split(recurrent, gates, axis=1)
    return (
        np.concatenate([b.reshape(units, inputs).T for b in k_blocks], axis=1),
        np.concatenate([b.T for b in r_blocks], axis=1),
    )


def _activation(
    layer: str, value: object, key: str, default: str, ctx: KerasContext, cudnn: bool
) -> str:
    """The activation ``key`` (``activation``/``recurrent_activation``): the user's override,
    else CuDNN's fixed one, else the config's ``value`` (``default`` when it is MISSING)."""
    override = getattr(ctx.options, key)
    if override is not None:
        return keras_activation_name(override, ctx.keras_major)
    if cudnn:
        return default  # CuDNN kernels are fixed to tanh / sigmoid
    try:
        return keras_activation_name(default if value is MISSING else value, ctx.keras_major)
    except ValueError as err:
        raise LoadError(
            f"layer {layer!r}: {err}; override it with --{key.replace('_', '-')}"
        ) from None


def _recurrent_layer(
    name: str, class_name: str, config: dict, weights: Sequence[np.ndarray], ctx: KerasContext
) -> list[RecurrentLayer]:
    """One Keras recurrent layer (LSTM/GRU/SimpleRNN/CuDNN*/RNN) as canonical layers.

    ``RNN(StackedRNNCells([...]))`` becomes one layer per cell, named ``<name>/cell_<k>``.
    """
    if config.get("time_major"):
        raise LoadError(
            f"layer {name!r}: time_major=True (input as (steps, batch, features)) is not supported"
        )
    reverse = bool(config.get("go_backwards", False))
    return_sequences = bool(config.get("return_sequences", False))
    options = {k: config[k] for k in ("stateful", "unroll", "return_state") if k in config}
    zero_output = bool(config.get("zero_output_for_mask", False))
    if class_name == "RNN":
        cell_cfg = config["cell"]
        cell_class = cell_cfg["class_name"]
        if cell_class == "StackedRNNCells":
            layers = []
            offset = 0
            cells = cell_cfg["config"]["cells"]
            for k, sub in enumerate(cells):
                count = weight_count(sub["class_name"], sub["config"])
                kind = CELL_CLASSES.get(sub["class_name"])
                if kind is None:
                    raise LoadError(
                        f"layer {name!r}: cell {k} is a {sub['class_name']}, which lstm-trace "
                        "does not know (supported: LSTMCell, GRUCell, SimpleRNNCell)"
                    )
                cell = make_cell(kind, sub["class_name"], CellConfig.from_keras(sub["config"]),
                                 weights[offset:offset + count], ctx, f"layer {name!r} cell {k}")
                offset += count
                last = k == len(cells) - 1
                layers.append(RecurrentLayer(
                    name=f"{name}/cell_{k}", directions=[Direction("forward", cell, reverse)],
                    return_sequences=return_sequences or not last, class_name="RNN",
                    options=options, feeds_stacked_cell=not last,
                    zero_output_for_mask=zero_output and last,
                ))
            return layers
        kind = CELL_CLASSES.get(cell_class)
        if kind is None:
            raise LoadError(
                f"layer {name!r}: RNN cell {cell_class!r} is not supported "
                "(supported: LSTMCell, GRUCell, SimpleRNNCell, StackedRNNCells)"
            )
        cell = make_cell(kind, cell_class, CellConfig.from_keras(cell_cfg["config"]), weights, ctx,
                         f"layer {name!r}")
    elif class_name.startswith("ConvLSTM"):
        cell = _conv_lstm_cell(name, class_name, config, weights, ctx)
    else:
        kind = RECURRENT_CLASSES[class_name]
        cell = make_cell(kind, class_name, CellConfig.from_keras(config), weights, ctx,
                         f"layer {name!r}")
    return [RecurrentLayer(
        name=name, directions=[Direction("forward", cell, reverse)],
        return_sequences=return_sequences, class_name=class_name, options=options,
        zero_output_for_mask=zero_output,
    )]


def _conv_lstm_cell(
    name: str, class_name: str, config: dict, weights: Sequence[np.ndarray], ctx: KerasContext
) -> Cell:
    """A Keras ConvLSTM{1,2,3}D layer's cell (kernel, recurrent kernel[, bias], gates i, f, c, o)."""
    from ...conv_lstm import make_conv_lstm_cell

    use_bias = config.get("use_bias", True)
    if len(weights) != (3 if use_bias else 2):
        raise LoadError(f"layer {name!r}: {class_name} with use_bias={use_bias} should have "
                        f"{3 if use_bias else 2} weight arrays, found {len(weights)}")
    try:
        return make_conv_lstm_cell(
            class_name, config, weights[0], weights[1], weights[2] if use_bias else None,
            _activation(name, config.get("activation", MISSING), "activation", "tanh", ctx, False),
            _activation(name, config.get("recurrent_activation", MISSING), "recurrent_activation",
                        "sigmoid", ctx, False),
        )
    except ValueError as err:
        raise LoadError(f"layer {name!r}: {class_name} {err}") from None


def _bidirectional(
    name: str, config: dict, weights: Sequence[np.ndarray], ctx: KerasContext
) -> RecurrentLayer:
    forward_cfg = config["layer"]
    backward_cfg = config.get("backward_layer")
    n_forward = weight_count(forward_cfg["class_name"], forward_cfg["config"])
    if backward_cfg is None:
        backward_cfg = {
            "class_name": forward_cfg["class_name"],
            "config": {**forward_cfg["config"],
                       "go_backwards": not forward_cfg["config"].get("go_backwards", False)},
        }
    directions = []
    for label, cfg, ws in (
        ("forward", forward_cfg, weights[:n_forward]),
        ("backward", backward_cfg, weights[n_forward:]),
    ):
        if cfg["class_name"] not in RECURRENT_CLASSES and cfg["class_name"] != "RNN":
            raise LoadError(
                f"layer {name!r}: Bidirectional around {cfg['class_name']} is not supported"
            )
        inner = _recurrent_layer(f"{name}/{label}", cfg["class_name"], cfg["config"], ws, ctx)
        if len(inner) != 1:
            raise LoadError(
                f"layer {name!r}: Bidirectional around StackedRNNCells is not supported"
            )
        directions.append(Direction(label, inner[0].directions[0].cell,
                                    inner[0].directions[0].reverse))
    merge_mode = config.get("merge_mode", "concat")
    return RecurrentLayer(
        name=name, directions=directions, bidirectional=True, merge_mode=merge_mode,
        return_sequences=bool(forward_cfg["config"].get("return_sequences", False)),
        class_name="Bidirectional",
    )


def is_recurrent(class_name: str) -> bool:
    return class_name in RECURRENT_CLASSES or class_name in ("RNN", "Bidirectional")


def build_network(
    specs: list[LayerSpec],
    weights: WeightSource,
    ctx: KerasContext,
    *,
    input_shape: tuple | None = None,
    input_dtype: str = "float32",
    keras_version: str | None = None,
) -> Network:
    """Convert parsed layer specs into a Network: recurrent layers and the layers feeding them."""
    needed = _layers_feeding_recurrent(specs)
    layers: list[RecurrentLayer | UpstreamLayer] = []
    inbound: dict[str, tuple[str, ...]] = {}
    parameters: dict[str, int] = {}
    for spec in specs:
        if spec.name not in needed or spec.class_name in MASK_OP_CLASSES:
            continue
        if spec.class_name == "InputLayer":
            continue
        # The given INPUT is the model's first input; other inputs keep their names, so
        # the layers they feed are not reached unless INPUT is given to them (--layer-input).
        sources = tuple("" if _is_first_input(specs, s) else s for s in spec.inbound)
        if sources == ("",):
            sources = ()
        if is_recurrent(spec.class_name):
            ws = weights.layer_weights(spec)
            if spec.class_name == "Bidirectional":
                converted: list = [_bidirectional(spec.name, spec.config, ws, ctx)]
            else:
                converted = _recurrent_layer(spec.name, spec.class_name, spec.config, ws, ctx)
        else:
            try:
                ws = weights.layer_weights(spec)
            except LoadError:
                ws = []
            parameters[spec.name] = sum(int(np.size(w)) for w in ws)
            converted = [convert_upstream(spec, ws, ctx)]
        for k, layer in enumerate(converted):
            inbound[layer.name] = sources if k == 0 else (converted[k - 1].name,)
            layers.append(layer)
        if spec.state_inbound and isinstance(converted[0], RecurrentLayer):
            converted[0].initial_state_from = tuple(
                "" if _is_first_input(specs, s) else s for s in spec.state_inbound
            )
        # Later layers name the Keras layer, which is the last of a stacked expansion.
        if len(converted) > 1:
            alias = converted[-1].name
            for other in specs:
                other.inbound = [alias if s == spec.name else s for s in other.inbound]
    downstream = [s for s in specs if s.name not in needed
                  and s.class_name not in MASK_OP_CLASSES and s.class_name != "InputLayer"]
    return Network(
        layers=layers,
        source=ctx.source,
        keras_version=keras_version,
        input_shape=input_shape,
        input_dtype=input_dtype,
        notes=ctx.notes,
        inbound=inbound,
        downstream=[(s.name, s.class_name) for s in downstream],
        layer_parameters={**parameters, **_stored_sizes(downstream, weights)},
    )


def _stored_sizes(specs: list[LayerSpec], weights: WeightSource) -> dict[str, int]:
    """How many values each layer stores (Keras's ``count_params``), for ``inspect``.

    Layers whose weights cannot be read are left out: the count is information, and a
    layer no traced layer needs must not stop a load.
    """
    out = {}
    for spec in specs:
        try:
            out[spec.name] = sum(int(np.size(w)) for w in weights.layer_weights(spec))
        except (LoadError, KeyError, TypeError, ValueError, OSError):
            continue
    return out


def _is_first_input(specs: list[LayerSpec], name: str) -> bool:
    name = name.split(":")[0]
    for spec in specs:
        if spec.name == name:
            return spec.class_name == "InputLayer" and spec.input_index == 0
    return False


def _layers_feeding_recurrent(specs: list[LayerSpec]) -> set[str]:
    """Names of recurrent layers and every layer on a data path into one of them."""
    by_name = {s.name: s for s in specs}
    needed: set[str] = set()
    stack = [s.name for s in specs if is_recurrent(s.class_name)]
    while stack:
        name = stack.pop()
        if name in needed or name not in by_name:
            continue
        needed.add(name)
        spec = by_name[name]
        stack.extend(ref.split(":")[0] for ref in [*spec.inbound, *spec.state_inbound])
    return needed


# Registers the converters of non-recurrent layers (Embedding, Dense, Conv1D...).
