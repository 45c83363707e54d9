"""The Runner gRPC servicer: Status, Drain and ReadOutput on the runner's own port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
from dtask.v1 import runner_pb2 as rpb
from dtask.v1 import runner_pb2_grpc
from dtask_common import __version__, convert
from dtask_common.ids import is_task_id
from dtask_common.models import ReadOutputCmd

from dtask_runner import logread
from dtask_runner.runner import Runner

PIECE_BYTES = 1024 * 1024  # of the log per RunnerOutputPiece


class RunnerService(runner_pb2_grpc.RunnerServicer):
    """Local introspection and drain of one runner."""

    def __init__(self, runner: Runner):
        self._runner = runner

    def _status(self) -> rpb.RunnerStatus:
        r = self._runner
        return rpb.RunnerStatus(
            name=r.name,
            capacity=convert.capacity_to_pb(r.capacity),
            labels=r.labels,
            running=[convert.running_to_pb(a) for a in r.running()],
            last_usage=convert.usage_to_pb(r.last_usage) if r.last_usage else None,
            draining=r.draining,
            connected=r.uplink.connected,
            controller=r.controller,
            version=__version__,
            containment=r.launcher.containment.describe(),
        )

    async def Status(self, request: rpb.StatusRequest, context: Any) -> rpb.RunnerStatus:
        return self._status()

    async def Drain(self, request: rpb.RunnerDrainRequest, context: Any) -> rpb.RunnerStatus:
        self._runner.set_draining(not request.undrain)
        return self._status()

    async def ReadOutput(self, request: rpb.RunnerOutputRequest, context: Any) -> AsyncIterator[rpb.RunnerOutputPiece]:
        """The attempt's log from offset to where it ends now, in pieces (each read off the event loop)."""
        task_id, attempt, offset = request.task_id, request.attempt, request.offset
        if not is_task_id(task_id) or attempt < 1 or offset < 0:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "give a task id, an attempt number (1 or more) and an offset (0 or more) to read an attempt's output",
            )
        runner = self._runner
        # A running attempt's log is read up to where it ends now: a task printing as fast as it is read
        # must not hold the call open (follow its output through the controller's GetTaskOutput instead).
        end = await asyncio.to_thread(logread.log_size, runner.log_dir, task_id, attempt)
        while True:
            running = (task_id, attempt) in runner.launcher.running  # taken before the read, as for the controller's
            cmd = ReadOutputCmd(0, task_id, attempt, offset, PIECE_BYTES)
            report = await asyncio.to_thread(logread.read_log, runner.log_dir, cmd, running)
            if report.error:
                await context.abort(grpc.StatusCode.NOT_FOUND, report.error)
            runner.retention.note_read(task_id, attempt)  # the log retention keeps it while it is read
            yield rpb.RunnerOutputPiece(offset=offset, data=report.data, eof=report.eof)
            offset += len(report.data)
            if report.eof or not report.data or offset >= end:
                return
