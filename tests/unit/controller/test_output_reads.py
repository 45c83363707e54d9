"""Reads of a runner's log over its session: a bounded window in flight, replies matched by id, and every way a
read fails (a bad reply, no reply in time, the session ending)."""

from __future__ import annotations

import asyncio

import pytest
from dtask_common import convert
from dtask_common.models import OutputChunk, OutputReadReport, ReadOutputCmd
from dtask_controller.output_reads import PendingReads, RunnerReadError, ended, read_log, replied
from dtask_controller.runner_messages import Session

MB = 1 << 20


def asked(session: Session) -> list[ReadOutputCmd]:
    out = []
    while not session.outbox.empty():
        cmd = session.outbox.get_nowait()
        assert isinstance(cmd, ReadOutputCmd)
        out.append(cmd)
    return out


async def asks(session: Session, n: int) -> list[ReadOutputCmd]:
    """The next n reads asked for (the loop turns until they are: the reader wakes up in a few turns)."""
    for _ in range(1000):
        if session.outbox.qsize() >= n:
            break
        await asyncio.sleep(0)
    cmds = asked(session)
    assert len(cmds) == n, cmds
    return cmds


def answer(session: Session, cmd: ReadOutputCmd, log: bytes, eof_at: int | None = None) -> None:
    data = log[cmd.offset : cmd.offset + cmd.max_bytes]
    eof = eof_at is not None and cmd.offset + len(data) >= eof_at
    replied(session, OutputReadReport(cmd.request_id, cmd.offset, data, eof))


def test_a_window_of_reads_up_to_where_the_controller_holds() -> None:
    log = bytes(range(256)) * (10 * MB // 256)

    async def go() -> None:
        s = Session("r1", 1)
        got = bytearray()

        async def reader() -> None:
            async for r in read_log(s, "7", 1, 0, lambda: 9 * MB + 5, window=3):
                got.extend(r.data)

        task = asyncio.create_task(reader())
        first = await asks(s, 3)
        assert [(c.offset, c.max_bytes) for c in first] == [(0, MB), (MB, MB), (2 * MB, MB)]
        assert [c.task_id for c in first] == ["7"] * 3 and len(s.reads) == 3
        for cmd in first:
            answer(s, cmd, log)
        while not task.done():
            await asyncio.sleep(0)
            cmds = asked(s)
            assert len(s.reads) <= 3
            for cmd in cmds:
                answer(s, cmd, log)
        await task
        assert bytes(got) == log[: 9 * MB + 5] and len(s.reads) == 0

    asyncio.run(go())


def test_a_short_read_asks_again_from_where_it_ended() -> None:
    log = b"x" * (3 * MB)

    async def go() -> None:
        s = Session("r1", 1)
        got = bytearray()

        async def reader(stop: int | None) -> None:
            async for r in read_log(s, "7", 1, 0, lambda: stop, window=2):
                got.extend(r.data)

        task = asyncio.create_task(reader(len(log)))
        a, b = await asks(s, 2)
        replied(s, OutputReadReport(a.request_id, 0, log[:100]))  # less than asked: b is void
        c, d = await asks(s, 2)
        replied(s, OutputReadReport(b.request_id, b.offset, log[b.offset : b.offset + MB]))  # late: dropped
        assert (c.offset, d.offset) == (100, 100 + MB)
        answer(s, c, log)
        answer(s, d, log)
        [e] = await asks(s, 1)
        assert (e.offset, e.max_bytes) == (100 + 2 * MB, MB - 100)
        answer(s, e, log)
        await asyncio.wait_for(task, 5)
        assert bytes(got) == log and s.reads.unknown == 0

        got.clear()  # to the end of the log (no stop): a short read is its end for now
        task = asyncio.create_task(reader(None))
        a, b = await asks(s, 2)
        replied(s, OutputReadReport(a.request_id, 0, log[:100]))
        await asyncio.wait_for(task, 5)
        assert bytes(got) == log[:100] and len(s.reads) == 0

    asyncio.run(go())


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (lambda c: OutputReadReport(c.request_id, c.offset, b"x" * (c.max_bytes + 1)), "with 1025 bytes at 0"),
        (lambda c: OutputReadReport(c.request_id, c.offset + 1, b"x"), "with 1 bytes at 1"),
        (lambda c: OutputReadReport(c.request_id, error="no log of it"), "runner r1 cannot read it: no log of it"),
    ],
)
def test_a_bad_reply_fails_the_read(reply: object, why: str) -> None:
    async def go() -> None:
        s = Session("r1", 1)
        reads = read_log(s, "7", 1, 0, lambda: 1024)
        first = asyncio.create_task(reads.__anext__())
        [cmd] = await asks(s, 1)
        replied(s, reply(cmd))  # type: ignore[operator]
        with pytest.raises(RunnerReadError, match=why):
            await first

    asyncio.run(go())


def test_no_reply_in_time_and_a_session_that_ends() -> None:
    async def go() -> None:
        s = Session("r1", 1)
        with pytest.raises(RunnerReadError, match="did not answer a read of its log within 0.05s"):
            async for _ in read_log(s, "7", 1, 0, lambda: 10, timeout_s=0.05):
                pass
        assert len(s.reads) == 0  # given up: no longer waited for
        reads = read_log(s, "7", 1, 0, lambda: 10)
        first = asyncio.create_task(reads.__anext__())
        await asks(s, 1)
        ended(s)
        with pytest.raises(RunnerReadError, match="runner r1 disconnected while its log was read"):
            await first
        with pytest.raises(RunnerReadError, match="disconnected"):  # and every read after it
            async for _ in read_log(s, "7", 1, 0, lambda: 10):
                pass

    asyncio.run(go())


def test_replies_to_no_read_are_counted_and_ignored() -> None:
    async def go() -> None:
        p = PendingReads()
        assert "not asked for" in p.reply(OutputReadReport(99, 0, b"made up"))
        read = p.ask("7", 1, 0, 10)
        p.forget(read.cmd.request_id)
        assert p.reply(OutputReadReport(read.cmd.request_id, 0, b"late")) == ""  # asked once: a late reply
        assert "not asked for" in p.reply(OutputReadReport(read.cmd.request_id, 0, b"again"))
        assert p.unknown == 2 and read.reply.cancelled()

    asyncio.run(go())


def test_the_session_messages_of_a_read_and_the_notice_round_trip() -> None:
    cmd = ReadOutputCmd(3, "1", 2, 5, 1024)
    assert convert.command_from_pb(convert.command_to_pb(cmd)) == cmd
    for r in (OutputReadReport(3, 5, b"\0\xff", True), OutputReadReport(4, 0, error="no log")):
        assert convert.report_from_pb(convert.report_to_pb(r)) == r
    chunk = OutputChunk("1", 2, 7, b"x", notice="the first 7 bytes ... are gone", total_bytes=8)
    assert convert.output_from_pb(convert.output_to_pb(chunk)) == chunk
