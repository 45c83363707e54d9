"""GetTaskOutput reading what the controller no longer keeps from the runner over its session, against a scripted
runner: good replies, replies to nothing, oversized or misplaced data, refusals, and a runner that goes away."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask.v1 import controller_pb2 as pb

from tests.integration.controller.helpers import run, shell, stub, submit, until
from tests.integration.controller.scripted_runner import ScriptedRunner
from tests.support import Proc, free_port_range, start_dtask

KEPT = 64 * 1024


@pytest.fixture
def small_tail(home: Path) -> Iterator[Proc]:
    """A controller keeping only the last 64 KiB of an attempt's output."""
    lo, hi = free_port_range()
    proc = start_dtask(
        [
            "--set",
            f"controller.output_tail_bytes={KEPT}",
            "controller",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
        ],
        home,
    )
    try:
        yield proc
    finally:
        proc.stop()


async def running_with_output(ctl: Proc, home: Path, data: bytes) -> tuple[ScriptedRunner, str, object]:
    """A scripted runner running a task that printed data (all of it in the controller's tail by now)."""
    r1 = ScriptedRunner(ctl.address, home / "certs", "r1")
    await r1.connect()
    ch, s = stub(ctl.address, home)
    [tid] = await submit(s, shell("printer"))
    a = await r1.assign()
    for i in range(0, len(data), 16 * 1024):
        r1.output(tid, a.attempt, i, data[i : i + 16 * 1024])

    async def tail_in() -> bool:
        stream = s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=tid, tail_bytes=1), timeout=10)
        return any([c.total_bytes == len(data) async for c in stream])

    await until(tail_in, what="the output in the controller's tail")
    await ch.close()
    return r1, tid, a


async def whole(ctl: Proc, home: Path, tid: str) -> list[pb.OutputChunk]:
    ch, s = stub(ctl.address, home, "viewer")
    try:
        return [c async for c in s.GetTaskOutput(pb.GetTaskOutputRequest(task_id=tid), timeout=20)]
    finally:
        await ch.close()


def joined(chunks: list[pb.OutputChunk]) -> bytes:
    return b"".join(c.data for c in chunks)


def test_runner_answers_then_hostile_replies(small_tail: Proc, home: Path) -> None:
    data = os.urandom(5 * KEPT + 123)
    held = len(data) - KEPT

    async def go() -> None:
        r1, tid, a = await running_with_output(small_tail, home, data)

        # A good runner: the controller asks for what it no longer holds, in order.
        reading = asyncio.create_task(whole(small_tail, home, tid))
        ask = (await r1.recv("read_output")).read_output
        assert (ask.task_id, ask.attempt, ask.offset, ask.max_bytes) == (tid, a.attempt, 0, held)
        r1.send(pb.RunnerMessage(output_read=pb.OutputRead(request_id=ask.request_id, offset=0, data=data[:held])))
        chunks = await asyncio.wait_for(reading, 20)
        assert joined(chunks) == data and not any(c.notice for c in chunks)
        assert {c.total_bytes for c in chunks} == {len(data)}

        # A reply to no read is ignored; data larger than asked is refused: the tail, and a notice.
        reading = asyncio.create_task(whole(small_tail, home, tid))
        ask = (await r1.recv("read_output")).read_output
        r1.send(pb.RunnerMessage(output_read=pb.OutputRead(request_id=ask.request_id + 1000, data=b"made up")))
        too_much = os.urandom(ask.max_bytes + 1)
        r1.send(pb.RunnerMessage(output_read=pb.OutputRead(request_id=ask.request_id, offset=0, data=too_much)))
        chunks = await asyncio.wait_for(reading, 20)
        assert joined(chunks) == data[held:] and chunks[0].offset == held
        assert chunks[0].notice.startswith(f"the first {held} bytes of this attempt's output are gone: runner r1 ")
        assert f"with {ask.max_bytes + 1} bytes at 0" in chunks[0].notice
        assert chunks[0].notice.endswith("showing the last 64 KiB the controller kept")
        small_tail.wait_for(r"executor r1 sent a bad output read reply \(it answers output read \d+, which was not")

        # Bytes from elsewhere than asked are refused too; so is a runner saying it cannot read.
        reading = asyncio.create_task(whole(small_tail, home, tid))
        ask = (await r1.recv("read_output")).read_output
        r1.send(pb.RunnerMessage(output_read=pb.OutputRead(request_id=ask.request_id, offset=7, data=b"x")))
        chunks = await asyncio.wait_for(reading, 20)
        assert joined(chunks) == data[held:] and "with 1 bytes at 7" in chunks[0].notice
        reading = asyncio.create_task(whole(small_tail, home, tid))
        ask = (await r1.recv("read_output")).read_output
        r1.send(pb.RunnerMessage(output_read=pb.OutputRead(request_id=ask.request_id, error="the disk is gone")))
        chunks = await asyncio.wait_for(reading, 20)
        assert joined(chunks) == data[held:]
        assert "runner r1 cannot read it: the disk is gone" in chunks[0].notice

        # The session took none of it amiss: it still reports output.
        r1.output(tid, a.attempt, len(data), b"more")
        r1.finish(tid, a.attempt)
        await r1.recv("ack")
        ask_task = asyncio.create_task(whole(small_tail, home, tid))
        ask = (await r1.recv("read_output")).read_output
        full = data + b"more"
        r1.send(
            pb.RunnerMessage(output_read=pb.OutputRead(request_id=ask.request_id, offset=0, data=full[: ask.max_bytes]))
        )
        assert joined(await asyncio.wait_for(ask_task, 20)) == full
        await r1.close()

    run(go())


def test_runner_gone_while_read(small_tail: Proc, home: Path) -> None:
    data = os.urandom(3 * KEPT)

    async def go() -> None:
        r1, tid, _a = await running_with_output(small_tail, home, data)
        reading = asyncio.create_task(whole(small_tail, home, tid))
        await r1.recv("read_output")
        await r1.drop()  # vanishes with the read unanswered
        chunks = await asyncio.wait_for(reading, 20)
        assert joined(chunks) == data[-KEPT:]
        assert "runner r1 disconnected while its log was read" in chunks[0].notice

    run(go())
