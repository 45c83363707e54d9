"""The column width allocator: narrowest widths first, the room towards the ideal ones, the rest shared."""

from __future__ import annotations

import pytest
from dtask_tui.widths import Want, allocate


def test_everything_ideal_and_the_rest_to_the_growing_columns() -> None:
    wants = [Want("id", 2, 2, 9), Want("name", 8, 20, 10, grow=1), Want("state", 10, 40, 9, grow=1)]
    widths = allocate(wants, 100)
    assert widths == {"id": 2, "name": 20 + 18, "state": 40 + 18}  # 100 - 2 gaps - 62 ideal = 36 shared
    assert sum(widths.values()) + 2 == 100


def test_short_room_goes_in_proportion_to_what_each_lacks() -> None:
    wants = [Want("name", 10, 30, 10), Want("error", 10, 70, 9)]
    widths = allocate(wants, 61)  # 60 cells for the two: 40 beyond their narrowest, lacking 20 and 60
    assert widths == {"name": 20, "error": 40}


def test_lowest_priority_goes_first_and_the_last_of_equals() -> None:
    wants = [Want("a", 10, 10, 5), Want("b", 10, 10, 1), Want("c", 10, 10, 1), Want("d", 10, 10, 3)]
    assert list(allocate(wants, 32)) == ["a", "b", "d"]
    assert list(allocate(wants, 21)) == ["a", "d"]
    assert list(allocate(wants, 5)) == ["a"] and allocate(wants, 5)["a"] == 5  # the most important, cut


@pytest.mark.parametrize("total", range(1, 200, 7))
def test_never_wider_than_given(total: int) -> None:
    wants = [Want("id", 3, 5, 9), Want("name", 6, 50, 10, grow=2), Want("x", 4, 9, 2), Want("y", 8, 8, 4, grow=1)]
    widths = allocate(wants, total)
    assert sum(widths.values()) + len(widths) - 1 <= total
    assert all(w >= 1 for w in widths.values())


def test_bad_wants_are_refused() -> None:
    with pytest.raises(ValueError):
        Want("x", 5, 4)


def test_optional_columns_give_way_to_a_column_that_would_be_cut() -> None:
    wants = [
        Want("name", 6, 6, 10),
        Want("error", 12, 40, 9),
        Want("executor", 6, 6, 7),
        Want("started", 8, 8, 4, optional=True),
        Want("ended", 8, 8, 2, optional=True),
        Want("att", 3, 3, 1, optional=True),
    ]
    assert list(allocate(wants, 70)) == ["name", "error", "executor", "started"]  # att, then ended went
    assert allocate(wants, 70)["error"] == 40
    assert list(allocate(wants, 72)) == ["name", "error", "executor", "started", "ended"]
    assert list(allocate(wants, 50)) == ["name", "error", "executor"]  # no optional left: the error is cut
    assert allocate(wants, 50)["error"] == 36
