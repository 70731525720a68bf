"""Format detection and the one entry point :func:`load`.

Detection is by content: a zip signature means a ``.keras`` archive, the HDF5
signature an ``.h5`` whose attributes and groups tell which Keras writer made it, a
directory holding ``saved_model.pb`` a SavedModel, and a ``.index`` file (or a
directory with a ``checkpoint`` state file) a TensorFlow checkpoint.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

from ..network import Network
from .errors import LoadError
from .options import LoadOptions

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

__all__ = ["LoadError", "LoadOptions", "detect_format", "load", "register_format"]

#: Extra formats (TF checkpoints, SavedModel) register here: name -> (match, open).
_FORMATS: dict[str, tuple[Callable[[Path], bool], Callable[[Path, LoadOptions], Network]]] = {}


def register_format(
    name: str, match: Callable[[Path], bool], open_: Callable[[Path, LoadOptions], Network]
) -> None:
    """Add a format: ``match(path)`` is a cheap content check, ``open_`` builds the Network."""
    _FORMATS[name] = (match, open_)


def _register_builtin_formats() -> None:
    from . import tf_checkpoint

    register_format("tf_checkpoint", tf_checkpoint.match, tf_checkpoint.open_checkpoint)
    try:
        from . import saved_model
    except ImportError:  # not written yet
        return
    register_format("saved_model", saved_model.match, saved_model.open_saved_model)


def _head(path: Path, size: int = 8) -> bytes:
    with open(path, "rb") as f:
        return f.read(size)


def _is_hdf5(path: Path) -> bool:
    # HDF5 allows a user block before the superblock: 0, 512, 1024, 2048, ...
    with open(path, "rb") as f:
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


def detect_format(path: str | Path) -> str:
    """Name the format of ``path``: ``keras``, ``h5``, or a registered format name."""
    path = Path(path)
    # Keras files first, by signature: cheap, and the checkpoint readers stay unimported.
    if path.is_file():
        try:
            if _head(path).startswith(ZIP_MAGIC):
                return "keras"
            if _is_hdf5(path):
                return "h5"
        except OSError as err:
            raise LoadError(f"{path}: cannot read ({err.strerror or err})") from None
    if not _FORMATS:
        _register_builtin_formats()
    for name, (match, _) in _FORMATS.items():
        try:
            if match(path):
                return name
        except OSError:
            continue
    if path.is_dir():
        raise LoadError(
            f"{path}: directory is neither a SavedModel (no saved_model.pb) nor a TensorFlow "
            "checkpoint directory (no 'checkpoint' file or *.index); pass the model file itself"
        )
    if not path.exists():
        raise LoadError(f"{path}: no such file or directory")
    raise LoadError(
        f"{path}: not a model file lstm-trace can read (expected a .keras zip, an HDF5 .h5, "
        "a TensorFlow checkpoint or a SavedModel directory)"
    )


def load(path: str | Path, options: LoadOptions | None = None, **overrides: object) -> Network:
    """Read a model file into a canonical :class:`~lstm_trace.network.Network`.

    Nothing stored in the file is executed and TensorFlow is never imported.
    ``overrides`` are :class:`LoadOptions` fields (``activation=...``, ``forget_bias=...``).
    """
    from dataclasses import replace

    path = Path(path)
    options = replace(options or LoadOptions(), **overrides)  # type: ignore[arg-type]
    fmt = detect_format(path)
    try:
        if fmt == "keras":
            from .keras_files import load_keras_archive

            return load_keras_archive(path, options)
        if fmt == "h5":
            return _load_h5(path, options)
        return _FORMATS[fmt][1](path, options)
    except LoadError:
        raise
    except (KeyError, TypeError, IndexError, AttributeError, ValueError, RuntimeError,
            RecursionError, EOFError, struct.error, zlib.error) as err:
        # h5py, zipfile and json report damage in many ways; all mean the same to a user.
        detail = str(err).splitlines()[0][:160] if str(err) else type(err).__name__
        raise LoadError(
            f"{path.name}: malformed, corrupt or unsupported model file ({detail}); "
            "re-save it from the framework, or run with --debug for details"
        ) from None
    except OSError as err:
        raise LoadError(f"{path.name}: cannot read ({err})") from None


def _load_h5(path: Path, options: LoadOptions) -> Network:
    import h5py

    from .keras_files import load_keras_h5_model, load_weights_with_config
    from .keras_weights_only import load_keras2_weights_h5, load_keras3_weights_h5

    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise LoadError(f"{path.name}: not a readable HDF5 file ({err})") from None
    with h5:
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
    raise LoadError(
        f"{path.name}: HDF5 file is not a Keras model or weights file "
        "(no model_config, layer_names or layers group)"
    )
