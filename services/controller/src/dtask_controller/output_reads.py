"""Reading an attempt's output log from the runner that ran it, over its session: reads in flight and replies."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dtask_common.models import OutputReadReport, ReadOutputCmd

if TYPE_CHECKING:
    from dtask_controller.runner_messages import Session

log = logging.getLogger(__name__)

READ_BYTES = 1024 * 1024  # asked for in one ReadOutput
WINDOW = 4  # reads in flight per output stream: at most WINDOW * READ_BYTES held for it
READ_TIMEOUT_S = 30.0
FORGOTTEN_KEPT = 256


class RunnerReadError(Exception):
    """The runner cannot give the range asked for; the message says why (it is shown to the user)."""


@dataclass(eq=False)
class PendingReads:
    """The reads sent down one runner session and not answered yet, by request id."""

    closed: str = ""  # why no more reads can be answered (the session ended)
    unknown: int = 0  # replies that answer no read asked for (made up, or repeated): ignored
    _next: int = 0
    _waiting: dict[int, tuple[ReadOutputCmd, asyncio.Future[OutputReadReport]]] = field(default_factory=dict)
    _forgotten: dict[int, None] = field(default_factory=dict)  # no longer waited for; their replies are void

    def ask(self, task_id: str, attempt: int, offset: int, max_bytes: int) -> Read:
        """A new read, waiting for its reply; the caller sends its command down the session."""
        if self.closed:
            raise RunnerReadError(self.closed)
        self._next += 1
        cmd = ReadOutputCmd(self._next, task_id, attempt, offset, max_bytes)
        fut: asyncio.Future[OutputReadReport] = asyncio.get_running_loop().create_future()
        self._waiting[cmd.request_id] = (cmd, fut)
        return Read(cmd, fut)

    def forget(self, request_id: int) -> None:
        """The reader no longer waits for this reply (the reply, when it comes, is dropped)."""
        entry = self._waiting.pop(request_id, None)
        if entry is not None:
            entry[1].cancel()
            self._forgotten[request_id] = None
            while len(self._forgotten) > FORGOTTEN_KEPT:
                del self._forgotten[next(iter(self._forgotten))]

    def reply(self, r: OutputReadReport, name: str = "") -> str:
        """A reply from the runner; it answers its read only with the range asked for. Returns what is
        wrong with it (empty: nothing, or a late reply to a read no longer waited for)."""
        entry = self._waiting.pop(r.request_id, None)
        if entry is None:
            if r.request_id in self._forgotten:
                del self._forgotten[r.request_id]
                return ""
            self.unknown += 1
            return f"it answers output read {r.request_id}, which was not asked for"
        cmd, fut = entry
        if not r.error and (r.offset != cmd.offset or len(r.data) > cmd.max_bytes):
            why = f"it answered a read of {cmd.max_bytes} bytes at {cmd.offset} with {len(r.data)} bytes at {r.offset}"
            fut.set_exception(RunnerReadError(f"runner {name or '?'} {why}"))
            return why
        fut.set_result(r)
        return ""

    def close(self, why: str) -> None:
        """The session ended: every read in flight fails with why, and so does every later one."""
        self.closed = why
        waiting, self._waiting = self._waiting, {}
        for _cmd, fut in waiting.values():
            if not fut.done():
                fut.set_exception(RunnerReadError(why))

    def __len__(self) -> int:
        return len(self._waiting)


@dataclass(frozen=True, slots=True)
class Read:
    """One read in flight: its command and the future of its reply."""

    cmd: ReadOutputCmd
    reply: asyncio.Future[OutputReadReport]


def replied(session: Session, r: OutputReadReport) -> None:
    """A runner answered a read (hook of the session's reader)."""
    wrong = session.reads.reply(r, session.name)
    if wrong:
        log.warning("executor %s sent a bad output read reply (%s); ignored", session.name, wrong)


def ended(session: Session) -> None:
    """The session ended (hook of the session): the reads in flight on it fail."""
    session.reads.close(f"runner {session.name} disconnected while its log was read")


async def read_log(
    session: Session,
    task_id: str,
    attempt: int,
    start: int,
    stop: Callable[[], int | None],
    *,
    piece: int = READ_BYTES,
    window: int = WINDOW,
    timeout_s: float = READ_TIMEOUT_S,
) -> AsyncGenerator[OutputReadReport, None]:
    """The runner's log of the attempt from start, in order, with at most `window` reads in flight, up to
    stop() (asked again before each read: the offset from which the controller holds it; None: to the end).

    Ends at the end of the log (eof, or for now when stop() is None); raises RunnerReadError when the
    runner cannot read it, answers wrongly, or not within timeout_s."""
    reads = session.reads
    inflight: deque[Read] = deque()
    ask_from = start
    try:
        while True:
            while len(inflight) < window:
                limit = stop()
                if limit is not None and ask_from >= limit:
                    break
                n = piece if limit is None else min(piece, limit - ask_from)
                read = reads.ask(task_id, attempt, ask_from, n)
                session.send(read.cmd)
                inflight.append(read)
                ask_from += n
            if not inflight:
                return
            read = inflight[0]
            try:
                r = await asyncio.wait_for(asyncio.shield(read.reply), timeout_s)
            except TimeoutError:
                raise RunnerReadError(
                    f"runner {session.name} did not answer a read of its log within {timeout_s:g}s"
                ) from None
            inflight.popleft()
            if r.error:
                raise RunnerReadError(f"runner {session.name} cannot read it: {r.error}")
            if r.data:
                yield r
            if r.eof or len(r.data) < read.cmd.max_bytes:  # the log ends here (for now): reads past it are void
                for later in inflight:
                    reads.forget(later.cmd.request_id)
                inflight.clear()
                if r.eof or stop() is None:
                    return
                if not r.data:
                    raise RunnerReadError(
                        f"runner {session.name} has only {r.offset} bytes of this attempt's output in its log"
                    )
                ask_from = r.offset + len(r.data)
    finally:
        for read in inflight:
            reads.forget(read.cmd.request_id)
