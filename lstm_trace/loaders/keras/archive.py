"""Keras ``.keras`` archives: a zip holding ``config.json`` and ``model.weights.h5``.

Written by Keras 3 ``model.save("m.keras")`` and by tf_keras (the Keras 2 zip format).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from ...network import Network
from ..options import LoadOptions

ZIP_MAGIC = b"PK\x03\x04"


def match(path: Path) -> bool:
    """A zip whose members include ``config.json``, or a zip too damaged to list.

    Other zips (``torch.save`` files, ``.npz``) are left to their own formats; a damaged
    zip is claimed so that the user gets the archive reader's precise error.
    """
    if not path.is_file():
        return False
    with path.open("rb") as f:
        if f.read(4) != ZIP_MAGIC:
            return False
    try:
        with zipfile.ZipFile(path) as archive:
            return "config.json" in archive.namelist()
    except (zipfile.BadZipFile, ValueError, EOFError, NotImplementedError):
        return True  # NotImplementedError: a damaged header naming an impossible zip version


def open(path: Path, options: LoadOptions) -> Network:  # noqa: A001 - the registry's verb
    from .files import load_keras_archive

    return load_keras_archive(path, options)
