"""lstm-trace: open trained recurrent networks and record every gate at every step.

    >>> import lstm_trace
    >>> model = lstm_trace.load("model.keras")
    >>> trace = model.trace(x)            # x: (batch, steps, features)
    >>> trace["lstm/forget_gate"].shape   # (batch, steps, units)
"""

from __future__ import annotations

from .engine import TraceError, run
from .loaders import LoadError, LoadOptions, load
from .network import Cell, Direction, Network, RecurrentLayer
from .trace import Trace, TracedLayer

__version__ = "0.1.0"

__all__ = [
    "Cell", "Direction", "LoadError", "LoadOptions", "Network", "RecurrentLayer",
    "Trace", "TraceError", "TracedLayer", "load", "run", "__version__",
]
