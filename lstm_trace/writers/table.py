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
from typing import IO

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..atomic import atomic_write, is_stdout
from ..selection import Selection, describe, resolve
from ..summary import GATES, HIGH, LOW, Summary, summarize
from ..trace import Trace, TracedLayer

DEFAULT_SAMPLES: list[int] = [0]
DEFAULT_STEPS = slice(0, 20)
DEFAULT_UNITS = slice(0, 8)
#: Width of plain-text output (files, pipes); tables wider than this are split by units.
PLAIN_WIDTH = 200


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
    def draw(console: Console, styled: bool) -> None:
        render(trace, console, samples=samples, steps=steps, units=units, summary=summary,
               precision=precision, styled=styled)

    _write(output, draw, width=width, color=color)


def write_summary(
    summary: Summary,
    output: str | os.PathLike[str] | None = None,
    *,
    precision: int = 4,
    width: int | None = None,
    color: bool | None = None,
) -> None:
    """Render a computed :class:`~lstm_trace.summary.Summary` (e.g. of a streamed trace)
    exactly as ``write(trace, summary=True)`` renders the summary of an in-memory one."""
    def draw(console: Console, styled: bool) -> None:
        render_summary(summary, console, precision=precision, styled=styled)

    _write(output, draw, width=width, color=color)


def _write(output: str | os.PathLike[str] | None, draw: Callable[[Console, bool], None], *,
           width: int | None, color: bool | None) -> None:
    if is_stdout(output):
        _write_to(sys.stdout, draw, width=width, color=color)
        return
    with atomic_write(output, "w") as handle:
        _write_to(handle, draw, width=width, color=False if color is None else color)


def _write_to(stream: IO[str], draw: Callable[[Console, bool], None], *, color: bool | None,
              width: int | None) -> None:
    terminal = Console(file=stream).is_terminal if color is None else color
    if terminal:
        console = Console(file=stream, width=width, highlight=False, emoji=False,
                          force_terminal=True if color else None)
        draw(console, True)
        return
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width or PLAIN_WIDTH, color_system=None, force_terminal=False,
        highlight=False, emoji=False, no_color=True,
    )
    draw(console, False)
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
    if summary:
        render_summary(summarize(trace, samples, steps, units), console, precision=precision,
                       styled=styled)
        return
    defaults = True

    def chosen(given: Selection, default: Selection, length: int, what: str) -> np.ndarray:
        if given is None and defaults:  # a default window is clipped to the trace
            return resolve(default, length, what, clip=True)
        return resolve(given, length, what)  # what the user asked for must exist

    picked_samples = chosen(samples, DEFAULT_SAMPLES, trace.batch, "sample")
    picked_steps = chosen(steps, DEFAULT_STEPS, trace.steps, "step")
    max_width = max((a.shape[2] for a in trace.values() if a.ndim == 3), default=0)
    widest = chosen(units, DEFAULT_UNITS, max_width, "unit")

    def units_for(width: int) -> np.ndarray:
        return widest[widest < width]

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
    footer = _footer(trace.batch, trace.steps, max_width, picked_samples, picked_steps, widest,
                     summary=False)
    if footer:
        console.print(Text(footer, style="dim" if styled else ""), soft_wrap=True)


def render_summary(summary: Summary, console: Console, *, precision: int = 4,
                   styled: bool = False) -> None:
    """Print a summary's table and the footer saying what the selection left out."""
    if not summary.rows:
        console.print("(empty trace: no layer was recorded)")
        return
    console.print(_summary_table(summary, precision))
    footer = _footer(summary.batch, summary.total_steps, summary.max_width,
                     summary.picked_samples, summary.picked_steps, summary.picked_units,
                     summary=True)
    if footer:
        console.print(Text(footer, style="dim" if styled else ""), soft_wrap=True)


def excerpt(trace: Trace, *, samples: Selection = None, steps: Selection = None,
            units: Selection = None) -> str:
    """What a (non-summary) table of ``trace`` shows, e.g. ``sample 0 of 8, steps 0–19 of 30,
    units 0–7 of 8 (the default excerpt: -f csv or --samples/--steps/--units for more)``."""
    max_width = max((a.shape[2] for a in trace.values() if a.ndim == 3), default=0)
    parts, partial = [], False
    for given, default, length, what in ((samples, DEFAULT_SAMPLES, trace.batch, "sample"),
                                         (steps, DEFAULT_STEPS, trace.steps, "step"),
                                         (units, DEFAULT_UNITS, max_width, "unit")):
        shown = resolve(default, length, what, clip=True) if given is None else resolve(
            given, length, what)
        partial |= shown.size < length
        plural = "" if shown.size == 1 else "s"
        parts.append(f"{what}{plural} {describe(shown)} of {length}" if shown.size < length
                     else f"all {length} {what}s" if length != 1 else f"the one {what}")
    text = ", ".join(parts)
    if partial:
        text += "; -f csv, json or npz for everything, --samples/--steps/--units to choose"
    return text


def _value_tables(
    layer: TracedLayer, direction: str, quantity: str, array: np.ndarray, mask: np.ndarray | None,
    sample: int, steps: np.ndarray, units: np.ndarray, precision: int, styled: bool, width: int,
) -> Iterator[tuple[str, Table]]:
    """The titled table(s) of one quantity of one sample, split by units to fit ``width``."""
    key = layer.key(direction, quantity)
    values = array[sample][np.ix_(steps, units)] if units.size else np.zeros((steps.size, 0))
    text = _format(values, precision)
    used = None if mask is None else mask[sample, steps].astype(bool)
    step_width = max(4, len(str(int(steps.max()))) if steps.size else 1) + 2
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


def _summary_table(summary: Summary, precision: int) -> Table:
    table = Table(
        title=f"summary over {summary.samples} sample(s), {summary.steps} step(s)",
        title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
        collapse_padding=True, pad_edge=False,
    )
    for name, justify in (("key", "left"), ("units", "right"), ("min", "right"), ("mean", "right"),
                          ("max", "right"), ("std", "right"), (f"<{LOW}", "right"),
                          (f">{HIGH}", "right")):
        table.add_column(name, justify=justify)
    for row in summary.rows:
        if row.quantity == "mask":
            share = float("nan") if row.mean is None else row.mean
            table.add_row(row.key, "", "", f"{share:.{precision}f}", "", "", "", "")
            continue
        if row.mean is None:
            table.add_row(row.key, str(row.units), *[""] * 6)
            continue
        cells = [f"{s:.{precision}f}" for s in (row.min, row.mean, row.max, row.std)]
        cells += ["" if v is None else f"{v:.1%}" for v in (row.below, row.above)]
        table.add_row(row.key, str(row.units), *cells)
    return table


def _footer(
    batch: int, total_steps: int, max_width: int, samples: np.ndarray, steps: np.ndarray,
    widest: np.ndarray, *, summary: bool,
) -> str:
    """One line: what the selection left out and how to see more (empty if nothing was)."""
    shown, more = [], []
    if samples.size < batch:
        shown.append(f"sample{'s' if samples.size != 1 else ''} {describe(samples)} of {batch}")
        more.append(f"--samples {_next_window(samples, batch)}")
    if steps.size < total_steps:
        shown.append(f"steps {describe(steps)} of {total_steps}")
        more.append(f"--steps {_next_window(steps, total_steps)}")
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
