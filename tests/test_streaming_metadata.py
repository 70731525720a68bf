"""A streamed trace describes itself without replaying its first chunk twice.

The CLI asks a source for its keys after writing it (the ``wrote ...`` line); the first
chunk had been handed out and dropped by then, and asking replayed it again (one chunk of
work for nothing, up to the chunk budget on a large input). Found while checking the step
counts of real models' traces (docs/real-models.md).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import lstm_trace
from lstm_trace.streaming import trace_chunks

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def test_keys_after_writing_do_not_replay_the_first_chunk():
    network = lstm_trace.load(SAMPLES / "brackets.keras")
    x = np.load(SAMPLES / "brackets_batch.npy")
    source = trace_chunks(network, x, batch_size=3)
    made = []
    make = source._make
    source._make = lambda: made.append(1) or make()
    before = source.keys
    chunks = list(source)
    assert len(chunks) > 1
    assert source.keys == before and source.layers[0].name == "lstm"
    assert source.step_counts() == {"lstm": x.shape[1]}
    assert len(made) == 1
