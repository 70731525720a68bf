"""The model's graph and the branches of its ``If`` nodes as one flat list of nodes.

An ``If`` node holds two subgraphs, ``then_branch`` and ``else_branch``; onnxruntime runs
the one its condition (a one-element bool tensor) chooses and hands that branch's outputs
on as the ``If``'s outputs. A branch's nodes read the enclosing graphs' tensors by name
(lexical scope), so exporters put whole networks there (silero-vad chooses its 16 kHz or
8 kHz network this way, and torch's exporter writes an ``LSTM`` inside the branch of a
shape test).

:func:`flatten` lists every node of the graph and of every ``If`` branch, nested ones
included, in an order in which each node comes after what it reads (a branch's nodes
just before their ``If``), with the branches that enclose each node (:class:`Branch`,
outermost first). Tensor names are made unique over the whole model first: a branch that
defines a name its sibling branch (or an enclosing graph) also defines gets
``<name>@<k>``, and every read inside that branch follows, so one name means one tensor.
The top-level graph's names are never changed.

The bodies of ``Loop`` and ``Scan`` nodes run once per iteration, not once: their nodes
are not listed (a recurrent node inside one is reported in :attr:`Flat.in_loops`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .proto import Graph, Node

#: The op types that hold a loop body run once per iteration.
LOOP_OPS = ("Loop", "Scan")


@dataclass(frozen=True)
class Branch:
    """One ``If`` branch enclosing a node: the ``If``'s label, which branch, its condition."""

    node: str
    then: bool
    cond: str

    @property
    def side(self) -> str:
        return "then" if self.then else "else"

    def __str__(self) -> str:
        return f"{self.side} branch of If {self.node!r}"


Scope = tuple[Branch, ...]


@dataclass
class Flat:
    """Every node of the model outside loop bodies, with the ``If`` branches enclosing it."""

    nodes: list[Node] = field(default_factory=list)
    #: ``id(node)`` -> the branches enclosing it, outermost first (``()`` at the top level).
    scopes: dict[int, Scope] = field(default_factory=dict)
    #: Initializers of the graph and of every branch, by (unique) name.
    initializers: dict[str, np.ndarray] = field(default_factory=dict)
    #: Tensor name -> the node producing it and which of its outputs it is.
    producer: dict[str, tuple[Node, int]] = field(default_factory=dict)
    #: Each ``If`` node by its label (its name, or ``If_<k>`` counting ``If`` nodes from 0).
    ifs: dict[str, Node] = field(default_factory=dict)
    #: Recurrent op types found inside loop bodies, with where (``body of Loop 'x'``).
    in_loops: list[tuple[str, str]] = field(default_factory=list)

    def scope(self, node: Node) -> Scope:
        return self.scopes.get(id(node), ())


def branch_graph(node: Node, then: bool) -> Graph | None:
    """The ``then_branch`` or ``else_branch`` of an ``If`` node (``None`` when missing)."""
    value = node.attr("then_branch" if then else "else_branch")
    return value if isinstance(value, Graph) else None


def is_if(node: Node) -> bool:
    return node.op_type == "If" and node.domain in ("", "ai.onnx")


def flatten(graph: Graph, recurrent_ops: set[str] | frozenset[str] = frozenset()) -> Flat:
    """List the nodes of ``graph`` and of its ``If`` branches (names made unique, see above)."""
    flat = Flat()
    taken: set[str] = set()
    if_count = 0

    def define(name: str, mapping: dict[str, str], top: bool) -> None:
        if not name:
            return
        new = name
        if not top and name in taken:
            k = 1
            while f"{name}@{k}" in taken:
                k += 1
            new = f"{name}@{k}"
        taken.add(new)
        mapping[name] = new

    def visit(g: Graph, outer: dict[str, str], scope: Scope, top: bool) -> None:
        nonlocal if_count
        mapping = dict(outer)
        for name in g.initializers:
            define(name, mapping, top)
        for info in g.inputs:
            define(info.name, mapping, top)
        for node in g.nodes:
            for out in node.outputs:
                define(out, mapping, top)
        g.initializers = {mapping.get(k, k): v for k, v in g.initializers.items()}
        flat.initializers.update(g.initializers)
        for info in (*g.inputs, *g.outputs):
            info.name = mapping.get(info.name, info.name)
        for node in g.nodes:
            node.inputs = [mapping.get(i, i) if i else i for i in node.inputs]
            node.outputs = [mapping.get(o, o) if o else o for o in node.outputs]
        for node in g.nodes:
            if is_if(node):
                label = node.name or f"If_{if_count}"
                if_count += 1
                flat.ifs[label] = node
                for then in (True, False):
                    sub = branch_graph(node, then)
                    if sub is not None:
                        visit(sub, mapping, (*scope, Branch(label, then, node.input(0))), False)
            elif node.op_type in LOOP_OPS:
                where = f"body of {node.op_type} {node.name!r}" if node.name else \
                    f"body of a {node.op_type} node"
                flat.in_loops += [(op, where) for sub in node.subgraphs()
                                  for op in sorted(sub.op_types() & set(recurrent_ops))]
            flat.nodes.append(node)
            flat.scopes[id(node)] = scope

    visit(graph, {}, (), True)
    for node in flat.nodes:
        for k, out in enumerate(node.outputs):
            if out:
                flat.producer[out] = (node, k)
    return flat
