"""ONNX models (``.onnx``, external data beside them), read without ``onnx`` or onnxruntime.

``LSTM``, ``GRU`` and ``RNN`` nodes of every opset become recurrent layers named after the
node, those inside ``If`` branches included (the branch the input takes is the one
traced, :mod:`.scopes`); the ops between the graph inputs and them are replayed in NumPy
(see :mod:`.graph`). INPUT is what the graph input takes, exactly as onnxruntime is fed.
"""

from __future__ import annotations

from pathlib import Path

from ...network import Network
from ..errors import LoadError
from ..options import LoadOptions
from .proto import looks_like_model

__all__ = ["match", "open"]


def match(path: Path) -> bool:
    """A file whose top-level protobuf fields are those of an ONNX ``ModelProto``."""
    return Path(path).is_file() and looks_like_model(Path(path))


def open(path: Path, options: LoadOptions) -> Network:  # noqa: A001 - the registry's name
    """Read the model; ``options`` do not apply (an ONNX file states every fact)."""
    from .graph import build_network
    from .proto import read_model

    path = Path(path)
    model = read_model(path)
    try:
        return build_network(model, path)
    except RecursionError:
        raise LoadError(
            f"{path.name}: the graph's chain of constant nodes is too deep to fold"
        ) from None
