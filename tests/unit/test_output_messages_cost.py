"""Output on the runner's stream (chunks, log read replies, batches of them) is built without merging a MiB
message into another (upb's merge costs about 100 times a copy for data this large)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from dtask.v1 import controller_pb2 as pb
from dtask_common import convert
from dtask_common.models import OutputChunk, OutputReadReport

MIB = 1 << 20


def cost(f: Callable[[], object], n: int = 20) -> float:
    """The best of three runs of n calls, per call."""
    f()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def copy_cost(data: bytes) -> float:
    """What the message's own copy of data costs: an OutputRead made with it."""
    return cost(lambda: pb.OutputRead(request_id=1, data=data))


def test_a_read_reply_and_a_chunk_of_a_mib_cost_a_few_copies_of_it() -> None:
    data = os.urandom(MIB)
    floor = copy_cost(data)
    read = cost(lambda: convert.report_to_pb(OutputReadReport(1, 0, data, False)))
    chunk = cost(lambda: convert.report_to_pb(OutputChunk("t", 1, 0, data, total_bytes=MIB)))
    # Built apart and merged into the RunnerMessage, each cost 40-100 copies.
    assert read < 6 * floor, (read, floor)
    assert chunk < 6 * floor, (chunk, floor)


def test_the_messages_are_the_same_as_built_apart() -> None:
    data = os.urandom(3000)
    r = OutputReadReport(7, 11, data, True, "")
    assert convert.report_to_pb(r) == pb.RunnerMessage(
        output_read=pb.OutputRead(request_id=7, offset=11, data=data, eof=True)
    )
    c = OutputChunk("t", 2, 5, data, notice="n", total_bytes=9000)
    want = pb.OutputChunk(task_id="t", attempt=2, offset=5, data=data, notice="n", total_bytes=9000)
    assert convert.report_to_pb(c) == pb.RunnerMessage(output=want)
    assert convert.output_to_pb(c) == want
    assert convert.report_from_pb(convert.report_to_pb(c)) == c
    assert convert.report_from_pb(convert.report_to_pb(r)) == r


def test_a_batch_of_mib_messages_costs_a_few_copies_of_them() -> None:
    msgs = [convert.report_to_pb(OutputReadReport(i, i * MIB, os.urandom(MIB), False)) for i in range(2)]
    floor = copy_cost(msgs[0].output_read.data)
    batch = cost(lambda: convert.reports_batch_pb(msgs))
    assert list(convert.report_parts(convert.reports_batch_pb(msgs))) == msgs
    assert batch < 2 * 6 * floor, (batch, floor)  # the constructor's merge: about 80 copies each
    commands = [pb.ControllerMessage(read_output=pb.ReadOutput(request_id=i)) for i in range(3)]
    assert list(convert.command_parts(convert.commands_batch_pb(commands))) == commands
