"""PyTorch model files, read without torch and without running anything they contain.

Formats (detected by content, not extension):

- ``torch.save`` zip archives (PyTorch 1.6+): :mod:`.zipfile_format`;
- legacy ``torch.save`` pickles (``_use_new_zipfile_serialization=False``): :mod:`.legacy_format`;
- TorchScript archives (``torch.jit.save`` of scripted, traced or frozen modules): the zip
  format plus :mod:`.torchscript`;
- ``.safetensors``: :mod:`.safetensors`.

Pickles are interpreted by :mod:`.pickle_vm`, which calls nothing but an allow-list of
tensor/container reconstructors. :mod:`.state_dict` finds the weights in whatever was
saved and :mod:`.modules` turns the recurrent modules into canonical layers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ...network import Network
from ..errors import LoadError
from ..options import LoadOptions
from . import legacy_format, safetensors, zipfile_format
from .state_dict import Weights, find_weights

__all__ = ["match", "open"]


def match(path: Path) -> bool:
    """A torch zip (``<root>/data.pkl``), a legacy torch pickle, or a safetensors file."""
    if not path.is_file():
        return False
    return zipfile_format.match(path) or legacy_format.match(path) or safetensors.match(path)


def open(path: Path, options: LoadOptions) -> Network:  # noqa: A001 - the registry's name
    """Read the recurrent modules of a PyTorch file into a Network."""
    path = Path(path)
    try:
        return _open(path, options)
    except LoadError as err:
        message = str(err)
        if message.startswith(f"{path.name}:"):
            raise
        raise LoadError(f"{path.name}: {message}") from None


def _torchscript_weights(archive: zipfile_format.TorchZip, obj: object,
                         recurrent: Callable[[Weights], bool]) -> Weights:
    """A TorchScript module's weights (its attributes), or a frozen one's (code constants)."""
    from .torchscript import add_constants, frozen_weights

    try:
        weights = find_weights(obj, recurrent)
    except LoadError:
        weights = None
    if weights is None or not recurrent(weights):
        frozen = frozen_weights(archive)
        if frozen is not None and recurrent(frozen):
            return frozen
        if weights is None:
            return find_weights(obj, recurrent)  # raises the description of what was found
        return weights
    add_constants(archive, obj, weights)
    return weights


def _open(path: Path, options: LoadOptions) -> Network:
    from .modules import assemble, group_modules

    def recurrent(weights: Weights) -> bool:
        return bool(group_modules(weights.tensors))

    if zipfile_format.match(path):
        archive = zipfile_format.TorchZip.open(path)
        try:
            obj = archive.load_pickle("data.pkl")
            torchscript = archive.is_torchscript()
            if torchscript:
                weights = _torchscript_weights(archive, obj, recurrent)
            else:
                weights = find_weights(obj, recurrent)
            network = assemble(weights, options, path.name)
        finally:
            archive.close()
        kind = "TorchScript archive" if torchscript else "torch.save zip"
    elif legacy_format.match(path):
        weights = find_weights(legacy_format.load_legacy(path), recurrent)
        network = assemble(weights, options, path.name)
        kind = "torch.save legacy pickle"
    elif safetensors.match(path):
        tensors, _ = safetensors.read_safetensors(path)
        weights = Weights(dict(tensors))
        network = assemble(weights, options, path.name, ordered=False)
        kind = "safetensors"
    else:
        raise LoadError(f"{path.name}: not a PyTorch file (torch.save zip or pickle, TorchScript, "
                        "safetensors)")
    where = f", weights from {weights.where}" if weights.where else ""
    network.source = f"PyTorch {kind}{where}"
    return network
