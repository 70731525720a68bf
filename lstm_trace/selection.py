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
checking list entries against it (a slice is clipped, as Python slices are).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: A parsed selection: a slice, a list of indices, or ``None`` for "everything".
Selection = slice | Sequence[int] | None


def parse_range(spec: str) -> slice | list[int]:
    """Parse ``"0:8"``, ``"10:"``, ``":5"``, ``"::2"``, ``"3"`` or ``"1,4,7"``.

    Raises :class:`ValueError` with the offending spec and the accepted forms.
    """
    if not isinstance(spec, str):
        raise ValueError(f"a range must be a string like '0:8' or '1,4,7', got {spec!r}")
    text = spec.strip()
    if not text:
        raise ValueError(_bad(spec, "it is empty"))
    if ":" in text:
        if "," in text:
            raise ValueError(_bad(spec, "use either a range 'a:b' or a list 'a,b,c', not both"))
        parts = text.split(":")
        if len(parts) > 3:
            raise ValueError(_bad(spec, "a range has at most three parts, start:stop:step"))
        start, stop, step = (_int_or_none(spec, p) for p in parts + [""] * (3 - len(parts)))
        if step == 0:
            raise ValueError(_bad(spec, "the step of a range cannot be 0"))
        if (
            start is not None and stop is not None and (step or 1) > 0
            and (start >= 0) == (stop >= 0) and stop <= start
        ):
            raise ValueError(_bad(spec, f"it selects nothing ({stop} is not after {start})"))
        return slice(start, stop, step)
    items = [p.strip() for p in text.split(",")]
    if any(not p for p in items):
        raise ValueError(_bad(spec, "a list has an empty entry"))
    return [_int(spec, p) for p in items]


def resolve(selection: Selection, length: int, what: str = "index") -> np.ndarray:
    """The indices ``selection`` picks on an axis of ``length``, as a non-negative int array.

    ``None`` picks everything. Negative list entries count from the end. A list entry
    outside the axis raises :class:`ValueError` naming ``what`` and the axis length.
    """
    if selection is None:
        return np.arange(length)
    if isinstance(selection, slice):
        return np.arange(length)[selection]
    picked = np.asarray(list(selection), dtype=np.int64)
    if picked.ndim != 1:
        raise ValueError(f"a {what} selection must be a flat list of integers")
    bad = picked[(picked >= length) | (picked < -length)]
    if bad.size:
        raise ValueError(
            f"{what} {int(bad[0])} is out of range: there {'is' if length == 1 else 'are'} "
            f"{length} {what}{'' if length == 1 else 's'} (0 to {length - 1})"
            if length else f"{what} {int(bad[0])} is out of range: there are no {what}s"
        )
    return np.where(picked < 0, picked + length, picked)


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
        raise ValueError(_bad(spec, f"{part.strip()!r} is not an integer")) from None


def _int_or_none(spec: str, part: str) -> int | None:
    return None if not part.strip() else _int(spec, part)


def _bad(spec: object, why: str) -> str:
    return (
        f"bad range {spec!r}: {why}; expected 'start:stop' (either may be omitted, "
        "e.g. '0:8', '10:', ':5'), an index '3', or a list '1,4,7'"
    )
