"""The one builder of trace keys (DESIGN.md "Trace keys", a contract).

``<layer>/<quantity>`` for a one-direction layer, ``<layer>/<direction>/<quantity>`` for a
bidirectional one. Initial-state keys (``--initial-state``) and final-state keys follow the
same grammar with ``hidden``/``cell`` as the quantity.
"""

from __future__ import annotations


def key_prefix(layer: str, direction: str, bidirectional: bool) -> str:
    """``layer`` for a one-direction layer, ``layer/direction`` for a bidirectional one."""
    return f"{layer}/{direction}" if bidirectional else layer


def trace_key(prefix: str, quantity: str) -> str:
    """The key of ``quantity`` under a prefix made by :func:`key_prefix`."""
    return f"{prefix}/{quantity}"
