"""An attempt's progress parser, run at most once per PARSE_EVERY_S: output read in between waits for the next parse.

The parser's cost is per parse, not per byte (it looks at the newest bytes only): on output that holds no bar
(binary, or noisy text) it is about 0.4 ms whatever the read's size. A task that floods its pipe in small reads
would otherwise pay it on every read. Deferred output is parsed with the next read as one read of all of it (so
what is found is what one read of those bytes would find); once DEFER_MAX bytes wait, they are parsed at once.
Progress is reported at most every 0.2 s (runner.PROGRESS_INTERVAL_S), so a parse every 50 ms loses nothing.
Pure: the caller passes the time and flushes when `due`.
"""

from __future__ import annotations

import math

from dtask_common.models import Progress
from dtask_common.progress import ProgressParser

PARSE_EVERY_S = 0.05
DEFER_MAX = 1024 * 1024  # bytes waiting for a parse at most (one read of the whole pipe is parsed at once)


class ThrottledParser:
    """A ProgressParser fed at most once per every_s; the bytes read in between wait, and are parsed together."""

    def __init__(self, parser: ProgressParser, every_s: float = PARSE_EVERY_S, defer_max: int = DEFER_MAX):
        self.parser = parser
        self.every_s = every_s
        self.defer_max = defer_max
        self.parses = 0  # parses done (for tests and figures)
        self._waiting: list[bytes] = []
        self._waiting_bytes = 0
        self._next = -math.inf  # no parse before this time

    @property
    def enabled(self) -> bool:
        return self.parser.enabled

    @property
    def due(self) -> float | None:
        """When flush() should be called for the output waiting (None: none waits)."""
        return self._next if self._waiting else None

    def feed(self, data: bytes, now: float) -> Progress | None:
        """The newest progress of the output waiting and data, parsed now; None when it brought none, or when
        data waits for a later parse (see due)."""
        if now < self._next and self._waiting_bytes + len(data) < self.defer_max:
            self._waiting.append(data)
            self._waiting_bytes += len(data)
            return None
        return self._parse(data, now)

    def flush(self, now: float) -> Progress | None:
        """Parse the output waiting, if any (its time is due, or the attempt ended)."""
        return self._parse(b"", now) if self._waiting else None

    def _parse(self, data: bytes, now: float) -> Progress | None:
        if self._waiting:
            self._waiting.append(data)
            data = b"".join(self._waiting)
            self._waiting, self._waiting_bytes = [], 0
        self._next = now + self.every_s
        self.parses += 1
        return self.parser.feed(data)
