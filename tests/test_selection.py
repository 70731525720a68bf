"""Range specs typed by users (--units, --steps, --samples) and their resolution."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_trace.selection import describe, parse_range, resolve


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("0:8", slice(0, 8, None)),
        ("10:", slice(10, None, None)),
        (":5", slice(None, 5, None)),
        ("::2", slice(None, None, 2)),
        ("-5:", slice(-5, None, None)),
        (" 2 : 6 ", slice(2, 6, None)),
        ("3", [3]),
        ("1,4,7", [1, 4, 7]),
        ("1, 4 ,7", [1, 4, 7]),
        ("-1", [-1]),
    ],
)
def test_parse_range_accepts_slices_indices_and_lists(spec, expected):
    assert parse_range(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("a:b", "'a' is not an integer"),
        ("1.5", "'1.5' is not an integer"),
        ("1,,2", "empty entry"),
        ("1:2:3:4", "at most three parts"),
        ("0:4,7", "not both"),
        ("::0", "cannot be 0"),
        ("8:2", "selects nothing"),
        ("x", "'x' is not an integer"),
    ],
)
def test_parse_range_rejects_bad_specs_with_the_spec_and_the_accepted_forms(spec, message):
    with pytest.raises(ValueError) as err:
        parse_range(spec)
    text = str(err.value)
    assert message in text
    assert repr(spec) in text
    assert "'0:8'" in text


def test_resolve_checks_slices_and_lists_against_the_axis():
    assert resolve(slice(0, 8), 5, "unit", clip=True).tolist() == [0, 1, 2, 3, 4]
    assert resolve([1, 9], 5, "unit", clip=True).tolist() == [1]
    assert resolve(slice(0, 5), 5, "unit").tolist() == [0, 1, 2, 3, 4]
    assert resolve(slice(-2, None), 5, "unit").tolist() == [3, 4]
    with pytest.raises(ValueError, match=r"--units 0:8: unit 7 is out of range: there are 5 units"):
        resolve(slice(0, 8), 5, "unit")
    with pytest.raises(ValueError, match=r"--steps 40:50: step 40 is out of range: there are 30 steps"):
        resolve(slice(40, 50), 30, "step")
    with pytest.raises(ValueError, match=r"--steps -2:3 selects no step"):
        resolve(slice(-2, 3), 10, "step")
    assert resolve(None, 3).tolist() == [0, 1, 2]
    assert resolve([2, -1], 5, "unit").tolist() == [2, 4]
    with pytest.raises(ValueError, match=r"unit 9 is out of range: there are 5 units \(0 to 4\)"):
        resolve([1, 9], 5, "unit")
    with pytest.raises(ValueError, match="sample 1 is out of range: there is 1 sample"):
        resolve([1], 1, "sample")


def test_describe_is_short_for_ranges_and_long_lists():
    assert describe(np.arange(0, 8)) == "0–7"
    assert describe(np.array([1, 4, 7])) == "1, 4, 7"
    assert describe(np.array([], dtype=int)) == "none"
    assert describe(np.array([0, 2, 4, 6, 8, 10, 12, 14])) == "0, 2, 4, …, 12, 14"
