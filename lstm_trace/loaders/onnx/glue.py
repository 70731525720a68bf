"""The layers that replay ONNX ops in NumPy, from graph inputs to what a recurrent node takes.

:class:`OnnxOps` holds the op subgraph from its sources (graph inputs, the outputs of
earlier recurrent nodes) to one tensor a recurrent node takes (``X``, an initial state),
and computes it on demand (:func:`~.replay.evaluate`): an ``If`` on the way hands on the
branch its condition takes. When the fed node lies in ``If`` branches chosen by the
inputs, the conditions are checked first (``guards``) and a branch not taken raises
:class:`~lstm_trace.layers.BranchNotTaken`, so the node does not run.

An earlier recurrent node's ``Y``/``Y_h``/``Y_c`` are rebuilt from what the engine hands on
(:class:`RecurrentSource`), in the node's own layout, with zeros past each sample's
length as onnxruntime writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ...layers import BranchNotTaken, LayerReplayError, UpstreamLayer
from .proto import Node
from .replay import evaluate, truth


def input_key(name: str) -> str:
    """The ``Network.inbound`` source name of a graph input."""
    return f"input:{name}"


@dataclass
class TensorSource:
    """One engine value bound to one ONNX tensor name."""

    tensor: str

    width = 1

    def bind(self, values: list[np.ndarray], env: dict[str, np.ndarray]) -> None:
        env[self.tensor] = values[0]


@dataclass
class RecurrentSource:
    """An earlier recurrent node's ``Y``, ``Y_h``, ``Y_c`` rebuilt from the engine's values.

    The engine hands on (``merge_mode=None``) one ``(batch, steps, H)`` sequence per
    direction (a lone reverse direction in processing order), then each direction's final
    ``hidden`` (and ``cell``).
    """

    outputs: tuple[str, str, str]
    directions: int
    lone_reverse: bool
    has_cell: bool
    layout: int

    @property
    def width(self) -> int:
        return self.directions * (2 + self.has_cell)

    def bind(self, values: list[np.ndarray], env: dict[str, np.ndarray]) -> None:
        D = self.directions
        seqs = [np.asarray(v) for v in values[:D]]
        if self.lone_reverse:
            seqs = [seqs[0][:, ::-1]]
        states = values[D:]
        per = 1 + self.has_cell
        y = np.stack(seqs, axis=2)  # (batch, steps, D, H)
        h = np.stack([states[d * per] for d in range(D)], axis=1)  # (batch, D, H)
        c = np.stack([states[d * per + 1] for d in range(D)], axis=1) if self.has_cell else None
        if self.layout == 0:
            y = y.transpose(1, 2, 0, 3)
            h = h.transpose(1, 0, 2)
            c = None if c is None else c.transpose(1, 0, 2)
        for name, value in zip(self.outputs, (y, h, c), strict=True):
            if name and value is not None:
                env[name] = np.ascontiguousarray(value)


@dataclass
class OnnxOps(UpstreamLayer):
    """ONNX nodes replayed in NumPy, from the layer's sources to one tensor a recurrent node takes.

    ``result`` says what is handed on: ``sequence`` (``target`` as ``(batch, steps,
    features)`` from a ``layout`` 0 or 1 node input, plus the ``sequence_lens`` mask),
    ``state`` (direction ``direction`` of an initial-state tensor, ``(batch, units)``)
    or ``zeros`` (a zero state ``(batch, units)`` for the batch of the source).
    """

    nodes: list[Node] = field(default_factory=list, repr=False)
    constants: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: Tensor name -> (node, output index) over the flattened model (shared by all layers).
    producer: Mapping[str, tuple[Node, int]] = field(default_factory=dict, repr=False)
    #: The ``If`` branches the fed node lies in whose conditions depend on the inputs:
    #: ``(condition tensor, True for the then branch, description)``, outermost first.
    guards: list[tuple[str, bool, str]] = field(default_factory=list)
    sources: list[TensorSource | RecurrentSource] = field(default_factory=list)
    target: str = ""
    result: str = "sequence"
    layout: int = 0
    sequence_lens: str = ""
    direction: int = 0
    units: int = 0
    opset: int = 1
    #: A loop read as a recurrent node: the tensor holding how many steps it runs, which
    #: must be X's steps.
    steps: str = ""
    #: The node on the path that lstm-trace cannot replay (``replayable`` is then false).
    blocker: str = ""
    feeds: str = ""

    @property
    def replayable(self) -> bool:  # type: ignore[override]
        return not self.blocker

    @property
    def reason(self) -> str:
        """Why the path is not replayable (``inspect`` prints it); empty when it is."""
        return f"{self.blocker} cannot be replayed in NumPy" if self.blocker else ""

    def apply(self, x: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        return self.apply_many([x], [mask])

    def apply_many(
        self, xs: list[np.ndarray], masks: list[np.ndarray | None]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        if self.blocker:
            raise LayerReplayError(
                f"{self.blocker} on the way to {self.feeds!r} cannot be replayed in NumPy; "
                f"pass --layer {self.feeds} --layer-input with INPUT being the X input of the "
                f"recurrent node {self.feeds!r} itself (not the input of {self.blocker}), as "
                "(batch, steps, features)"
            )
        if self.result == "zeros":
            return np.zeros((xs[0].shape[0], self.units), dtype=xs[0].dtype), None
        batch = None
        if self.result == "state":  # the first source is the node's X: the batch to match
            batch, xs = xs[0].shape[0], xs[1:]
        env = dict(self.constants)
        pos = 0
        for source in self.sources:
            source.bind(xs[pos:pos + source.width], env)
            pos += source.width
        for cond, then, where in self.guards:  # outermost first: an inner one may need it
            if truth(evaluate(cond, env, self.producer, self.opset), where) != then:
                raise BranchNotTaken(f"the {where}, whose condition {cond!r} is "
                                     f"{'false' if then else 'true'} for this input")
        value = evaluate(self.target, env, self.producer, self.opset)
        if self.result == "state":
            return self._state(value, batch), None
        if self.sequence_lens:
            evaluate(self.sequence_lens, env, self.producer, self.opset)
        if self.steps:
            runs = np.asarray(evaluate(self.steps, env, self.producer, self.opset)).reshape(-1)
            length = value.shape[0 if self.layout == 0 else 1] if value.ndim == 3 else None
            if runs.size != 1 or int(runs[0]) != length:
                raise ValueError(f"the loop {self.feeds!r} runs {runs.tolist()} steps over a "
                                 f"sequence of {length}; lstm-trace traces loops over the whole sequence")
        return self._sequence(value, env)

    def _state(self, value: np.ndarray, batch: int | None) -> np.ndarray:
        """Direction ``direction`` of an initial state ``[num_directions, batch, units]``
        (``layout=1``: ``[batch, num_directions, units]``), checked as onnxruntime checks it."""
        axes = "[num_directions, batch_size, hidden_size]" if self.layout == 0 else \
            "[batch_size, num_directions, hidden_size]"
        if value.ndim != 3:
            raise ValueError(f"initial state {self.target!r} of {self.feeds!r} has shape "
                             f"{value.shape}, expected {axes}")
        state = value[self.direction] if self.layout == 0 else value[:, self.direction]
        if state.shape != (batch, self.units):
            raise ValueError(f"initial state {self.target!r} of {self.feeds!r} has shape "
                             f"{value.shape}, expected {axes} with batch_size {batch} (X's) "
                             f"and hidden_size {self.units}")
        return state

    def _sequence(
        self, x: np.ndarray, env: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        axes = "[seq_length, batch_size, input_size]" if self.layout == 0 else \
            "[batch_size, seq_length, input_size]"
        if x.ndim != 3:
            raise ValueError(f"X of {self.feeds!r} has shape {x.shape}, expected {axes}")
        if self.layout == 0:
            x = x.transpose(1, 0, 2)
        mask = None
        if self.sequence_lens:
            lens = np.asarray(env[self.sequence_lens]).reshape(-1).astype(np.int64)
            batch, steps = x.shape[:2]
            if lens.shape != (batch,):
                raise ValueError(f"sequence_lens has {lens.size} values for a batch of {batch}")
            if (lens < 0).any() or (lens > steps).any():
                raise ValueError(f"sequence_lens {lens.tolist()} must lie in 0..{steps}")
            mask = np.arange(steps)[None, :] < lens[:, None]
        return np.ascontiguousarray(x), mask

    def describe(self) -> str:
        ops = [n.op_type for n in self.nodes]
        what = {"sequence": "X", "state": "initial state", "zeros": "zero initial state"}[self.result]
        if self.blocker:
            return f"ONNX ops to {self.feeds} {what} (not replayable: {self.blocker})"
        body = " → ".join(ops) if ops else "graph input"
        when = " > ".join(where for _, _, where in self.guards)
        when = f" (run when the input takes the {when})" if when else ""
        return f"ONNX ops to {self.feeds} {what}: {body}{when}"
