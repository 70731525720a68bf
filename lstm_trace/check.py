"""Compare a fresh trace with a saved ("golden") one: the CI regression check.

A golden trace is what ``lstm-trace MODEL INPUT --format npz -o GOLDEN.npz`` wrote.
:func:`compare` checks every key, elementwise, the way :func:`numpy.isclose` does::

    differs  =  |trace - golden| > atol + rtol · |golden|

(``nan`` equals ``nan``; boolean ``mask`` arrays must be identical). A key present on
only one side, or with a different shape, is a difference too. For every key the
result gives the largest absolute and relative error (also for keys within tolerance, so
drift is visible before it fails); for a differing key also how many values differ and
where it first diverged: the earliest step, then sample, then unit, so a user sees the
first moment in time at which the model changed.
"""

from __future__ import annotations

import fnmatch
import math
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import OptionError

#: float32 defaults: a few ulps of accumulated rounding, not a changed weight.
DEFAULT_ATOL = 1e-5
DEFAULT_RTOL = 1e-4


@dataclass
class KeyComparison:
    """The verdict on one key."""

    key: str
    #: ``equal``, ``different``, ``shape`` (shapes differ), ``missing_in_trace``,
    #: ``missing_in_golden``.
    status: str
    max_abs_error: float = 0.0
    max_rel_error: float = 0.0
    differing: int = 0
    total: int = 0
    #: ``(sample, step, unit)`` of the first difference (``unit`` is None for ``mask``).
    first: tuple[int, int, int | None] | None = None
    trace_shape: tuple[int, ...] | None = None
    golden_shape: tuple[int, ...] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "equal"

    def summary(self) -> str:
        """One line saying what differs, for reports."""
        if self.status == "missing_in_trace":
            return f"{self.key}: in the golden file but not in the trace"
        if self.status == "missing_in_golden":
            return f"{self.key}: in the trace but not in the golden file"
        if self.status == "shape":
            return (f"{self.key}: shape {self.trace_shape} in the trace, "
                    f"{self.golden_shape} in the golden file")
        if self.ok:
            return f"{self.key}: equal ({self.total} values)"
        where = ""
        if self.first is not None:
            s, t, u = self.first
            where = f"; first at sample {s}, step {t}" + ("" if u is None else f", unit {u}")
        return (f"{self.key}: {self.differing} of {self.total} values differ; max abs error "
                f"{_fmt(self.max_abs_error)}, max rel error {_fmt(self.max_rel_error)}{where}")

    def to_dict(self) -> dict[str, Any]:
        first = None
        if self.first is not None:
            first = {"sample": self.first[0], "step": self.first[1], "unit": self.first[2]}
        return {
            "key": self.key, "status": self.status,
            "max_abs_error": _finite_or_none(self.max_abs_error),
            "max_rel_error": _finite_or_none(self.max_rel_error),
            "differing": self.differing, "total": self.total, "first_difference": first,
            "trace_shape": None if self.trace_shape is None else list(self.trace_shape),
            "golden_shape": None if self.golden_shape is None else list(self.golden_shape),
        }


@dataclass
class Comparison:
    """All keys compared, in golden-file order (then keys only the trace has)."""

    keys: list[KeyComparison]
    atol: float
    rtol: float
    patterns: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return all(k.ok for k in self.keys)

    @property
    def differences(self) -> list[KeyComparison]:
        return [k for k in self.keys if not k.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "equal": self.equal, "atol": self.atol, "rtol": self.rtol,
            "keys_compared": len(self.keys), "keys_different": len(self.differences),
            "patterns": self.patterns, "keys": [k.to_dict() for k in self.keys],
        }


def compare(
    trace: Mapping[str, np.ndarray],
    golden: Mapping[str, np.ndarray],
    atol: float = DEFAULT_ATOL,
    rtol: float = DEFAULT_RTOL,
    keys: Iterable[str] | None = None,
) -> Comparison:
    """Compare ``trace`` with ``golden`` key by key (see the module docstring).

    ``keys`` are glob patterns (``lstm/*``, ``*/forget_gate``); only keys matching one of
    them are compared, and a pattern matching no key on either side raises ``ValueError``
    (a typo would otherwise pass silently).
    """
    if atol < 0 or rtol < 0 or math.isnan(atol) or math.isnan(rtol):
        raise OptionError(f"--atol and --rtol must be non-negative numbers, got {atol}, {rtol}")
    names = list(golden) + [k for k in trace if k not in golden]
    patterns = list(keys or ())
    if patterns:
        for pattern in patterns:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in names):
                raise OptionError(
                    f"--keys {pattern!r} matches no key; keys are: {', '.join(names[:8])}"
                    + (", ..." if len(names) > 8 else "")
                )
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
    results = []
    for name in names:
        if name not in trace:
            results.append(KeyComparison(name, "missing_in_trace",
                                         golden_shape=tuple(np.shape(golden[name]))))
        elif name not in golden:
            results.append(KeyComparison(name, "missing_in_golden",
                                         trace_shape=tuple(np.shape(trace[name]))))
        else:
            results.append(compare_arrays(name, np.asarray(trace[name]), np.asarray(golden[name]),
                                          atol, rtol))
    return Comparison(results, atol, rtol, patterns)


def compare_arrays(key: str, actual: np.ndarray, expected: np.ndarray,
                   atol: float, rtol: float) -> KeyComparison:
    """One key: elementwise ``isclose`` with the numbers a report needs."""
    result = KeyComparison(key, "equal", total=int(expected.size),
                           trace_shape=tuple(actual.shape), golden_shape=tuple(expected.shape))
    if actual.shape != expected.shape:
        result.status = "shape"
        return result
    if expected.dtype == bool or actual.dtype == bool:
        differ = actual.astype(bool) != expected.astype(bool)
        abs_err = differ.astype(np.float64)
        rel_err = abs_err
    else:
        a = actual.astype(np.float64)
        e = expected.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            abs_err = np.abs(a - e)
            both_nan = np.isnan(a) & np.isnan(e)
            same_inf = np.isinf(a) & np.isinf(e) & (a == e)
            abs_err[both_nan | same_inf] = 0.0
            abs_err[np.isnan(abs_err)] = np.inf  # nan on one side only
            differ = abs_err > atol + rtol * np.abs(np.where(np.isnan(e), 0, e))
            rel_err = np.where(abs_err == 0, 0.0, abs_err / np.abs(e))
            rel_err[np.isnan(rel_err)] = np.inf
    if abs_err.size:  # the real error of every key, also within tolerance (drift shows early)
        result.max_abs_error = float(abs_err.max())
        result.max_rel_error = float(rel_err.max())
    if not differ.any():
        return result
    result.status = "different"
    result.differing = int(differ.sum())
    result.first = _first(differ)
    return result


def _first(differ: np.ndarray) -> tuple[int, int, int | None]:
    """Earliest step with a difference, then the lowest sample, then the lowest unit."""
    if differ.ndim == 3:
        samples, steps, units = np.nonzero(differ)
        k = np.lexsort((units, samples, steps))[0]
        return int(samples[k]), int(steps[k]), int(units[k])
    if differ.ndim == 2:
        samples, steps = np.nonzero(differ)
        k = np.lexsort((samples, steps))[0]
        return int(samples[k]), int(steps[k]), None
    index = np.unravel_index(int(np.flatnonzero(differ)[0]), differ.shape)
    padded = [int(i) for i in index] + [0, 0]
    return padded[0], padded[1], None


#: What a golden file must be, said in every error about one.
GOLDEN_HINT = ("a golden trace must be an .npz written by "
               "'lstm-trace MODEL INPUT --format npz -o GOLDEN.npz'")


def load_golden(path: str) -> dict[str, np.ndarray]:
    """Read a golden ``.npz`` (never unpickling); anything else is a one-line ``OptionError``."""
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise OptionError(f"--golden {path}: no such file; {GOLDEN_HINT}") from None
    except OSError as err:
        raise OptionError(f"--golden {path}: cannot read ({err.strerror or err})") from None
    if magic[:2] != b"PK":
        what = "a NumPy .npy array, not a trace" if magic == b"\x93NUM" else "not an .npz (zip) file"
        if not magic:
            what = "empty"
        raise OptionError(f"--golden {path}: {what}; {GOLDEN_HINT}")
    _check_golden_members(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: np.asarray(data[key]) for key in data.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise OptionError(f"--golden {path}: holds pickled objects, which lstm-trace never "
                              f"loads; {GOLDEN_HINT}") from None
        raise OptionError(f"--golden {path}: damaged ({err}); {GOLDEN_HINT}") from None
    except (OSError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise OptionError(f"--golden {path}: damaged ({err}); {GOLDEN_HINT}") from None


def _check_golden_members(path: str) -> None:
    """Refuse zip members whose declared sizes are too large or cannot be true (zip bombs)."""
    from .inputs import MAX_NPZ_MEMBER_BYTES
    from .safe_zip import ZipLimitError, ZipUnreadableError, check_zip_file

    try:
        check_zip_file(path, MAX_NPZ_MEMBER_BYTES)
    except ZipLimitError as err:
        raise OptionError(f"--golden {path}: {err}") from None
    except ZipUnreadableError as err:
        raise OptionError(f"--golden {path}: damaged ({err}); {GOLDEN_HINT}") from None


def junit_xml(comparison: Comparison, suite: str = "lstm-trace check") -> bytes:
    """A JUnit XML report: one ``testcase`` per key, a ``failure`` with the numbers (a passing
    key's largest errors in its ``system-out``)."""
    import xml.etree.ElementTree as ET

    failures = len(comparison.differences)
    root = ET.Element("testsuites", tests=str(len(comparison.keys)), failures=str(failures))
    node = ET.SubElement(root, "testsuite", name=suite, tests=str(len(comparison.keys)),
                         failures=str(failures), errors="0", skipped="0")
    props = ET.SubElement(node, "properties")
    ET.SubElement(props, "property", name="atol", value=repr(comparison.atol))
    ET.SubElement(props, "property", name="rtol", value=repr(comparison.rtol))
    for result in comparison.keys:
        case = ET.SubElement(node, "testcase", classname=suite, name=result.key)
        if not result.ok:
            failure = ET.SubElement(case, "failure", message=result.summary(), type=result.status)
            failure.text = "\n".join(f"{k}: {v}" for k, v in result.to_dict().items())
        elif result.total:  # the real error of a passing key too: drift shows before it fails
            ET.SubElement(case, "system-out").text = (
                f"max abs error {_fmt(result.max_abs_error)}, "
                f"max rel error {_fmt(result.max_rel_error)} ({result.total} values)"
            )
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def render(comparison: Comparison, width: int | None = None) -> str:
    """Text report: one line when equal, else a table of the differing keys."""
    import io

    from rich.console import Console
    from rich.table import Table

    tol = f"atol={comparison.atol:g}, rtol={comparison.rtol:g}"
    if comparison.equal:
        worst = max(comparison.keys, key=lambda k: k.max_abs_error, default=None)
        largest = ("" if worst is None else "; identical" if worst.max_abs_error == 0 else
                   f"; largest difference {_fmt(worst.max_abs_error)} in {worst.key}")
        return f"OK: {len(comparison.keys)} keys equal to the golden trace ({tol}){largest}\n"
    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 120, no_color=True, highlight=False,
                      force_terminal=False, emoji=False)
    table = Table(title=f"{len(comparison.differences)} of {len(comparison.keys)} keys differ ({tol})",
                  title_justify="left")
    for column, justify in (("key", "left"), ("max abs error", "right"),
                            ("max rel error", "right"), ("differing", "right"),
                            ("first (sample, step, unit)", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for result in comparison.differences:
        if result.status == "different":
            s, t, u = result.first or (0, 0, None)
            where = f"({s}, {t}, {'-' if u is None else u})"
            table.add_row(result.key, _fmt(result.max_abs_error), _fmt(result.max_rel_error),
                          f"{result.differing}/{result.total}", where)
        else:
            what = {"missing_in_trace": "missing in trace", "missing_in_golden": "missing in golden",
                    "shape": f"shape {result.trace_shape} vs golden {result.golden_shape}"}
            table.add_row(result.key, "", "", "", what[result.status])
    console.print(table)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def _fmt(value: float) -> str:
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}"


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None
