"""What a runner will take on (its slots, its queue, its GPUs), and resending the rest of an ended attempt's log."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Collection, Iterable
from pathlib import Path

from dtask_common.models import Capacity, OutputChunk

from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.execution import Execution
from dtask_runner.output import OutputPump


def assignment_refusal(
    req: AttemptRequest,
    running: Iterable[Execution],
    capacity: Capacity,
    queued: Collection[AttemptRequest] = (),
) -> str:
    """Why the assignment cannot be taken here now (empty: it can, to run at once or to wait in the queue): a
    runner runs at most one attempt per slot, holds at most capacity.prefetch more queued, and gives each GPU
    to one attempt (running or queued)."""
    running = list(running)
    if len(running) >= capacity.slots and len(queued) >= capacity.prefetch:
        busy = ", ".join(f"{e.req.task_id}/{e.req.attempt}" for e in running)
        more = f", {len(queued)} queued" if queued else ""
        return f"all {capacity.slots} slot{'s' if capacity.slots != 1 else ''} busy (running {busy}{more})"
    taken = {g: e.req for e in running for g in e.req.gpu_ids} | {g: q for q in queued for g in q.gpu_ids}
    for g in req.gpu_ids:
        if g in taken:
            return f"GPU {g} is in use by attempt {taken[g].task_id}/{taken[g].attempt}"
        if capacity.gpus and g not in capacity.gpus:
            return f"GPU {g} is not one of this runner's GPUs {list(capacity.gpus)}"
    return ""


def resend_rest(
    path: Path,
    task_id: str,
    attempt: int,
    offset: int,
    send: Callable[[OutputChunk], Awaitable[bool | None]],
    tasks: set[asyncio.Task[None]],
    *,
    keep: Callable[[], int] = lambda: 0,
) -> None:
    """Send an ended attempt's log from offset (what the controller missed while cut off), in the background."""
    with contextlib.suppress(OSError):
        size = os.stat(path).st_size
        if offset >= size:
            return
        pump = OutputPump(path, task_id, attempt, send, keep=keep)
        pump.notify(size)
        pump.resume(offset)
        task = asyncio.get_running_loop().create_task(pump.finish(size))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
