"""A ``.keras`` archive written by Keras 2.11 / 2.12 names its weights ``variables.h5``.

Found on a real file: the ``basic-lstm-model`` package (Keras 2.11.0) holds such an archive
(inside a pickled scikit-learn pipeline). The layout inside ``variables.h5`` is the same as
in later versions' ``model.weights.h5``; lstm-trace refused the archive for lacking
``model.weights.h5``. Here the committed Keras sample is rewritten with the member renamed:
its trace must equal the original's exactly.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

import lstm_trace

SAMPLES = Path(__file__).resolve().parent.parent / "sample_models"


def test_variables_h5_archive_traces_like_the_original(tmp_path):
    original = SAMPLES / "brackets.keras"
    renamed = tmp_path / "keras211.keras"
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(renamed, "w") as dst:
        for name in src.namelist():
            dst.writestr("variables.h5" if name == "model.weights.h5" else name, src.read(name))
    x = np.load(SAMPLES / "brackets_batch.npy")
    want = lstm_trace.load(original).trace(x)
    got = lstm_trace.load(renamed).trace(x)
    assert sorted(got) == sorted(want)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key])
