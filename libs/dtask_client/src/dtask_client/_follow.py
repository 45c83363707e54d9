"""Following an attempt's output across reconnects: what is new, and when the attempt is over (no I/O)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from dtask_common import events as ev
from dtask_common.models import OutputChunk, Task, TaskState

from dtask_client import _calls
from dtask_client._retry import Reconnect, reconnect_deadline
from dtask_client.errors import ControllerUnavailable, DtaskError

log = logging.getLogger("dtask_client")


def noticed(chunk: OutputChunk, on_notice: Callable[[str], None] | None) -> bytes:
    """The chunk's bytes; its notice (part of the output is gone), when it has one, goes to on_notice (or the
    log when none is given)."""
    if chunk.notice:
        if on_notice is not None:
            on_notice(chunk.notice)
        else:
            log.warning("%s", chunk.notice)
    return chunk.data


def unseen(offset: int, data: bytes, next_offset: int) -> bytes:
    """The part of a chunk at offset not yet passed on (chunks repeat after a reconnect)."""
    if offset + len(data) <= next_offset:
        return b""
    return data[max(0, next_offset - offset) :]


def attempt_over(task: Task, number: int) -> bool:
    """True when attempt number (0: the latest) of the task has ended, or the task has no such attempt."""
    attempts = task.attempts if number == 0 else [a for a in task.attempts if a.number == number]
    if not attempts:
        return task.state.finished
    a = attempts[-1]
    return a.finished_at is not None or a.state.finished


def dispatched(event: ev.WatchEvent, task_id: str) -> bool:
    """True when the event shows the task past PENDING (its output can be followed)."""
    body = event.body
    tasks = body.tasks if isinstance(body, ev.Snapshot) else [body.task] if isinstance(body, ev.TaskEvent) else []
    return any(t.id == task_id and t.state is not TaskState.PENDING for t in tasks)


@dataclass
class Follow:
    """logs(follow=True) of one attempt: each stream resumes it, output is passed on once.

    Once output arrived, losing the controller is waited out for up to give_up_after seconds (None: for
    as long as it takes); before that the loss is raised.
    """

    task_id: str
    attempt: int
    address: str
    call_timeout: float
    give_up_after: float | None = None
    next_offset: int = 0
    started: bool = False
    tail_bytes: int = 0
    on_notice: Callable[[str], None] | None = None

    def call(self) -> _calls.StreamCall[OutputChunk]:
        # A stream after a reconnect starts over; what was passed on already is skipped by piece().
        return _calls.output(self.task_id, self.attempt, self.tail_bytes, follow=True)

    def piece(self, chunk: OutputChunk) -> bytes:
        """The new part of a chunk (its notice, when new, goes to on_notice)."""
        self.attempt = self.attempt or chunk.attempt  # stay with the attempt being followed
        self.started = True
        new = unseen(chunk.offset, chunk.data, self.next_offset)
        if chunk.notice and chunk.offset + len(chunk.data) > self.next_offset:
            noticed(chunk, self.on_notice)
        self.next_offset = max(self.next_offset, chunk.offset + len(chunk.data))
        return new

    def over(self, task: Task) -> bool:
        return attempt_over(task, self.attempt)

    def probe(self) -> _calls.StreamCall[OutputChunk]:
        """Once the attempt is over: a one-byte tail read, whose chunk says how large its output is."""
        return _calls.output(self.task_id, self.attempt, 1)

    def rest(self, probe: list[OutputChunk]) -> _calls.StreamCall[OutputChunk] | None:
        """The read that gives what the ended attempt printed after the bytes passed on (None: they all came).

        A controller that stops ends its follow streams as if the attempt had ended: one that ends meanwhile
        (while the client rides out the restart) is over before its last output was passed on. The whole
        output is read then (what was passed on is skipped): it may be older than the controller's tail."""
        total = probe[-1].total_bytes if probe else 0
        return _calls.output(self.task_id, self.attempt) if total > self.next_offset else None

    def undispatched(self, task: Task) -> bool:
        """True when a refused follow (Conflict) means the task has not started: wait for its dispatch."""
        return not self.started and task.state is TaskState.PENDING

    def lost(self, error: ControllerUnavailable | None, now: float) -> Reconnect | DtaskError:
        """The stream failed (or ended, error None, with the attempt running on): wait, or the error to raise."""
        if error is None:
            error = ControllerUnavailable(f"the controller at {self.address} ended the output stream")
        elif not self.started:
            return error
        return Reconnect(error, reconnect_deadline(now, None, self.give_up_after), self.call_timeout)
