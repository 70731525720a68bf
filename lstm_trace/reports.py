"""Flat CSV views of the ``inspect`` and ``stats`` reports (their JSON is the full data).

``inspect``: one row per layer::

    name,class_name,role,position,kind,units,input_size,output_size,parameters,replayable,
    activation,recurrent_activation,directions,trace_keys

``stats``: one row per gate (``mean``, ``left_saturated``, ``right_saturated``) and one
per top-varying state unit (``unit``, ``variance``) of each layer direction::

    layer,direction,kind,quantity,mean,left_saturated,right_saturated,unit,variance

Cells that do not apply are empty; lists are joined with ``;``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

INSPECT_COLUMNS = ("name", "class_name", "role", "position", "kind", "units", "input_size",
                   "output_size", "parameters", "replayable", "activation",
                   "recurrent_activation", "directions", "trace_keys")
STATS_COLUMNS = ("layer", "direction", "kind", "quantity", "mean", "left_saturated",
                 "right_saturated", "unit", "variance")


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """``rows`` as CSV with a header; ``None`` is an empty cell, lists are ``;``-joined."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def inspect_rows(info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per layer of :func:`lstm_trace.inspect.describe`'s result."""
    rows = []
    for layer in info.get("layers", []):
        directions = layer.get("directions") or []
        first = directions[0] if directions else {}
        rows.append({
            **{c: layer.get(c) for c in INSPECT_COLUMNS},
            "activation": first.get("activation"),
            "recurrent_activation": first.get("recurrent_activation"),
            "directions": [d.get("direction") for d in directions],
        })
    return rows


def stats_rows(stats: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of :func:`lstm_trace.stats.gate_stats`'s result: gates, then top units."""
    rows: list[dict[str, Any]] = []
    for entry in stats:
        where = {"layer": entry["layer"], "direction": entry["direction"], "kind": entry["kind"]}
        for gate, values in entry.get("gates", {}).items():
            rows.append({**where, "quantity": gate, **values})
        for top in entry.get("top_units", []):
            rows.append({**where, "quantity": entry.get("state"), **top})
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return ";".join(_cell(v) for v in value)
    return str(value)
