"""TensorFlow checkpoints (tensor bundles): detection and dispatch.

A bundle with a ``_CHECKPOINTABLE_OBJECT_GRAPH`` entry is a TF2 object checkpoint
(``model.save_weights`` in TF format, ``tf.train.Checkpoint``) and goes to
:mod:`.tf2_checkpoint`; one without is a TF1 ``tf.train.Saver`` checkpoint of cell
variables and goes to :mod:`.tf1_checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

from ..network import Network
from .options import LoadOptions
from .tf.bundle import TensorBundle
from .tf.checkpoint_files import resolve_prefix
from .tf.errors import BundleError


def match(path: Path) -> bool:
    """A checkpoint prefix, its ``.index``/``.data-*`` file, or a directory holding one.

    Matched by name so that a damaged ``.index`` still reaches the bundle reader and
    its precise error, instead of "not a model file".
    """
    if path.is_dir() and (path / "saved_model.pb").exists():
        return False
    if path.is_dir() and (path / "checkpoint").is_file():
        return True  # a stale state file gets the bundle reader's precise error
    try:
        resolve_prefix(path)
    except (BundleError, OSError):
        return False
    return True


def open(path: Path, options: LoadOptions) -> Network:  # noqa: A001 - the registry's verb
    bundle = TensorBundle.open(path)
    if bundle.object_graph() is not None:
        from .tf2_checkpoint import load_tf2_checkpoint

        return load_tf2_checkpoint(bundle, path, options)
    from .tf1_checkpoint import load_tf1_checkpoint

    return load_tf1_checkpoint(bundle, path, options)
