"""Binding a cell to its compiled sequence kernel: arrays and options into ``KernelArgs``."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from ..network import QUANTITIES
from . import ACTIVATION_CODES, SequenceKernel
from ._native import KernelArgs, Library

#: ``LSTM_TRACE_THREADS=N`` caps the threads of the kernels' row pass (default: the CPUs this
#: process may use, at most 8). Only steps of at least 131072 gate values use more than one.
THREADS_ENV = "LSTM_TRACE_THREADS"


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

    It takes ``xw`` ``(batch, steps, G*units)`` (``x W + b`` with any forget bias folded in),
    ``mask`` ``(batch, steps)`` or ``None``, the initial states ``h0`` ``(batch, state)`` and
    ``c0`` (LSTM) and ``reverse``; writes every quantity into ``out``'s C-contiguous
    ``(batch, steps, width)`` arrays (gates 0 on masked steps, states carried) and returns the
    final ``(hidden, cell)`` (``cell`` is ``None`` but for an LSTM).
    """
    u = cell.units
    U = _array(cell.recurrent_kernel, dtype)
    rb = _array(cell.recurrent_bias, dtype)
    peep = cell.peepholes or {}
    p_i, p_f, p_o = (_array(peep.get(k), dtype, (u,)) for k in ("input_gate", "forget_gate", "output_gate"))
    P = _array(cell.projection, dtype)
    quantities = QUANTITIES[cell.kind]
    is_lstm = cell.kind == "lstm"

    def run(xw: np.ndarray, mask: np.ndarray | None, h0: np.ndarray, c0: np.ndarray | None,
            reverse: bool, out: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        batch, steps, _ = xw.shape
        h0 = _array(h0, dtype, (batch, cell.state_size))
        c0 = _array(c0, dtype, (batch, u)) if is_lstm else None
        if batch == 0:
            return h0.copy(), None if c0 is None else c0.copy()
        xw = _array(xw, dtype)
        arrays = [out[q] for q in quantities]
        for q, a in zip(quantities, arrays, strict=True):
            width = cell.state_size if q == "hidden" else u
            if a.dtype != dtype or a.shape != (batch, steps, width) or not a.flags.c_contiguous:
                raise ValueError(f"kernel output {q!r} must be C-contiguous {dtype} {(batch, steps, width)}")
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
            xw=_ptr(xw), U=_ptr(U), recurrent_bias=_ptr(rb),
            peep_i=_ptr(p_i), peep_f=_ptr(p_f), peep_o=_ptr(p_o), P=_ptr(P if is_lstm else None),
            mask=_ptr(mask8), h0=_ptr(h0), c0=_ptr(c0), threads=THREADS,
            h_final=_ptr(h_final), c_final=_ptr(c_final),
        )
        for k, a in enumerate(arrays):
            args.out[k] = a.ctypes.data
        lib.call(cell.kind, dtype, args)
        return h_final, c_final

    return run
