"""Options a user passes to a loader to override what a file does not say."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadOptions:
    """Overrides for facts a file may not carry (weights-only files, TF1 checkpoints).

    ``None`` means: use what the file says, or the documented default (and note it).
    """

    activation: str | None = None
    recurrent_activation: str | None = None
    forget_bias: float | None = None
    cell_clip: float | None = None
    proj_clip: float | None = None
    reset_after: bool | None = None
    #: A Keras ``model.to_json()`` file supplying names and options for a config-less file.
    config_path: str | None = None
