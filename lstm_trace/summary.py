"""``--summary``: one row of statistics per trace key, in every text format.

For each key, over the selected samples, steps and units (masked steps excluded)::

    min, mean, max, std            of the recorded values
    below = mean(v < 0.1)          for the sigmoid gates only: left-saturated share
    above = mean(v > 0.9)          for the sigmoid gates only: right-saturated share

A ``mask`` key gets one number, ``mean``: the share of (sample, step) pairs that were used.
:func:`summarize` computes the rows of an in-memory trace, :func:`summarize_source` of a
trace streamed chunk by chunk (memory does not grow with the trace); :func:`csv_text` and
:func:`json_text` render them (the table writer renders them as a table). Statistics are
computed in float64.

CSV columns: ``key,layer,direction,quantity,units,values,min,mean,max,std,below_0.1,above_0.9``
(``direction`` is ``forward`` for a one-direction layer; cells that do not apply are empty).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .cells import SATURATING_GATES
from .selection import Selection, resolve
from .trace import Trace

if TYPE_CHECKING:
    from .streaming import TraceSource

#: Quantities that are sigmoid-like gates in [0, 1] (saturation is counted for them).
GATES = SATURATING_GATES
LOW, HIGH = 0.1, 0.9
CSV_COLUMNS = ("key", "layer", "direction", "quantity", "units", "values",
               "min", "mean", "max", "std", f"below_{LOW}", f"above_{HIGH}")


@dataclass(frozen=True)
class KeySummary:
    """Statistics of one key over the selection (``None`` where they do not apply)."""

    key: str
    layer: str
    direction: str
    quantity: str
    units: int | None
    values: int
    min: float | None = None
    mean: float | None = None
    max: float | None = None
    std: float | None = None
    below: float | None = None
    above: float | None = None


@dataclass(frozen=True)
class Summary:
    """The rows of a summary, the selection they cover and the size of the whole trace."""

    samples: int
    steps: int
    rows: list[KeySummary]
    #: The selected indices (of the whole trace) and the trace's own sizes.
    picked_samples: np.ndarray = field(default_factory=lambda: np.arange(0))
    picked_steps: np.ndarray = field(default_factory=lambda: np.arange(0))
    picked_units: np.ndarray = field(default_factory=lambda: np.arange(0))
    batch: int = 0
    total_steps: int = 0
    max_width: int = 0


def summarize(
    trace: Trace, samples: Selection = None, steps: Selection = None, units: Selection = None
) -> Summary:
    """Statistics of every key of ``trace`` over a selection (default: all of it).

    A selection outside the trace raises :class:`~lstm_trace.errors.OptionError`.
    """
    from .streaming import TraceSource

    return summarize_source(TraceSource.from_trace(trace), samples, steps, units)


def summarize_source(
    source: TraceSource, samples: Selection = None, steps: Selection = None,
    units: Selection = None,
) -> Summary:
    """:func:`summarize` over a :class:`~lstm_trace.streaming.TraceSource`, chunk by chunk.

    Memory does not grow with the trace: each key keeps a count, mean and sum of squared
    deviations that chunks are merged into (Chan et al.'s pairwise update), its min and
    max, and its saturation counts.
    """
    info = source.keys
    max_width = max((k.shape[2] for k in info.values() if len(k.shape) == 3), default=0)
    picked_samples = resolve(samples, source.batch, "sample")
    picked_steps = resolve(steps, source.steps, "step")
    widest = resolve(units, max_width, "unit")
    chosen_samples = np.zeros(source.batch, dtype=bool)
    chosen_samples[picked_samples] = True
    chosen_steps = np.zeros(source.steps, dtype=bool)
    chosen_steps[picked_steps] = True
    layers = source.layers
    stats: dict[str, _Running] = {}
    for chunk in source:
        (s0, s1), (t0, t1) = chunk.samples, chunk.steps
        local_samples = np.flatnonzero(chosen_samples[s0:s1])
        local_steps = np.flatnonzero(chosen_steps[t0:t1])
        if not local_samples.size or not local_steps.size:
            continue
        for layer, direction, arrays in chunk.trace.rows():
            mask = arrays.get("mask")
            used = None if mask is None else mask[np.ix_(local_samples, local_steps)].astype(bool)
            for quantity, array in arrays.items():
                key = layer.key(direction, quantity)
                running = stats.setdefault(key, _Running())
                if quantity == "mask":
                    running.add(used.astype(np.float64).ravel(), gate=False)
                    continue
                block = array[np.ix_(local_samples, local_steps, widest[widest < array.shape[2]])]
                if used is not None:
                    block = block[used]  # (valid steps, units): masked steps excluded
                running.add(block.astype(np.float64).ravel(), gate=quantity in GATES)
    rows = []
    for layer in layers:
        for direction in layer.directions:
            for quantity in layer.quantities:
                key = layer.key(direction, quantity)
                if key not in info:
                    continue
                running = stats.get(key, _Running())
                if quantity == "mask":
                    rows.append(KeySummary(key, layer.name, direction, quantity, None, running.n,
                                           mean=running.mean if running.n else None))
                    continue
                width = info[key].shape[2]
                rows.append(running.row(KeySummary(
                    key, layer.name, direction, quantity, int((widest < width).sum()), running.n,
                ), gate=quantity in GATES))
    return Summary(int(picked_samples.size), int(picked_steps.size), rows, picked_samples,
                   picked_steps, widest, source.batch, source.steps, max_width)


@dataclass
class _Running:
    """Running count, mean, sum of squared deviations, extremes and saturation counts."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")
    below: int = 0
    above: int = 0

    def add(self, v: np.ndarray, *, gate: bool) -> None:
        if not v.size:
            return
        n_b, mean_b = v.size, float(v.mean())
        m2_b = float(((v - mean_b) ** 2).sum())
        n = self.n + n_b
        delta = mean_b - self.mean
        self.mean = mean_b if not self.n else self.mean + delta * n_b / n
        self.m2 = m2_b if not self.n else self.m2 + m2_b + delta * delta * self.n * n_b / n
        self.n = n
        self.low, self.high = min(self.low, float(v.min())), max(self.high, float(v.max()))
        if gate:
            self.below += int((v < LOW).sum())
            self.above += int((v > HIGH).sum())

    def row(self, base: KeySummary, *, gate: bool) -> KeySummary:
        if not self.n:
            return base
        return KeySummary(**{
            **asdict(base), "min": self.low, "mean": self.mean, "max": self.high,
            "std": float(np.sqrt(self.m2 / self.n)),
            "below": self.below / self.n if gate else None,
            "above": self.above / self.n if gate else None,
        })


def csv_text(summary: Summary) -> str:
    """The summary as CSV, one row per key (floats as ``repr``; empty where not applicable)."""
    lines = [",".join(CSV_COLUMNS)]
    for row in summary.rows:
        cells = [row.key, row.layer, row.direction, row.quantity, row.units, row.values,
                 row.min, row.mean, row.max, row.std, row.below, row.above]
        lines.append(",".join(_cell(c) for c in cells))
    return "\n".join(lines) + "\n"


def json_text(summary: Summary) -> str:
    """The summary as JSON: ``{"format": "lstm-trace-summary", "version": 1, ...}``."""
    document = {
        "format": "lstm-trace-summary", "version": 1,
        "samples": summary.samples, "steps": summary.steps, "low": LOW, "high": HIGH,
        "keys": [_finite(asdict(row)) for row in summary.rows],
    }
    return json.dumps(document, indent=1) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = repr(value) if isinstance(value, float) else str(value)
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _finite(row: dict[str, object]) -> dict[str, object]:
    return {k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in row.items()}
