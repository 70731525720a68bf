"""What the readers of files without a layer config share (Keras weights-only ``.h5``,
TF2 object checkpoints, config-less SavedModels): the layers they assume and how they say so.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..layers import Embedding
from ..network import RecurrentLayer


def is_embedding_table(leaf_names: Sequence[str], shapes: Sequence[tuple[int, ...]]) -> bool:
    """A Keras ``Embedding``: exactly one 2-D variable whose leaf name is ``embeddings``."""
    return len(leaf_names) == 1 and len(shapes) == 1 and len(shapes[0]) == 2 \
        and leaf_names[0] == "embeddings"


def assumed_embedding(name: str, table: np.ndarray, notes: list[str], what: str,
                      file_says: str, remedy: str) -> Embedding:
    """An ``Embedding(mask_zero=False)``, with the note that the mask was assumed."""
    notes.append(
        f"{name}: {what}, assumed Embedding(mask_zero=False): {file_says} whether id 0 was "
        f"masked; {remedy}"
    )
    return Embedding(name, "Embedding", embeddings=table, mask_zero=False)


def drop_trailing_heads(layers: list) -> None:
    """Remove the non-recurrent layers after the last recurrent one: never needed to trace."""
    while layers and not isinstance(layers[-1], RecurrentLayer):
        layers.pop()
