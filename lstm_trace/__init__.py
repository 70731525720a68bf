"""lstm-trace: open trained recurrent networks and record every gate at every step.

    >>> import lstm_trace
    >>> model = lstm_trace.load("model.keras")
    >>> trace = model.trace(x)            # x: (batch, steps, features)
    >>> trace["lstm/forget_gate"].shape   # (batch, steps, units)

Inputs too big for memory stream in chunks of samples and steps::

    >>> source = lstm_trace.trace_chunks(model, lstm_trace.open_npy("corpus.npy"))
    >>> for chunk in source:              # chunk.samples, chunk.steps: (start, stop)
    ...     chunk.trace["lstm/hidden"]    # (samples, steps, units) of this chunk
"""

from __future__ import annotations

from .engine import TraceError, run
from .loaders import LoadError, LoadOptions, load
from .network import Cell, Direction, Network, RecurrentLayer
from .streaming import TraceChunk, TraceSource, open_npy, trace_chunks
from .trace import Trace, TracedLayer

__version__ = "0.1.0"

__all__ = [
    "Cell", "Direction", "LoadError", "LoadOptions", "Network", "RecurrentLayer",
    "Trace", "TraceChunk", "TraceError", "TraceSource", "TracedLayer", "load", "open_npy", "run",
    "trace_chunks", "__version__",
]
