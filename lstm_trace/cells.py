"""One record per cell kind: what every other module knows about LSTM, GRU and SimpleRNN.

Gates (canonical fused order), the quantities a trace records (contract order), the states
carried from step to step, the gates that saturate (the sigmoid ones, for ``stats``) and the
state whose variance ``stats`` ranks. Gate orders of the frameworks' files are in
:mod:`lstm_trace.gates`; the step equations are in :class:`lstm_trace.network.Cell` and the
loops that run them in :mod:`lstm_trace.engine`. Nothing here imports either.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellKind:
    """The facts of one cell kind."""

    name: str
    #: Gate names in the order the canonical network fuses them (``G`` blocks of ``units``).
    gates: tuple[str, ...]
    #: Recorded quantities, in contract order (DESIGN.md "Canonical quantities").
    quantities: tuple[str, ...]
    #: States carried across steps (and across step chunks), ``hidden`` first.
    states: tuple[str, ...]
    #: Gates squashed into (0, 1) by the recurrent activation: their saturation is measured.
    saturating_gates: tuple[str, ...]
    #: The state whose per-unit variance over time ``stats`` ranks.
    memory: str

    @property
    def gate_count(self) -> int:
        return len(self.gates)


LSTM = CellKind(
    name="lstm",
    gates=("input_gate", "forget_gate", "candidate", "output_gate"),
    quantities=("input_gate", "forget_gate", "candidate", "output_gate", "cell", "hidden"),
    states=("hidden", "cell"),
    saturating_gates=("input_gate", "forget_gate", "output_gate"),
    memory="cell",
)
GRU = CellKind(
    name="gru",
    gates=("update_gate", "reset_gate", "candidate"),
    quantities=("update_gate", "reset_gate", "candidate", "hidden"),
    states=("hidden",),
    saturating_gates=("update_gate", "reset_gate"),
    memory="hidden",
)
SIMPLE_RNN = CellKind(
    name="simple_rnn",
    gates=("candidate",),
    quantities=("hidden",),
    states=("hidden",),
    saturating_gates=(),
    memory="hidden",
)

#: Every cell kind by name, in the order lstm, gru, simple_rnn.
CELL_KINDS: dict[str, CellKind] = {kind.name: kind for kind in (LSTM, GRU, SIMPLE_RNN)}

#: Every quantity name a trace may hold (gates and states of all kinds), in first-seen order.
ALL_QUANTITIES: tuple[str, ...] = tuple(dict.fromkeys(q for k in CELL_KINDS.values() for q in k.quantities))

#: Every gate that saturates, over all kinds (``input_gate``, ``forget_gate``, ...).
SATURATING_GATES: tuple[str, ...] = tuple(
    dict.fromkeys(g for k in CELL_KINDS.values() for g in k.saturating_gates)
)


def cell_kind(name: str) -> CellKind:
    """The record of ``name``; a ``ValueError`` naming the known kinds otherwise."""
    try:
        return CELL_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown cell kind {name!r} (known: {', '.join(CELL_KINDS)})") from None
