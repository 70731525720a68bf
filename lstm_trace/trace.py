"""Trace: the recorded quantities of a replay, as contract keys mapped to arrays.

Keys are ``<layer>/<quantity>`` (one direction) or ``<layer>/<direction>/<quantity>``
(bidirectional); every array is ``(batch, steps, units)``, except ``mask``
``(batch, steps)``. Writers render a Trace; nothing in it knows about files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .keys import key_prefix, trace_key
from .network import QUANTITIES, RecurrentLayer

if TYPE_CHECKING:
    from .streaming import TraceSource


@dataclass(frozen=True)
class TracedLayer:
    """What a writer needs to know about one recorded layer."""

    name: str
    kind: str
    directions: tuple[str, ...]
    bidirectional: bool
    masked: bool = False

    @classmethod
    def from_layer(cls, layer: RecurrentLayer, masked: bool = False) -> TracedLayer:
        return cls(
            name=layer.name,
            kind=layer.kind,
            directions=tuple(d.name for d in layer.directions),
            bidirectional=layer.bidirectional,
            masked=masked,
        )

    @property
    def quantities(self) -> tuple[str, ...]:
        return QUANTITIES[self.kind] + (("mask",) if self.masked else ())

    def prefix(self, direction: str) -> str:
        return key_prefix(self.name, direction, self.bidirectional)

    def key(self, direction: str, quantity: str) -> str:
        return trace_key(self.prefix(direction), quantity)


class Trace(Mapping[str, np.ndarray]):
    """A read-only mapping of contract keys to recorded arrays, with layer metadata."""

    def __init__(self, arrays: Mapping[str, np.ndarray], layers: Sequence[TracedLayer]):
        self._arrays = dict(arrays)
        self.layers: tuple[TracedLayer, ...] = tuple(layers)

    def __getitem__(self, key: str) -> np.ndarray:
        try:
            return self._arrays[key]
        except KeyError:
            raise KeyError(
                f"{key!r} is not in this trace; keys are: {', '.join(self._arrays)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._arrays)

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        return f"Trace({len(self)} arrays, batch={self.batch}, steps={self.steps})"

    @property
    def batch(self) -> int:
        return next(iter(self._arrays.values())).shape[0] if self._arrays else 0

    @property
    def steps(self) -> int:
        return next(iter(self._arrays.values())).shape[1] if self._arrays else 0

    def step_counts(self) -> dict[str, int]:
        """Each traced layer's step count. They differ when the layers read sequences of
        different lengths (a seq2seq decoder; a pooling, strided, ``RepeatVector`` or cropping
        layer between two traced ones): the NPZ and the Python API hold such a trace, the
        tabular formats do not (:func:`require_one_step_count`)."""
        counts: dict[str, int] = {}
        for layer in self.layers:
            hidden = self._arrays.get(trace_key(layer.prefix(layer.directions[0]), "hidden"))
            if hidden is not None:
                counts[layer.name] = hidden.shape[1]
        return counts

    def rows(self) -> Iterator[tuple[TracedLayer, str, dict[str, np.ndarray]]]:
        """Each ``(layer, direction, {quantity: array})`` in trace order."""
        for layer in self.layers:
            for direction in layer.directions:
                yield layer, direction, {
                    q: self._arrays[layer.key(direction, q)]
                    for q in layer.quantities
                    if layer.key(direction, q) in self._arrays
                }

    def select(
        self,
        samples: Sequence[int] | slice | None = None,
        steps: Sequence[int] | slice | None = None,
        units: Sequence[int] | slice | None = None,
    ) -> Trace:
        """A view limited to some samples, steps and units (units do not apply to ``mask``)."""
        def pick(a: np.ndarray, axis: int, sel: Sequence[int] | slice | None) -> np.ndarray:
            if sel is None:
                return a
            index = [slice(None)] * a.ndim
            index[axis] = sel if isinstance(sel, slice) else np.asarray(sel, dtype=int)
            return a[tuple(index)]

        arrays = {}
        for key, a in self._arrays.items():
            a = pick(pick(a, 0, samples), 1, steps)
            if a.ndim == 3:
                a = pick(a, 2, units)
            arrays[key] = a
        return Trace(arrays, self.layers)

    def flat_units(self) -> Trace:
        """This trace with a ConvLSTM's grid folded into the unit axis, for the unit-oriented
        views (CSV, table, plot, stats): ``(batch, steps, *grid, filters)`` becomes
        ``(batch, steps, positions * filters)``, unit ``u = position * filters + filter`` with
        positions in row-major grid order; a per-position mask ``(batch, steps, *grid)``
        becomes ``(batch, steps)``, true where any position was used. Every other array is
        unchanged (the same object when nothing has a grid)."""
        if all(a.ndim <= 3 for a in self._arrays.values()):
            return self
        arrays = {}
        for key, a in self._arrays.items():
            if key.endswith("/mask") and a.ndim > 2:
                a = a.reshape(*a.shape[:2], -1).any(axis=2)
            elif a.ndim > 3:
                a = a.reshape(*a.shape[:2], -1)
            arrays[key] = a
        return Trace(arrays, self.layers)

    def to_dict(self) -> dict[str, np.ndarray]:
        return dict(self._arrays)


def require_one_step_count(trace: Trace | TraceSource, what: str) -> None:
    """Refuse (``OptionError``) to render ``trace`` (or a streamed source of it) as ``what``
    when its layers have different step counts: tables, CSV, JSON, HDF5, Parquet, plots and
    summaries share one step axis."""
    from .errors import OptionError

    counts = trace.step_counts()
    if len(set(counts.values())) > 1:
        listed = ", ".join(f"{name}: {n} steps" for name, n in counts.items())
        raise OptionError(
            f"the traced layers have different step counts ({listed}) and {what} needs one "
            "step axis for all: write -o trace.npz (each layer's own steps), or trace one layer "
            "at a time with --layer NAME"
        )
