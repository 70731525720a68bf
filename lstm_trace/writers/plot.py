"""Heatmaps of a trace: one panel per quantity, units × steps, for one sample.

Each traced layer (and direction) is a column of panels, one per quantity in contract
order (LSTM ``input_gate … hidden``, GRU ``update_gate … hidden``), so a step lines up
across every gate. The x axis is the input position (or the input's tokens, given
labels), the y axis the unit. Colour scales are
shared by every panel of the same quantity, so layers compare at a glance:

- gates of a cell whose ``recurrent_activation`` ranges over ``[0, 1]`` (sigmoid,
  hard_sigmoid: :data:`lstm_trace.activations.UNIT_RANGE`) use ``0..1`` (``viridis``);
- every other quantity uses a symmetric scale around 0 (``RdBu_r``): ``±1`` for a
  ``tanh`` candidate and the hidden state of an unprojected ``tanh`` cell, else
  ``±max|value|`` over the panels drawn.

Masked steps are drawn blank (light grey), not as the zeros the trace holds there.

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


def colour_scales(trace: Trace, network: Network | None = None, sample: int = 0) -> dict[str, Scale]:
    """A scale per quantity name, shared by every layer and direction that records it.

    Gates are ``0..1`` when every traced cell's ``recurrent_activation`` is in
    :data:`~lstm_trace.activations.UNIT_RANGE` (without a network: when every value is).
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
            v = a[sample]
            if mask is not None:
                v = v[mask[sample]]
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


def _layout(trace: Trace, units: Selection) -> tuple[list, list[float]]:
    """Columns (one per layer and direction) and the relative height of each quantity row.

    A row's height is the number of unit rows its widest panel shows (1 for ``mask``).
    """
    columns = list(trace.rows())
    nrows = max(len(arrays) for _, _, arrays in columns)
    heights = [1.0] * nrows
    for _layer, _direction, arrays in columns:
        for r, (q, a) in enumerate(arrays.items()):
            shown = 1 if q == "mask" else len(_unit_indices(units, a.shape[2]))
            heights[r] = max(heights[r], float(max(shown, 1)))
    return columns, heights


def figure_size(trace: Trace, units: Selection = None) -> tuple[float, float]:
    """The automatic figure size in inches: wide enough for the steps, tall for the units.

    Panels are about 0.16 in per step (3.5 to 12 in wide) and 0.1 in per unit row (at most
    48 rows' worth) plus room for titles and tick labels.
    """
    columns, heights = _layout(trace, units)
    panel_width = min(max(3.5, 1.6 + 0.16 * trace.steps), 12.0)
    height = sum(0.55 + 0.1 * min(h, 48.0) for h in heights)
    return (0.8 + len(columns) * panel_width, 0.6 + height)


def plot_trace(
    trace: Trace,
    output: str | os.PathLike[str],
    *,
    network: Network | None = None,
    sample: int = 0,
    units: Selection = None,
    labels: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    dpi: int = DEFAULT_DPI,
    title: str | None = None,
) -> tuple[int, int]:
    """Draw ``trace`` (one ``sample``) to ``output`` (``.png``, ``.svg`` or ``.pdf``).

    ``units`` selects rows (the same indices in every panel; a narrower array, such
    as a projected ``hidden``, shows those it has). ``labels`` are the x tick labels,
    one per step. ``size`` is ``(width, height)`` in pixels (default: from the trace).
    Returns the image size in pixels. Written atomically.
    """
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if len(trace) == 0:
        raise ValueError("the trace is empty: nothing to plot")
    suffix = os.path.splitext(os.fspath(output))[1].lower()
    fmt = PLOT_FORMATS.get(suffix)
    if fmt is None:
        raise ValueError(
            f"{os.fspath(output)}: cannot tell the image format from {suffix or 'no suffix'!r}; "
            f"use one of {', '.join(PLOT_FORMATS)}"
        )
    if not -trace.batch <= sample < trace.batch:
        raise ValueError(
            f"--sample {sample} is out of range: the input has {trace.batch} "
            f"sample{'s' if trace.batch != 1 else ''} (0 to {trace.batch - 1})"
        )
    sample %= trace.batch
    steps = trace.steps
    if labels is not None and len(labels) != steps:
        raise ValueError(f"{len(labels)} step labels for {steps} steps")
    if dpi <= 0:
        raise ValueError(f"--dpi must be positive, got {dpi}")
    if size is not None:
        width_px, height_px = size
        if width_px < 50 or height_px < 50:
            raise ValueError(f"--size {width_px}x{height_px} is too small (at least 50x50 pixels)")
        inches = (width_px / dpi, height_px / dpi)
    else:
        inches = figure_size(trace, units)
    scales = colour_scales(trace, network, sample)

    columns, heights = _layout(trace, units)
    # Gaps in inches turned into the fractions gridspec wants, so titles and tick labels
    # fit whatever the figure's size.
    fig = Figure(figsize=inches, dpi=dpi)
    FigureCanvasAgg(fig)
    top = 1 - (0.6 if title else 0.3) / inches[1]
    grid = fig.add_gridspec(
        len(heights), len(columns), height_ratios=[0.55 / 0.1 + min(h, 48.0) for h in heights],
        hspace=0.9, wspace=0.3, left=min(0.75 / inches[0], 0.3), right=0.97,
        top=max(top, 0.5), bottom=min(0.35 / inches[1], 0.3),
    )
    if title:
        fig.suptitle(title, fontsize=10)
    for c, (layer, direction, arrays) in enumerate(columns):
        mask = arrays.get("mask")
        keep = mask[sample] if mask is not None else None
        prefix = layer.prefix(direction)
        for r, (q, a) in enumerate(arrays.items()):
            ax = fig.add_subplot(grid[r, c])
            scale = scales[q]
            if q == "mask":
                data = a[sample][None, :].astype(float)
                shown = np.array([0])
            else:
                shown = _unit_indices(units, a.shape[2])
                data = a[sample][:, shown].T.astype(float)
                if keep is not None:
                    data[:, ~keep] = np.nan
            image = ax.imshow(data, aspect="auto", interpolation="nearest", cmap=_cmap(scale.cmap),
                              vmin=scale.vmin, vmax=scale.vmax, origin="upper")
            ax.set_title(f"{prefix}: {q}", fontsize=8, loc="left")
            _ticks(ax, steps, labels)
            if q == "mask":
                ax.set_yticks([])
            else:
                _unit_ticks(ax, shown)
                if c == 0:
                    ax.set_ylabel("unit", fontsize=7)
            fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02).ax.tick_params(labelsize=6)
    with atomic_write(output, "wb") as handle:
        fig.savefig(handle, format=fmt, dpi=dpi)
    return int(round(inches[0] * dpi)), int(round(inches[1] * dpi))


def _unit_indices(units: Selection, width: int) -> np.ndarray:
    if units is None or isinstance(units, slice):
        return resolve(units, width, "unit")
    picked = np.asarray(list(units), dtype=np.int64)
    picked = np.where(picked < 0, picked + width, picked)
    return picked[(picked >= 0) & (picked < width)]


def _cmap(name: str):  # noqa: ANN202 - a matplotlib Colormap
    from matplotlib import colormaps

    return colormaps[name].with_extremes(bad="#e0e0e0")  # masked steps


def _ticks(ax, steps: int, labels: Sequence[str] | None) -> None:  # noqa: ANN001
    if labels is not None and steps <= 80:
        ax.set_xticks(range(steps))
        ax.set_xticklabels(labels, fontsize=7 if steps <= 40 else 5, rotation=0 if steps <= 40 else 90)
        return
    stride = max(1, int(np.ceil(steps / 12)))
    ticks = list(range(0, steps, stride))
    ax.set_xticks(ticks)
    ax.set_xticklabels([labels[t] if labels is not None else str(t) for t in ticks], fontsize=7)


def _unit_ticks(ax, shown: np.ndarray) -> None:  # noqa: ANN001
    stride = max(1, int(np.ceil(len(shown) / 10)))
    positions = list(range(0, len(shown), stride))
    ax.set_yticks(positions)
    ax.set_yticklabels([str(int(shown[p])) for p in positions], fontsize=6)


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
