"""A ``Loop`` that is a simple RNN cell run over a sequence, read as the ``RNN`` node it is.

tf2onnx writes a Keras ``SimpleRNN`` as a TensorFlow while loop turned into an ONNX
``Loop``: the body gathers step ``t`` of a time-major sequence ``S`` and computes::

    h' = φ(S[t] K + b + h U)          (Keras SimpleRNNCell: φ tanh, relu, sigmoid...)

with ``K``, ``b``, ``U`` handed through the loop unchanged, ``t`` counting up from 0 by 1,
the loop going on while ``t + 1 < n``, and ``h'`` both the next state and the step's
output. That is exactly an ONNX ``RNN`` node (``W = Kᵀ``, ``R = Uᵀ``, ``B = [b, 0]``,
``activations = [φ]``) over ``X = S``, from ``initial_h = h₀``.

:func:`simple_rnn_loop` checks every one of those facts on the body and returns that
node (weights as new initializers), or ``None`` when any differs: anything else a loop
may compute (a GRU with the reset gate before the product, a masked layer's ``Where``
of the previous state...) stays refused. ``n`` (the steps the loop runs) is a tensor
the replay computes: the traced layer checks it equals ``S``'s steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .proto import Graph, Node

#: Body activations a Keras SimpleRNN writes, as ONNX RNN activation names.
ACTIVATIONS = {"Tanh": "Tanh", "Relu": "Relu", "Sigmoid": "Sigmoid", "Softsign": "Softsign",
               "Softplus": "Softplus"}


@dataclass
class LoopRNN:
    """The ``RNN`` node a loop computes, its new weight tensors, and the loop's step count."""

    node: Node
    initializers: dict[str, np.ndarray]
    steps: str  # the tensor (outside the loop) holding how many steps the loop runs
    #: The file's tensors the weights came from, by role (``Cell.tensor_names``; the kernels
    #: are stored transposed, ``K`` is ``Wᵀ``).
    tensor_names: dict[str, tuple[str, ...]]


def simple_rnn_loop(
    loop: Node, outer_const: Callable[[str], np.ndarray | None], name: str,
) -> LoopRNN | None:
    """``loop`` as an ``RNN`` node named ``name``, or ``None`` if it is not a simple RNN cell."""
    body = loop.attr("body")
    if loop.op_type != "Loop" or not isinstance(body, Graph) or loop.input(0):
        return None  # a trip count on top of the condition: not the while loop of a layer
    ins = [i.name for i in body.inputs]
    outs = [o.name for o in body.outputs]
    carried = len(ins) - 2
    if carried < 1 or len(outs) < 1 + carried or len(loop.inputs) != 2 + carried:
        return None
    producer = {o: (n, k) for n in body.nodes for k, o in enumerate(n.outputs) if o}

    def source(tensor: str) -> str:
        """``tensor`` past any Identity nodes of the body."""
        for _ in range(len(body.nodes) + 1):
            made = producer.get(tensor)
            if made is None or made[0].op_type != "Identity":
                return tensor
            tensor = made[0].inputs[0]
        return tensor

    def const(tensor: str) -> np.ndarray | None:
        tensor = source(tensor)
        if tensor in body.initializers:
            return body.initializers[tensor]
        made = producer.get(tensor)
        if made is not None:
            node = made[0]
            value = node.attr("value")
            return np.asarray(value) if node.op_type == "Constant" and value is not None else None
        if tensor in ins:
            j = ins.index(tensor) - 2
            if j >= 0 and source(outs[1 + j]) == tensor:  # handed through unchanged
                return outer_const(loop.inputs[2 + j])
            return None
        return outer_const(tensor)

    def stored_name(tensor: str) -> str:
        """The tensor outside the loop a handed-through body input comes from."""
        tensor = source(tensor)
        return loop.inputs[ins.index(tensor)] if tensor in ins else tensor

    def made_by(tensor: str, op: str) -> Node | None:
        made = producer.get(source(tensor))
        return made[0] if made is not None and made[0].op_type == op else None

    def terms(tensor: str) -> list[str]:
        add = made_by(tensor, "Add")
        if add is None:
            return [source(tensor)]
        return [t for i in add.inputs for t in terms(i)]

    scans = {source(o) for o in outs[1 + carried:]}
    for j in range(carried):
        h_in, h_new = ins[2 + j], source(outs[1 + j])
        act = producer.get(h_new, (None, 0))[0]
        if act is None or act.op_type not in ACTIVATIONS or h_new not in scans:
            continue
        kernel = recurrent = sequence = counter = None
        biases: list[np.ndarray] = []
        names: dict[str, tuple[str, ...]] = {"bias": ()}
        for term in terms(act.inputs[0]):
            value = const(term)
            if value is not None:
                biases.append(value)
                names["bias"] += (stored_name(term),)
                continue
            matmul = made_by(term, "MatMul")
            weight = None if matmul is None else const(matmul.inputs[1])
            if weight is None or weight.ndim != 2:
                return None
            left = source(matmul.inputs[0])
            gather = made_by(left, "Gather")
            if left == h_in and recurrent is None:
                recurrent = weight
                names["recurrent_kernel"] = (f"{stored_name(matmul.inputs[1])}ᵀ",)
            elif gather is not None and kernel is None and int(gather.attr("axis", 0)) == 0 \
                    and source(gather.inputs[0]) not in producer and gather.inputs[0] not in ins:
                kernel, sequence, counter = weight, gather.inputs[0], source(gather.inputs[1])
                names["kernel"] = (f"{stored_name(matmul.inputs[1])}ᵀ",)
            else:
                return None
        if kernel is None or recurrent is None or counter not in ins:
            return None
        units = recurrent.shape[0]
        if recurrent.shape != (units, units) or kernel.shape[1] != units:
            return None
        bias = np.zeros(units, kernel.dtype)
        for b in biases:
            if np.shape(b) not in ((units,), (1, units)):
                return None
            bias = bias + np.reshape(b, units)
        steps = _counted_steps(loop, ins, outs, counter, source, const, made_by)
        if steps is None:
            return None
        base = f"{name}/"
        weights = {f"{base}W": kernel.T[None].astype(np.float32),
                   f"{base}R": recurrent.T[None].astype(np.float32)}
        if biases:
            weights[f"{base}B"] = np.concatenate([bias, np.zeros_like(bias)])[None].astype(np.float32)
        else:
            del names["bias"]
        node = Node("RNN", name, [sequence, f"{base}W", f"{base}R", f"{base}B" if biases else "",
                                  "", loop.inputs[2 + j]],
                    [f"{base}Y", f"{base}Y_h"],
                    {"hidden_size": units, "activations": [ACTIVATIONS[act.op_type]]})
        return LoopRNN(node, weights, steps, names)
    return None


def _counted_steps(loop: Node, ins: list[str], outs: list[str], counter: str,
                   source: Callable[[str], str], const: Callable[[str], np.ndarray | None],
                   made_by: Callable[[str, str], Node | None]) -> str | None:
    """The outer tensor ``n`` when the loop runs ``t = 0, 1, ..., n - 1``: the counter starts
    at 0 and grows by 1, the condition is ``t + 1 < n`` with ``n`` handed through."""
    j = ins.index(counter) - 2
    start = const(loop.inputs[2 + j]) if j >= 0 else None
    step = made_by(outs[1 + j], "Add") if j >= 0 else None
    if start is None or np.size(start) != 1 or int(np.reshape(start, -1)[0]) != 0 or step is None:
        return None
    grown = [source(i) for i in step.inputs]
    one = [const(i) for i in step.inputs if source(i) != counter]
    if counter not in grown or len(one) != 1 or one[0] is None or np.size(one[0]) != 1 \
            or int(np.reshape(one[0], -1)[0]) != 1:
        return None
    less = made_by(outs[0], "Less")
    if less is None:
        return None

    def uncast(tensor: str) -> str:
        cast = made_by(tensor, "Cast")
        return source(cast.inputs[0]) if cast is not None else source(tensor)

    if uncast(less.inputs[0]) != source(outs[1 + j]):
        return None
    limit = uncast(less.inputs[1])
    if limit not in ins or ins.index(limit) < 2 or source(outs[ins.index(limit) - 1]) != limit:
        return None
    first = const(loop.inputs[1]) if loop.input(1) else None
    if first is not None and not bool(np.reshape(first, -1)[0]):
        return None  # a loop that never runs
    return loop.inputs[ins.index(limit)]
