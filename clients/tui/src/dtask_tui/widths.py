"""Column widths shared by content: each column's narrowest and ideal width, kept by priority (pure, no urwid)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Want:
    """What one column asks for: the narrowest width it is still useful at, the width its widest content
    takes, its priority (columns of the lowest priority are dropped first when even the narrowest widths do
    not fit), its share of the room left once every column has its ideal width (0: none), and whether it is
    optional: gives its place up to a column of higher priority that would be cut."""

    key: str
    min: int
    ideal: int
    priority: int = 0
    grow: int = 0
    optional: bool = False

    def __post_init__(self) -> None:
        if self.min < 1 or self.ideal < self.min or self.grow < 0:
            raise ValueError(f"column {self.key!r}: need 1 <= min <= ideal and grow >= 0")


def allocate(wants: list[Want], total: int, gap: int = 1) -> dict[str, int]:
    """Widths (by key, in the order given) that fit total cells with gap cells between columns.

    1. While even the narrowest widths do not fit, the column of the lowest priority goes (the last one
       listed among equals); the column of the highest priority stays, cut to total if need be.
    2. While a column would be cut (short of its ideal width), optional columns of lower priority go, the
       lowest first.
    3. Every column starts at its narrowest; the room left takes each one towards its ideal width, in
       proportion to what it lacks (so a long error and a long name both get some).
    4. Room left over when every column is ideal is shared by the columns that grow, by their weights.
    """
    chosen = list(wants)

    def need(cols: list[Want]) -> int:
        return sum(w.min for w in cols) + gap * max(0, len(cols) - 1)

    while len(chosen) > 1 and need(chosen) > total:
        lowest = min(w.priority for w in chosen)
        victim = max(i for i, w in enumerate(chosen) if w.priority == lowest)
        chosen.pop(victim)
    if not chosen:
        return {}
    if need(chosen) > total:
        return {chosen[0].key: max(1, total)}
    while (lacking := sum(w.ideal - w.min for w in chosen)) > total - need(chosen):
        cut = max((w.priority for w in chosen if w.ideal > w.min), default=None)
        optional = [i for i, w in enumerate(chosen) if w.optional and cut is not None and w.priority < cut]
        if not optional or lacking <= 0:
            break
        chosen.pop(min(reversed(optional), key=lambda i: chosen[i].priority))
    widths = {w.key: w.min for w in chosen}
    room = total - need(chosen)
    lacks = {w.key: w.ideal - w.min for w in chosen}
    short = sum(lacks.values())
    if room < short:
        _share(widths, lacks, room)
        return widths
    for w in chosen:
        widths[w.key] = w.ideal
    room -= short
    growing = {w.key: w.grow for w in chosen if w.grow}
    if growing:
        _share(widths, growing, room)
    return widths


def _share(widths: dict[str, int], weights: dict[str, int], room: int) -> None:
    """Add room cells to widths in proportion to weights (largest remainders first; ties to the first)."""
    total = sum(weights.values())
    if room <= 0 or total <= 0:
        return
    exact = {k: room * w / total for k, w in weights.items()}
    given = {k: int(v) for k, v in exact.items()}
    left = room - sum(given.values())
    order = sorted(weights, key=lambda k: (-(exact[k] - given[k]), list(weights).index(k)))
    for k in order[:left]:
        given[k] += 1
    for k, extra in given.items():
        widths[k] += extra
