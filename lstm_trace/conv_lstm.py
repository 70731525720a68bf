"""Convolutional LSTM cells (Keras ``ConvLSTM1D/2D/3D``): weights, options and the step loop.

A ConvLSTM is an LSTM whose input and recurrent transformations are convolutions over a
grid of positions instead of matrix products. In canonical names (``*`` a convolution,
``σ`` the recurrent activation, ``φ`` the activation, gates fused ``i, f, c, o``)::

    input_gate  i  = σ(x_t * W_i + b_i + h * U_i)
    forget_gate f  = σ(x_t * W_f + b_f + h * U_f)
    candidate   g  = φ(x_t * W_c + b_c + h * U_c)
    cell        c' = f ⊙ c + i ⊙ g
    output_gate o  = σ(x_t * W_o + b_o + h * U_o)
    hidden      h' = o ⊙ φ(c')

``x_t * W`` uses the layer's ``strides``, ``padding`` (``valid``/``same``) and
``dilation_rate``; ``h * U`` always has stride 1 and ``same`` padding, so the state keeps
the output grid. States and every recorded quantity are ``(batch, *grid, filters)``, the
trace arrays ``(batch, steps, *grid, filters)`` (channels last, whatever the layer's
``data_format``; the output handed to the next layer follows ``data_format``).

A convolution is one matrix product over sliding windows (im2col, :mod:`lstm_trace.convolution`):
the windows of every position are gathered into a ``(positions, kernel_elements * channels)``
matrix and multiplied by the kernel reshaped to ``(kernel_elements * channels, 4 * filters)``.
The input convolution runs once for all steps; each step does one recurrent product, writing
its windows into a buffer reused every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .activations import get_activation
from .convolution import Window, convolve, windows
from .gates import gate_slices
from .network import Cell

CLASS_RANKS = {"ConvLSTM1D": 1, "ConvLSTM2D": 2, "ConvLSTM3D": 3}


@dataclass(frozen=True)
class ConvSpec(Window):
    """The input convolution of a ConvLSTM: its window, and the tensor layout."""

    data_format: str = "channels_last"  # "channels_last" | "channels_first"

    def to_channels_last(self, x: np.ndarray) -> np.ndarray:
        """``(batch, steps, C, *grid)`` -> ``(batch, steps, *grid, C)`` for channels_first."""
        if self.data_format != "channels_first":
            return x
        return np.moveaxis(x, 2, -1)

    def from_channels_last(self, y: np.ndarray, time_axis: bool = True) -> np.ndarray:
        """A channels-last result in the layer's ``data_format`` (for the next layer)."""
        if self.data_format != "channels_first":
            return y
        return np.moveaxis(y, -1, 2 if time_axis else 1)


@dataclass
class ConvLSTMCell(Cell):
    """A Keras ConvLSTM cell: an LSTM (``kind`` ``lstm``, the same quantities) over a grid.

    ``kernel`` is ``(*kernel_size, channels, 4*filters)``, ``recurrent_kernel``
    ``(*kernel_size, filters, 4*filters)``, ``bias`` ``(4*filters,)``, gates fused in the
    canonical order ``i, f, c, o``; ``units`` is the number of filters.
    """

    conv: ConvSpec = field(default_factory=lambda: ConvSpec((1,), (1,), (1,)))

    def __post_init__(self) -> None:
        k, f = self.conv.kernel_size, self.units
        if self.kind != "lstm":
            raise ValueError(f"a ConvLSTM cell is an lstm, not {self.kind!r}")
        if self.kernel.ndim != self.conv.rank + 2 or self.kernel.shape[:-2] != k \
                or self.kernel.shape[-1] != 4 * f:
            raise ValueError(f"ConvLSTM kernel must be {(*k, 'channels', 4 * f)}, got {self.kernel.shape}")
        if self.recurrent_kernel.shape != (*k, f, 4 * f):
            raise ValueError(
                f"ConvLSTM recurrent kernel must be {(*k, f, 4 * f)}, got {self.recurrent_kernel.shape}"
            )
        if self.bias is not None and self.bias.shape != (4 * f,):
            raise ValueError(f"ConvLSTM bias must be ({4 * f},), got {self.bias.shape}")

    @property
    def input_size(self) -> int:
        """Input channels (the features of each grid position)."""
        return int(self.kernel.shape[-2])

    @property
    def state_size(self) -> int:
        return self.units

    def gate_weights(self) -> dict[str, dict[str, np.ndarray]]:
        """Per-gate kernels ``(*kernel_size, channels, filters)`` and biases."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for gate, cols in gate_slices(self.kind, self.units).items():
            parts = {"kernel": self.kernel[..., cols], "recurrent_kernel": self.recurrent_kernel[..., cols]}
            if self.bias is not None:
                parts["bias"] = self.bias[cols]
            out[gate] = parts
        return out


def input_projection(cell: ConvLSTMCell, x: np.ndarray) -> np.ndarray:
    """``x * W + b`` for every step at once: ``x`` ``(batch, steps, *grid, C)`` (channels last)
    -> ``(batch, steps, *out_grid, 4*filters)``, one matrix product over all windows."""
    batch, steps, *grid, channels = x.shape
    xw = convolve(x.reshape(batch * steps, *grid, channels), cell.kernel, cell.conv)
    if cell.bias is not None:
        xw += cell.bias
    return xw.reshape(batch, steps, *xw.shape[1:])


def run_conv_lstm(
    cell: ConvLSTMCell, x: np.ndarray, *, reverse: bool = False, mask: np.ndarray | None = None,
    initial_hidden: np.ndarray | None = None, initial_cell: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Replay ``cell`` over ``x`` ``(batch, steps, *grid, C)`` in the layer's ``data_format``.

    Returns the recorded quantities (channels last, by input position), and the final
    hidden and cell states ``(batch, *out_grid, filters)``. ``mask`` is ``(batch, steps)``
    or ``(batch, steps, *out_grid)`` (Keras masks each position where a Masking layer
    gives one): where it is false, states carry over and gates are recorded as 0.
    """
    x = cell.conv.to_channels_last(x)
    if x.ndim != cell.conv.rank + 3 or x.shape[-1] != cell.input_size:
        raise ValueError(
            f"expects input (batch, steps, {', '.join(['size'] * cell.conv.rank)}, "
            f"{cell.input_size}) in {cell.conv.data_format}, got {tuple(x.shape)}"
        )
    dtype = x.dtype
    xw = input_projection(cell, x)
    batch, steps, *out_grid, _ = xw.shape
    f = cell.units
    state_shape = (batch, *out_grid, f)
    out = {q: np.empty((batch, steps, *state_shape[1:]), dtype) for q in cell.quantities}
    h = _initial(initial_hidden, state_shape, dtype)
    c = _initial(initial_cell, state_shape, dtype)
    if mask is not None and mask.shape not in ((batch, steps), (batch, steps, *out_grid)):
        raise ValueError(f"mask of shape {mask.shape} does not fit the output grid {tuple(out_grid)}")
    sigma = get_activation(cell.recurrent_activation)
    phi = get_activation(cell.activation)
    k = cell.conv.kernel_size
    U = cell.recurrent_kernel.reshape(-1, 4 * f)
    pads = [((kk - 1) // 2, kk - 1 - (kk - 1) // 2) for kk in k]  # 'same', stride 1
    # h is written into the interior of a zero-padded buffer; its windows into a reused matrix.
    padded = np.zeros((batch, *(n + a + b for n, (a, b) in zip(out_grid, pads, strict=True)), f), dtype)
    interior = (slice(None),) + tuple(slice(a, a + n) for n, (a, _) in zip(out_grid, pads, strict=True))
    state_windows = windows(padded, Window(k, (1,) * len(k), (1,) * len(k)), tuple(out_grid))
    patches = np.empty((batch, *out_grid, *k, f), dtype)
    patches_2d = patches.reshape(-1, U.shape[0])
    z = np.empty((patches_2d.shape[0], 4 * f), dtype)
    z_grid = z.reshape(batch, *out_grid, 4 * f)
    gi, gf, gc, go = out["input_gate"], out["forget_gate"], out["candidate"], out["output_gate"]
    cs, hs = out["cell"], out["hidden"]
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        padded[interior] = h
        np.copyto(patches, state_windows)
        np.matmul(patches_2d, U, out=z)
        z_grid += xw[:, t]
        i = sigma(z_grid[..., :f])
        fg = sigma(z_grid[..., f:2 * f])
        g = phi(z_grid[..., 2 * f:3 * f])
        o = sigma(z_grid[..., 3 * f:])
        c_new = fg * c + i * g
        h_new = o * phi(c_new)
        if mask is not None:
            keep = mask[:, t].reshape(mask[:, t].shape + (1,) * (h.ndim - mask[:, t].ndim))
            c_new = np.where(keep, c_new, c)
            h_new = np.where(keep, h_new, h)
        gi[:, t], gf[:, t], gc[:, t], go[:, t] = i, fg, g, o
        cs[:, t] = c = c_new
        hs[:, t] = h = h_new
    return out, h.copy(), c.copy()


def _initial(value: np.ndarray | None, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if value is None:
        return np.zeros(shape, dtype)
    return np.ascontiguousarray(np.broadcast_to(value, shape), dtype=dtype)


def make_conv_lstm_cell(
    class_name: str, config: dict, kernel: np.ndarray, recurrent: np.ndarray,
    bias: np.ndarray | None, activation: str, recurrent_activation: str,
) -> ConvLSTMCell:
    """A canonical ConvLSTM cell from a Keras ``ConvLSTM{1,2,3}D`` config and its weights
    (Keras stores the gates ``i, f, c, o``: already canonical). Raises ``ValueError``."""
    rank = CLASS_RANKS[class_name]

    def per_axis(key: str, default: int) -> tuple[int, ...]:
        value = config.get(key, default)
        values = tuple(int(v) for v in (value if isinstance(value, list | tuple) else [value] * rank))
        if len(values) != rank or any(v < 1 for v in values):
            raise ValueError(f"{key}={value!r} does not fit a {rank}-d convolution")
        return values

    padding = str(config.get("padding", "valid")).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"padding={padding!r} is not supported (valid, same)")
    data_format = config.get("data_format") or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format={data_format!r} is not supported")
    strides, dilation = per_axis("strides", 1), per_axis("dilation_rate", 1)
    if max(strides) > 1 and max(dilation) > 1:
        raise ValueError("strides > 1 together with dilation_rate > 1 is not a valid convolution")
    conv = ConvSpec(kernel_size=per_axis("kernel_size", 1), strides=strides, dilation_rate=dilation,
                    padding=padding, data_format=data_format)
    return ConvLSTMCell(
        kind="lstm", units=int(config["filters"]), kernel=np.asarray(kernel),
        recurrent_kernel=np.asarray(recurrent), bias=None if bias is None else np.asarray(bias),
        activation=activation, recurrent_activation=recurrent_activation, layout="keras_lstm",
        conv=conv,
    )
