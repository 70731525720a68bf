"""Convolution and pooling over channels-last grids, as Keras / TensorFlow compute them.

A :class:`Window` is the sliding window of a layer over its spatial axes (``kernel_size`` or
``pool_size``, ``strides``, ``dilation_rate``, ``padding`` ``valid`` / ``same``); inputs are
``(batch, *grid, channels)``. The output grid has, per axis of size ``n`` with span
``s = (k - 1)·d + 1``,

    valid: ⌊(n - s) / stride⌋ + 1            same: ⌈n / stride⌉

and ``same`` pads ``max((out - 1)·stride + s - n, 0)`` zeros, the odd one after (TensorFlow's
``SAME``). A convolution is one matrix product over the gathered windows (im2col):

    y[p] = Σ_{m, c} x[p·stride + m·dilation, c] · K[m, c, f] + b[f]

per group of channels; max pooling takes the largest value of each window (padding never
wins), average pooling the mean of the window's *real* positions (padding not counted), as
Keras does. :mod:`lstm_trace.conv_lstm` (the ConvLSTM's input and recurrent convolutions)
and the replayed Keras ``Conv2D``/``Conv3D`` and ``*Pooling2D``/``3D`` layers
(:mod:`lstm_trace.layers`) use these functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class Window:
    """A sliding window over the spatial axes: sizes per axis, and the padding rule."""

    kernel_size: tuple[int, ...]
    strides: tuple[int, ...]
    dilation_rate: tuple[int, ...]
    padding: str = "valid"  # "valid" | "same"

    @property
    def rank(self) -> int:
        return len(self.kernel_size)

    def output_grid(self, grid: tuple[int, ...]) -> tuple[int, ...]:
        """The output grid for an input grid ``grid``."""
        out = []
        for n, k, s, d in zip(grid, self.kernel_size, self.strides, self.dilation_rate, strict=True):
            span = (k - 1) * d + 1
            out.append(math.ceil(n / s) if self.padding == "same" else (n - span) // s + 1)
        return tuple(out)

    def pads(self, grid: tuple[int, ...]) -> list[tuple[int, int]]:
        """``(before, after)`` zero padding per spatial axis (TensorFlow's ``SAME`` rule)."""
        if self.padding != "same":
            return [(0, 0)] * self.rank
        pads = []
        for n, o, k, s, d in zip(grid, self.output_grid(grid), self.kernel_size, self.strides,
                                 self.dilation_rate, strict=True):
            total = max((o - 1) * s + (k - 1) * d + 1 - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads

    def check_fits(self, grid: tuple[int, ...]) -> tuple[int, ...]:
        """The output grid; ``ValueError`` when the input is smaller than a ``valid`` window."""
        out = self.output_grid(grid)
        if any(n <= 0 for n in out):
            raise ValueError(f"input grid {tuple(grid)} is smaller than the window {self.kernel_size} "
                             f"(dilation {self.dilation_rate}) with padding 'valid'")
        return out


def windows(padded: np.ndarray, window: Window, out_grid: tuple[int, ...]) -> np.ndarray:
    """``(N, *out_grid, *kernel_size, C)`` view of the windows of ``padded`` ``(N, *grid, C)``."""
    rank = window.rank
    spans = [(k - 1) * d + 1 for k, d in zip(window.kernel_size, window.dilation_rate, strict=True)]
    view = sliding_window_view(padded, spans, axis=tuple(range(1, rank + 1)))
    # view: (N, *positions, C, *spans): take strides over positions, dilation over windows.
    steps = zip(out_grid, window.strides, strict=True)
    index = (slice(None),) + tuple(slice(None, o * s, s) for o, s in steps)
    index += (slice(None),) + tuple(slice(None, None, d) for d in window.dilation_rate)
    return np.moveaxis(view[index], rank + 1, -1)


def convolve(x: np.ndarray, kernel: np.ndarray, window: Window, groups: int = 1) -> np.ndarray:
    """``x`` ``(N, *grid, C)`` convolved with ``kernel`` ``(*kernel_size, C / groups, F)``:
    ``(N, *out_grid, F)``, one matrix product per group over every window (no bias)."""
    batch, *grid, channels = x.shape
    out_grid = window.check_fits(tuple(grid))
    padded = np.pad(x, [(0, 0), *window.pads(tuple(grid)), (0, 0)])
    patches = windows(padded, window, out_grid)
    per_group, filters = kernel.shape[-2], kernel.shape[-1]
    if per_group * groups != channels:
        raise ValueError(f"expects {per_group * groups} channels, got shape {tuple(x.shape)}")
    out_per_group = filters // groups
    parts = []
    for g in range(groups):
        cols = slice(g * out_per_group, (g + 1) * out_per_group)
        group = patches[..., g * per_group:(g + 1) * per_group]
        part = kernel[..., cols]  # (*kernel_size, C / groups, F / groups)
        flat = group.reshape(-1, part[..., 0].size)
        parts.append(flat @ part.reshape(-1, out_per_group))
    y = parts[0] if groups == 1 else np.concatenate(parts, axis=-1)
    return y.reshape(batch, *out_grid, filters)


def pool(x: np.ndarray, window: Window, mode: str) -> np.ndarray:
    """Max (``mode="max"``) or average pooling of ``x`` ``(N, *grid, C)``: ``(N, *out_grid, C)``.
    Padded positions never count (the maximum ignores them, the mean does not divide by them)."""
    _, *grid, _ = x.shape
    out_grid = window.check_fits(tuple(grid))
    pads = [(0, 0), *window.pads(tuple(grid)), (0, 0)]
    axes = tuple(range(1 + window.rank, 1 + 2 * window.rank))  # the window's axes
    if mode == "max":
        fill = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        return windows(np.pad(x, pads, constant_values=fill), window, out_grid).max(axis=axes)
    total = windows(np.pad(x, pads), window, out_grid).sum(axis=axes)
    count = windows(np.pad(np.ones((1, *grid, 1), x.dtype), pads), window, out_grid).sum(axis=axes)
    return (total / count).astype(x.dtype, copy=False)
