"""TF2 object checkpoints' `TrackableObjectGraph`: checkpoint keys to variables' full names."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..protobuf_wire import (
    ProtobufDecodeError,
    get_bool,
    get_int,
    get_message,
    get_string,
    parse_message,
    repeated_messages,
)
from .errors import BundleError

OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
"""Key of the serialized ``TrackableObjectGraph`` in object-based checkpoints."""


@dataclass(frozen=True)
class ObjectReference:
    """An edge of the object graph: child ``node_id`` reached by ``local_name``."""

    node_id: int
    local_name: str


@dataclass(frozen=True)
class SerializedTensor:
    """A tensor saved for an object: ``name`` (``VARIABLE_VALUE``), ``full_name``
    (the variable's graph name, e.g. ``lstm/lstm_cell/kernel``) and
    ``checkpoint_key`` (the bundle key)."""

    name: str
    full_name: str
    checkpoint_key: str
    optional_restore: bool = False


@dataclass(frozen=True)
class SlotVariableReference:
    """An optimizer slot (``m``, ``v``, ...) of a variable node."""

    original_variable_node_id: int
    slot_name: str
    slot_variable_node_id: int


@dataclass(frozen=True)
class TrackableObject:
    """One node of the object graph."""

    children: tuple[ObjectReference, ...] = ()
    attributes: tuple[SerializedTensor, ...] = ()
    slot_variables: tuple[SlotVariableReference, ...] = ()
    registered_saver: str = ""

    def child(self, local_name: str) -> int | None:
        """Node id of the child called ``local_name``, or ``None``."""
        for ref in self.children:
            if ref.local_name == local_name:
                return ref.node_id
        return None


@dataclass(frozen=True)
class ObjectGraph:
    """A decoded ``TrackableObjectGraph``; node 0 is the root (the saved object)."""

    nodes: tuple[TrackableObject, ...] = field(default_factory=tuple)

    def full_names(self) -> dict[str, str]:
        """``checkpoint_key -> full_name`` for every attribute that has a full name."""
        return {
            attr.checkpoint_key: attr.full_name
            for node in self.nodes
            for attr in node.attributes
            if attr.full_name
        }

    def attribute(self, checkpoint_key: str) -> SerializedTensor | None:
        """The attribute stored under ``checkpoint_key``."""
        for node in self.nodes:
            for attr in node.attributes:
                if attr.checkpoint_key == checkpoint_key:
                    return attr
        return None

    def walk(self) -> Iterator[tuple[tuple[str, ...], int]]:
        """Breadth-first ``(path of local names, node_id)`` from the root.

        Each node is yielded once, under its shortest path (the path TF uses
        to build checkpoint keys); cycles are safe.
        """
        if not self.nodes:
            return
        seen = {0}
        queue: deque[tuple[tuple[str, ...], int]] = deque([((), 0)])
        while queue:
            path, node_id = queue.popleft()
            yield path, node_id
            for ref in self.nodes[node_id].children:
                if ref.node_id not in seen:
                    seen.add(ref.node_id)
                    queue.append(((*path, ref.local_name), ref.node_id))

    def resolve(self, path: str | Sequence[str], start: int = 0) -> int:
        """Node id reached from ``start`` by local names (``"layer_with_weights-0/cell"``)."""
        names = [n for n in (path.split("/") if isinstance(path, str) else path) if n]
        node_id = start
        for i, name in enumerate(names):
            child = self.nodes[node_id].child(name)
            if child is None:
                trail = "/".join(names[:i]) or "<root>"
                raise KeyError(f"object {trail!r} has no child {name!r}")
            node_id = child
        return node_id

    def variables(self) -> Iterator[tuple[tuple[str, ...], SerializedTensor]]:
        """``(object path, attribute)`` for every saved tensor, in walk order."""
        for path, node_id in self.walk():
            for attr in self.nodes[node_id].attributes:
                yield path, attr


def parse_object_graph(data: bytes) -> ObjectGraph:
    """Decode a serialized ``TrackableObjectGraph`` (``trackable_object_graph.proto``)::

        TrackableObjectGraph { repeated TrackableObject nodes = 1; }
        TrackableObject {
          repeated ObjectReference children = 1;
              // { int32 node_id = 1; string local_name = 2; }
          repeated SerializedTensor attributes = 2;
              // { string name = 1; string full_name = 2; string checkpoint_key = 3;
              //   bool optional_restore = 4 (not in every TF version); }
          repeated SlotVariableReference slot_variables = 3;
              // { int32 original_variable_node_id = 1; string slot_name = 2;
              //   int32 slot_variable_node_id = 3; }
          RegisteredSaver registered_saver = 4;
              // { string name = 1; string object_name = 2; }
        }

    Raises :class:`BundleError` if the bytes are malformed or a reference
    points outside the node list.
    """
    try:
        graph = parse_message(data)
        nodes = []
        for node in repeated_messages(graph, 1):
            saver = get_message(node, 4)
            nodes.append(
                TrackableObject(
                    children=tuple(
                        ObjectReference(get_int(c, 1, bits=32), get_string(c, 2))
                        for c in repeated_messages(node, 1)
                    ),
                    attributes=tuple(
                        SerializedTensor(get_string(a, 1), get_string(a, 2), get_string(a, 3), get_bool(a, 4))
                        for a in repeated_messages(node, 2)
                    ),
                    slot_variables=tuple(
                        SlotVariableReference(
                            get_int(s, 1, bits=32), get_string(s, 2), get_int(s, 3, bits=32)
                        )
                        for s in repeated_messages(node, 3)
                    ),
                    registered_saver=get_string(saver, 1) if saver else "",
                )
            )
    except ProtobufDecodeError as exc:
        raise BundleError(f"checkpoint object graph ({OBJECT_GRAPH_KEY}) is corrupt: {exc}") from None
    count = len(nodes)
    for index, node in enumerate(nodes):
        refs = [ref.node_id for ref in node.children]
        refs += [s.original_variable_node_id for s in node.slot_variables]
        refs += [s.slot_variable_node_id for s in node.slot_variables]
        for ref in refs:
            if not 0 <= ref < count:
                raise BundleError(
                    f"checkpoint object graph ({OBJECT_GRAPH_KEY}) is corrupt: node {index} refers "
                    f"to node {ref} but the graph has {count} nodes"
                )
    return ObjectGraph(tuple(nodes))
