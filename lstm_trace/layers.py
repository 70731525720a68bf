"""Non-recurrent layers replayed in NumPy on the way to a traced recurrent layer.

Each layer maps ``(x, mask) -> (x, mask)`` at inference time: ``x`` is
``(batch, steps, features)`` (or ``(batch, steps)`` token ids before an Embedding)
and ``mask`` is ``(batch, steps)`` booleans or ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Mask = np.ndarray | None


class LayerReplayError(ValueError):
    """A layer on the path to a traced layer cannot be replayed in NumPy."""


@dataclass
class UpstreamLayer:
    """Base class: a named layer with an inference-time ``apply``."""

    name: str
    class_name: str

    replayable = True

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        raise NotImplementedError

    def apply_many(self, xs: list[np.ndarray], masks: list[Mask]) -> tuple[np.ndarray, Mask]:
        """Layers with several inputs (Concatenate, Add, ...) override this."""
        raise LayerReplayError(
            f"layer {self.name!r} ({self.class_name}) has {len(xs)} inputs, which lstm-trace "
            "cannot replay; pass --layer-input with INPUT being the traced layer's own input"
        )

    def describe(self) -> str:
        """A short description of what the replay does (for ``inspect``)."""
        return self.class_name


@dataclass
class Identity(UpstreamLayer):
    """Layers that do nothing at inference: Dropout and friends, noise layers, InputLayer."""

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        return x, mask

    def describe(self) -> str:
        return f"{self.class_name} (identity at inference)"


@dataclass
class Unsupported(UpstreamLayer):
    """A layer lstm-trace cannot replay; tracing past it needs ``--layer-input``."""

    reason: str = ""
    config: dict = field(default_factory=dict, repr=False)

    replayable = False

    def apply(self, x: np.ndarray, mask: Mask) -> tuple[np.ndarray, Mask]:
        why = f" ({self.reason})" if self.reason else ""
        raise LayerReplayError(
            f"layer {self.name!r} ({self.class_name}) cannot be replayed in NumPy{why}; "
            "pass --layer-input with INPUT being the traced layer's own input"
        )

    def describe(self) -> str:
        return f"{self.class_name} (not replayable{': ' + self.reason if self.reason else ''})"
