"""The model's graph inputs, fed as onnxruntime is fed them (a ``Network.input_adapter``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from ...inputs import InputError
from .glue import input_key
from .proto import DTYPE_NAMES, DTYPES, ValueInfo


@dataclass
class OnnxInputs:
    """The model's graph inputs, fed as onnxruntime is fed (a ``Network.input_adapter``).

    INPUT is the first graph input's array; an ``.npz`` whose keys are graph input names
    feeds several (``sequence_lens``, ``initial_h``...). ``needed`` are the inputs the
    recurrent nodes depend on; ``chooses`` says, for an input that decides which ``If``
    branch runs, which (``the condition of If 'x'``).
    """

    inputs: list[ValueInfo]
    needed: tuple[str, ...]
    chooses: dict[str, str] = field(default_factory=dict)

    @property
    def main(self) -> ValueInfo:
        return self.inputs[0]

    def describe(self) -> list[str]:
        return [f"{i.name}: {type_text(i)}" for i in self.inputs]

    def read(self, path: str, key: str | None = None) -> dict[str, np.ndarray]:
        """Arrays in INPUT by graph input name (``.npz`` keys that name graph inputs)."""
        from ...inputs import detect_format, read_input

        names = [i.name for i in self.inputs]
        if key is None and detect_format(path) == "npz":
            try:
                with np.load(path, allow_pickle=False) as archive:
                    keys = list(archive.files)
            except Exception:  # a damaged archive: read_input says what is wrong with it
                return {self.main.name: read_input(path)}
            named = [k for k in keys if k in names]
            if named:
                extra = [k for k in keys if k not in names]
                if extra:
                    raise InputError(
                        f"{os.fspath(path)}: {', '.join(map(repr, extra))} are not graph inputs of "
                        f"the model (its inputs: {', '.join(names)})"
                    )
                return {k: read_input(path, key=k) for k in named}
            if len(keys) > 1:
                raise InputError(
                    f"{os.fspath(path)}: the archive holds several arrays ({', '.join(keys)}); name "
                    f"them after the model's graph inputs ({', '.join(names)}) or choose one "
                    "with --input-key"
                )
        return {self.main.name: read_input(path, key=key)}

    def feeds(
        self, x: np.ndarray | Mapping[str, np.ndarray], dtype: np.dtype
    ) -> dict[str, np.ndarray]:
        """Engine values by source name: each needed graph input, checked against its declared type."""
        given = dict(x) if isinstance(x, Mapping) else {self.main.name: np.asarray(x)}
        by_name = {i.name: i for i in self.inputs}
        unknown = [k for k in given if k not in by_name]
        if unknown:
            raise InputError(
                f"{', '.join(map(repr, unknown))} not a graph input of the model "
                f"(its inputs: {', '.join(by_name)})"
            )
        missing = [n for n in self.needed if n not in given]
        if missing:
            why = [f"{n!r} decides {self.chooses[n]}" for n in missing if n in self.chooses]
            why_text = f" ({'; '.join(why)})" if why else ""
            raise InputError(
                f"the model also needs graph input {', '.join(map(repr, missing))}{why_text}: "
                f"pass an .npz INPUT with one array per graph input, keys {', '.join(self.needed)}"
            )
        out: dict[str, np.ndarray] = {}
        for name, value in given.items():
            out[input_key(name)] = _checked(by_name[name], np.asarray(value), dtype,
                                            main=name == self.main.name)
        out[""] = out.get(input_key(self.main.name), next(iter(out.values())))
        return out


def type_text(info: ValueInfo) -> str:
    dims = "?" if info.shape is None else ", ".join("?" if d is None else str(d) for d in info.shape)
    return f"{DTYPE_NAMES.get(info.elem_type, 'tensor')} [{dims}]"


def _checked(info: ValueInfo, value: np.ndarray, dtype: np.dtype, main: bool = True) -> np.ndarray:
    expected = f"graph input {info.name!r} takes {type_text(info)}"
    if info.shape is not None:
        if value.ndim != len(info.shape):
            raise InputError(f"{expected} (as onnxruntime is fed), got shape {value.shape}")
        for want, got in zip(info.shape, value.shape, strict=True):
            if isinstance(want, int) and want > 0 and want != got:
                raise InputError(f"{expected}, got shape {value.shape}")
    if 0 in value.shape and main:  # other inputs may be empty (a "no state yet" tensor)
        raise InputError(f"{expected}, got an empty array {value.shape}")
    want = DTYPES.get(info.elem_type)
    if value.dtype.kind not in "biuf":
        raise InputError(f"{expected}, got {value.dtype} values")
    if want is not None and want.kind == "f":
        value = value.astype(dtype, copy=False)  # the replay's precision (float32 by default)
        if not np.isfinite(value).all():
            raise InputError(f"{expected}: found NaN or infinite values")
        return value
    if want is not None and want.kind in "iub":
        if value.dtype.kind == "f" and (value != np.round(value)).any():
            raise InputError(f"{expected}: found non-integer values")
        return value.astype(want.newbyteorder("="))
    return value
