"""Vectorised text building for the CSV and JSON writers.

Numbers are rendered into *character matrices*: ``uint8`` arrays of ASCII codes with one
row per value, padded on the right (and, for floats, at the sign position) with NUL
bytes. Writers lay such matrices side by side with separator columns and call
:func:`squeeze` to drop the padding, which gives the final text in one pass with no
Python loop per value.

Floats are written in their *shortest round-trip* form: the fewest significant digits
that parse back (``float(s)``, ``np.float32(s)``) to the very same value of the array's
own dtype, as ``repr`` does for Python floats. ``np.float32(0.1)`` is written ``0.1``,
not ``0.10000000149011612``. Layout follows ``repr``: positional for ``1e-4 <= |x| < 1e16``
(``0.12573022``, ``3.0``), scientific otherwise (``1.5e-05``); ``nan``, ``inf``, ``-inf``.

For float32 the digits are found arithmetically: for ``p`` significant digits the two
``p``-digit decimals around ``x`` are ``floor(x / 10^k)`` and one more (``k`` chosen so
they have ``p`` digits); a candidate is kept when converting it back gives ``x``, and a
vectorised bisection over ``p = 1..9`` finds the smallest ``p`` that works (more digits
never hurt, so the test is monotone). The powers of ten used are exact in float64 for
values in ``[1e-13, 1e22)``; other float32 values, and other float dtypes, use NumPy's
own shortest-repr formatting (Dragon4), which is exact but about five times slower.
"""

from __future__ import annotations

import numpy as np

#: Width of a float32 character matrix: sign, 16 digits, ".0", and room to spare.
_F32_WIDTH = 20
#: float32 values in this range take the arithmetic path (all powers of ten exact).
_FAST_MIN, _FAST_MAX = 1e-13, 1e22
_POW10 = np.array([10.0 ** k for k in range(23)])
_IPOW10 = np.array([10 ** k for k in range(19)], dtype=np.int64)


def float_chars(values: np.ndarray, *, nonfinite: str | None = None) -> np.ndarray:
    """Shortest round-trip text of each value of ``values`` as an ``(N, W)`` NUL-padded matrix.

    Rows follow ``values.ravel()``. ``nonfinite`` replaces ``nan``/``inf``/``-inf`` with
    one literal (the JSON writer passes ``"null"``).
    """
    flat = np.ascontiguousarray(values).ravel()
    out = _float32_chars(flat) if flat.dtype == np.float32 else _numpy_chars(flat)
    if nonfinite is not None:
        bad = ~np.isfinite(flat)
        if bad.any():
            text = np.frombuffer(nonfinite.encode("ascii"), dtype=np.uint8)
            if text.size > out.shape[1]:
                out = _widen(out, text.size)
            out[bad] = 0
            out[bad, : text.size] = text
    return out


def int_chars(values: np.ndarray) -> np.ndarray:
    """Decimal text of integers as an ``(N, W)`` NUL-padded matrix (small arrays: uses ``str``)."""
    flat = np.asarray(values).ravel()
    return text_chars([str(int(v)) for v in flat])


def text_chars(texts: list[str]) -> np.ndarray:
    """A list of strings as an ``(N, W)`` NUL-padded UTF-8 matrix."""
    encoded = [t.encode("utf-8") for t in texts]
    width = max((len(e) for e in encoded), default=0)
    arr = np.array(encoded, dtype=f"S{max(width, 1)}")
    return arr.view(np.uint8).reshape(len(encoded), max(width, 1))


def literal(text: str) -> np.ndarray:
    """A constant piece of text as a ``(W,)`` character row, to broadcast across rows."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def squeeze(chars: np.ndarray) -> str:
    """Concatenate a character array in C order, dropping the NUL padding."""
    flat = np.ascontiguousarray(chars).ravel()
    return flat[flat != 0].tobytes().decode("utf-8")


def _widen(chars: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((chars.shape[0], width), dtype=np.uint8)
    out[:, : chars.shape[1]] = chars
    return out


def _numpy_chars(flat: np.ndarray) -> np.ndarray:
    """NumPy's own shortest round-trip text (Dragon4) of each value."""
    if flat.size == 0:
        return np.zeros((0, 1), dtype=np.uint8)
    text = flat.astype("S40")
    width = max(int(np.char.str_len(text).max()), 1)
    return text.astype(f"S{width}").view(np.uint8).reshape(flat.size, width)


def _float32_chars(x: np.ndarray) -> np.ndarray:
    n = x.size
    out = np.zeros((n, _F32_WIDTH), dtype=np.uint8)
    if n == 0:
        return out
    with np.errstate(invalid="ignore"):
        v = np.abs(x).astype(np.float64)
    neg = np.signbit(x)
    fast = (v >= _FAST_MIN) & (v < _FAST_MAX)  # NaN compares false: not fast
    zero = v == 0
    slow = ~fast & ~zero

    out[neg & ~np.isnan(x), 0] = ord("-")
    out[zero, 1:4] = literal("0.0")
    if slow.any():
        text = _numpy_chars(x[slow])  # nan, inf, denormals, tiny and huge values
        if text.shape[1] > _F32_WIDTH:
            out = _widen(out, text.shape[1])
        rows = out[slow]
        rows[:] = 0
        rows[:, : text.shape[1]] = text
        out[slow] = rows
    if fast.all():
        digits, exp10 = _shortest_digits(x, v)
        out[:, 1:] = _layout(digits, exp10, out.shape[1] - 1)
    elif fast.any():
        index = np.flatnonzero(fast)
        digits, exp10 = _shortest_digits(x[index], v[index])
        out[index, 1:] = _layout(digits, exp10, out.shape[1] - 1)
    return out


def _shortest_digits(x: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(m, k)`` with ``x == float32(m * 10**k)`` and ``m`` having the fewest digits.

    Most float32 values need 7 or 8 digits, so ``p = 8`` is tried on all (``9`` on
    the failures), then ``7, 6`` on shrinking sets; the few values that pass at 6
    digits are bisected over ``1..6``.
    """
    ax = np.abs(x)
    e10 = np.floor(np.log10(v)).astype(np.int64)
    # log10 may be off by one next to a power of ten; fix it against exact powers.
    e10 += v >= _pow10(e10 + 1)
    e10 -= v < _pow10(e10)

    digits = np.full(v.size, 8, dtype=np.int64)
    ok, m = _candidates(ax, v, e10 - 7)
    if not ok.all():  # 9 digits always suffice for float32
        miss = np.flatnonzero(~ok)
        ok9, m[miss] = _candidates(ax[miss], v[miss], e10[miss] - 8)
        if not ok9.all():  # cannot happen; stay safe rather than write a wrong digit
            raise AssertionError("shortest float32 digits not found")
        digits[miss] = 9
    active = np.flatnonzero(ok)
    for p in (7, 6):
        ok, mp = _candidates(ax[active], v[active], e10[active] - p + 1)
        active = active[ok]
        digits[active] = p
        m[active] = mp[ok]
        if not active.size:
            break
    lo = np.ones(active.size, dtype=np.int64)
    hi = digits[active]
    todo = np.flatnonzero(lo < hi)
    while todo.size:
        idx = active[todo]
        mid = (lo[todo] + hi[todo]) // 2
        ok, mp = _candidates(ax[idx], v[idx], e10[idx] - mid + 1)
        hi[todo] = np.where(ok, mid, hi[todo])
        lo[todo] = np.where(ok, lo[todo], mid + 1)
        m[idx[ok]] = mp[ok]
        digits[idx[ok]] = mid[ok]
        todo = todo[lo[todo] < hi[todo]]
    k = e10 - digits + 1
    while True:  # drop trailing zeros: 1200 * 10**-3 -> 12 * 10**-1
        z = np.flatnonzero(m % 10 == 0)
        if not z.size:
            break
        m[z] //= 10
        k[z] += 1
    return m, k


def _pow10(k: np.ndarray) -> np.ndarray:
    """``10.0**k`` for integer ``k``: exact for ``0 <= k <= 22``, correctly rounded below."""
    k = np.asarray(k)
    return np.where(k >= 0, _POW10[np.clip(k, 0, 22)], 1.0 / _POW10[np.clip(-k, 0, 22)])


def _scale(v: np.ndarray, k: np.ndarray, *, up: bool) -> np.ndarray:
    """``v * 10**k`` (``up``) or ``v / 10**k``, each with one rounding (exact power, one op)."""
    p = _POW10[np.abs(k)]
    mul = (k >= 0) if up else (k < 0)
    out = np.empty_like(v)
    np.multiply(v, p, out=out, where=mul)
    np.divide(v, p, out=out, where=~mul)
    return out


def _candidates(ax: np.ndarray, v: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether a decimal ``m * 10**k`` reads back as ``ax``; the nearest such ``m``."""
    scaled = _scale(v, k, up=False)
    near = np.rint(scaled)
    far = np.where(near <= scaled, near + 1, near - 1)
    ok_near = _scale(near, k, up=True).astype(np.float32) == ax
    ok_far = _scale(far, k, up=True).astype(np.float32) == ax
    m = np.where(ok_near, near, far).astype(np.int64)
    return ok_near | ok_far, m


def _layout(m: np.ndarray, k: np.ndarray, width: int) -> np.ndarray:
    """``m * 10**k`` in ``repr`` style as an ``(N, width)`` NUL-padded matrix.

    Where each character comes from depends only on (digit count, exponent): values are
    sorted by that pair (a radix sort of a small key), and each run of equal pairs is
    one column gather from its source rows (the right-aligned digits of ``m``, then
    literal characters) through :func:`_layout_table`.
    """
    m = m.astype(np.uint32)  # at most 9 digits
    ndig = np.searchsorted(_IPOW10, m, side="right")
    key = (ndig * 64 + (k - _K_MIN)).astype(np.int16)
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    rest = m[order]
    source = np.empty((m.size, 9 + len(_SOURCE_LITERALS)), dtype=np.uint8)
    for j in range(8, -1, -1):  # column j holds the digit of 10**(8-j)
        source[:, j] = rest % 10
        rest //= 10
    source[:, :9] += ord("0")
    source[:, 9:] = literal(_SOURCE_LITERALS)
    table = _layout_table(width)
    body = np.empty((m.size, width), dtype=np.uint8)
    bounds = np.flatnonzero(np.diff(sorted_key)) + 1
    for start, end in zip(np.r_[0, bounds], np.r_[bounds, m.size], strict=True):
        n, k_index = divmod(int(sorted_key[start]), 64)
        body[start:end] = source[start:end][:, table[n, k_index]]
    out = np.empty_like(body)
    out[order] = body
    return out


#: Literal characters a layout may use; index 0 is the NUL padding.
_SOURCE_LITERALS = "\0.e+-0123456789"
#: Range of decimal exponents ``k`` a fast-path value can have (``[1e-13, 1e22)``, 1-9 digits).
_K_MIN, _K_MAX = -22, 22
_TABLES: dict[int, np.ndarray] = {}


def _layout_table(width: int) -> np.ndarray:
    """``table[n, k - _K_MIN]``: the source column of each output character."""
    if width not in _TABLES:
        table = np.full((10, _K_MAX - _K_MIN + 1, width), 9, dtype=np.intp)  # NUL
        for n in range(1, 10):
            for k in range(_K_MIN, _K_MAX + 1):
                for col, src in enumerate(_template(n, k)[:width]):
                    table[n, k - _K_MIN, col] = (
                        9 - n + src if isinstance(src, int) else 9 + _SOURCE_LITERALS.index(src)
                    )
        _TABLES[width] = table
    return _TABLES[width]


def _template(n: int, k: int) -> list[int | str]:
    """Layout of an ``n``-digit integer ``m`` times ``10**k``: digit indices and literal chars."""
    digits: list[int | str] = list(range(n))
    e = n - 1 + k
    if -4 <= e < 16:
        if k >= 0:
            return digits + ["0"] * k + [".", "0"]
        if n + k > 0:
            return digits[: n + k] + ["."] + digits[n + k:]
        return ["0", "."] + ["0"] * (-(n + k)) + digits
    mantissa = digits[:1] + (["."] + digits[1:] if n > 1 else [])
    return mantissa + list(f"e{e:+03d}")
