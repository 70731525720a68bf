"""Writes the Keras 1.x ``.h5`` files of docs/keras-layers.md ("Keras 1.x files").

    python keras1_files.py OUTDIR

Keras 1 cannot be installed beside TensorFlow 2, so the files are written with h5py by the
writers of ``tests/test_keras1.py`` (the Keras 1 layout as this project reads Keras 1's
source; see that module), with the seed its CLI test uses:

- ``keras1_bidirectional.h5``: a Keras 1.2 functional model, ``Bidirectional(LSTM(3))``
  named ``bidirectional_1`` (``case_bidirectional``);
- ``keras1_weights_only.h5``: a Keras 1.0 ``save_weights`` file, ``Bidirectional(LSTM(3))``
  → ``Dropout`` → ``GRU(4)``, no version, no config (``case_weights_only``);
- ``keras1_x.npy``: ``(2, 7, 3)`` float32, the input ``case_bidirectional`` draws.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def main(out: Path) -> None:
    import numpy as np

    sys.path[:0] = [str(TESTS), str(TESTS.parent)]
    from common import write_manifest
    from test_keras1 import case_bidirectional, case_weights_only

    with tempfile.TemporaryDirectory() as tmp:
        path, x, _ = case_bidirectional(Path(tmp), np.random.default_rng(7))
        shutil.move(path, out / "keras1_bidirectional.h5")
        path = case_weights_only(Path(tmp), np.random.default_rng(7))[0]
        shutil.move(path, out / "keras1_weights_only.h5")
    np.save(out / "keras1_x.npy", x)
    write_manifest(out, [{"name": "bidirectional", "file": "keras1_bidirectional.h5"},
                         {"name": "weights_only", "file": "keras1_weights_only.h5"}])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
