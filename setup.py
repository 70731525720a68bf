"""Builds the optional compiled step kernels (lstm_trace/kernels/src/steps.c) with the
machine's C compiler; the rest of the project's metadata is in pyproject.toml.

The library is a plain C shared object loaded with ctypes (no Python headers needed). It
is optional: if it cannot be compiled the install still succeeds and the engine runs its
NumPy loops. In a source tree: ``python setup.py build_ext --inplace``.
"""

from setuptools import Extension, setup

KERNELS = Extension(
    "lstm_trace.kernels._steps",
    sources=["lstm_trace/kernels/src/steps.c"],
    depends=["lstm_trace/kernels/src/steps_impl.h"],
    # -ffp-contract=off: no fused multiply-adds the NumPy reference does not do;
    # -fno-trapping-math lets gcc vectorise the branch-free tanh (results unchanged).
    extra_compile_args=["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-std=c99",
                        "-pthread"],
    extra_link_args=["-pthread"],
    libraries=["m"],
    optional=True,
)

setup(ext_modules=[KERNELS])
