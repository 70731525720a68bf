"""Module settings of a TorchScript archive (``torch.jit.save``), read as text, never run.

A TorchScript archive's ``data.pkl`` holds the module tree as ``__torch__.<class>`` objects
whose state carries parameters and submodules (read by :mod:`.state_dict`). The
constructor settings of the ``torch.nn`` recurrent modules are compiled into their class
as constants, in ``code/__torch__/<module path>.py``::

    class LSTM(Module):
      ...
      num_layers : Final[int] = 2
      bidirectional : Final[bool] = True
      mode : Final[str] = "LSTM"

:func:`class_constants` extracts those ``name : Final[type] = value`` lines of one class
with a regular expression; nothing in ``code/`` is executed or compiled.
"""

from __future__ import annotations

import re
from typing import Any

from .pickle_vm import Opaque
from .state_dict import Weights
from .zipfile_format import TorchZip

_CONSTANT = re.compile(r"^\s+(\w+)\s*:\s*Final\[(\w+)\]\s*=\s*(.+?)\s*$")
MAX_CODE_BYTES = 16 << 20


def _value(kind: str, text: str) -> Any:
    if kind == "bool":
        return {"True": True, "False": False}.get(text)
    if kind == "int":
        return int(text) if re.fullmatch(r"-?\d{1,12}", text) else None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            return None
    if kind == "str" and len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return None


def _class_body(code: str, class_name: str) -> list[str]:
    lines: list[str] = []
    inside = False
    for line in code.splitlines():
        if line.startswith("class "):
            inside = re.match(rf"class {re.escape(class_name)}\(", line) is not None
            continue
        if inside:
            lines.append(line)
    return lines


def class_constants(code: str, class_name: str) -> dict[str, Any]:
    """``Final`` constants declared in ``class <class_name>(...)`` of a TorchScript code file.

    A traced module (``torch.jit.trace``) declares none; its ``nn.RNN``/``RNNCell``
    nonlinearity is then the op its code calls (``torch.rnn_relu``/``torch.rnn_tanh``; a
    traced cell's ``torch.relu(...)``/``torch.tanh(...)``), found as text.
    """
    out: dict[str, Any] = {}
    body = _class_body(code, class_name)
    for line in body:
        m = _CONSTANT.match(line)
        if m:
            value = _value(m[2], m[3])
            if value is not None:
                out[m[1]] = value
    if "nonlinearity" not in out and "mode" not in out:
        text = "\n".join(body)
        calls = {kind for kind in ("relu", "tanh")
                 if f"torch.rnn_{kind}" in text or f"torch.{kind}(" in text}
        if len(calls) == 1:
            out["nonlinearity"] = calls.pop()
    return out


def add_constants(archive: TorchZip, root_object: Any, weights: Weights) -> None:
    """Merge each recurrent module's TorchScript constants into ``weights.modules`` settings."""
    for path, module in _modules(root_object, ""):
        info = weights.modules.get(path)
        if info is None:
            continue
        member = f"{archive.root}code/{module.cls.module.replace('.', '/')}.py"
        if not archive.has(member):
            continue
        code = archive.read(member, limit=MAX_CODE_BYTES).decode("utf-8", "replace")
        info.settings.update(class_constants(code, module.cls.name))


def _modules(obj: Any, path: str, depth: int = 0) -> list[tuple[str, Opaque]]:
    if not isinstance(obj, Opaque) or not isinstance(obj.state, dict) or depth > 64:
        return []
    out = [(path, obj)]
    for name, value in obj.state.items():
        if isinstance(name, str) and isinstance(value, Opaque) and \
                value.cls.module.startswith("__torch__"):
            out += _modules(value, f"{path}.{name}" if path else name, depth + 1)
    return out
