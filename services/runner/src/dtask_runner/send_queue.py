"""The runner's messages waiting for the stream: whatever is queued when the writer is free goes as one."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass
from typing import Generic, TypeVar

M = TypeVar("M")

MAX_BATCH_MESSAGES = 256
MAX_BATCH_BYTES = 4 * 1024 * 1024  # well under the 16 MiB message limit
# A message this large goes alone: its per-message cost is nothing beside its bytes, and a batch would copy them.
ALONE_BYTES = 64 * 1024


@dataclass(slots=True)
class Queued(Generic[M]):
    """One message of one session (gen), of size bytes; sent, when set, says whether it was written."""

    msg: M
    gen: int
    size: int
    sent: asyncio.Future[bool] | None = None

    def done(self, ok: bool) -> None:
        if self.sent is not None and not self.sent.done():
            self.sent.set_result(ok)


class SendQueue(Generic[M]):
    """FIFO of messages for the controller; take() hands the writer all that is ready (never waits for more)."""

    def __init__(
        self, max_messages: int = MAX_BATCH_MESSAGES, max_bytes: int = MAX_BATCH_BYTES, alone_bytes: int = ALONE_BYTES
    ) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.alone_bytes = alone_bytes
        self._items: deque[Queued[M]] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, msg: M, gen: int, size: int, *, wait: bool = False) -> asyncio.Future[bool] | None:
        """Queue msg (of size bytes) for session gen; with wait, a future that says whether it was written."""
        fut = asyncio.get_running_loop().create_future() if wait else None
        self._items.append(Queued(msg, gen, size, fut))
        self._ready.set()
        return fut

    async def take(self) -> list[Queued[M]]:
        """The messages ready now, oldest first (at least one; waits only while there is none), within the
        batch limits; one of alone_bytes or more (an output chunk, a log read's reply) goes alone."""
        while not self._items:
            self._ready.clear()
            await self._ready.wait()
        out = [self._items.popleft()]
        size = out[0].size
        if size >= self.alone_bytes:
            return out
        while (
            self._items
            and len(out) < self.max_messages
            and self._items[0].size < self.alone_bytes
            and size + self._items[0].size <= self.max_bytes
        ):
            item = self._items.popleft()
            size += item.size
            out.append(item)
        return out

    def drop(self, keep_gen: int | None = None) -> None:
        """Forget every queued message (but those of session keep_gen): they were not written."""
        kept: deque[Queued[M]] = deque()
        for item in self._items:
            if item.gen == keep_gen:
                kept.append(item)
            else:
                item.done(False)
        self._items = kept
