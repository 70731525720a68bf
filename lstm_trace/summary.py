"""``--summary``: one row of statistics per trace key, in every text format.

For each key, over the selected samples, steps and units (masked steps excluded)::

    min, mean, max, std            of the recorded values
    below = mean(v < 0.1)          for the sigmoid gates only: left-saturated share
    above = mean(v > 0.9)          for the sigmoid gates only: right-saturated share

A ``mask`` key gets one number, ``mean``: the share of (sample, step) pairs that were used.
:func:`summarize` computes the rows; :func:`csv_text` and :func:`json_text` render them
(the table writer renders them as a table). Statistics are computed in float64.

CSV columns: ``key,layer,direction,quantity,units,values,min,mean,max,std,below_0.1,above_0.9``
(``direction`` is ``forward`` for a one-direction layer; cells that do not apply are empty).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from .cells import SATURATING_GATES
from .selection import Selection, resolve
from .trace import Trace

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
    """The rows of a summary and how many samples and steps they cover."""

    samples: int
    steps: int
    rows: list[KeySummary]


def summarize(
    trace: Trace, samples: Selection = None, steps: Selection = None, units: Selection = None
) -> Summary:
    """Statistics of every key of ``trace`` over a selection (default: all of it).

    A selection outside the trace raises :class:`~lstm_trace.errors.OptionError`.
    """
    picked_samples = resolve(samples, trace.batch, "sample")
    picked_steps = resolve(steps, trace.steps, "step")
    max_width = max((a.shape[2] for a in trace.values() if a.ndim == 3), default=0)
    widest = resolve(units, max_width, "unit")
    rows = []
    for layer, direction, arrays in trace.rows():
        mask = arrays.get("mask")
        used = None if mask is None else mask[np.ix_(picked_samples, picked_steps)].astype(bool)
        for quantity, array in arrays.items():
            key = layer.key(direction, quantity)
            if quantity == "mask":
                share = float(used.mean()) if used is not None and used.size else None
                rows.append(KeySummary(key, layer.name, direction, quantity, None,
                                       int(used.size) if used is not None else 0, mean=share))
                continue
            chosen = widest[widest < array.shape[2]]
            block = array[np.ix_(picked_samples, picked_steps, chosen)]
            if used is not None:
                block = block[used]  # (valid steps, units): masked steps excluded
            base = KeySummary(key, layer.name, direction, quantity, int(chosen.size), int(block.size))
            if not block.size:
                rows.append(base)
                continue
            v = block.astype(np.float64)
            gate = quantity in GATES
            rows.append(KeySummary(
                **{**asdict(base), "min": float(v.min()), "mean": float(v.mean()),
                   "max": float(v.max()), "std": float(v.std()),
                   "below": float((v < LOW).mean()) if gate else None,
                   "above": float((v > HIGH).mean()) if gate else None},
            ))
    return Summary(int(picked_samples.size), int(picked_steps.size), rows)


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
