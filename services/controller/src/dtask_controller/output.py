"""Bounded output tails of running attempts, with wake-ups for followers (no I/O)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass(slots=True)
class Tail:
    """The last `limit` bytes of one attempt's output; `start` is the offset of buf[0]."""

    limit: int
    start: int = 0
    buf: bytearray = field(default_factory=bytearray)
    done: bool = False
    dirty: bool = False
    # Ended, but the runner still sends output up to this offset (missed while its link was cut).
    awaited: int = 0
    awaited_from: str = ""
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def end(self) -> int:
        return self.start + len(self.buf)

    def append(self, offset: int, data: bytes) -> None:
        if offset + len(data) <= self.end:
            return  # a repeat of bytes already held (e.g. resent after a reconnect)
        if offset < self.end:
            data = data[self.end - offset :]
            offset = self.end
        if offset > self.end:  # a gap: bytes the controller never got; start over from here
            self.buf.clear()
            self.start = offset
        self.buf += data
        if len(self.buf) > self.limit:
            cut = len(self.buf) - self.limit
            del self.buf[:cut]
            self.start += cut
        self.dirty = True
        self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def read(self, offset: int) -> tuple[int, bytes]:
        """Bytes from offset (or from the oldest byte held, when offset fell out of the tail)."""
        offset = max(offset, self.start)
        return offset, bytes(self.buf[offset - self.start :])

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class OutputTails:
    """Tails of attempts that are running (or finished but not yet written to the store)."""

    def __init__(self, limit: int):
        self.limit = max(1024, limit)
        self._tails: dict[tuple[str, int], Tail] = {}
        self._released: list[tuple[str, int, int, bytes]] = []  # let go since the last take_dirty, unwritten

    def open(self, task_id: str, attempt: int, start: int = 0, data: bytes = b"") -> Tail:
        tail = self._tails.get((task_id, attempt))
        if tail is None:
            tail = self._tails[(task_id, attempt)] = Tail(self.limit, start, bytearray(data))
        return tail

    def get(self, task_id: str, attempt: int) -> Tail | None:
        return self._tails.get((task_id, attempt))

    def append(self, task_id: str, attempt: int, offset: int, data: bytes) -> None:
        """More output of a held attempt (ignored when none is held); an ended one awaiting its last
        bytes is let go once they are in."""
        tail = self._tails.get((task_id, attempt))
        if tail is None:
            return
        tail.append(offset, data)
        if tail.awaited_from and tail.end >= tail.awaited:
            self._let_go((task_id, attempt))

    def await_rest(self, task_id: str, attempt: int, size: int, executor: str) -> bool:
        """The attempt ended with `size` bytes of output: when the tail has less, it stays held (and
        followers follow) until the executor sends the rest; True then."""
        tail = self._tails.get((task_id, attempt))
        if tail is None or tail.end >= size:
            return False
        tail.awaited, tail.awaited_from = size, executor
        return True

    def finish(self, task_id: str, attempt: int) -> Tail | None:
        """Mark an attempt ended (followers stop) and stop holding it; returns it for a last write. One
        awaiting the rest of its output stays held."""
        tail = self._tails.get((task_id, attempt))
        if tail is not None and tail.awaited_from and tail.end < tail.awaited:
            return None
        tail = self._tails.pop((task_id, attempt), None)
        if tail is not None:
            tail.finish()
        return tail

    def give_up(self, executor: str) -> None:
        """The executor's session ended: stop awaiting output from it (what came is written at the next flush)."""
        for key in [k for k, t in self._tails.items() if t.awaited_from == executor]:
            self._let_go(key)

    def _let_go(self, key: tuple[str, int]) -> None:
        tail = self._tails.pop(key)
        tail.finish()
        if tail.dirty:
            self._released.append((key[0], key[1], tail.start, bytes(tail.buf)))

    def end_all(self) -> None:
        """Wake every follower for the last time (the controller stops)."""
        for tail in self._tails.values():
            tail.finish()

    def take_dirty(self) -> list[tuple[str, int, int, bytes]]:
        """(task_id, attempt, start, bytes) of every tail changed since the last call."""
        out, self._released = self._released, []
        for (tid, attempt), tail in self._tails.items():
            if tail.dirty:
                tail.dirty = False
                out.append((tid, attempt, tail.start, bytes(tail.buf)))
        return out

    def __len__(self) -> int:
        return len(self._tails)
