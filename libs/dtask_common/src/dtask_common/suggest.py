"""'Did you mean' hints: the closest of a few known words to a mistyped one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6
"""How alike (0 to 1, difflib's ratio) a choice must be to the word to be suggested."""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice most like word, or None when none is alike enough."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=CUTOFF)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str], *, prefix: str = "") -> str:
    """`" (did you mean 'x'?)"` for the closest choice (shown after prefix), or '' when none is close."""
    hint = closest(word, choices)
    return f" (did you mean {prefix + hint!r}?)" if hint is not None else ""
