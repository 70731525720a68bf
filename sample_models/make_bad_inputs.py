"""Write the deliberately wrong input files of the docs' error examples.

    python sample_models/make_bad_inputs.py

Needs only NumPy. Writes next to this script:

- ``bad_states.npz``: an ``--initial-state`` file for the ``initial_state`` model of
  ``tests/builders/keras_layers.py`` (used by docs/keras-layers.md) whose ``gru/hidden`` is
  ``(7,)`` where the layer has 4 units.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    import numpy as np

    np.savez(HERE / "bad_states.npz", **{"gru/hidden": np.linspace(-0.5, 0.5, 7, dtype=np.float32)})


if __name__ == "__main__":
    main()
