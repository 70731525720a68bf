"""Loading the compiled step kernels (``src/steps.c``) and the BLAS they call.

The library is a plain C shared object (no Python API), built by the project's install
(``setup.py``: ``pip install .`` / ``make``; ``python setup.py build_ext --inplace`` in a
source tree) and loaded with :mod:`ctypes`. For ``h U`` it calls the ``cblas_?gemm`` of the
BLAS that NumPy itself loaded (found in ``/proc/self/maps``: NumPy's bundled OpenBLAS, a
system OpenBLAS, MKL), so its products are the ones ``np.matmul`` computes. Anything
missing (no compiled library, no ``/proc``, an unknown BLAS) makes :func:`library` return
``None`` and the engine runs its NumPy loops instead.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

#: The ABI version ``lstm_trace_kernels_abi()`` of a library this module can drive.
ABI = 3
#: ``LSTM_TRACE_KERNELS``: ``numpy`` turns the compiled kernels off (the NumPy loops run);
#: ``always`` uses them for work of any size; unset (``auto``): not for small work.
DISABLE_ENV = "LSTM_TRACE_KERNELS"


def mode() -> str:
    """``numpy``, ``always`` or ``auto``, from :data:`DISABLE_ENV`."""
    value = os.environ.get(DISABLE_ENV, "").lower()
    return value if value in ("numpy", "always") else "auto"

_c_ptr = ctypes.c_void_p


class KernelArgs(ctypes.Structure):
    """Mirror of ``kernel_args`` in ``src/steps.c`` (same fields, same order)."""

    _fields_ = [
        ("batch", ctypes.c_int64), ("steps", ctypes.c_int64),
        ("units", ctypes.c_int64), ("state", ctypes.c_int64), ("features", ctypes.c_int64),
        ("split_min", ctypes.c_int64),
        ("reverse", ctypes.c_int32), ("activation", ctypes.c_int32),
        ("recurrent_activation", ctypes.c_int32), ("reset_after", ctypes.c_int32),
        ("has_cell_clip", ctypes.c_int32), ("has_proj_clip", ctypes.c_int32),
        ("gemm_ilp64", ctypes.c_int32), ("threads", ctypes.c_int32),
        ("has_forget_bias", ctypes.c_int32),
        ("cell_clip", ctypes.c_double), ("proj_clip", ctypes.c_double), ("forget_bias", ctypes.c_double),
        ("x", _c_ptr), ("W", _c_ptr), ("xw", _c_ptr), ("bias", _c_ptr),
        ("U", _c_ptr), ("recurrent_bias", _c_ptr),
        ("peep_i", _c_ptr), ("peep_f", _c_ptr), ("peep_o", _c_ptr), ("P", _c_ptr),
        ("mask", _c_ptr), ("h0", _c_ptr), ("c0", _c_ptr),
        ("out", _c_ptr * 6), ("h_final", _c_ptr), ("c_final", _c_ptr),
        ("gemm", _c_ptr), ("blas_set_threads", _c_ptr),
    ]


@dataclass(frozen=True)
class Gemm:
    """A ``cblas_?gemm`` entry point; ``ilp64``: its integer arguments are 64-bit.

    ``set_threads``: the same library's ``openblas_set_num_threads_local`` (OpenBLAS 0.3.27+,
    which returns the previous count; it sets the count of the whole process), or 0. While a
    kernel runs blocks of batch rows on threads of its own, it sets OpenBLAS to one thread
    (then back), so the blocks' products do not also compete for OpenBLAS's threads.
    """

    address: int
    ilp64: bool
    set_threads: int = 0


@dataclass(frozen=True)
class Library:
    """The loaded kernels and, per dtype, the BLAS ``gemm`` they call."""

    handle: ctypes.CDLL
    gemm: dict[np.dtype, Gemm]

    def call(self, kind: str, dtype: np.dtype, args: KernelArgs) -> None:
        """Run ``<kind>_sequence_<f32|f64>`` on ``args`` (NumPy arrays behind its pointers)."""
        g = self.gemm[dtype]
        args.gemm, args.gemm_ilp64 = g.address, int(g.ilp64)
        args.blas_set_threads = g.set_threads or None
        name = f"{kind}_sequence_{'f32' if dtype == np.float32 else 'f64'}"
        if getattr(self.handle, name)(ctypes.byref(args)) != 0:
            raise MemoryError(f"lstm-trace step kernel {name}: out of memory")


def library_path() -> Path | None:
    """The compiled ``_steps`` library beside this module, if it was built."""
    here = Path(__file__).parent
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = here / f"_steps{suffix}"
        if path.is_file():
            return path
    return None


@cache
def library() -> Library | None:
    """The kernels ready to call, or ``None`` when they cannot run here (see module doc)."""
    if mode() == "numpy":
        return None
    path = library_path()
    if path is None:
        return None
    try:
        handle = ctypes.CDLL(str(path))
        if handle.lstm_trace_kernels_abi() != ABI:
            return None
    except (OSError, AttributeError):
        return None
    gemm = {}
    for dtype, letter in ((np.dtype(np.float32), "s"), (np.dtype(np.float64), "d")):
        found = _find_gemm(letter)
        if found is None:
            return None
        gemm[dtype] = found
    for kind in ("lstm", "gru", "simple_rnn"):
        for sfx in ("f32", "f64"):
            fn = getattr(handle, f"{kind}_sequence_{sfx}")
            fn.argtypes, fn.restype = [ctypes.POINTER(KernelArgs)], ctypes.c_int
    return Library(handle, gemm)


def loaded() -> bool:
    """Whether :func:`library` has been asked already (so using it costs nothing more)."""
    return library.cache_info().currsize > 0


def _find_gemm(letter: str) -> Gemm | None:
    """``cblas_<letter>gemm`` of a BLAS already loaded in this process (NumPy's)."""
    np.ones((2, 2)) @ np.ones((2, 2))  # make sure NumPy has loaded its BLAS
    try:
        with open("/proc/self/maps") as maps:
            libs = sorted({line.split()[-1] for line in maps
                           if line.rstrip().endswith(".so") or ".so." in line.rsplit("/", 1)[-1]})
    except OSError:
        return None
    candidates = [lib for lib in libs if any(k in Path(lib).name.lower() for k in ("blas", "mkl"))]
    names = ((f"scipy_cblas_{letter}gemm64_", True), (f"cblas_{letter}gemm64_", True),
             (f"cblas_{letter}gemm", False))
    for lib in candidates:
        try:
            handle = ctypes.CDLL(lib)
        except OSError:
            continue
        for name, ilp64 in names:
            fn = getattr(handle, name, None)
            if fn is not None:
                local = getattr(handle, "openblas_set_num_threads_local", None)
                return Gemm(_address(fn), ilp64, _address(local) if local is not None else 0)
    return None


def _address(fn: ctypes._CFuncPtr) -> int:
    return ctypes.cast(fn, ctypes.c_void_p).value
