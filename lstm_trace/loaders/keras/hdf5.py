"""Keras HDF5 files: full models (``model_config``) and weights-only files of Keras 1, 2, 3.

Which writer made the file is read from its attributes and groups: ``model_config`` (a full
model), ``layer_names`` (Keras 1/2 weights, at the root or under ``model_weights``), a
``layers`` group (Keras 3 ``.weights.h5``).
"""

from __future__ import annotations

from pathlib import Path

from ...network import Network
from .. import hdf5_guard
from ..errors import LoadError
from ..options import LoadOptions

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def match(path: Path) -> bool:
    """The HDF5 superblock signature, at offset 0 or after a user block (512, 1024, ...)."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        offset = 0
        while True:
            f.seek(offset)
            head = f.read(8)
            if head == HDF5_MAGIC:
                return True
            if len(head) < 8:
                return False
            offset = 512 if offset == 0 else offset * 2
            if offset > 1 << 20:
                return False


def open(path: Path, options: LoadOptions) -> Network:  # noqa: A001 - the registry's verb
    import h5py

    from .files import load_keras_h5_model, load_weights_with_config
    from .weights_only import load_keras2_weights_h5, load_keras3_weights_h5

    hdf5_guard.check(path, path.name)
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise LoadError(f"{path.name}: not a readable HDF5 file ({err})") from None
    with h5:
        try:
            if "model_config" in h5.attrs:
                return load_keras_h5_model(h5, path, options)
            if options.config_path:
                return load_weights_with_config(h5, path, options)
            if "layer_names" in h5.attrs:
                return load_keras2_weights_h5(h5, path, options)
            if "model_weights" in h5 and "layer_names" in h5["model_weights"].attrs:
                return load_keras2_weights_h5(h5["model_weights"], path, options)
            if isinstance(h5.get("layers"), h5py.Group):
                return load_keras3_weights_h5(h5, path, options)
        except RuntimeError as err:  # the HDF5 library's word for a damaged object header
            if type(err) is not RuntimeError:
                raise
            detail = str(err).splitlines()[0][:160]
            raise LoadError(f"{path.name}: damaged HDF5 file ({detail}); re-save it from the "
                            "framework") from None
    raise LoadError(
        f"{path.name}: HDF5 file is not a Keras model or weights file "
        "(no model_config, layer_names or layers group)"
    )
