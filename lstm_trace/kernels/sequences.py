"""Binding a cell to its compiled sequence kernel: arrays and options into ``KernelArgs``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..cells import cell_kind
from . import ACTIVATION_CODES, SequenceKernel
from ._native import KernelArgs, Library

#: ``LSTM_TRACE_THREADS=N`` caps the kernels' threads (default: the CPUs this process may use,
#: at most 8). Each row of a batch is its own recurrence, so a kernel runs blocks of rows on
#: threads of their own, with no step-by-step synchronisation, for sequences of at least
#: :data:`SPLIT_MIN_VALUES` gate values (batch x steps x gate width).
THREADS_ENV = "LSTM_TRACE_THREADS"
SPLIT_MIN_VALUES = 65536


def _threads() -> int:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        wanted = int(os.environ.get(THREADS_ENV, cpus))
    except ValueError:
        wanted = cpus
    return max(1, min(wanted, 8))


THREADS = _threads()

if TYPE_CHECKING:
    from ..network import Cell


def _array(a: np.ndarray | None, dtype: np.dtype, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    if a is None:
        return None
    if shape is not None:
        a = np.broadcast_to(a, shape)
    return np.ascontiguousarray(a, dtype=dtype)


def _ptr(a: np.ndarray | None) -> int | None:
    return None if a is None else a.ctypes.data


def bind(lib: Library, cell: Cell, dtype: np.dtype) -> SequenceKernel:
    """A function running ``cell`` over whole sequences with the compiled kernel.

    It takes ``x`` ``(batch, steps, features)``, ``mask`` ``(batch, steps)`` or ``None``,
    the initial states ``h0`` ``(batch, state)`` and ``c0`` (LSTM), and ``reverse``. It
    returns ``(arrays, final hidden, final cell or None)``: every recorded quantity
    ``(batch, steps, width)`` by input position, gates 0 on masked steps, states carried.

    ``x W`` is one product for all steps (per block of rows, on the block's thread); the kernel
    adds ``b`` (and a run-time forget bias) as it reads each row, in the reference's order, so
    the bias costs no pass of its own.
    The gates are written over ``x W`` in place (one buffer fewer to fill: a quarter of the
    time of a wide batch went to the kernel zeroing fresh pages), so the gate arrays are
    strided views of it, like slices of a fused gate tensor; ``cell`` and ``hidden`` (a
    SimpleRNN's is the projection buffer itself) are C-contiguous.
    """
    u = cell.units
    W = _array(cell.kernel, dtype)
    b = _array(cell.bias, dtype)
    U = _array(cell.recurrent_kernel, dtype)
    rb = _array(cell.recurrent_bias, dtype)
    peep = cell.peepholes or {}
    p_i, p_f, p_o = (_array(peep.get(k), dtype, (u,)) for k in ("input_gate", "forget_gate", "output_gate"))
    P = _array(cell.projection, dtype)
    kind = cell_kind(cell.kind)
    quantities = kind.quantities  # the order of KernelArgs.out
    # The recorded gates, in fused order: the blocks of x W + b that the kernel overwrites.
    gates = [g for g in kind.gates if g in quantities]
    is_lstm = cell.kind == "lstm"

    def run(x: np.ndarray, mask: np.ndarray | None, h0: np.ndarray, c0: np.ndarray | None,
            reverse: bool) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
        batch, steps, features = x.shape
        h0 = _array(h0, dtype, (batch, cell.state_size))
        c0 = _array(c0, dtype, (batch, u)) if is_lstm else None
        x = np.ascontiguousarray(x, dtype=dtype)
        xw = np.empty((batch, steps, W.shape[1]), dtype)  # the kernel's x W; its gates go over it
        arrays = {q: xw[:, :, k * u:(k + 1) * u] for k, q in enumerate(gates)}
        if cell.kind == "simple_rnn":
            arrays["hidden"] = xw  # h' = φ(x W + b + h U) in place
        else:  # cell and hidden: C-contiguous, in one allocation (huge pages when large)
            split = batch * steps * u if is_lstm else 0
            flat = np.empty(split + batch * steps * cell.state_size, dtype)
            if is_lstm:
                arrays["cell"] = flat[:split].reshape(batch, steps, u)
            arrays["hidden"] = flat[split:].reshape(batch, steps, cell.state_size)
        if batch == 0:
            return arrays, h0.copy(), None if c0 is None else c0.copy()
        mask8 = None if mask is None else np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
        h_final = np.empty((batch, cell.state_size), dtype)
        c_final = np.empty((batch, u), dtype) if is_lstm else None
        args = KernelArgs(
            batch=batch, steps=steps, units=u, state=cell.state_size, reverse=int(reverse),
            activation=ACTIVATION_CODES[cell.activation],
            recurrent_activation=ACTIVATION_CODES.get(cell.recurrent_activation, 0),
            reset_after=int(cell.reset_after),
            has_cell_clip=int(cell.cell_clip is not None), has_proj_clip=int(cell.proj_clip is not None),
            cell_clip=cell.cell_clip or 0.0, proj_clip=cell.proj_clip or 0.0,
            has_forget_bias=int(is_lstm and bool(cell.forget_bias)),
            forget_bias=float(cell.forget_bias or 0.0) if is_lstm else 0.0,
            features=features, x=_ptr(x), W=_ptr(W),
            xw=_ptr(xw), bias=_ptr(b), U=_ptr(U), recurrent_bias=_ptr(rb),
            peep_i=_ptr(p_i), peep_f=_ptr(p_f), peep_o=_ptr(p_o), P=_ptr(P if is_lstm else None),
            mask=_ptr(mask8), h0=_ptr(h0), c0=_ptr(c0), threads=THREADS, split_min=SPLIT_MIN_VALUES,
            h_final=_ptr(h_final), c_final=_ptr(c_final),
        )
        for k, q in enumerate(quantities):
            if q in ("cell", "hidden"):
                args.out[k] = arrays[q].ctypes.data
        lib.call(cell.kind, dtype, args)
        return arrays, h_final, c_final

    return run
