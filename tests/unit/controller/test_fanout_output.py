"""The Watch hub's bounded queues and the output tails (no network)."""

from __future__ import annotations

import asyncio

from dtask_common import events as ev
from dtask_common.models import Progress, QueueStatus
from dtask_controller.fanout import Fanout
from dtask_controller.output import OutputTails


def test_events_are_numbered_filtered_and_bounded() -> None:
    async def go() -> None:
        hub = Fanout(lambda: 5.0, queue_limit=3)
        slow = hub.subscribe()
        quiet = hub.subscribe(exclude_progress=True)
        hub.publish(ev.QueueEvent(QueueStatus(paused=True)))
        hub.publish(ev.ProgressEvent("1", 1, Progress(step=1)))
        assert [e.seq for e in slow.queue] == [1, 2] and [e.seq for e in quiet.queue] == [1]
        for _ in range(2):
            hub.publish(ev.QueueEvent(QueueStatus()))
        assert slow.overflowed and not slow.queue  # memory is freed; the stream resyncs from a snapshot
        assert not quiet.overflowed and len(quiet.queue) == 3 and quiet.queue[-1].seq == 4
        hub.unsubscribe(slow)
        hub.close_all()
        assert quiet.closed and not hub.active

    asyncio.run(go())


def test_tail_keeps_last_bytes_skips_repeats_and_wakes_followers() -> None:
    async def go() -> None:
        tails = OutputTails(limit=1024)
        t = tails.open("1", 1)
        waiter = asyncio.create_task(t.changed.wait())
        tails.append("1", 1, 0, b"a" * 1000)
        await asyncio.wait_for(waiter, 1)
        tails.append("1", 1, 0, b"a" * 1000)  # repeated after a reconnect: ignored
        tails.append("1", 1, 990, b"a" * 10 + b"b" * 100)  # overlapping: only the new part is kept
        assert (t.start, t.end) == (76, 1100)
        assert t.read(0) == (76, b"a" * 924 + b"b" * 100)
        assert tails.take_dirty() == [("1", 1, 76, b"a" * 924 + b"b" * 100)] and tails.take_dirty() == []
        tails.append("1", 1, 5000, b"z")  # a gap: start again from there
        assert (t.start, t.end) == (5000, 5001)
        assert tails.finish("1", 1) is t and t.done and tails.get("1", 1) is None

    asyncio.run(go())
