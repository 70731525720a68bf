"""The one ordered list of model file formats, and detection by content.

A format is a module with two functions (Netron's readers are the model)::

    def match(path: Path) -> bool                          # cheap content check
    def open(path: Path, options: LoadOptions) -> Network  # the canonical Network

``match`` looks at a few bytes, members or file names and answers ``False`` for a file of
another format; it may raise nothing but :class:`OSError` (an unreadable path). Detection
asks each format's ``match`` in the order of :data:`FORMATS` and opens the file with the
first that says yes. Modules are imported only when detection reaches them, so tracing a
Keras file never imports the checkpoint readers, and a format whose module fails to import
is an error naming that format, never a format that silently vanishes.

Adding a format is one module plus one line in :data:`FORMATS` (see docs/adding-a-format.md).
A module that defines ``open`` shadows the builtin: read files there with ``path.open()``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..network import Network
from .errors import LoadError
from .options import LoadOptions

Matcher = Callable[[Path], bool]
Opener = Callable[[Path, LoadOptions], Network]


@dataclass(frozen=True)
class Format:
    """One file format: a module holding ``match``/``open``, or the two functions themselves."""

    name: str
    #: Dotted path of the module that defines ``match`` and ``open`` (imported on first use).
    module: str | None
    description: str
    match_function: Matcher | None = None
    open_function: Opener | None = None

    def _module(self) -> ModuleType:
        assert self.module is not None
        try:
            return importlib.import_module(self.module)
        except ImportError as err:
            raise LoadError(
                f"the {self.name} reader cannot be imported ({err}); reinstall lstm-trace "
                "with the extra that format needs"
            ) from None

    def match(self, path: Path) -> bool:
        if self.match_function is not None:
            return self.match_function(path)
        return bool(self._module().match(path))

    def open(self, path: Path, options: LoadOptions) -> Network:
        if self.open_function is not None:
            return self.open_function(path, options)
        return self._module().open(path, options)


#: Every format lstm-trace reads, in detection order: the cheapest and most specific
#: signatures first (a ``.keras`` zip before other zips, HDF5 by its superblock).
FORMATS: list[Format] = [
    Format("keras", "lstm_trace.loaders.keras.archive", "Keras .keras archive (Keras 3, tf_keras)"),
    Format("h5", "lstm_trace.loaders.keras.hdf5", "Keras HDF5 .h5 / .weights.h5 (Keras 1, 2, 3)"),
    Format("onnx", "lstm_trace.loaders.onnx", "ONNX model .onnx (LSTM, GRU, RNN nodes)"),
    Format("pytorch", "lstm_trace.loaders.pytorch",
           "PyTorch torch.save (zip or legacy pickle) / TorchScript / safetensors"),
    Format("tf_checkpoint", "lstm_trace.loaders.tf_checkpoint",
           "TensorFlow checkpoint (TF1 Saver, TF2 object checkpoint)"),
    Format("saved_model", "lstm_trace.loaders.saved_model", "TensorFlow SavedModel directory"),
    Format("tf_frozen_graph", "lstm_trace.loaders.tf_frozen_graph",
           "frozen TensorFlow graph .pb (TF1 RNN cells, TF2-frozen Keras layers)"),
]


def register_format(
    name: str, match: Matcher, open_: Opener, description: str = "", *, before: str | None = None
) -> None:
    """Add a format, at the end of :data:`FORMATS` or just before the format named ``before``.

    Registering never replaces a built-in format; a second format of the same name is refused.
    """
    if any(f.name == name for f in FORMATS):
        raise ValueError(f"a format named {name!r} is already registered")
    fmt = Format(name, None, description or name, match, open_)
    if before is None:
        FORMATS.append(fmt)
        return
    names = [f.name for f in FORMATS]
    if before not in names:
        raise ValueError(f"no format named {before!r}; formats are: {', '.join(names)}")
    FORMATS.insert(names.index(before), fmt)


def find_format(path: Path) -> Format:
    """The first format of :data:`FORMATS` whose ``match`` accepts ``path``."""
    for fmt in FORMATS:
        try:
            if fmt.match(path):
                return fmt
        except OSError as err:
            if path.is_file():
                raise LoadError(f"{path}: cannot read ({err.strerror or err})") from None
            continue
    if not path.exists():  # after matching: a checkpoint prefix names no file of its own
        raise LoadError(f"{path}: no such file or directory")
    if path.is_dir():
        raise LoadError(
            f"{path}: directory is neither a SavedModel (no saved_model.pb) nor a TensorFlow "
            "checkpoint directory (no 'checkpoint' file or *.index); pass the model file itself"
        )
    known = ", ".join(f.name for f in FORMATS)
    raise LoadError(f"{path}: not a model file lstm-trace can read ({_what_it_is(path)}; "
                    f"it reads: {known}; see the README's table of formats)")


def _what_it_is(path: Path) -> str:
    """A few words on an unrecognised file, so the user sees why no format took it."""
    import zipfile

    head = b""
    try:
        with path.open("rb") as f:
            head = f.read(8)
        if head.startswith(b"\x93NUMPY"):
            return "a NumPy .npy array: MODEL comes first, then INPUT"
        if head[4:8] == b"TFL3":
            return ("a TensorFlow Lite flatbuffer, which lstm-trace does not read: trace the "
                    "model it was converted from")
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        if head[:1] == b"\x80":
            return ("a Python pickle that is not a torch.save file; lstm-trace never runs the "
                    "standard pickle: save the model itself")
        return "no known signature"
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    if names and all(name.endswith(".npy") for name in names):
        return f"a NumPy .npz archive of {shown}: MODEL comes first, then INPUT"
    if not head.startswith(b"PK"):  # a zip found after other bytes: e.g. a pickled Keras model
        lead = "a Python pickle" if head[:1] == b"\x80" else "a file"
        return (f"{lead} with a zip archive of {shown or 'no members'} inside it (a pickled "
                "model?); lstm-trace never runs the standard pickle: save the model itself "
                "(model.save('m.keras'), torch.save(model.state_dict(), 'm.pt'))")
    return (f"a zip archive of {shown or 'no members'}, without a .keras config.json "
            "or the data.pkl of torch.save")
