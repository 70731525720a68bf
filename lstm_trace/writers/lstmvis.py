"""LSTMVis project directory: a trace that LSTMVis (Strobelt et al.) opens as it is.

``lstm-trace MODEL INPUT --format lstmvis -o DIR [--vocab FILE]`` writes::

    DIR/
      lstm.yml      LSTMVis's config: the files, the word sequence, one states entry per
                    traced state (``type: state`` = cell state c, ``type: output`` =
                    hidden h; GRU and SimpleRNN have only ``hidden``, listed as ``state``)
      states.h5     one (positions, units) float32 dataset per state, at the trace key
                    (``lstm/cell``, ``lstm/hidden``, ``bi/backward/hidden``)
      words.h5      ``word_ids``: (positions,) int64, the token id at each position
      words.dict    ``word id`` per line: the word of each id

LSTMVis reads one long sequence: all samples are concatenated in order and the steps a
layer's mask leaves out (padding) are dropped, so position ``p`` is the ``p``-th used
step. The word sequence follows the first traced layer's mask. Word ids are the input's
token ids (a model that starts with an Embedding); for one-hot float input over as many
features as ``--vocab`` has lines, the hot feature's index; otherwise the step numbers.
Words come from ``--vocab`` (one token per line, line ``i`` is id ``i``; for step
numbers: one label per step), else they are the ids themselves (``t0``, ``t1``, ... for
step numbers); whitespace inside a word becomes ``_`` (LSTMVis splits dict lines on
whitespace). Layers are numbered from 1 in
trace order (each direction of a bidirectional layer is a layer of its own).

Add the directory to LSTMVis's data directory and start its server
(``python lstm_server.py -dir <datadir>``). States are written as they come, sample
by sample, into resizable datasets: memory stays flat.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, is_stdout
from ..errors import OptionError
from ..streaming import TraceSource
from ..trace import Trace
from ._spill import PIECE_ROWS, groups, row_pieces

STATES_FILE = "states.h5"
WORDS_FILE = "words.h5"
DICT_FILE = "words.dict"


def write(
    trace: Trace, output: str | os.PathLike[str] | None, *,
    inputs: np.ndarray | None = None, vocab: Sequence[str] | None = None,
) -> None:
    """Write the in-memory ``trace`` as an LSTMVis project directory (see :func:`write_source`)."""
    write_source(TraceSource.from_trace(trace), output, inputs=inputs, vocab=vocab)


def write_source(
    source: TraceSource,
    output: str | os.PathLike[str] | None,
    *,
    inputs: np.ndarray | None = None,
    vocab: Sequence[str] | None = None,
    name: str = "lstm-trace",
    description: str = "",
) -> None:
    """Write ``source`` as an LSTMVis project directory ``output``, atomically.

    ``inputs`` is the traced input: token ids ``(batch, steps)`` or float features
    ``(batch, steps, features)`` (one-hot over ``vocab``: the hot index is the word id);
    without it, for other features, or when the trace has other steps than the input (a
    pooling or strided layer before the traced one), word ids are step numbers. ``vocab`` is the word
    of each id.
    """
    import h5py

    if is_stdout(output):
        raise OptionError("lstmvis writes a directory: give one with -o DIR")
    parts = groups(source.layers, source.keys)
    states = [(layer.key(direction, q), kind, number)
              for number, (layer, direction, quantities) in enumerate(parts, start=1)
              for q, kind in (("cell", "state"),
                              ("hidden", "output" if "cell" in quantities else "state"))
              if q in quantities]
    if not states:
        raise OptionError("the trace holds no cell or hidden state to write for LSTMVis")
    word_ids, steps_as_words = word_reader(inputs, vocab, source.batch, source.steps)
    first = parts[0]
    word_key = first[0].key(first[1], "hidden")
    max_id = -1
    with atomic_path(output, directory=True) as tmp:
        with h5py.File(tmp / STATES_FILE, "w") as sf, h5py.File(tmp / WORDS_FILE, "w") as wf:
            datasets = {}
            for key, _, _ in states:
                info = source.keys[key]
                width = info.shape[2]
                rows = max(1, min(4096, 2**20 // max(1, 4 * width)))
                datasets[key] = sf.create_dataset(key, shape=(0, width), maxshape=(None, width),
                                                  dtype=np.float32, chunks=(rows, width))
            words = wf.create_dataset("word_ids", shape=(0,), maxshape=(None,), dtype=np.int64,
                                      chunks=(4096,))
            for piece in row_pieces(source, max_rows=PIECE_ROWS):
                mask = piece.arrays.get("mask")
                for q, values in piece.arrays.items():
                    key = piece.layer.key(piece.direction, q)
                    if key in datasets:
                        _append(datasets[key], _used(values, mask))
                if piece.layer.key(piece.direction, "hidden") == word_key:
                    ids = _used(word_ids(piece.samples, piece.steps), mask)
                    if ids.size:
                        max_id = max(max_id, int(ids.max()))
                    _append(words, ids)
        _write_dict(tmp / DICT_FILE, max_id, vocab, steps_as_words=steps_as_words)
        _write_config(tmp / "lstm.yml", states, name=name, description=description)


def _used(values: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """The rows of ``values`` ``(samples, steps, ...)`` at used steps, in order, flattened to positions."""
    if mask is None:
        return values.reshape(-1, *values.shape[2:])
    return values[mask.astype(bool)]


def _append(dataset, rows: np.ndarray) -> None:  # noqa: ANN001 - an h5py Dataset
    if not rows.shape[0]:
        return
    n = dataset.shape[0]
    dataset.resize(n + rows.shape[0], axis=0)
    dataset[n:] = rows


def word_reader(
    inputs: np.ndarray | None, vocab: Sequence[str] | None, batch: int, steps: int
) -> tuple[Callable[[tuple[int, int], tuple[int, int]], np.ndarray], bool]:
    """A function giving the word ids of samples ``[s0, s1)`` × steps ``[t0, t1)``, and
    whether they are step numbers."""
    if not isinstance(inputs, np.ndarray):
        inputs = None  # ONNX graph inputs fed by name, in the graph's own layout: step numbers
    if inputs is not None and inputs.ndim == 1:
        inputs = inputs[None] if inputs.dtype.kind in "iu" else inputs
    if inputs is not None and inputs.ndim == 2 and inputs.dtype.kind in "iu" \
            and inputs.shape[1] == steps:
        # (A layer before the traced one that changes the step count (pooling, strides) leaves
        # no token per traced step: the words are then step numbers.)
        if inputs.shape != (batch, steps):
            raise OptionError(f"token ids of shape {inputs.shape} do not match the trace "
                             f"({batch} samples, {steps} steps)")
        return (lambda s, t: np.asarray(inputs[s[0]:s[1], t[0]:t[1]], dtype=np.int64)), False
    if inputs is not None and vocab is not None and inputs.shape[-1] == len(vocab) \
            and inputs.shape[-2] == steps:
        x = inputs[None] if inputs.ndim == 2 else inputs

        def hot(s: tuple[int, int], t: tuple[int, int]) -> np.ndarray:
            part = np.asarray(x[s[0]:s[1], t[0]:t[1]])
            if not np.all(((part == 1).sum(axis=-1) == 1) & ((part == 0).sum(axis=-1) == part.shape[-1] - 1)):
                raise OptionError(f"the input's {len(vocab)} features are not one-hot at every step "
                                 f"of samples {s[0]}..{s[1] - 1}; --vocab names one-hot features "
                                 "or token ids")
            return part.argmax(axis=-1).astype(np.int64)

        return hot, False
    return (lambda s, t: np.broadcast_to(np.arange(t[0], t[1], dtype=np.int64),
                                         (s[1] - s[0], t[1] - t[0]))), True


def _write_dict(path: Path, max_id: int, vocab: Sequence[str] | None, *, steps_as_words: bool) -> None:
    """``word id`` lines for ids ``0..max_id`` (and every vocab entry)."""
    count = max(max_id + 1, len(vocab) if vocab is not None else 0)
    lines = []
    for i in range(count):
        if vocab is not None and i < len(vocab):
            word = "_".join(vocab[i].split()) or f"<{i}>"
        else:
            word = f"t{i}" if steps_as_words else str(i)
        lines.append(f"{word} {i}\n")
    path.write_text("".join(lines), encoding="utf-8")


def _write_config(
    path: Path, states: list[tuple[str, str, int]], *, name: str, description: str
) -> None:
    """LSTMVis's ``lstm.yml`` (plain YAML flow style, no YAML library needed)."""
    def quoted(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'

    types = ",\n".join(f"    {{type: {kind}, layer: {number}, path: {quoted(key)}}}"
                       for key, kind, number in states)
    path.write_text(
        f"name: {quoted(name)}\n"
        f"description: {quoted(description or name)}\n"
        "files:\n"
        f"  states: {STATES_FILE}\n"
        f"  word_ids: {WORDS_FILE}\n"
        f"  words: {DICT_FILE}\n"
        "word_sequence:\n"
        "  file: word_ids\n"
        "  path: word_ids\n"
        "  dict_file: words\n"
        "states:\n"
        "  file: states\n"
        f"  types: [\n{types}\n  ]\n",
        encoding="utf-8",
    )
