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

from ..errors import LoadError
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


# ---------------------------------------------------------------- frozen modules

#: ``torch.jit.freeze`` inlines parameters into the code as ``CONSTANTS.c<k>`` (stored in
#: ``constants.pkl``), passed to the aten ops of the recurrent modules:
#:     torch.lstm(input, hx, params, has_biases, num_layers, dropout, train, bidirectional, batch_first)
#:     torch.lstm(data, batch_sizes, hx, params, has_biases, num_layers, dropout, train, bidirectional)
#:     torch.lstm_cell(input, hx, w_ih, w_hh, b_ih, b_hh)          (gru / rnn_tanh / rnn_relu alike)
_OPS = {"lstm": ("LSTM", "LSTM"), "gru": ("GRU", "GRU"), "rnn_tanh": ("RNN", "RNN_TANH"),
        "rnn_relu": ("RNN", "RNN_RELU")}
_CALL = re.compile(r"torch\.(lstm|gru|rnn_tanh|rnn_relu)(_cell)?\(")
_LIST = re.compile(r"^\s*(\w+) = \[((?:CONSTANTS\.c\d+(?:, )?)+)\]\s*$", re.M)
_EMBEDDING = re.compile(r"torch\.embedding\(CONSTANTS\.c(\d+),")
_CONSTANT_REF = re.compile(r"^CONSTANTS\.c(\d+)$")


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated arguments of a call whose text starts after ``(``."""
    args, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                args.append(text[start:k].strip())
                return args
            depth -= 1
        elif ch == "," and depth == 0:
            args.append(text[start:k].strip())
            start = k + 1
    return args


def _constant_list(arg: str, lists: dict[str, list[int]]) -> list[int] | None:
    if arg in lists:
        return lists[arg]
    if arg.startswith("[") and arg.endswith("]"):
        items = [a.strip() for a in arg[1:-1].split(",") if a.strip()]
        found = [_CONSTANT_REF.match(a) for a in items]
        if items and all(found):
            return [int(m[1]) for m in found if m]
    return None


def frozen_weights(archive: TorchZip) -> Weights | None:
    """The recurrent weights of a frozen TorchScript module, from the constants its code passes
    to ``torch.lstm`` / ``torch.gru`` / ``torch.rnn_*`` (and their ``_cell`` forms), read as
    text; ``None`` when the code calls none. Modules are named after the code's variable
    (``self_encoder__flat_weights`` -> ``encoder``) or their op, in the order the code calls them.
    """
    from .state_dict import ModuleInfo, is_tensor

    codes = [n for n in archive.names()
             if n.startswith(f"{archive.root}code/") and n.endswith(".py")]
    if not codes or not archive.has(f"{archive.root}constants.pkl"):
        return None
    constants = archive.load_pickle("constants.pkl", storage_dir="constants")
    if not isinstance(constants, (tuple, list)):
        return None

    def tensor(index: int) -> Any:
        value = constants[index] if 0 <= index < len(constants) else None
        if not is_tensor(value):
            raise LoadError(f"frozen TorchScript: CONSTANTS.c{index} is not a tensor")
        return value

    weights = Weights({}, where="frozen TorchScript constants")
    seen: set[tuple] = set()
    names: dict[str, int] = {}

    def name_for(base: str) -> str:
        names[base] = names.get(base, 0) + 1
        return base if names[base] == 1 else f"{base}_{names[base] - 1}"

    for member in codes:
        code = archive.read(member, limit=MAX_CODE_BYTES).decode("utf-8", "replace")
        lists = {m[1]: [int(c) for c in re.findall(r"c(\d+)", m[2])] for m in _LIST.finditer(code)}
        variables = {tuple(v): k for k, v in lists.items()}
        for m in _EMBEDDING.finditer(code):
            key = ("embedding", int(m[1]))
            if key not in seen:
                seen.add(key)
                path = name_for("embedding")
                weights.tensors[f"{path}.weight"] = tensor(int(m[1]))
                weights.modules[path] = ModuleInfo("torch.nn.modules.sparse.Embedding")
        for m in _CALL.finditer(code):
            op, cell = m[1], bool(m[2])
            args = _split_args(code[m.end():])
            class_name, mode = _OPS[op]
            if cell:
                refs = [_CONSTANT_REF.match(a) for a in args[2:6]]
                if len(args) < 4 or not refs[0] or not refs[1]:
                    continue
                key = tuple(int(r[1]) if r else None for r in refs)
                if key in seen:
                    continue
                seen.add(key)
                path = name_for(f"{class_name.lower()}_cell")
                for param, index in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), key,
                                        strict=False):
                    if index is not None:
                        weights.tensors[f"{path}.{param}"] = tensor(index)
                settings = {"nonlinearity": mode[4:].lower()} if class_name == "RNN" else {}
                weights.modules[path] = ModuleInfo(f"torch.nn.modules.rnn.{class_name}Cell",
                                                   settings)
                continue
            position = next((k for k, a in enumerate(args) if _constant_list(a, lists)), None)
            if position is None or len(args) < position + 6:
                continue
            params = _constant_list(args[position], lists) or []
            if tuple(params) in seen:
                continue
            seen.add(tuple(params))
            biases, layers, bidirectional = (args[position + 1] == "True",
                                             _int(args[position + 2]),
                                             args[position + 5] == "True")
            directions = 2 if bidirectional else 1
            if not layers or len(params) % (layers * directions):
                raise LoadError(f"frozen TorchScript: torch.{op} has {len(params)} weights for "
                                f"{layers} layer(s) x {directions} direction(s)")
            per = len(params) // (layers * directions)
            order = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if biases else [])
            if per == len(order) + 1 and op == "lstm":
                order.append("weight_hr")
            if per != len(order):
                raise LoadError(f"frozen TorchScript: torch.{op} passes {per} weights per layer, "
                                f"expected {len(order)}")
            variable = variables.get(tuple(params), "")
            base = variable[len("self_"):-len("__flat_weights")] \
                if variable.startswith("self_") and variable.endswith("__flat_weights") else ""
            path = name_for(base or class_name.lower())
            it = iter(params)
            for k in range(layers):
                for suffix in ("", "_reverse")[:directions]:
                    for param in order:
                        weights.tensors[f"{path}.{param}_l{k}{suffix}"] = tensor(next(it))
            weights.modules[path] = ModuleInfo(f"torch.nn.modules.rnn.{class_name}", {"mode": mode})
    if not weights.tensors:
        return None
    weights.notes.append(
        "frozen TorchScript (torch.jit.freeze): weights are the constants its code passes to "
        "torch.lstm/gru/rnn_*; they are named as the module's state_dict would name them "
        "(module names from the code's variables, else from the op)")
    return weights


def _int(text: str) -> int:
    return int(text) if re.fullmatch(r"\d{1,6}", text) else 0
