"""Numbers that enter dtask: finite, in range, and the one wording of what is wrong with them."""

from __future__ import annotations

import math

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


def is_finite(value: object) -> bool:
    """A real number that is not inf or nan (an int too large for a float counts as infinite)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def problem(
    value: object, *, minimum: float | None = 0, maximum: float | None = None, integer: bool = False, unit: str = ""
) -> str | None:
    """What is wrong with value as a number of the given kind, or None when it is fine."""
    t = type(value)  # the common case at once: a finite float, or an int, in range (bool is not int here)
    if (t is float and not integer and value - value == 0.0) or (  # type: ignore[operator]
        t is int and (integer or -INT64_MAX <= value <= INT64_MAX)  # type: ignore[operator]
    ):
        if (minimum is None or value >= minimum) and (maximum is None or value <= maximum):  # type: ignore[operator]
            return None
    kind = "an integer" if integer else "a finite number"
    unit_text = f" {unit}" if unit else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        return f"must be {kind}{unit_text}, got {value!r}"
    if not integer and not is_finite(value):
        return f"must be {kind}{unit_text}, got {_show(value)}"
    if minimum is not None and value < minimum:
        return f"must be >= {_num(minimum)}{unit_text}, got {_show(value)}"
    if maximum is not None and value > maximum:
        return f"must be at most {_num(maximum)}{unit_text}, got {_show(value)}"
    return None


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _show(value: int | float) -> str:
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text)} digits)"
