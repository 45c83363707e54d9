"""The Runner gRPC servicer: Status and Drain on the runner's own port."""

from __future__ import annotations

from typing import Any

from dtask.v1 import runner_pb2 as rpb
from dtask.v1 import runner_pb2_grpc
from dtask_common import __version__, convert

from dtask_runner.runner import Runner


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
