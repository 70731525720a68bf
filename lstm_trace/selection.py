"""Index selections typed by a user: ``--units 0:8``, ``--steps 10:``, ``--samples 1,4,7``.

A spec is either a slice (``start:stop`` or ``start:stop:step``, each part optional, as in
Python) or a comma-separated list of integers::

    >>> parse_range("0:8")
    slice(0, 8, None)
    >>> parse_range("3")
    [3]
    >>> parse_range("1,4,7")
    [1, 4, 7]

:func:`resolve` turns a selection into concrete indices for an axis of known length,
checking it against the axis: one rule for lists and slices alike, an index outside
the axis (``--steps 40:50`` on 30 steps, ``--units 0:100`` on 8 units, ``--units 9``) is
an :class:`~lstm_trace.errors.OptionError` naming the option, the spec and the valid
range. ``clip=True`` clips instead, as Python slices do (for defaults such as "the first
20 steps", and for arrays narrower than the widest one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .errors import OptionError

#: A parsed selection: a slice, a list of indices, or ``None`` for "everything".
Selection = slice | Sequence[int] | None


def parse_range(spec: str) -> slice | list[int]:
    """Parse ``"0:8"``, ``"10:"``, ``":5"``, ``"::2"``, ``"3"`` or ``"1,4,7"``.

    Raises :class:`~lstm_trace.errors.OptionError` (a ``ValueError``) with the offending
    spec and the accepted forms.
    """
    if not isinstance(spec, str):
        raise OptionError(f"a range must be a string like '0:8' or '1,4,7', got {spec!r}")
    text = spec.strip()
    if not text:
        raise OptionError(_bad(spec, "it is empty"))
    if ":" in text:
        if "," in text:
            raise OptionError(_bad(spec, "use either a range 'a:b' or a list 'a,b,c', not both"))
        parts = text.split(":")
        if len(parts) > 3:
            raise OptionError(_bad(spec, "a range has at most three parts, start:stop:step"))
        start, stop, step = (_int_or_none(spec, p) for p in parts + [""] * (3 - len(parts)))
        if step == 0:
            raise OptionError(_bad(spec, "the step of a range cannot be 0"))
        if (
            start is not None and stop is not None and (step or 1) > 0
            and (start >= 0) == (stop >= 0) and stop <= start
        ):
            raise OptionError(_bad(spec, f"it selects nothing ({stop} is not after {start})"))
        return slice(start, stop, step)
    items = [p.strip() for p in text.split(",")]
    if any(not p for p in items):
        raise OptionError(_bad(spec, "a list has an empty entry"))
    return [_int(spec, p) for p in items]


def resolve(selection: Selection, length: int, what: str = "index", *, clip: bool = False) -> np.ndarray:
    """The indices ``selection`` picks on an axis of ``length``, as a non-negative int array.

    ``None`` picks everything; negative entries count from the end. Unless ``clip``, an
    index outside the axis (a list entry, a slice's start, or its stop past the end) or a
    selection that picks nothing raises :class:`~lstm_trace.errors.OptionError` naming
    ``--<what>s``, the spec and the valid range. ``clip=True`` drops list entries outside
    the axis and clips slices, as Python does.
    """
    if selection is None:
        return np.arange(length)
    if isinstance(selection, slice):
        if not clip:
            _check_slice(selection, length, what)
        picked = np.arange(length)[selection]
    else:
        values = np.asarray(list(selection), dtype=np.int64)
        if values.ndim != 1:
            raise OptionError(f"a {what} selection must be a flat list of integers")
        outside = (values >= length) | (values < -length)
        if clip:
            values = values[~outside]
        elif outside.any():
            raise OptionError(_outside(selection, int(values[outside][0]), length, what))
        picked = np.where(values < 0, values + length, values)
    if not clip and not picked.size:
        raise OptionError(
            f"{option_text(selection, what)} selects no {what}: there "
            f"{'is' if length == 1 else 'are'} {_count(length, what)}{_valid(length)}"
        )
    return picked


def option_text(selection: Selection, what: str) -> str:
    """``--steps 40:50``: the option and the spec as the user would have typed them."""
    if isinstance(selection, slice):
        parts = ["" if v is None else str(v) for v in (selection.start, selection.stop)]
        if selection.step is not None:
            parts.append(str(selection.step))
        spec = ":".join(parts)
    else:
        spec = ",".join(str(int(v)) for v in (selection or ()))
    return f"--{what}s {spec}"


def _check_slice(selection: slice, length: int, what: str) -> None:
    start, stop = selection.start, selection.stop
    if start is not None and not -length <= start < length:
        raise OptionError(_outside(selection, start, length, what))
    if stop is not None and not -length <= stop <= length:
        raise OptionError(_outside(selection, stop - 1 if stop > 0 else stop, length, what))


def _outside(selection: Selection, index: int, length: int, what: str) -> str:
    if not length:
        return f"{option_text(selection, what)}: {what} {index} is out of range: there are no {what}s"
    return (
        f"{option_text(selection, what)}: {what} {index} is out of range: there "
        f"{'is' if length == 1 else 'are'} {_count(length, what)}{_valid(length)}"
    )


def _count(length: int, what: str) -> str:
    return f"{length} {what}{'' if length == 1 else 's'}"


def _valid(length: int) -> str:
    return f" (0 to {length - 1})" if length else ""


def describe(indices: np.ndarray) -> str:
    """A short human form of sorted-or-not indices: ``"0–7"``, ``"1, 4, 7"``, ``"none"``."""
    values = [int(i) for i in indices]
    if not values:
        return "none"
    if len(values) > 1 and values == list(range(values[0], values[-1] + 1)):
        return f"{values[0]}–{values[-1]}"
    if len(values) > 6:
        return ", ".join(map(str, values[:3])) + ", …, " + ", ".join(map(str, values[-2:]))
    return ", ".join(map(str, values))


def _int(spec: str, part: str) -> int:
    try:
        return int(part.strip())
    except ValueError:
        raise OptionError(_bad(spec, f"{part.strip()!r} is not an integer")) from None


def _int_or_none(spec: str, part: str) -> int | None:
    return None if not part.strip() else _int(spec, part)


def _bad(spec: object, why: str) -> str:
    return (
        f"bad range {spec!r}: {why}; expected 'start:stop' (either may be omitted, "
        "e.g. '0:8', '10:', ':5'), an index '3', or a list '1,4,7'"
    )
