"""Computing one tensor of a flattened ONNX graph from the values already known.

:func:`evaluate` works on demand, as onnxruntime does for what it runs: a tensor is its
producer's output, computed once the producer's inputs are; an ``If`` output is the
output of the branch its condition chooses, so only that branch is computed (the other
may not even make sense for these inputs: a ``Squeeze`` of an axis that is not 1...).
Values already in ``env`` (graph inputs, folded constants, the outputs of recurrent
nodes the engine ran) are taken as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .ops import run_node
from .proto import Node
from .scopes import branch_graph, is_if


def truth(value: np.ndarray, what: str) -> bool:
    """An ``If`` condition: a tensor of one element (bool, or a number: non-zero is true)."""
    value = np.asarray(value)
    if value.size != 1:
        raise ValueError(f"the condition of {what} has {value.size} values, expected one")
    return bool(value.reshape(-1)[0])


def if_label(node: Node) -> str:
    return f"If node {node.name!r}" if node.name else "an If node"


def evaluate(
    target: str, env: dict[str, np.ndarray], producer: Mapping[str, tuple[Node, int]],
    opset: int,
) -> np.ndarray:
    """The value of ``target``, computing (and storing in ``env``) what it needs.

    Raises ``ValueError`` naming the node that fails, or the tensor nothing produces.
    """
    stack = [target]
    pending: set[str] = set()
    while stack:
        name = stack[-1]
        if name in env:
            stack.pop()
            pending.discard(name)
            continue
        if name not in producer:
            raise ValueError(f"tensor {name!r} is produced by no node the replay can run")
        node, k = producer[name]
        if is_if(node):
            needs = node.input(0)
            if needs in env:
                branch = branch_graph(node, truth(env[needs], if_label(node)))
                if branch is None or k >= len(branch.outputs):
                    raise ValueError(f"{if_label(node)} has no output {k} in the branch taken")
                needs = branch.outputs[k].name
                if needs in env:
                    env[name] = env[needs]
                    continue
            missing = [needs]
        else:
            missing = [i for i in node.inputs if i and i not in env]
            if not missing:
                outputs = run_node(node, [env[i] if i else None for i in node.inputs], opset)
                for out, value in zip(node.outputs, outputs, strict=False):
                    if out:
                        env[out] = value
                if name not in env:
                    raise ValueError(f"node {node.name!r} ({node.op_type}) gives no output {k}")
                continue
        pending.add(name)
        for m in missing:
            if m in pending:
                raise ValueError(f"tensor {m!r} depends on itself")
            stack.append(m)
    return env[target]
