"""Whole-sequence step kernels: the engine's fast path, proven equal to its NumPy loops.

Roles, as in Keras and Flax: a *cell* knows one step (the equations in
:class:`lstm_trace.network.Cell`, the plain NumPy loops ``lstm_steps`` / ``gru_steps`` /
``simple_rnn_steps`` in :mod:`lstm_trace.step_loops`, which stay the reference); the *driver*
(:func:`lstm_trace.engine.run_direction`) owns time, direction, masks and initial states; a
*kernel* owns a whole sequence of one direction for speed. Per step it runs ``h U`` on the
BLAS NumPy uses, then one pass over the batch that computes every gate and state and writes
it straight into the recorded ``(batch, steps, width)`` arrays (``src/steps.c``). Each batch
row is its own recurrence, so a big batch runs as blocks of rows on threads of their own
(``LSTM_TRACE_THREADS``, :mod:`.sequences`), each block's products on one BLAS thread.

Covered: LSTM (peepholes, projection, cell and projection clips, run-time forget bias,
masks, both directions), GRU (both ``reset_after`` variants, recurrent bias, masks),
SimpleRNN, in float32 and float64, with the activations of :data:`ACTIVATION_CODES`. Any
other cell, and every cell when the compiled library is not there, runs the NumPy loops:
:func:`sequence_kernel` returns ``None`` for it. A :class:`~lstm_trace.network.Cell` field
this module does not know (a feature added later) sends the cell to the NumPy loops unless
the field holds its default, so a new feature is never silently ignored here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..network import Cell

#: Activation names the kernels compute (codes of ``src/steps.c``), each exactly as
#: :mod:`lstm_trace.activations` defines it.
ACTIVATION_CODES = {
    "linear": 0, "tanh": 1, "sigmoid": 2, "hard_sigmoid": 3, "hard_sigmoid_keras2": 4, "relu": 5,
}

#: Cell fields the kernels implement (or that do not change a replay); any other field must
#: hold its default for a cell to take a kernel.
KNOWN_FIELDS = frozenset({
    "kind", "units", "kernel", "recurrent_kernel", "bias", "activation", "recurrent_activation",
    "recurrent_bias", "reset_after", "forget_bias", "peepholes", "projection", "cell_clip",
    "proj_clip", "layout", "tensor_names",
})

PEEPHOLES = ("input_gate", "forget_gate", "output_gate")

#: ``kernel(x, mask, h0, c0, reverse) -> (arrays, h_final, c_final or None)``
SequenceKernel = Callable[..., tuple[np.ndarray, np.ndarray | None]]


def supports(cell: Cell, dtype: np.dtype) -> bool:
    """Whether the kernels implement everything ``cell`` does (the library aside)."""
    if np.dtype(dtype) not in (np.float32, np.float64) or not _only_known_features(cell):
        return False
    if cell.activation not in ACTIVATION_CODES:
        return False
    if cell.kind == "simple_rnn":
        return True
    if cell.recurrent_activation not in ACTIVATION_CODES:
        return False
    if cell.kind == "lstm":
        return set(cell.peepholes or ()) <= set(PEEPHOLES)
    return cell.kind == "gru"


#: Below this much work (and until the library is loaded) the NumPy loops finish before
#: loading the compiled library would (ctypes, dlopen, finding the BLAS: a few ms).
SMALL_STEPS = 64
SMALL_VALUES = 1 << 18


def sequence_kernel(cell: Cell, dtype: np.dtype, batch: int | None = None,
                    steps: int | None = None) -> SequenceKernel | None:
    """The kernel that replays ``cell`` in ``dtype``, or ``None``: use the NumPy loops.

    With ``batch`` and ``steps``, small work (fewer than :data:`SMALL_STEPS` steps and
    :data:`SMALL_VALUES` gate values) does not load the library for itself, unless
    ``LSTM_TRACE_KERNELS=always``.
    """
    if not supports(cell, dtype):
        return None
    from ._native import library, loaded, mode

    small = (batch is not None and steps is not None and steps < SMALL_STEPS
             and batch * steps * cell.kernel.shape[1] < SMALL_VALUES)
    if small and mode() != "always" and not loaded():
        return None
    lib = library()
    if lib is None:
        return None
    from .sequences import bind

    return bind(lib, cell, np.dtype(dtype))


def _only_known_features(cell: Cell) -> bool:
    for f in dataclasses.fields(cell):
        if f.name in KNOWN_FIELDS:
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            return False
        value = getattr(cell, f.name)
        if value is default:
            continue
        try:
            if type(value) is type(default) and bool(value == default):
                continue
        except (TypeError, ValueError):
            pass
        return False
    return True
