"""Heatmaps of a trace: one panel per quantity, units × steps, for one sample.

Each traced layer (and direction) is a column of panels, one row per quantity in contract
order (LSTM ``input_gate … hidden``, GRU ``update_gate … hidden``; mixed columns share
their common rows), so a step lines up across every gate. The x axis is the input
position (or the input's tokens, given labels), the y axis the unit. Colour scales are
shared by every panel of the same quantity (one colour bar per row), so layers compare
at a glance:

- gates of a cell whose ``recurrent_activation`` ranges over ``[0, 1]`` (sigmoid,
  hard_sigmoid: :data:`lstm_trace.activations.UNIT_RANGE`) use ``0..1`` (``viridis``);
- every other quantity uses a symmetric scale around 0 (``RdBu_r``): ``±1`` for a
  ``tanh`` candidate and the hidden state of an unprojected ``tanh`` cell, else
  ``±max|value|`` over the steps drawn.

Masked steps are drawn grey (:data:`MASKED_GREY`), not as the zeros the trace holds
there, and get no token label. :func:`build_figure` places every element in points
computed from the figure's size (font 4 to 10 pt, nice ticks that fit), so a figure of
any ``--size`` stays readable; more steps than a panel has pixels are averaged in blocks.

matplotlib is an optional dependency (``pip install 'lstm-trace[plot]'``); it is
driven through its object API with the Agg canvas, so no display or global ``pyplot``
state is involved.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..activations import UNIT_RANGE
from ..atomic import atomic_write
from ..network import Network
from ..selection import Selection, resolve
from ..trace import Trace

#: Output formats by file suffix (what Agg can write).
PLOT_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
DEFAULT_DPI = 100
MISSING_MATPLOTLIB = (
    "plotting needs matplotlib, which is not installed: install lstm-trace[plot] "
    "(pip install 'lstm-trace[plot]')"
)
GATE_CMAP = "viridis"
SIGNED_CMAP = "RdBu_r"
#: The colour of masked steps (and of step blocks that are all masked).
MASKED_GREY = "#d9d9d9"


@dataclass(frozen=True)
class Scale:
    """The colour scale of one quantity: limits and colour map."""

    vmin: float
    vmax: float
    cmap: str


def require_matplotlib() -> None:
    """Raise ``ImportError`` with the install hint when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(MISSING_MATPLOTLIB) from None


def colour_scales(trace: Trace, network: Network | None = None, sample: int = 0,
                  steps: np.ndarray | None = None) -> dict[str, Scale]:
    """A scale per quantity name, shared by every layer and direction that records it.

    Gates are ``0..1`` when every traced cell's ``recurrent_activation`` is in
    :data:`~lstm_trace.activations.UNIT_RANGE` (without a network: when every value is).
    Other scales fit the values of the ``steps`` drawn (default: all).
    """
    cells = {}
    if network is not None:
        for layer in network.recurrent_layers:
            for prefix, direction in layer.trace_prefixes():
                cells[prefix] = direction.cell
    values: dict[str, list[np.ndarray]] = {}
    unit_gates: dict[str, bool] = {}
    tanh_bounded: dict[str, bool] = {}
    for layer, direction, arrays in trace.rows():
        prefix = layer.prefix(direction)
        cell = cells.get(prefix)
        mask = arrays.get("mask")
        for q, a in arrays.items():
            if q == "mask":
                continue
            v = a[sample] if steps is None else a[sample][steps]
            if mask is not None:
                v = v[mask[sample] if steps is None else mask[sample][steps]]
            values.setdefault(q, []).append(v)
            if q.endswith("_gate"):
                if cell is not None:
                    ok = cell.recurrent_activation in UNIT_RANGE
                else:
                    ok = bool(v.size == 0 or (v.min() >= 0 and v.max() <= 1))
                unit_gates[q] = unit_gates.get(q, True) and ok
            elif q in ("candidate", "hidden"):
                bounded = cell is not None and cell.activation == "tanh" and (
                    q == "candidate" or cell.projection is None)
                tanh_bounded[q] = tanh_bounded.get(q, True) and bounded
    scales: dict[str, Scale] = {"mask": Scale(0.0, 1.0, "Greys")}
    for q, parts in values.items():
        if unit_gates.get(q):
            scales[q] = Scale(0.0, 1.0, GATE_CMAP)
        elif tanh_bounded.get(q):
            scales[q] = Scale(-1.0, 1.0, SIGNED_CMAP)
        else:
            peak = max((float(np.nanmax(np.abs(p))) for p in parts if p.size), default=1.0)
            peak = peak if np.isfinite(peak) and peak > 0 else 1.0
            scales[q] = Scale(-peak, peak, SIGNED_CMAP)
    return scales


def plot_trace(
    trace: Trace,
    output: str | os.PathLike[str],
    *,
    network: Network | None = None,
    sample: int = 0,
    units: Selection = None,
    steps: Selection = None,
    labels: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    dpi: int = DEFAULT_DPI,
    title: str | None = None,
) -> tuple[int, int]:
    """Draw ``trace`` (one ``sample``) to ``output`` (``.png``, ``.svg`` or ``.pdf``).

    ``units`` selects rows (the same indices in every panel; a narrower array, such
    as a projected ``hidden``, shows those it has); ``steps`` the steps drawn (a range
    zooms in: ``slice(1000, 1200)``). ``labels`` are the x tick labels, one per step of
    the trace. ``size`` is ``(width, height)`` in pixels (default: from the trace).
    Returns the image size in pixels. Written atomically.
    """
    require_matplotlib()
    suffix = os.path.splitext(os.fspath(output))[1].lower()
    fmt = PLOT_FORMATS.get(suffix)
    if fmt is None:
        raise ValueError(
            f"{os.fspath(output)}: cannot tell the image format from {suffix or 'no suffix'!r}; "
            f"use one of {', '.join(PLOT_FORMATS)}"
        )
    fig = build_figure(trace, network=network, sample=sample, units=units, steps=steps,
                       labels=labels, size=size, dpi=dpi, title=title)
    with atomic_write(output, "wb") as handle:
        fig.savefig(handle, format=fmt, dpi=dpi)
    width, height = fig.get_size_inches()
    return int(round(width * dpi)), int(round(height * dpi))


def quantity_rows(trace: Trace) -> list[str]:
    """The quantities drawn, one row each: every column's quantities in their contract
    order, merged (an LSTM and a GRU column share ``candidate`` and ``hidden``); the
    mask row last."""
    order: list[str] = []
    for _layer, _direction, arrays in trace.rows():
        names = list(arrays)
        for k, q in enumerate(names):
            if q in order:
                continue
            after = [n for n in names[k + 1:] if n in order]  # before the next one drawn
            order.insert(order.index(after[0]) if after else len(order), q)
    if "mask" in order:
        order.remove("mask")
        order.append("mask")
    return order


def _layout(trace: Trace, units: Selection) -> tuple[list, list[str], list[float]]:
    """Columns (one per layer and direction), the quantity of each row, and the number
    of unit rows each row's widest panel shows (1 for ``mask``)."""
    columns = list(trace.rows())
    rows = quantity_rows(trace)
    heights = [1.0] * len(rows)
    for _layer, _direction, arrays in columns:
        for q, a in arrays.items():
            shown = 1 if q == "mask" else len(_unit_indices(units, a.shape[2]))
            r = rows.index(q)
            heights[r] = max(heights[r], float(max(shown, 1)))
    return columns, rows, heights


def figure_size(trace: Trace, units: Selection = None, steps: int | None = None) -> tuple[float, float]:
    """The automatic figure size in inches: wide enough for the steps, tall for the units.

    Panels are about 0.16 in per step (3.5 to 12 in wide) and 0.1 in per unit row (at most
    48 rows' worth) plus room for titles and tick labels. ``steps``: how many steps are
    drawn (default: all of the trace's).
    """
    columns, _rows, heights = _layout(trace, units)
    shown = trace.steps if steps is None else steps
    panel_width = min(max(3.5, 1.6 + 0.16 * shown), 12.0)
    height = sum(0.55 + 0.1 * min(h, 48.0) for h in heights)
    return (0.8 + len(columns) * panel_width, 0.6 + height)


def nice_ticks(first: int, last: int, most: int) -> list[int]:
    """Tick positions in ``[first, last]``: the multiples of the smallest ``1, 2, 5 × 10^k``
    that gives at most ``most`` of them (``[first]`` when no multiple falls in the range).

    >>> nice_ticks(0, 19999, 6)
    [0, 5000, 10000, 15000]
    """
    most = max(1, int(most))
    for power in range(19):
        for mantissa in (1, 2, 5):
            step = mantissa * 10**power
            lo = -(-first // step) * step
            if lo > last:
                return [first]
            if (last - lo) // step + 1 <= most:
                return list(range(lo, last + 1, step))
    return [first]


#: Character width and line height as fractions of the font size (DejaVu Sans).
_CHAR = 0.62
_LINE = 1.25
#: Longest step label drawn (longer tokens are cut with an ellipsis).
MAX_LABEL_CHARS = 12


@dataclass(frozen=True)
class _Ticks:
    """The step axis of the bottom panels: where its labels go and how much room they take."""

    positions: list[float]
    texts: list[str]
    rotation: float
    depth: float  # points the tick labels take below the axis
    axis_label: str


def build_figure(
    trace: Trace,
    *,
    network: Network | None = None,
    sample: int = 0,
    units: Selection = None,
    steps: Selection = None,
    labels: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    dpi: int = DEFAULT_DPI,
    title: str | None = None,
):  # noqa: ANN201 - a matplotlib Figure (matplotlib is imported lazily)
    """The figure :func:`plot_trace` saves. Every size is worked out in points from the
    figure's own size, so nothing overlaps whatever ``size`` is.

    One column per layer direction (its name above), one row per quantity (its name at
    the left, a colour bar at the right shared by the row); units top to bottom, steps
    left to right, the step axis labelled under each column's bottom panel. The font
    scales with the figure (4 to 10 pt); ticks are nice numbers (:func:`nice_ticks`), as
    many as fit. More steps than a panel has pixels are averaged in blocks (masked steps
    left out, said above the panels). Masked steps are grey and get no step label.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(trace) == 0:
        raise ValueError("the trace is empty: nothing to plot")
    if not -trace.batch <= sample < trace.batch:
        raise ValueError(
            f"--sample {sample} is out of range: the input has {trace.batch} "
            f"sample{'s' if trace.batch != 1 else ''} (0 to {trace.batch - 1})"
        )
    sample %= trace.batch
    if labels is not None and len(labels) != trace.steps:
        raise ValueError(f"{len(labels)} step labels for {trace.steps} steps")
    if dpi <= 0:
        raise ValueError(f"--dpi must be positive, got {dpi}")
    index = resolve(steps, trace.steps, "step")
    if size is not None:
        width_px, height_px = size
        if width_px < 50 or height_px < 50:
            raise ValueError(f"--size {width_px}x{height_px} is too small (at least 50x50 pixels)")
        inches = (width_px / dpi, height_px / dpi)
    else:
        inches = figure_size(trace, units, len(index))
    scales = colour_scales(trace, network, sample, index)
    columns, rows, heights = _layout(trace, units)
    contiguous = index.size == 1 or bool(np.all(np.diff(index) == 1))
    if labels is not None:
        labels = [t if len(t) <= MAX_LABEL_CHARS else t[:MAX_LABEL_CHARS - 1] + "…" for t in map(str, labels)]

    # Sizes in points: the figure, the font, margins, gaps, panels.
    width, height = inches[0] * 72.0, inches[1] * 72.0
    nrows, ncols = len(rows), len(columns)
    font = float(np.clip(min(height / (3.0 * nrows + 6.0), width / (45.0 * ncols ** 0.5)), 4.0, 10.0))
    tick = font * 0.9
    digits = max(len(str(a.shape[2] - 1)) for _l, _d, arrays in columns
                 for q, a in arrays.items() if q != "mask")
    unit_labels = digits * _CHAR * tick + 4
    left = 4 + max(len(q) for q in rows) * _CHAR * font + 4 + unit_labels
    right = 4 + 0.8 * font + 3 + 5 * _CHAR * tick
    top = 4 + (_LINE * font * 1.1 if title else 0) + _LINE * font + 2
    col_gap = unit_labels + 0.8 * font
    panel_w = (width - left - right - (ncols - 1) * col_gap) / ncols
    masks = [arrays.get("mask") for _l, _d, arrays in columns]
    x_ticks = _step_ticks(index, contiguous, labels, panel_w, tick, masks, sample)
    bottom = 4 + _LINE * font + x_ticks.depth + 3
    row_gap = 1.1 * font  # room for the half labels at both ends of two colour bars
    avail = height - top - bottom - (nrows - 1) * row_gap
    if panel_w < 10 or avail < nrows * 3:
        raise ValueError(
            f"the figure is too small for {nrows} rows and {ncols} columns of panels: give a "
            "larger --size, or fewer --layer/--units"
        )
    floor = min(_LINE * font, avail / nrows)
    weights = np.array([min(h, 48.0) for h in heights])
    row_h = floor + (avail - nrows * floor) * weights / weights.sum()
    row_y = [height - top - float(row_h[:r].sum()) - r * row_gap - row_h[r] for r in range(nrows)]

    def rect(x: float, y: float, w: float, h: float) -> list[float]:
        return [x / width, y / height, w / width, h / height]

    fig = Figure(figsize=inches, dpi=dpi)
    FigureCanvasAgg(fig)
    if title:
        fig.text(0.5, 1 - (4 + font * 0.6) / height, title, ha="center", va="center",
                 fontsize=font * 1.1)
    max_columns = max(1, int(panel_w / 72.0 * dpi))
    row_image: dict[str, object] = {}
    for c, (layer, direction, arrays) in enumerate(columns):
        x0 = left + c * (panel_w + col_gap)
        mask = arrays.get("mask")
        keep = mask[sample][index] if mask is not None else None
        present = [rows.index(q) for q in arrays]
        fig.text((x0 + panel_w / 2) / width, (height - top + 3) / height, layer.prefix(direction),
                 ha="center", va="bottom", fontsize=font, fontweight="bold")
        for q, a in arrays.items():
            r = rows.index(q)
            ax = fig.add_axes(rect(x0, row_y[r], panel_w, row_h[r]))
            ax.set_label(f"{layer.prefix(direction)}/{q}")
            if q == "mask":
                data = a[sample][index][None, :].astype(float)
                shown = np.array([0])
            else:
                shown = _unit_indices(units, a.shape[2])
                data = a[sample][index][:, shown].T.astype(float)
                if keep is not None:
                    data[:, ~keep] = np.nan
            block = 1
            if contiguous and data.shape[1] > max_columns:
                block = -(-data.shape[1] // max_columns)
                data = _block_means(data, block)
            start = float(index[0]) if contiguous else 0.0
            extent = (start - 0.5, start - 0.5 + data.shape[1] * block, data.shape[0] - 0.5, -0.5)
            scale = scales[q]
            image = ax.imshow(data, aspect="auto", interpolation="nearest", cmap=_cmap(scale.cmap),
                              vmin=scale.vmin, vmax=scale.vmax, extent=extent)
            row_image.setdefault(q, image)
            ax.tick_params(labelsize=tick, length=2, pad=1.5, width=0.6)
            for spine in ax.spines.values():
                spine.set_linewidth(0.6)
            ax.set_xticks(x_ticks.positions)
            if r == max(present):  # the column's bottom panel carries the step axis
                ax.set_xticklabels(x_ticks.texts, rotation=x_ticks.rotation, ha="center")
                ax.set_xlabel(x_ticks.axis_label, fontsize=font, labelpad=1.5)
            else:
                ax.tick_params(labelbottom=False)
            ax.set_xlim(extent[0], extent[1])
            if q == "mask":
                ax.set_yticks([])
            else:
                positions, texts = _unit_ticks(shown, float(row_h[r]), tick)
                ax.set_yticks(positions)
                ax.set_yticklabels(texts)
            if all(q not in other for _l, _d, other in columns[:c]):  # leftmost of its row
                ax.set_ylabel(q, rotation=0, ha="right", va="center", fontsize=font,
                              labelpad=unit_labels + 2 if c else 3)
            if block > 1 and r == min(present):
                ax.set_title(f"mean of {block} steps per column (zoom in with --steps)",
                             fontsize=tick * 0.9, loc="right", pad=1.5)
    for q, image in row_image.items():
        r = rows.index(q)
        cax = fig.add_axes(rect(width - right + 3, row_y[r], 0.8 * font, row_h[r]))
        bar = fig.colorbar(image, cax=cax)
        ticks = _colour_bar_ticks(float(row_h[r]), tick, scales[q])
        if ticks == [scales[q].vmin, scales[q].vmax]:  # a short bar: its two ends, rounded
            bar.set_ticks(ticks, labels=[f"{v:.2g}" for v in ticks])
        else:
            bar.set_ticks(ticks)
        bar.ax.tick_params(labelsize=tick, length=1.5, pad=1, width=0.5)
        bar.outline.set_linewidth(0.5)
    return fig


def _step_ticks(index: np.ndarray, contiguous: bool, labels: Sequence[str] | None, width: float,
                font: float, masks: list, sample: int) -> _Ticks:
    """The step axis: nice step numbers, or the tokens (``labels``) of the steps no column
    masks, as many as fit ``width`` points (rotated when that fits more)."""
    line = _LINE * font + 2
    if labels is None:
        most = max(1, int(width / ((len(str(int(index[-1]))) + 1.5) * _CHAR * font)))
        if contiguous:
            picked = nice_ticks(int(index[0]), int(index[-1]), most)
            return _Ticks([float(t) for t in picked], [str(t) for t in picked], 0.0, line, "step")
        positions = list(range(0, index.size, -(-index.size // most)))
        return _Ticks([float(p) for p in positions], [str(int(index[p])) for p in positions], 0.0,
                      line, "step")
    keep = np.ones(index.size, bool)
    for mask in masks:
        if mask is not None:
            keep &= mask[sample][index]
    candidates = np.flatnonzero(keep)
    if candidates.size == 0:
        return _Ticks([], [], 0.0, line, "step (every step masked)")

    def at(k: int) -> float:
        return float(index[k]) if contiguous else float(k)

    texts = [labels[int(index[k])] for k in candidates]
    longest = max(len(t) for t in texts)
    if candidates.size * (longest + 1) * _CHAR * font <= width:
        return _Ticks([at(k) for k in candidates], texts, 0.0, line, "step (token)")
    stride = -(-candidates.size // max(1, int(width / (_LINE * font))))
    chosen = candidates[::stride]
    name = "step (token)" if stride == 1 else f"step (token of every {stride}th unmasked step)"
    return _Ticks([at(k) for k in chosen], [labels[int(index[k])] for k in chosen], 90.0,
                  longest * _CHAR * font + 3, name)


def _unit_ticks(shown: np.ndarray, height: float, font: float) -> tuple[list[float], list[str]]:
    """Unit tick positions (rows of the panel) and texts: nice unit numbers that fit."""
    most = max(1, min(int(height / (1.6 * font)), 12))
    if shown.size > 1 and np.all(np.diff(shown) == 1):
        picked = nice_ticks(int(shown[0]), int(shown[-1]), most)
        return [float(u - shown[0]) for u in picked], [str(u) for u in picked]
    positions = list(range(0, shown.size, -(-shown.size // most)))
    return [float(p) for p in positions], [str(int(shown[p])) for p in positions]


def _colour_bar_ticks(height: float, font: float, scale: Scale) -> list[float]:
    """Nice colour bar ticks inside the scale that fit ``height`` points (a short bar: its ends)."""
    from matplotlib.ticker import MaxNLocator

    bins = min(int(height / (2.2 * font)), 6)
    if bins < 2:
        return [scale.vmin, scale.vmax]
    ticks = MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]).tick_values(scale.vmin, scale.vmax)
    slack = 1e-9 * (scale.vmax - scale.vmin)
    return [float(t) for t in ticks if scale.vmin - slack <= t <= scale.vmax + slack]


def _block_means(data: np.ndarray, block: int) -> np.ndarray:
    """Means of ``block`` consecutive columns, NaN (masked) values left out."""
    units, steps = data.shape
    blocks = -(-steps // block)
    padded = np.full((units, blocks * block), np.nan)
    padded[:, :steps] = data
    padded = padded.reshape(units, blocks, block)
    valid = ~np.isnan(padded)
    counts = valid.sum(axis=2)
    sums = np.where(valid, padded, 0.0).sum(axis=2)
    return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _unit_indices(units: Selection, width: int) -> np.ndarray:
    if units is None or isinstance(units, slice):
        return resolve(units, width, "unit")
    picked = np.asarray(list(units), dtype=np.int64)
    picked = np.where(picked < 0, picked + width, picked)
    return picked[(picked >= 0) & (picked < width)]


def _cmap(name: str):  # noqa: ANN202 - a matplotlib Colormap
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad=MASKED_GREY)


def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """The lines of a ``--vocab``/``--labels`` file (one token per line, trailing newline optional)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise ValueError(f"{os.fspath(path)}: no such file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{os.fspath(path)}: not UTF-8 text (expected one token per line)") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ValueError(f"{os.fspath(path)}: empty (expected one token per line)")
    return [line.rstrip("\r") for line in lines]


def step_labels(x: np.ndarray, vocab: Sequence[str], sample: int, steps: int) -> list[str]:
    """Tick labels for the steps of ``x[sample]`` from a vocabulary file's lines.

    - token ids ``(batch, steps)``: line ``k`` names token id ``k``;
    - one-hot float input whose feature count is the vocabulary size: the hot feature's line;
    - otherwise, a file with exactly one line per step labels the steps in order.
    """
    x = np.asarray(x)
    if x.dtype.kind in "iu":
        ids = x.reshape(-1, x.shape[-1])[sample] if x.ndim > 1 else x
        out = []
        for token in ids:
            token = int(token)
            if not 0 <= token < len(vocab):
                raise ValueError(
                    f"token id {token} has no line in the vocabulary file ({len(vocab)} lines)"
                )
            out.append(vocab[token])
        return out
    seq = x if x.ndim == 2 else x[sample]
    if seq.ndim == 2 and seq.shape[-1] == len(vocab):
        hot = (seq == 1).sum(axis=1) == 1
        rest = (seq == 0).sum(axis=1) == seq.shape[1] - 1
        if np.all(hot & rest):
            return [vocab[int(k)] for k in seq.argmax(axis=1)]
    if len(vocab) == steps:
        return list(vocab)
    raise ValueError(
        f"the vocabulary file has {len(vocab)} lines, but the input is neither token ids, nor "
        f"one-hot over {len(vocab)} features, nor {steps} steps long (one label per step)"
    )
