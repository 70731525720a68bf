"""What the writers share: resolving a user's sample/step/unit selection against a trace.

Writers that keep the original indices (CSV ``sample``/``step``/``unit`` columns, JSON's
``selection``) resolve a selection here instead of calling :meth:`Trace.select`, which
renumbers from 0 and cannot apply one unit list to arrays of different widths (the
``hidden`` of a projected LSTM is narrower than its gates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..selection import Selection, resolve
from ..trace import Trace


@dataclass(frozen=True)
class Picked:
    """Resolved indices: ``samples`` and ``steps`` for the whole trace; units per width."""

    samples: np.ndarray
    steps: np.ndarray
    units: Selection
    max_width: int

    def units_for(self, width: int) -> np.ndarray:
        """The selected units that exist in an array ``width`` units wide, in selection order."""
        picked = resolve(self.units, self.max_width, "unit", clip=True)
        return picked[picked < width]


def pick(
    trace: Trace, samples: Selection = None, steps: Selection = None, units: Selection = None
) -> Picked:
    """Resolve a selection against ``trace``.

    An index outside the trace (a unit no layer has, a step past the end) raises
    :class:`~lstm_trace.errors.OptionError` (a ``ValueError``) naming the valid range.
    """
    widths = [a.shape[2] for a in trace.values() if a.ndim == 3]
    max_width = max(widths, default=0)
    if units is not None:
        resolve(units, max_width, "unit")  # raise early for a unit no layer has
    return Picked(
        samples=resolve(samples, trace.batch, "sample"),
        steps=resolve(steps, trace.steps, "step"),
        units=units,
        max_width=max_width,
    )


def layer_width(arrays: dict[str, np.ndarray]) -> int:
    """The number of unit rows a layer direction needs: its widest ``(batch, steps, units)`` array."""
    return max((a.shape[2] for a in arrays.values() if a.ndim == 3), default=0)


def subtrace(trace: Trace, picked: Picked) -> Trace:
    """``trace`` cut to a resolved selection (indices renumbered from 0 in the result).

    Unlike :meth:`Trace.select`, a unit list applies to arrays of every width: each array
    keeps the selected units it has (:meth:`Picked.units_for`).
    """
    arrays = {}
    for key, array in trace.items():
        index: tuple[np.ndarray, ...] = (picked.samples, picked.steps)
        if array.ndim == 3:
            index += (picked.units_for(array.shape[2]),)
        arrays[key] = np.asarray(array)[np.ix_(*index)]
    return Trace(arrays, trace.layers)
