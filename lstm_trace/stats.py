"""Gate statistics of a trace: how often gates saturate, and which units vary most.

Following Karpathy, Johnson & Fei-Fei, "Visualizing and Understanding Recurrent
Networks" (2015), a gate value ``g`` (a sigmoid, so ``0 ≤ g ≤ 1``) is

    left-saturated   when g < 0.1   (the gate is nearly shut)
    right-saturated  when g > 0.9   (the gate is nearly open)

and for each gate of each layer (and direction) :func:`gate_stats` gives the mean and the
fraction of (sample, step, unit) values in each state. A forget gate that is mostly
right-saturated keeps memories; one that is mostly left-saturated resets every step.

It also ranks the units of the layer's state (``cell`` for an LSTM, ``hidden`` for a GRU
or SimpleRNN) by how much they vary over time: the variance of each unit over the steps
of a sequence, averaged over sequences. Units that track the input (counters, quote
detectors...) stand out at the top.

Masked steps (``<layer>/mask`` false) are excluded everywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .cells import CELL_KINDS
from .trace import Trace

#: The gates whose saturation is measured, per cell kind (the sigmoid gates).
GATES: dict[str, tuple[str, ...]] = {name: k.saturating_gates for name, k in CELL_KINDS.items()}
#: The state whose per-unit variance over time is ranked.
STATE: dict[str, str] = {name: k.memory for name, k in CELL_KINDS.items()}

LOW = 0.1
HIGH = 0.9


def gate_stats(trace: Trace, top: int = 5, low: float = LOW, high: float = HIGH) -> list[dict[str, Any]]:
    """Per traced layer and direction: gate means and saturation, and the top-varying units.

    Returns a list of ``{"layer", "direction", "kind", "steps_used", "gates": {gate:
    {"mean", "left_saturated", "right_saturated"}}, "state", "top_units": [{"unit",
    "variance"}]}``; fractions are of the unmasked ``(sample, step, unit)`` values.
    """
    if top < 0:
        raise ValueError(f"--top must be 0 or more, got {top}")
    out = []
    for layer, direction, arrays in trace.rows():
        mask = arrays.get("mask")
        gates: dict[str, dict[str, float | None]] = {}
        for gate in GATES[layer.kind]:
            if gate in arrays:
                gates[gate] = saturation(arrays[gate], mask, low, high)
        state_name = STATE[layer.kind]
        entry: dict[str, Any] = {
            "layer": layer.name, "direction": direction, "kind": layer.kind,
            "steps_used": int(mask.sum()) if mask is not None
            else int(arrays[state_name].shape[0] * arrays[state_name].shape[1]),
            "gates": gates, "state": state_name, "top_units": [],
        }
        if state_name in arrays:
            variance = unit_variance(arrays[state_name], mask)
            order = np.argsort(-variance, kind="stable")[:top]
            entry["top_units"] = [{"unit": int(u), "variance": float(variance[u])} for u in order
                                  if np.isfinite(variance[u])]
        out.append(entry)
    return out


def saturation(values: np.ndarray, mask: np.ndarray | None, low: float = LOW,
               high: float = HIGH) -> dict[str, float | None]:
    """Mean and fractions below ``low`` / above ``high`` of ``values`` (batch, steps, units)."""
    v = values[mask] if mask is not None else values.reshape(-1, values.shape[-1])
    if v.size == 0:
        return {"mean": None, "left_saturated": None, "right_saturated": None}
    v = v.astype(np.float64)
    return {
        "mean": float(v.mean()),
        "left_saturated": float((v < low).mean()),
        "right_saturated": float((v > high).mean()),
    }


def unit_variance(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Each unit's variance over the (unmasked) steps of a sequence, averaged over sequences.

    Sequences without any unmasked step do not count; a unit of a trace with no
    unmasked step at all gets ``nan``.
    """
    v = values.astype(np.float64)
    if mask is None:
        return v.var(axis=1).mean(axis=0)
    keep = mask[:, :, None].astype(np.float64)
    counts = keep.sum(axis=1)  # (batch, 1)
    used = counts[:, 0] > 0
    if not used.any():
        return np.full(values.shape[-1], np.nan)
    mean = (v * keep).sum(axis=1) / np.maximum(counts, 1)
    var = (((v - mean[:, None, :]) ** 2) * keep).sum(axis=1) / np.maximum(counts, 1)
    return var[used].mean(axis=0)


def render(stats: list[dict[str, Any]], width: int | None = None) -> str:
    """Two tables: gate saturation per layer/direction/gate, and the top-varying units."""
    import io

    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 120, no_color=True, highlight=False,
                      force_terminal=False, emoji=False)
    gates = Table(title=f"gate saturation (left: < {LOW}, right: > {HIGH}; masked steps excluded)",
                  title_justify="left")
    for column, justify in (("layer", "left"), ("direction", "left"), ("gate", "left"),
                            ("mean", "right"), ("left-saturated", "right"),
                            ("right-saturated", "right")):
        gates.add_column(column, justify=justify)  # type: ignore[arg-type]
    units = Table(title="units whose state varies most over time (variance over steps)",
                  title_justify="left")
    for column in ("layer", "direction", "state", "top units (variance)"):
        units.add_column(column, overflow="fold")
    for entry in stats:
        for gate, s in entry["gates"].items():
            gates.add_row(entry["layer"], entry["direction"], gate, _num(s["mean"], "{:.3f}"),
                          _num(s["left_saturated"], "{:.1%}"), _num(s["right_saturated"], "{:.1%}"))
        units.add_row(entry["layer"], entry["direction"], entry["state"],
                      ", ".join(f"{u['unit']} ({u['variance']:.3g})" for u in entry["top_units"]))
    if any(entry["gates"] for entry in stats):
        console.print(gates)
    console.print(units)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _num(value: float | None, spec: str) -> str:
    return "-" if value is None else spec.format(value)
