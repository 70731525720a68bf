"""Table writer: the trace as rich tables for reading in a terminal (or a text file).

One table per sample, layer direction and quantity, titled with the trace key, with a
row per step and a column per unit::

    lstm/forget_gate · sample 0
    step       0        1        2  …
    ─────────────────────────────────
       0  0.5124   0.4710  -0.0882  …
       1  0.5390   0.4519   0.0233  …

A masked layer's tables get a ``mask`` column (``✓`` used, ``·`` skipped). When the
selected units do not fit the width, a quantity's table is split into unit ranges
(``units 0–15``, ``units 16–31``, ...) instead of wrapping.

By default the first sample, the first 20 steps and the first 8 units are shown, so a
trace of 512 units and 1000 steps stays readable; a one-line footer says what was left
out and which options (``--samples``, ``--steps``, ``--units``, ``--summary``) show
more. ``summary=True`` prints one table of min / mean / max / std per quantity over the
selection (all of it by default; masked steps excluded), with the fraction of
saturated values (< 0.1, > 0.9) for the sigmoid gates.

On a terminal the sigmoid gates are coloured by value (dim below 0.1, bold above 0.9)
and masked steps are dimmed; anywhere else the output is plain text without escape
codes or trailing spaces.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..atomic import atomic_write, is_stdout
from ..selection import Selection, describe, resolve
from ..trace import Trace, TracedLayer

#: Quantities that are sigmoid-like gates in [0, 1] (coloured and saturation-counted).
GATES = ("input_gate", "forget_gate", "output_gate", "update_gate", "reset_gate")
DEFAULT_SAMPLES: list[int] = [0]
DEFAULT_STEPS = slice(0, 20)
DEFAULT_UNITS = slice(0, 8)
#: Width of plain-text output (files, pipes); tables wider than this are split by units.
PLAIN_WIDTH = 200
LOW, HIGH = 0.1, 0.9


def write(
    trace: Trace,
    output: str | os.PathLike[str] | None = None,
    *,
    samples: Selection = None,
    steps: Selection = None,
    units: Selection = None,
    summary: bool = False,
    precision: int = 4,
    width: int | None = None,
    color: bool | None = None,
) -> None:
    """Render ``trace`` as tables to ``output`` (a path, or ``"-"``/``None`` for stdout).

    ``samples``/``steps``/``units`` select what is shown (defaults: sample 0, steps
    0–19, units 0–7; for ``summary`` everything). ``precision`` is the number of
    decimals. ``width`` overrides the console width (default: the terminal's, else
    :data:`PLAIN_WIDTH`). ``color`` forces styling on or off (default: only on a terminal).
    """
    if is_stdout(output):
        _write_to(sys.stdout, trace, samples=samples, steps=steps, units=units, summary=summary,
                  precision=precision, width=width, color=color)
        return
    with atomic_write(output, "w") as handle:
        _write_to(handle, trace, samples=samples, steps=steps, units=units, summary=summary,
                  precision=precision, width=width, color=False if color is None else color)


def _write_to(stream: IO[str], trace: Trace, *, color: bool | None, width: int | None,
              **options: Any) -> None:
    terminal = Console(file=stream).is_terminal if color is None else color
    if terminal:
        console = Console(file=stream, width=width, highlight=False, emoji=False,
                          force_terminal=True if color else None)
        render(trace, console, styled=True, **options)
        return
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width or PLAIN_WIDTH, color_system=None, force_terminal=False,
        highlight=False, emoji=False, no_color=True,
    )
    render(trace, console, styled=False, **options)
    stream.write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def render(
    trace: Trace,
    console: Console,
    *,
    samples: Selection = None,
    steps: Selection = None,
    units: Selection = None,
    summary: bool = False,
    precision: int = 4,
    styled: bool = False,
) -> None:
    """Print ``trace``'s tables (or its summary) and the footer to ``console``."""
    if not trace.layers or not len(trace):
        console.print("(empty trace: no layer was recorded)")
        return
    defaults = not summary
    picked_samples = resolve(
        DEFAULT_SAMPLES if samples is None and defaults else samples, trace.batch, "sample"
    ) if trace.batch else np.arange(0)
    picked_steps = resolve(DEFAULT_STEPS if steps is None and defaults else steps, trace.steps, "step")
    unit_sel = DEFAULT_UNITS if units is None and defaults else units
    max_width = max((a.shape[2] for a in trace.values() if a.ndim == 3), default=0)
    if unit_sel is not None and not isinstance(unit_sel, slice):
        resolve(unit_sel, max_width, "unit")

    def units_for(width: int) -> np.ndarray:
        if unit_sel is None or isinstance(unit_sel, slice):
            return resolve(unit_sel, width, "unit")
        picked = resolve(unit_sel, max_width, "unit")
        return picked[picked < width]

    if summary:
        console.print(_summary_table(trace, picked_samples, picked_steps, units_for, precision))
    else:
        for sample in picked_samples:
            for layer, direction, arrays in trace.rows():
                mask = arrays.get("mask")
                for quantity, array in arrays.items():
                    if quantity == "mask":
                        continue
                    for title, table in _value_tables(
                        layer, direction, quantity, array, mask, int(sample), picked_steps,
                        units_for(array.shape[2]), precision, styled, console.width,
                    ):
                        console.print(Text(title, style="bold" if styled else ""), soft_wrap=True)
                        console.print(table)
                        console.print()
    footer = _footer(trace, picked_samples, picked_steps, units_for, max_width, summary)
    if footer:
        console.print(Text(footer, style="dim" if styled else ""), soft_wrap=True)


def _value_tables(
    layer: TracedLayer, direction: str, quantity: str, array: np.ndarray, mask: np.ndarray | None,
    sample: int, steps: np.ndarray, units: np.ndarray, precision: int, styled: bool, width: int,
) -> Iterator[tuple[str, Table]]:
    """The titled table(s) of one quantity of one sample, split by units to fit ``width``."""
    key = layer.key(direction, quantity)
    values = array[sample][np.ix_(steps, units)] if units.size else np.zeros((steps.size, 0))
    text = _format(values, precision)
    used = None if mask is None else mask[sample, steps].astype(bool)
    step_width = max(4, len(str(int(steps.max())) if steps.size else 1)) + 2
    fixed = step_width + (6 if used is not None else 0)
    col_width = [max(len(str(u)), max((len(s) for s in text[:, j]), default=1)) + 2
                 for j, u in enumerate(units)]
    chunks = _chunks(col_width, max(width - fixed, 10))
    for lo, hi in chunks:
        title = f"{key} · sample {sample}"
        if len(chunks) > 1:
            title += f" · units {describe(units[lo:hi])}"
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False)
        table.add_column("step", justify="right")
        if used is not None:
            table.add_column("mask", justify="center")
        for u in units[lo:hi]:
            table.add_column(str(int(u)), justify="right")
        gate = quantity in GATES
        for row, step in enumerate(steps):
            cells: list[str | Text] = [str(int(step))]
            skipped = used is not None and not used[row]
            if used is not None:
                cells.append("·" if skipped else "✓")
            for j in range(lo, hi):
                style = ""
                if styled:
                    if skipped:
                        style = "dim"
                    elif gate:
                        v = values[row, j]
                        style = "dim" if v < LOW else "bold" if v > HIGH else ""
                cells.append(Text(text[row, j], style=style) if style else text[row, j])
            table.add_row(*cells)
        yield title, table


def _chunks(widths: Sequence[int], room: int) -> list[tuple[int, int]]:
    """Split columns of ``widths`` into consecutive ranges that fit ``room`` characters."""
    if not widths:
        return [(0, 0)]
    chunks, start, used = [], 0, 0
    for j, w in enumerate(widths):
        if used + w > room and j > start:
            chunks.append((start, j))
            start, used = j, 0
        used += w
    chunks.append((start, len(widths)))
    return chunks


def _format(values: np.ndarray, precision: int) -> np.ndarray:
    """Fixed-precision text of a 2-D block (``nan``/``inf`` as such)."""
    flat = [f"{v:.{precision}f}" for v in values.ravel().tolist()]
    return np.array(flat, dtype=object).reshape(values.shape)


def _summary_table(
    trace: Trace, samples: np.ndarray, steps: np.ndarray,
    units_for: Callable[[int], np.ndarray], precision: int,
) -> Table:
    table = Table(
        title=f"summary over {len(samples)} sample(s), {len(steps)} step(s)",
        title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
        collapse_padding=True, pad_edge=False,
    )
    for name, justify in (("key", "left"), ("units", "right"), ("min", "right"), ("mean", "right"),
                          ("max", "right"), ("std", "right"), (f"<{LOW}", "right"),
                          (f">{HIGH}", "right")):
        table.add_column(name, justify=justify)
    for layer, direction, arrays in trace.rows():
        mask = arrays.get("mask")
        used = None if mask is None else mask[np.ix_(samples, steps)].astype(bool)
        for quantity, array in arrays.items():
            key = layer.key(direction, quantity)
            if quantity == "mask":
                share = float(used.mean()) if used is not None and used.size else float("nan")
                table.add_row(key, "", "", f"{share:.{precision}f}", "", "", "", "")
                continue
            units = units_for(array.shape[2])
            block = array[np.ix_(samples, steps, units)]
            if used is not None:
                block = block[used]  # (valid steps, units): masked steps excluded
            if not block.size:
                table.add_row(key, str(units.size), *[""] * 6)
                continue
            v = block.astype(np.float64)
            stats = [v.min(), v.mean(), v.max(), v.std()]
            cells = [f"{s:.{precision}f}" for s in stats]
            if quantity in GATES:
                cells += [f"{(v < LOW).mean():.1%}", f"{(v > HIGH).mean():.1%}"]
            else:
                cells += ["", ""]
            table.add_row(key, str(units.size), *cells)
    return table


def _footer(
    trace: Trace, samples: np.ndarray, steps: np.ndarray,
    units_for: Callable[[int], np.ndarray], max_width: int,
    summary: bool,
) -> str:
    """One line: what the selection left out and how to see more (empty if nothing was)."""
    shown, more = [], []
    if samples.size < trace.batch:
        shown.append(f"sample{'s' if samples.size != 1 else ''} {describe(samples)} of {trace.batch}")
        more.append(f"--samples {_next_window(samples, trace.batch)}")
    if steps.size < trace.steps:
        shown.append(f"steps {describe(steps)} of {trace.steps}")
        more.append(f"--steps {_next_window(steps, trace.steps)}")
    widest = units_for(max_width)
    if widest.size < max_width:
        shown.append(f"units {describe(widest)} of {max_width}")
        more.append(f"--units {_next_window(widest, max_width)}")
    if not shown:
        return ""
    if not summary:
        more.append("--summary")
    return f"Showing {', '.join(shown)}; more with {', '.join(more)}."


def _next_window(shown: np.ndarray, length: int) -> str:
    """A range spec for the next indices after a contiguous ``shown`` (else all of them)."""
    values = shown.tolist()
    if values and values == list(range(values[0], values[-1] + 1)) and values[-1] + 1 < length:
        stop = min(length, values[-1] + 1 + len(values))
        return f"{values[-1] + 1}" if stop == values[-1] + 2 else f"{values[-1] + 1}:{stop}"
    return f"0:{length}"
