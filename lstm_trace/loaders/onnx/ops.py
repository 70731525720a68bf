"""The ONNX operators on the way to a recurrent node, replayed in NumPy.

Exporters put shape glue between a graph input and an ``LSTM``/``GRU``/``RNN`` node
(``Transpose``, ``Squeeze``/``Unsqueeze`` of the direction axis, ``Reshape``, ``Slice``,
``Concat``, ``Shape``/``Gather``/``ConstantOfShape``/``Expand`` for dynamic shapes,
``Cast``) and models put front layers there (``Gather`` as an embedding, ``MatMul``/
``Gemm``/``Add``, ``Relu``/``Tanh``/``Sigmoid``, 1-D ``Conv``), quantized models
dequantize their weights (``DequantizeLinear``, folded at load time), and the conditions
of ``If`` nodes compare shapes or inputs (``Size``, ``Equal``, ``Greater``, ``Not``,
``And``...). Each function here takes the node, its input arrays (``None`` for an
omitted optional input) and the opset, and returns the node's outputs, with the semantics
of the ONNX operator specification.
Anything malformed raises ``ValueError`` naming the problem.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .proto import DTYPES, Node

Arrays = list[np.ndarray | None]
Op = Callable[[Node, Arrays, int], list[np.ndarray]]


def _need(args: Arrays, k: int, node: Node) -> np.ndarray:
    if k >= len(args) or args[k] is None:
        raise ValueError(f"input {k} is missing")
    return args[k]


def _ints(a: np.ndarray | None) -> list[int]:
    return [] if a is None else [int(v) for v in np.asarray(a).reshape(-1)]


def _axes_arg(node: Node, args: Arrays, opset: int, since: int) -> list[int] | None:
    """``axes`` from the attribute (before ``since``) or the second input (from ``since``)."""
    if opset >= since:
        return _ints(args[1]) if len(args) > 1 and args[1] is not None else None
    axes = node.attr("axes")
    return None if axes is None else [int(a) for a in axes]


def identity(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    return [_need(args, 0, node)]


def transpose(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x = _need(args, 0, node)
    perm = node.attr("perm")
    return [np.transpose(x, None if perm is None else [int(p) for p in perm])]


def squeeze(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x = _need(args, 0, node)
    axes = _axes_arg(node, args, opset, 13)
    if axes is None:
        return [np.squeeze(x)]
    axes = [a % x.ndim for a in axes]
    if any(x.shape[a] != 1 for a in axes):
        raise ValueError(f"cannot squeeze axes {axes} of shape {x.shape}")
    return [np.squeeze(x, axis=tuple(axes))]


def unsqueeze(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x = _need(args, 0, node)
    axes = _axes_arg(node, args, opset, 13) or []
    ndim = x.ndim + len(axes)
    out = x
    for a in sorted(a % ndim for a in axes):
        out = np.expand_dims(out, a)
    return [out]


def reshape(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x = _need(args, 0, node)
    shape = _ints(args[1]) if opset >= 5 else [int(s) for s in node.attr("shape", [])]
    if not node.attr("allowzero", 0):
        shape = [x.shape[i] if s == 0 and i < x.ndim else s for i, s in enumerate(shape)]
    return [np.reshape(x, shape)]


def flatten(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x = _need(args, 0, node)
    axis = int(node.attr("axis", 1)) % (x.ndim + 1) if x.ndim else 0
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


def slice_(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x = _need(args, 0, node)
    if opset < 10:
        starts, ends = list(node.attr("starts", [])), list(node.attr("ends", []))
        axes = node.attr("axes")
        steps = None
    else:
        starts, ends = _ints(_need(args, 1, node)), _ints(_need(args, 2, node))
        axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else None
        steps = _ints(args[4]) if len(args) > 4 and args[4] is not None else None
    axes = list(range(len(starts))) if axes is None else [int(a) for a in axes]
    steps = steps or [1] * len(starts)
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        if step == 0:
            raise ValueError("Slice step 0")
        dim = x.shape[axis]
        # INT64 max/min mean "to the end": clamp like the specification.
        start = max(-dim - 1, min(int(start), dim))
        end = max(-dim - 1, min(int(end), dim))
        if step > 0:
            start = start + dim if start < 0 else start
            end = end + dim if end < 0 else end
            index[axis] = slice(max(start, 0), max(end, 0), step)
        else:
            start = start + dim if start < 0 else min(start, dim - 1)
            end = end + dim if end < 0 else end
            index[axis] = slice(start, None if end < 0 else end, step)
    return [x[tuple(index)]]


def concat(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    parts = [a for a in args if a is not None]
    return [np.concatenate(parts, axis=int(node.attr("axis", 0)))]


def shape(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    dims = np.array(_need(args, 0, node).shape, dtype=np.int64)
    start, end = node.attr("start", 0), node.attr("end")
    return [dims[int(start):None if end is None else int(end)]]


def gather(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    data, indices = _need(args, 0, node), _need(args, 1, node)
    axis = int(node.attr("axis", 0))
    indices = np.asarray(indices).astype(np.int64)
    size = data.shape[axis]
    if indices.size and (indices.max() >= size or indices.min() < -size):
        bad = int(indices[(indices >= size) | (indices < -size)].reshape(-1)[0])
        raise ValueError(f"index {bad} is out of range for an axis of {size}")
    return [np.take(data, indices, axis=axis)]


def constant_of_shape(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    dims = _ints(_need(args, 0, node))
    value = node.attr("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)
    return [np.full(dims, fill[0], dtype=fill.dtype)]


def expand(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x, dims = _need(args, 0, node), _ints(_need(args, 1, node))
    target = np.broadcast_shapes(x.shape, tuple(dims))
    return [np.broadcast_to(x, target).copy()]


def tile(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    return [np.tile(_need(args, 0, node), _ints(_need(args, 1, node)))]


def cast(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    to = int(node.attr("to", 1))
    if to not in DTYPES:
        raise ValueError(f"Cast to data type {to} is not supported")
    return [_need(args, 0, node).astype(DTYPES[to].newbyteorder("="))]


def constant(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    for key in ("value", "value_float", "value_int"):
        if key in node.attributes and node.attributes[key] is not None:
            value = node.attributes[key]
            if key == "value_float":
                return [np.array(value, dtype=np.float32)]
            if key == "value_int":
                return [np.array(value, dtype=np.int64)]
            return [np.asarray(value)]
    if "value_floats" in node.attributes:
        return [np.array(node.attributes["value_floats"], dtype=np.float32)]
    if "value_ints" in node.attributes:
        return [np.array(node.attributes["value_ints"], dtype=np.int64)]
    raise ValueError("Constant without a value lstm-trace can read (sparse or string)")


def matmul(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    return [np.matmul(_need(args, 0, node), _need(args, 1, node))]


def gemm(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    a, b = _need(args, 0, node), _need(args, 1, node)
    if node.attr("transA", 0):
        a = a.T
    if node.attr("transB", 0):
        b = b.T
    y = np.matmul(a, b)
    alpha = node.attr("alpha", 1.0)
    if alpha != 1.0:
        y = y * y.dtype.type(alpha)
    c = args[2] if len(args) > 2 else None
    if c is not None:
        beta = node.attr("beta", 1.0)
        y = y + (c if beta == 1.0 else c * c.dtype.type(beta))
    return [y]


def _binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Op:
    def op(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
        a, b = _need(args, 0, node), _need(args, 1, node)
        if opset < 7 and node.attr("broadcast", 0) and node.attr("axis") is not None:
            axis = int(node.attr("axis")) % a.ndim
            b = b.reshape(b.shape + (1,) * (a.ndim - axis - b.ndim))
        return [fn(a, b)]
    return op


def _pow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``Pow``: the result has the base's type (an int64 or float64 exponent does not widen it)."""
    return np.power(a, b).astype(a.dtype, copy=False)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "edge", "wrap": "wrap"}


def pad(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    """``Pad``: ``pads = [x1_begin, x2_begin, ..., x1_end, x2_end, ...]`` over ``axes`` (all
    by default); a negative amount removes steps. Opset < 11: ``pads`` / ``value`` attributes."""
    x = _need(args, 0, node)
    mode = str(node.attr("mode", "constant"))
    if mode not in _PAD_MODES:
        raise ValueError(f"Pad mode {mode!r} (expected constant, reflect, edge or wrap)")
    if opset < 11:
        pads, value = [int(v) for v in node.attr("pads", [])], float(node.attr("value", 0.0))
        axes = list(range(x.ndim))
    else:
        pads = _ints(_need(args, 1, node))
        given = args[2] if len(args) > 2 else None
        value = 0 if given is None or np.asarray(given).size == 0 else np.asarray(given).reshape(-1)[0]
        axes = _ints(args[3]) if len(args) > 3 and args[3] is not None else list(range(x.ndim))
    if len(pads) != 2 * len(axes):
        raise ValueError(f"Pad has {len(pads)} pads for {len(axes)} axes")
    widths = [[0, 0] for _ in range(x.ndim)]
    for k, axis in enumerate(axes):
        widths[axis % x.ndim] = [pads[k], pads[k + len(axes)]]
    crop = tuple(slice(max(-b, 0), x.shape[a] - max(-e, 0)) for a, (b, e) in enumerate(widths))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in widths]
    if mode == "reflect" and any(w >= x.shape[a] and w for a, pair in enumerate(widths) for w in pair):
        raise ValueError(f"Pad reflect of {max(map(max, widths))} steps on shape {x.shape}")
    if mode == "constant":
        return [np.pad(x, widths, mode="constant", constant_values=x.dtype.type(value))]
    return [np.pad(x, widths, mode=_PAD_MODES[mode])]


def _reduce(fn: Callable[..., np.ndarray], axes_input_since: int) -> Op:
    """``ReduceSum``/``ReduceMean``/``ReduceMax``/``ReduceMin``/``ReduceProd``: over ``axes``
    (an attribute before ``axes_input_since``, the second input from it; all axes when
    absent, none with ``noop_with_empty_axes``), ``keepdims`` (1 by default)."""
    def op(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
        x = _need(args, 0, node)
        axes = _axes_arg(node, args, opset, axes_input_since)
        keep = bool(node.attr("keepdims", 1))
        if not axes:  # absent or empty: every axis, or none with noop_with_empty_axes
            if node.attr("noop_with_empty_axes", 0):
                return [x]
            axes = list(range(x.ndim))
        axis = tuple(sorted(a % x.ndim for a in axes)) if x.ndim else None
        return [np.asarray(fn(x, axis=axis, keepdims=keep)).astype(x.dtype, copy=False)]
    return op


def softmax(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    """``exp(x - max) / Σ exp(x - max)`` along ``axis`` (opset 13 on: that axis, default
    -1; before: ``x`` flattened to 2-D at ``axis``, default 1, over the second part)."""
    x = _need(args, 0, node)
    if opset >= 13:
        axis = int(node.attr("axis", -1)) % x.ndim
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        return [e / e.sum(axis=axis, keepdims=True)]
    axis = int(node.attr("axis", 1)) % max(x.ndim, 1)
    flat = x.reshape(int(np.prod(x.shape[:axis])), -1)
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    return [(e / e.sum(axis=1, keepdims=True)).reshape(x.shape)]


def where(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    cond, a, b = _need(args, 0, node), _need(args, 1, node), _need(args, 2, node)
    return [np.where(np.asarray(cond, dtype=bool), a, b).astype(np.result_type(a, b), copy=False)]


def top_k(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    """``TopK``: the ``k`` largest (``largest=0``: smallest) values along ``axis`` and their
    indices, sorted; of equal values the one at the lower index comes first. ``k`` is the
    second input (opset 10 on) or the ``k`` attribute."""
    x = _need(args, 0, node)
    k = _ints(_need(args, 1, node))[0] if opset >= 10 else int(node.attr("k"))
    axis = int(node.attr("axis", -1)) % x.ndim
    if not 0 <= k <= x.shape[axis]:
        raise ValueError(f"TopK k={k} for an axis of {x.shape[axis]}")
    if node.attr("largest", 1):  # descending; ties: ascending index (sort the reversed axis)
        n = x.shape[axis]
        order = n - 1 - np.flip(np.argsort(np.flip(x, axis=axis), axis=axis, kind="stable"), axis=axis)
    else:
        order = np.argsort(x, axis=axis, kind="stable")
    index = np.take(order, np.arange(k), axis=axis)
    return [np.take_along_axis(x, index, axis=axis), index.astype(np.int64)]


def size(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    """``Size``: the number of elements, an int64 scalar."""
    return [np.array(np.asarray(_need(args, 0, node)).size, dtype=np.int64)]


def _compare(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Op:
    """``Equal``, ``Greater``, ``Less``...: elementwise with broadcasting, a bool result."""
    def op(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
        return [np.asarray(fn(_need(args, 0, node), _need(args, 1, node)), dtype=bool)]
    return op


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return np.trunc(a / b).astype(np.result_type(a, b))
    return a / b


def _unary(fn: Callable[[np.ndarray], np.ndarray]) -> Op:
    def op(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
        return [fn(_need(args, 0, node))]
    return op


def _sigmoid(x: np.ndarray) -> np.ndarray:
    from ...activations import sigmoid

    return sigmoid(x)


def leaky_relu(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x = _need(args, 0, node)
    return [np.where(x >= 0, x, x * x.dtype.type(node.attr("alpha", 0.01)))]


def dropout(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    x = _need(args, 0, node)
    return [x, np.ones(x.shape, dtype=bool)][: max(1, len(node.outputs))]


def reverse_sequence(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    """Reverse the first ``sequence_lens[b]`` steps of each batch entry (Keras go_backwards)."""
    x, lens = _need(args, 0, node), _ints(_need(args, 1, node))
    batch_axis = int(node.attr("batch_axis", 1)) % x.ndim
    time_axis = int(node.attr("time_axis", 0)) % x.ndim
    if len(lens) != x.shape[batch_axis]:
        raise ValueError(f"{len(lens)} sequence lengths for a batch of {x.shape[batch_axis]}")
    moved = np.moveaxis(x, (batch_axis, time_axis), (0, 1)).copy()
    for b, n in enumerate(lens):
        if not 0 <= n <= moved.shape[1]:
            raise ValueError(f"sequence length {n} outside 0..{moved.shape[1]}")
        moved[b, :n] = moved[b, :n][::-1]
    return [np.moveaxis(moved, (0, 1), (batch_axis, time_axis))]


def dequantize_linear(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    """``y = (x - zero_point) * scale``, per tensor or per ``axis`` (quantized weights)."""
    x, scale = _need(args, 0, node), np.asarray(_need(args, 1, node))
    zero = args[2] if len(args) > 2 and args[2] is not None else np.zeros((), x.dtype)
    zero = np.asarray(zero)
    if scale.ndim == 1 and scale.size > 1 or node.attr("block_size"):
        if node.attr("block_size"):
            raise ValueError("blocked quantization is not supported")
        axis = int(node.attr("axis", 1)) % x.ndim
        view = [1] * x.ndim
        view[axis] = scale.size
        scale = scale.reshape(view)
        zero = zero.reshape(view) if zero.size > 1 else zero
    y = (x.astype(np.int64) - zero.astype(np.int64)).astype(np.float32) * scale.astype(np.float32)
    return [y.astype(scale.dtype if scale.dtype.kind == "f" else np.float32)]


def conv(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    """Convolution over ``n`` spatial axes (1-D, 2-D, 3-D...): X ``(N, C, L1, ..., Ln)``,
    W ``(M, C/group, k1, ..., kn)``, B ``(M,)``; ``strides``, ``dilations``, ``pads``
    ``[b1, ..., bn, e1, ..., en]`` or ``auto_pad``, ``group``. As in ONNX (and every
    framework): a cross-correlation, ``y[n, m, o] = Σ_c Σ_k x[n, c, o*s + k*d] w[m, c, k] + b[m]``
    per group, computed as one matrix product per group over the gathered windows.
    """
    x, w = _need(args, 0, node), _need(args, 1, node)
    b = args[2] if len(args) > 2 else None
    nd = x.ndim - 2
    if nd < 1 or w.ndim != x.ndim:
        raise ValueError(f"Conv input {x.shape} and weights {w.shape} do not match")
    kernel = w.shape[2:]
    strides = [int(v) for v in (node.attr("strides") or [1] * nd)]
    dilations = [int(v) for v in (node.attr("dilations") or [1] * nd)]
    group = int(node.attr("group", 1))
    if len(strides) != nd or len(dilations) != nd or group < 1 or x.shape[1] % group \
            or w.shape[0] % group or w.shape[1] * group != x.shape[1]:
        raise ValueError(f"Conv of input {x.shape} with weights {w.shape}, group {group}, "
                         f"strides {strides}, dilations {dilations} does not fit")
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations, strict=True)]
    auto_pad = node.attr("auto_pad", "NOTSET")
    widths = []
    for i in range(nd):
        size, stride, span = x.shape[2 + i], strides[i], spans[i]
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            total = max((-(-size // stride) - 1) * stride + span - size, 0)
            small, large = total // 2, total - total // 2
            widths.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
        elif auto_pad == "VALID":
            widths.append((0, 0))
        else:
            given = node.attr("pads") or [0] * (2 * nd)
            widths.append((int(given[i]), int(given[i + nd])))
    x = np.pad(x, ((0, 0), (0, 0), *widths))
    outs = [(x.shape[2 + i] - spans[i]) // strides[i] + 1 for i in range(nd)]
    if min(outs) < 1:
        raise ValueError(f"the input {x.shape[2:]} (padded) is too small for a kernel spanning {spans}")
    windows = x
    for i in range(nd):  # axis 2 + 2i becomes (out_i, k_i)
        index = np.arange(outs[i])[:, None] * strides[i] + np.arange(kernel[i])[None, :] * dilations[i]
        windows = np.take(windows, index, axis=2 + 2 * i)
    order = [0, *(2 + 2 * i for i in range(nd)), 1, *(3 + 2 * i for i in range(nd))]
    n, cin, cout = x.shape[0], w.shape[1], w.shape[0] // group
    places = int(np.prod(outs))
    cols = windows.transpose(order).reshape(n * places, group, -1).transpose(1, 0, 2)
    y = np.matmul(cols, w.reshape(group, cout, cin * int(np.prod(kernel))).transpose(0, 2, 1))
    y = y.transpose(1, 0, 2).reshape(n, *outs, group * cout)  # (N, O1..On, M)
    y = np.moveaxis(y, -1, 1)
    if b is not None:
        y = y + b.reshape(-1, *([1] * nd))
    return [np.ascontiguousarray(y.astype(x.dtype, copy=False))]


OPS: dict[str, Op] = {
    "Identity": identity, "Transpose": transpose, "Squeeze": squeeze, "Unsqueeze": unsqueeze,
    "Reshape": reshape, "Flatten": flatten, "Slice": slice_, "Concat": concat, "Shape": shape,
    "Gather": gather, "ConstantOfShape": constant_of_shape, "Expand": expand, "Tile": tile,
    "Cast": cast, "Constant": constant, "MatMul": matmul, "Gemm": gemm,
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply),
    "Div": _binary(_div), "Pow": _binary(_pow), "Sqrt": _unary(np.sqrt), "Pad": pad,
    "Relu": _unary(lambda x: np.maximum(x, x.dtype.type(0))), "Tanh": _unary(np.tanh),
    "Sigmoid": _unary(_sigmoid), "Neg": _unary(np.negative), "LeakyRelu": leaky_relu,
    "Dropout": dropout, "Conv": conv, "DequantizeLinear": dequantize_linear,
    "ReverseSequence": reverse_sequence,
    # What If conditions are made of (silero-vad: Equal of the sampling rate, Size of a
    # shape, Not, Cast to bool).
    "Size": size, "Equal": _compare(np.equal), "Greater": _compare(np.greater),
    "Less": _compare(np.less), "GreaterOrEqual": _compare(np.greater_equal),
    "LessOrEqual": _compare(np.less_equal), "Not": _unary(np.logical_not),
    "And": _compare(np.logical_and), "Or": _compare(np.logical_or),
    "Xor": _compare(np.logical_xor), "Where": where,
    # Attention and packing fronts (PyTorch seq2seq exports: pythainlp's thai2rom)
    "ReduceSum": _reduce(np.sum, 13), "ReduceMean": _reduce(np.mean, 18),
    "ReduceMax": _reduce(np.max, 18), "ReduceMin": _reduce(np.min, 18),
    "ReduceProd": _reduce(np.prod, 18), "Softmax": softmax, "TopK": top_k,
}


def run_node(node: Node, args: Arrays, opset: int) -> list[np.ndarray]:
    """Outputs of ``node`` on ``args`` (raises ``ValueError`` naming the node)."""
    op = OPS.get(node.op_type) if node.domain in ("", "ai.onnx") else None
    label = f"node {node.name!r} ({node.op_type})" if node.name else f"a {node.op_type} node"
    if op is None:
        raise ValueError(f"{label} cannot be replayed in NumPy")
    try:
        return op(node, args, opset)
    except (ValueError, IndexError, TypeError) as err:
        raise ValueError(f"{label}: {err}") from None
