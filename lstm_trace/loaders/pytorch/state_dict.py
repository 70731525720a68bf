"""Find the weights inside whatever ``torch.save`` was given.

People save many things: a ``state_dict`` (name -> tensor), a training checkpoint that
holds one (``{"epoch", "model_state_dict", "optimizer_state_dict"}``, Lightning's
``{"state_dict": ...}``), or a whole module (``torch.save(model)``: a pickled instance of
their class, here an inert :class:`~.pickle_vm.Opaque` whose state holds ``_parameters``
and ``_modules``). TorchScript archives hold modules too, whose state holds parameters
and submodules directly as attributes. :func:`find_weights` returns the flat state_dict
and, where the file stored them, each module's class and constructor settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import LoadError
from .pickle_vm import Opaque
from .tensors import TensorRef

Tensor = TensorRef | np.ndarray

#: Checkpoint keys that hold the model's weights, most specific first.
CHECKPOINT_KEYS = ("model_state_dict", "state_dict", "model_state", "model", "net",
                   "network", "module", "model_dict", "weights", "params", "ema_state_dict")
#: Plain settings kept from a pickled module's state (the rest is torch bookkeeping).
SETTING_TYPES = (bool, int, float, str)
MAX_DEPTH = 64


@dataclass
class ModuleInfo:
    """What a file says about one module: its class and its plain attributes."""

    class_name: str  # e.g. "torch.nn.modules.rnn.LSTM", or "" when unknown
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def short_class(self) -> str:
        return self.class_name.rpartition(".")[2]


@dataclass
class Weights:
    """A flat state_dict and what is known about the modules it belongs to."""

    tensors: dict[str, Tensor]
    modules: dict[str, ModuleInfo] = field(default_factory=dict)
    #: Where in the saved object the weights were found (``checkpoint['state_dict']``).
    where: str = ""
    #: Values of the state_dict that are not tensors (quantized, sparse...): ``name (type)``.
    skipped: list[str] = field(default_factory=list)
    #: What the reader assumed to find them (a frozen TorchScript's names), for ``note:`` lines.
    notes: list[str] = field(default_factory=list)


def is_tensor(value: Any) -> bool:
    return isinstance(value, (TensorRef, np.ndarray))


def _is_state_dict(value: Any) -> bool:
    return (isinstance(value, Mapping) and bool(value)
            and all(isinstance(k, str) for k in value)
            and any(is_tensor(v) for v in value.values()))


def _is_module(value: Any) -> bool:
    if not isinstance(value, Opaque):
        return False
    state = value.state
    if value.cls.module.startswith("__torch__"):
        return isinstance(state, Mapping)
    return isinstance(state, Mapping) and "_parameters" in state and "_modules" in state


def find_weights(obj: Any, wanted: Callable[[Weights], bool] = lambda w: True) -> Weights:
    """The model weights in a loaded torch object; raises LoadError if there are none.

    Every state_dict or module in the object is a candidate, in search order (the
    checkpoint keys of :data:`CHECKPOINT_KEYS` first); ``wanted`` says which hold what
    the caller reads (recurrent weights). One wanted candidate, or one under a checkpoint
    key, is the answer. Several wanted candidates under keys of their own (a seq2seq
    checkpoint ``{"en": encoder.state_dict(), "de": decoder.state_dict(), ...}``) are
    merged, each key prefixed to its names (``en.gru.weight_ih_l0``). Without any wanted
    candidate the first candidate is returned, for the caller's error to describe.
    ``Weights.where`` is the path to the weights inside the object (``['state_dict']``;
    ``""``: the object itself).
    """
    candidates = list(_candidates(obj, (), 0, set()))
    if not candidates:
        kind = (f"{obj.qualname} call (not run)" if isinstance(obj, Opaque)
                else "tensor" if is_tensor(obj) else type(obj).__name__)
        raise LoadError(
            f"no model weights found in the saved {kind} (looked for a state_dict of tensors, "
            f"a checkpoint key such as {', '.join(CHECKPOINT_KEYS[:3])}, or a pickled module)"
        )
    useful = [(path, w) for path, w in candidates if wanted(w)]
    if not useful:
        return candidates[0][1]
    path, first = useful[0]
    if len(useful) == 1 or not path or path[0] in CHECKPOINT_KEYS:
        return first
    return _merge(useful)


def _where(path: tuple) -> str:
    return "".join(f"[{p!r}]" for p in path)


def _merge(found: list[tuple[tuple, Weights]]) -> Weights:
    merged = Weights({}, where=" + ".join(w.where for _, w in found))
    for path, weights in found:
        prefix = ".".join(str(p) for p in path)
        merged.tensors.update({f"{prefix}.{k}": v for k, v in weights.tensors.items()})
        merged.modules.update({(f"{prefix}.{k}" if k else prefix): v
                               for k, v in weights.modules.items()})
        merged.skipped += [f"{prefix}.{item}" for item in weights.skipped]
    return merged


def _candidates(obj: Any, path: tuple, depth: int, seen: set[int]) -> Iterator[tuple[tuple, Weights]]:
    if depth > 4 or id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, Opaque) and obj.entries and not _is_module(obj):
        obj = obj.entries  # a dict subclass of the user's (never imported): its items
    if _is_module(obj):
        weights = Weights({}, where=_where(path))
        _walk_module(obj, "", weights, 0, set())
        if weights.tensors:
            yield path, weights
        return
    if _is_state_dict(obj):
        yield path, _from_state_dict(obj, _where(path))
        return
    if isinstance(obj, Mapping):
        keys = [k for k in CHECKPOINT_KEYS if k in obj]
        keys += [k for k in obj if k not in keys and isinstance(k, (str, int))]
        for key in keys:
            yield from _candidates(obj[key], (*path, key), depth + 1, seen)
    elif isinstance(obj, (list, tuple)):
        for k, item in enumerate(obj):
            yield from _candidates(item, (*path, k), depth + 1, seen)


def _from_state_dict(obj: Mapping, where: str) -> Weights:
    tensors: dict[str, Tensor] = {}
    skipped: list[str] = []
    for key, value in obj.items():
        if is_tensor(value):
            tensors[key] = value
        else:
            skipped.append(f"{key} ({_kind(value)})")
    return Weights(tensors, where=where, skipped=skipped)


def _kind(value: Any) -> str:
    return value.qualname if isinstance(value, Opaque) else type(value).__name__


def _walk_module(module: Opaque, path: str, weights: Weights, depth: int, seen: set[int]) -> None:
    """Collect a pickled module's parameters and buffers as ``path.name`` state_dict entries."""
    if depth > MAX_DEPTH or id(module) in seen:
        return
    seen.add(id(module))
    state = module.state
    settings = {k: v for k, v in state.items()
                if isinstance(k, str) and not k.startswith("_") and isinstance(v, SETTING_TYPES)}
    weights.modules[path] = ModuleInfo(_class_name(module), settings)
    prefix = f"{path}." if path else ""
    if module.cls.module.startswith("__torch__"):
        # TorchScript: parameters, buffers and submodules are all plain attributes.
        for name, value in state.items():
            if not isinstance(name, str):
                continue
            if is_tensor(value):
                weights.tensors[prefix + name] = value
            elif _is_module(value):
                _walk_module(value, prefix + name, weights, depth + 1, seen)
        return
    for group in ("_parameters", "_buffers"):
        entries = state.get(group)
        if isinstance(entries, Mapping):
            for name, value in entries.items():
                if isinstance(name, str) and is_tensor(value):
                    weights.tensors[prefix + name] = value
    children = state.get("_modules")
    if isinstance(children, Mapping):
        for name, child in children.items():
            if isinstance(name, str) and _is_module(child):
                _walk_module(child, prefix + name, weights, depth + 1, seen)


def _class_name(module: Opaque) -> str:
    """``torch.nn.modules.rnn.LSTM``; TorchScript's ``__torch__.`` prefix and mangling removed."""
    parts = [p for p in module.cls.module.split(".") if not p.startswith("___torch_mangle")]
    if parts and parts[0] == "__torch__":
        parts = parts[1:]
    return ".".join([*parts, module.cls.name])


def materialize(tensor: Tensor) -> np.ndarray:
    """The tensor's values as a NumPy array (reads its storage on first use)."""
    return tensor if isinstance(tensor, np.ndarray) else tensor.numpy()
