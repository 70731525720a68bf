"""Reading and validating INPUT: the sequences a model is replayed on.

:func:`read_input` reads ``.npy``, ``.npz`` and ``.csv`` files, recognised by their
content (the ``\\x93NUMPY`` magic of ``.npy``, the zip magic of ``.npz``, text for CSV)
as well as their extension. It never unpickles: arrays are loaded with
``allow_pickle=False`` and a file holding Python objects is refused.

:func:`validate_input` checks an array against what the model takes and normalises it:
float features ``(steps, features)`` become ``(1, steps, features)``; token ids
``(steps,)`` become ``(1, steps)``. Every problem raises :class:`InputError` (a
``ValueError``) with one line naming the file, what was expected and what was found::

    input.npy: expected (steps, 3) or (batch, steps, 3) float features, found shape (10, 4)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
INPUT_FORMATS = ("npy", "npz", "csv")
#: Longest CSV field read as a number (the longest float repr is 24 characters).
MAX_CSV_FIELD_CHARS = 100
#: Largest .npz member (inflated) lstm-trace reads.
MAX_NPZ_MEMBER_BYTES = 16 << 30
_TEXT_SUFFIXES = (".csv", ".txt", ".tsv")


class InputError(ValueError):
    """INPUT cannot be used: missing, unreadable, or not the shape/type the model takes."""


PathLike = str | os.PathLike[str]


def detect_format(path: PathLike) -> str:
    """``"npy"``, ``"npz"`` or ``"csv"`` from the file's first bytes (and its suffix for text).

    Raises :class:`InputError` for a missing, empty, unreadable or unsupported file.
    """
    name = os.fspath(path)
    p = Path(name)
    if not p.exists():
        raise InputError(f"{name}: no such file")
    if p.is_dir():
        raise InputError(f"{name}: is a directory; expected a .npy, .npz or .csv file")
    try:
        with open(p, "rb") as handle:
            head = handle.read(4096)
    except OSError as err:
        raise InputError(f"{name}: cannot read ({err.strerror or err})") from None
    suffix = p.suffix.lower()
    if not head:
        raise InputError(f"{name}: the file is empty")
    if head.startswith(NPY_MAGIC):
        return "npy"
    if head.startswith(ZIP_MAGICS):
        return "npz"
    if suffix == ".npy":
        raise InputError(
            f"{name}: not a NumPy .npy file (it does not start with the .npy magic bytes); "
            "is it corrupt or in another format?"
        )
    if suffix == ".npz":
        raise InputError(f"{name}: not a NumPy .npz file (not a zip archive); is it corrupt?")
    if b"\0" in head:
        raise InputError(
            f"{name}: unsupported input format (binary, not .npy or .npz); "
            "expected a .npy, .npz or .csv file"
        )
    if suffix in _TEXT_SUFFIXES or _looks_like_text(head):
        return "csv"
    raise InputError(f"{name}: unsupported input format; expected a .npy, .npz or .csv file")


def read_input(path: PathLike, *, key: str | None = None) -> np.ndarray:
    """Read the array in ``path`` (``.npy``, ``.npz`` or ``.csv``), without unpickling.

    ``key`` picks the array of an ``.npz`` (``--input-key``); an archive with a single
    array needs none. A CSV is one sequence, a row per step; a first row of non-numeric
    names is taken as a header and skipped. It gives ``(steps, features)`` float64 (so
    a ``--dtype float64`` replay keeps every digit; the engine casts to its dtype), or
    int64 when every value is an integer literal (token ids).
    """
    name = os.fspath(path)
    fmt = detect_format(path)
    if key is not None and fmt != "npz":
        raise InputError(f"{name}: --input-key only applies to .npz archives, and this is a .{fmt} file")
    if fmt == "npy":
        return _read_npy(name)
    if fmt == "npz":
        return _read_npz(name, key)
    return _read_csv(name)


def validate_input(
    x: np.ndarray, *, features: int | None, integer_ids: bool, path: PathLike, grid_rank: int = 0,
) -> np.ndarray:
    """Check ``x`` against what the model takes and normalise its shape.

    ``features`` is the feature count the model expects (``None``: unknown, not checked).
    With ``integer_ids`` (a model that starts with an Embedding) ``x`` must hold integer
    token ids ``(steps,)`` or ``(batch, steps)`` (integral floats are accepted) and the
    result is int64 ``(batch, steps)``. Otherwise ``x`` holds numeric features
    ``(steps, features)`` or ``(batch, steps, features)``; integers and booleans are
    converted to float64 and floats keep their dtype; the result is
    ``(batch, steps, features)``. Empty inputs, NaN and infinities are refused.
    """
    name = os.fspath(path)
    x = np.asarray(x)
    if integer_ids:
        return _validate_ids(x, name, one_column_is_steps=_source_is_csv(path))
    if grid_rank:
        return _validate_grid(x, name, grid_rank)
    f = "features" if features is None else str(features)
    expected = f"(steps, {f}) or (batch, steps, {f}) float features"
    if x.dtype.kind not in "biuf":
        raise InputError(f"{name}: expected {expected}, found {_describe_dtype(x.dtype)}")
    if x.ndim not in (2, 3):
        hint = "; one feature per step is (steps, 1)" if x.ndim == 1 else ""
        raise InputError(f"{name}: expected {expected}, found shape {x.shape}{hint}")
    original = x.shape
    if x.ndim == 2:
        x = x[None]
    if 0 in x.shape:
        what = {0: "no samples", 1: "no steps", 2: "no features"}[x.shape.index(0)]
        raise InputError(f"{name}: expected {expected}, found shape {original} ({what})")
    if features is not None and x.shape[2] != features:
        raise InputError(f"{name}: expected {expected}, found shape {original}")
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    _check_finite(x, name, ("sample", "step", "feature"))
    return x


def _validate_grid(x: np.ndarray, name: str, rank: int) -> np.ndarray:
    """A ConvLSTM's input: ``(steps, *grid, channels)`` or ``(batch, steps, *grid, channels)``
    with a ``rank``-d grid (channels first when the layer says so; the engine checks sizes)."""
    axes = ", ".join(["size"] * rank)
    expected = f"(steps, {axes}, channels) or (batch, steps, {axes}, channels) float values"
    if x.dtype.kind not in "biuf" or x.ndim not in (rank + 2, rank + 3) or 0 in x.shape:
        raise InputError(f"{name}: expected {expected}, found {_describe_dtype(x.dtype)} "
                         f"of shape {x.shape}")
    if x.ndim == rank + 2:
        x = x[None]
    if x.dtype.kind != "f":
        x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise InputError(f"{name}: holds NaN or infinite values")
    return x


def load_input(
    path: PathLike, *, key: str | None = None, features: int | None = None, integer_ids: bool = False,
) -> np.ndarray:
    """:func:`read_input` then :func:`validate_input`."""
    return validate_input(read_input(path, key=key), features=features, integer_ids=integer_ids, path=path)


# ------------------------------------------------------------------ readers

def _read_npy(name: str) -> np.ndarray:
    try:
        array = np.load(name, allow_pickle=False)
    except ValueError as err:
        if "allow_pickle" in str(err) or "pickle" in str(err).lower():
            raise InputError(_pickled(name)) from None
        raise InputError(f"{name}: cannot read as .npy ({err})") from None
    except Exception as err:  # truncated or corrupt files raise many kinds of errors
        raise InputError(f"{name}: cannot read as .npy ({type(err).__name__}: {err})") from None
    return _numeric_array(array, name)


def _check_npz_members(name: str) -> None:
    """Refuse members whose declared sizes are too large or cannot be true (zip bombs)."""
    from .safe_zip import ZipLimitError, ZipUnreadableError, check_zip_file

    try:
        check_zip_file(name, MAX_NPZ_MEMBER_BYTES)
    except ZipLimitError as err:
        raise InputError(f"{name}: {err}") from None
    except ZipUnreadableError as err:
        raise InputError(f"{name}: cannot read as .npz ({err})") from None


def _read_npz(name: str, key: str | None) -> np.ndarray:
    _check_npz_members(name)
    try:
        with np.load(name, allow_pickle=False) as archive:
            keys = list(archive.files)
            if key is None:
                if not keys:
                    raise InputError(f"{name}: the archive holds no arrays")
                if len(keys) > 1 and not any(m.endswith(".npy") for m in archive.zip.namelist()):
                    raise InputError(  # not "choose one with --input-key": none is an array
                        f"{name}: a zip archive of {_some(keys)}, not of .npy arrays (a model file? "
                        "MODEL comes first, then INPUT); INPUT is a .npy, .npz or .csv file"
                    )
                if len(keys) > 1:
                    raise InputError(
                        f"{name}: the archive holds {len(keys)} arrays ({_some(keys)}); "
                        "choose one with --input-key"
                    )
                key = keys[0]
            elif key not in keys:
                raise InputError(
                    f"{name}: no array named {key[:40]!r} in the archive; it holds: "
                    f"{_some(keys) or 'nothing'}"
                )
            try:
                array = archive[key]
            except ValueError as err:
                if "pickle" in str(err).lower():
                    raise InputError(_pickled(f"{name}[{key}]")) from None
                raise
    except InputError:
        raise
    except Exception as err:  # BadZipFile, truncated members, bad headers...
        raise InputError(f"{name}: cannot read as .npz ({type(err).__name__}: {err})") from None
    if not isinstance(array, np.ndarray):
        raise InputError(f"{name}: member {key!r} is not a NumPy array (.npy) inside the archive")
    return _numeric_array(array, f"{name}[{key}]")


def _pickled(name: str) -> str:
    return (
        f"{name}: holds Python objects (a pickled object array), which lstm-trace never "
        "loads; save a numeric array instead, e.g. np.save(path, x.astype(np.float32))"
    )


def _numeric_array(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype.hasobject:  # allow_pickle=False already refuses these; stay explicit
        raise InputError(_pickled(name))
    return array


_INT_RE = re.compile(r"^[+-]?\d+$")


def _read_csv(name: str) -> np.ndarray:
    try:
        with open(name, encoding="utf-8-sig", newline="") as handle:
            text = handle.read()
    except UnicodeDecodeError:
        raise InputError(f"{name}: not a UTF-8 text file; expected a .npy, .npz or .csv file") from None
    except OSError as err:
        raise InputError(f"{name}: cannot read ({err.strerror or err})") from None
    lines = [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise InputError(f"{name}: the CSV has no rows; expected one row per step")
    delimiter = next((d for d in (",", ";", "\t") if d in lines[0][1]), None)
    rows = [(number, _split(line, delimiter)) for number, line in lines]
    if not all(_is_number(field) for field in rows[0][1]):
        rows = rows[1:]  # a header row of names
        if not rows:
            raise InputError(f"{name}: the CSV has a header row but no data rows")
    width = len(rows[0][1])
    for number, fields in rows:
        if len(fields) != width:
            raise InputError(
                f"{name}: line {number} has {len(fields)} values but line {rows[0][0]} has {width}; "
                "expected the same number of features on every row"
            )
        for column, field in enumerate(fields, start=1):
            if not field:
                raise InputError(f"{name}: line {number}, column {column} is empty; expected a number")
            if len(field) > MAX_CSV_FIELD_CHARS:
                raise InputError(
                    f"{name}: line {number}, column {column} holds {len(field):,} characters; a "
                    f"number has at most {MAX_CSV_FIELD_CHARS}"
                )
    table = np.array([fields for _, fields in rows], dtype=str)
    if all(_INT_RE.match(v) for v in table.ravel()):
        return table.astype(np.int64)
    try:
        return table.astype(np.float64)
    except ValueError:
        for number, fields in rows:
            for column, field in enumerate(fields, start=1):
                if not _is_number(field):
                    raise InputError(
                        f"{name}: line {number}, column {column}: {field!r} is not a number"
                    ) from None
        raise


def _split(line: str, delimiter: str | None) -> list[str]:
    fields = line.split(delimiter) if delimiter else line.split()
    return [f.strip().strip('"').strip() for f in fields]


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        return err.start > len(head) - 4  # a multi-byte character cut at the end
    return True


# ------------------------------------------------------------------ validation

def _validate_ids(x: np.ndarray, name: str, *, one_column_is_steps: bool) -> np.ndarray:
    expected = "integer token ids (steps,) or (batch, steps)"
    if x.dtype.kind not in "iuf":
        raise InputError(f"{name}: expected {expected}, found {_describe_dtype(x.dtype)}")
    if x.ndim == 2 and x.shape[1] == 1 and one_column_is_steps:
        x = x[:, 0]  # a one-column CSV: one id per row (step)
    if x.ndim not in (1, 2):
        raise InputError(f"{name}: expected {expected}, found shape {x.shape}")
    original = x.shape
    if x.ndim == 1:
        x = x[None]
    if 0 in x.shape:
        raise InputError(f"{name}: expected {expected}, found shape {original} (no steps)")
    if x.dtype.kind == "f":
        _check_finite(x, name, ("sample", "step"))
        fractional = x != np.round(x)
        if fractional.any():
            b, t = (int(i) for i in np.argwhere(fractional)[0])
            raise InputError(
                f"{name}: expected {expected}, found float values that are not whole numbers "
                f"(first: {float(x[b, t])!r} at sample {b}, step {t})"
            )
        x = x.astype(np.int64)
    negative = x < 0
    if negative.any():
        b, t = (int(i) for i in np.argwhere(negative)[0])
        raise InputError(
            f"{name}: expected {expected}, found a negative id {int(x[b, t])} at sample {b}, step {t}"
        )
    return x.astype(np.int64, copy=False)


def _check_finite(x: np.ndarray, name: str, axes: tuple[str, ...]) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        position = np.argwhere(bad)[0]
        value = float(x[tuple(position)])
        where = ", ".join(f"{axis} {int(i)}" for axis, i in zip(axes, position, strict=True))
        raise InputError(
            f"{name}: expected finite numbers, found {value!r} at {where}"
            f"{'' if bad.sum() == 1 else f' ({int(bad.sum())} non-finite values in all)'}"
        )


def _describe_dtype(dtype: np.dtype) -> str:
    kind = dtype.kind
    if dtype.names:
        return f"a structured array (fields {_some(dtype.names)})"
    what = {
        "U": "strings", "S": "byte strings", "O": "Python objects", "c": "complex numbers",
        "b": "booleans", "M": "dates", "m": "time deltas", "V": "raw bytes", "f": "floats",
    }.get(kind, "values")
    return f"{what} (dtype {dtype})"


def _some(names: list[str] | tuple[str, ...], limit: int = 8) -> str:
    """The first ``limit`` names, for a one-line message: ``a, b, c, ... (300 in all)``."""
    shown = ", ".join(n[:30] for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _source_is_csv(path: PathLike) -> bool:
    try:
        return detect_format(path) == "csv"
    except (InputError, TypeError, ValueError):
        return False
