"""numbers.problem: its quick path for plain in-range numbers says what the full checks say, for every value."""

from __future__ import annotations

import math

from dtask_common import numbers
from hypothesis import given, settings
from hypothesis import strategies as st


def reference(value: object, *, minimum: float | None, maximum: float | None, integer: bool) -> bool:
    """Whether value is fine, by the full checks alone (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        return False
    if not integer and not numbers.is_finite(value):
        return False
    return (minimum is None or value >= minimum) and (maximum is None or value <= maximum)


values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=-(2**1100), max_value=2**1100),
    st.sampled_from([True, False, None, "1", 2**63, -(2**63), 2**2000, math.inf, -0.0]),
)
bounds = st.one_of(st.none(), st.sampled_from([0, 1, -5, 0.5, numbers.INT32_MAX, numbers.INT64_MAX]))


@settings(max_examples=500, deadline=None)
@given(values, bounds, bounds, st.booleans())
def test_quick_path_agrees_with_the_full_checks(
    value: object, lo: float | None, hi: float | None, integer: bool
) -> None:
    got = numbers.problem(value, minimum=lo, maximum=hi, integer=integer)
    assert (got is None) == reference(value, minimum=lo, maximum=hi, integer=integer), (value, got)
    if got is not None:
        assert got.startswith("must be ")
