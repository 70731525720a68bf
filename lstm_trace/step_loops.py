"""The NumPy step loops: one per cell kind, the reference every faster path is tested against.

Each loop walks one direction of one cell over a whole sequence, a step at a time, with
the equations of :class:`~lstm_trace.network.Cell` written out in NumPy (Flax keeps its
plain ``LSTMCell`` beside ``OptimizedLSTMCell`` the same way): the input projection
``x W + b`` is one matmul over ``batch * steps``, then each step does ``h U`` and the
elementwise gate math and writes into preallocated ``(batch, steps, width)`` arrays, by
input position. :func:`lstm_steps_fused` is the one faster NumPy loop (the common Keras
LSTM); the compiled kernels (:mod:`lstm_trace.kernels`) are tested against these loops,
and the driver (:mod:`lstm_trace.engine`) runs them for every cell the kernels do not
cover (and for every cell without the compiled library).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from .activations import get_activation
from .network import QUANTITIES, Cell


def run_sequence(
    cell: Cell, x: np.ndarray, mask: np.ndarray | None, h: np.ndarray, c: np.ndarray | None,
    reverse: bool,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """``cell`` over ``x`` ``(batch, steps, features)`` from states ``h`` (and ``c``, LSTM).

    Returns every recorded quantity ``(batch, steps, width)`` by input position, the final
    hidden state and the final cell state (``None`` but for an LSTM). On a masked step the
    states carry over; the gates recorded there are whatever the step computed (the driver
    sets them to 0).
    """
    batch, steps, _ = x.shape
    out = output_arrays(cell, batch, steps, x.dtype)
    if cell.kind == "lstm" and lstm_fusable(cell, mask):  # projects step-major itself
        h, c = lstm_steps_fused(cell, x, h, c, reverse, out)
        return out, h, c
    xw = input_projection(cell, x)
    if cell.kind == "lstm":
        h, c = lstm_steps(cell, xw, mask, h, c, reverse, out)
        return out, h, c
    if cell.kind == "gru":
        return out, gru_steps(cell, xw, mask, h, reverse, out), None
    return out, simple_rnn_steps(cell, xw, mask, h, reverse, out), None


def output_arrays(cell: Cell, batch: int, steps: int, dtype: np.dtype) -> dict[str, np.ndarray]:
    """Uninitialised C-contiguous ``(batch, steps, width)`` arrays for each recorded quantity.

    They are views of one allocation: NumPy backs a large one with huge pages, which saves
    thousands of page faults over separate arrays of a few MB each (a quarter of the
    kernels' time on LSTM(128) x batch 64 x 100 steps).
    """
    widths = [cell.state_size if q == "hidden" else cell.units for q in QUANTITIES[cell.kind]]
    block = np.empty(batch * steps * sum(widths), dtype=dtype)
    out, start = {}, 0
    for q, width in zip(QUANTITIES[cell.kind], widths, strict=True):
        size = batch * steps * width
        out[q] = block[start:start + size].reshape(batch, steps, width)
        start += size
    return out


def step_order(reverse: bool, steps: int) -> Iterable[int]:
    return range(steps - 1, -1, -1) if reverse else range(steps)


def lstm_steps(
    cell: Cell, xw: np.ndarray, mask: np.ndarray | None, h: np.ndarray, c: np.ndarray,
    reverse: bool, out: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """The LSTM step loop (equations in :class:`~lstm_trace.network.Cell`)."""
    u = cell.units
    sigma = get_activation(cell.recurrent_activation)
    phi = get_activation(cell.activation)
    psi = get_activation(cell.hidden_activation)
    clip = cell.gate_clip
    U = cell.recurrent_kernel
    peep = cell.peepholes or {}
    p_i, p_f, p_o = (peep.get(k) for k in ("input_gate", "forget_gate", "output_gate"))
    P = cell.projection
    z = np.empty((xw.shape[0], 4 * u), dtype=xw.dtype)
    gi, gf, gc, go = out["input_gate"], out["forget_gate"], out["candidate"], out["output_gate"]
    cs, hs = out["cell"], out["hidden"]
    for t in step_order(reverse, xw.shape[1]):
        np.matmul(h, U, out=z)
        z += xw[:, t]
        if p_i is not None:
            z[:, :u] += p_i * c
        if p_f is not None:
            z[:, u:2 * u] += p_f * c
        if clip is not None:
            np.clip(z[:, :3 * u], -clip, clip, out=z[:, :3 * u])
        i = sigma(z[:, :u])
        f = 1 - i if cell.coupled_input_forget else sigma(z[:, u:2 * u])
        g = phi(z[:, 2 * u:3 * u])
        c_new = f * c + i * g
        if cell.cell_clip is not None:
            np.clip(c_new, -cell.cell_clip, cell.cell_clip, out=c_new)
        if p_o is not None:
            z[:, 3 * u:] += p_o * c_new
        if clip is not None:
            np.clip(z[:, 3 * u:], -clip, clip, out=z[:, 3 * u:])
        o = sigma(z[:, 3 * u:])
        h_new = o * psi(c_new)
        if P is not None:
            h_new = h_new @ P
            if cell.proj_clip is not None:
                np.clip(h_new, -cell.proj_clip, cell.proj_clip, out=h_new)
        if mask is not None:
            keep = mask[:, t, None]
            c_new = np.where(keep, c_new, c)
            h_new = np.where(keep, h_new, h)
        gi[:, t], gf[:, t], gc[:, t], go[:, t] = i, f, g, o
        cs[:, t] = c = c_new
        hs[:, t] = h = h_new
    return h, c


def lstm_fusable(cell: Cell, mask: np.ndarray | None) -> bool:
    """Whether :func:`lstm_steps_fused` covers ``cell``: the common Keras LSTM and nothing extra."""
    return (
        cell.recurrent_activation == "sigmoid" and cell.activation == "tanh" and mask is None
        and cell.hidden_activation == "tanh" and cell.gate_clip is None
        and not cell.coupled_input_forget
        and not cell.peepholes and cell.projection is None and cell.cell_clip is None
    )


def lstm_steps_fused(
    cell: Cell, x: np.ndarray, h: np.ndarray, c: np.ndarray, reverse: bool,
    out: dict[str, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lstm_steps` for σ = sigmoid, φ = tanh without peepholes, projection, clip or mask.

    Same equations on ``x`` ``(batch, steps, features)``, in about ten NumPy calls a step
    instead of thirty, with no allocation and no copy in the loop:

    - σ(z) = ½·tanh(½·z) + ½, and scaling by ½ is exact in binary floating point. So the
      sigmoid columns (i, f, o) of ``U`` and of ``x W + b`` are pre-scaled by ½ once; then one
      ``tanh`` covers all four gates of a step and one multiply-add per column (``½, ½`` for
      σ, ``1, 0`` for the candidate) finishes them.
    - Everything is step-major: the input projection is one matmul over the transposed input
      (the BLAS may round a few of its sums differently from a batch-major matmul: the two
      loops can differ by one float ulp), each step turns its own contiguous row of it into
      the gates in place, and ``c``/``h`` go straight into ``(steps, batch, units)`` arrays.
      The recorded quantities replace ``out``'s arrays as ``(batch, steps, units)``
      *transposed views* of those buffers: nothing is copied, so they are not C-contiguous.
    """
    batch, steps, _ = x.shape
    u = cell.units
    width = 4 * u
    scale = np.full(width, 0.5, dtype=x.dtype)
    scale[2 * u:3 * u] = 1
    shift = np.full(width, 0.5, dtype=x.dtype)
    shift[2 * u:3 * u] = 0
    U = cell.recurrent_kernel * scale
    # ½z | z for every step, (steps, batch, 4u); step t's row becomes [i | f | g | o] in place.
    gates = input_projection(cell, np.ascontiguousarray(x.transpose(1, 0, 2)))
    gates *= scale
    cs = np.empty((steps, batch, u), x.dtype)
    hs = np.empty((steps, batch, u), x.dtype)
    hu = np.empty((batch, width), x.dtype)
    ig = np.empty((batch, u), x.dtype)
    for t in step_order(reverse, steps):
        a = gates[t]
        np.matmul(h, U, out=hu)
        a += hu
        np.tanh(a, out=a)
        a *= scale
        a += shift  # a = [i | f | g | o]
        np.multiply(a[:, u:2 * u], c, out=cs[t])
        np.multiply(a[:, :u], a[:, 2 * u:3 * u], out=ig)
        cs[t] += ig  # c' = f ⊙ c + i ⊙ g
        np.tanh(cs[t], out=hs[t])
        hs[t] *= a[:, 3 * u:]  # h' = o ⊙ tanh(c')
        c, h = cs[t], hs[t]
    for k, q in enumerate(("input_gate", "forget_gate", "candidate", "output_gate")):
        out[q] = gates[:, :, k * u:(k + 1) * u].transpose(1, 0, 2)
    out["cell"] = cs.transpose(1, 0, 2)
    out["hidden"] = hs.transpose(1, 0, 2)
    return h.copy(), c.copy()


def gru_steps(
    cell: Cell, xw: np.ndarray, mask: np.ndarray | None, h: np.ndarray,
    reverse: bool, out: dict[str, np.ndarray],
) -> np.ndarray:
    """The GRU step loop, both reset_after variants (equations in :class:`~lstm_trace.network.Cell`)."""
    u = cell.units
    sigma = get_activation(cell.recurrent_activation)
    phi = get_activation(cell.activation)
    U = cell.recurrent_kernel
    U_zr, U_h = U[:, :2 * u], U[:, 2 * u:]
    rb = cell.recurrent_bias
    clip = cell.gate_clip

    def pre(a: np.ndarray) -> np.ndarray:  # ⌊·⌉: the gate_clip of every pre-activation
        return a if clip is None else np.clip(a, -clip, clip, out=a)

    gz, gr, gc, hs = out["update_gate"], out["reset_gate"], out["candidate"], out["hidden"]
    for t in step_order(reverse, xw.shape[1]):
        xt = xw[:, t]
        if cell.reset_after:
            hu = h @ U
            if rb is not None:
                hu += rb
            z = sigma(pre(xt[:, :u] + hu[:, :u]))
            r = sigma(pre(xt[:, u:2 * u] + hu[:, u:2 * u]))
            g = phi(pre(xt[:, 2 * u:] + r * hu[:, 2 * u:]))
        else:
            hu = h @ U_zr
            if rb is not None:
                hu += rb[:2 * u]
            z = sigma(pre(xt[:, :u] + hu[:, :u]))
            r = sigma(pre(xt[:, u:2 * u] + hu[:, u:]))
            hh = (r * h) @ U_h
            if rb is not None:
                hh += rb[2 * u:]
            g = phi(pre(xt[:, 2 * u:] + hh))
        h_new = z * h + (1 - z) * g
        if mask is not None:
            h_new = np.where(mask[:, t, None], h_new, h)
        gz[:, t], gr[:, t], gc[:, t] = z, r, g
        hs[:, t] = h = h_new
    return h


def simple_rnn_steps(
    cell: Cell, xw: np.ndarray, mask: np.ndarray | None, h: np.ndarray,
    reverse: bool, out: dict[str, np.ndarray],
) -> np.ndarray:
    """The SimpleRNN step loop: ``h' = φ(⌊x W + h U + b⌉)``."""
    phi = get_activation(cell.activation)
    U = cell.recurrent_kernel
    clip = cell.gate_clip
    hs = out["hidden"]
    for t in step_order(reverse, xw.shape[1]):
        a = xw[:, t] + h @ U
        if clip is not None:
            np.clip(a, -clip, clip, out=a)
        h_new = phi(a)
        if mask is not None:
            h_new = np.where(mask[:, t, None], h_new, h)
        hs[:, t] = h = h_new
    return h


def input_projection(cell: Cell, x: np.ndarray) -> np.ndarray:
    """``x W + b`` for all steps at once, with any run-time forget bias folded in."""
    batch, steps, features = x.shape
    xw = (x.reshape(batch * steps, features) @ cell.kernel).reshape(batch, steps, cell.kernel.shape[1])
    if cell.bias is not None:
        xw += cell.bias
    if cell.kind == "lstm" and cell.forget_bias:
        u = cell.units
        xw[:, :, u:2 * u] += xw.dtype.type(cell.forget_bias)
    return xw
