"""Runner process: serve the Runner service (foundation stub) until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from dtask.v1 import runner_pb2 as rpb
from dtask.v1 import runner_pb2_grpc
from dtask_common import __version__, certs, server
from dtask_common.config import Config
from dtask_common.roles import RUNNER_POLICY
from dtask_common.tls import TlsFiles, server_credentials

log = logging.getLogger("dtask.runner")


class RunnerService(runner_pb2_grpc.RunnerServicer):
    """Local introspection of this runner."""

    def __init__(self, cfg: Config):
        self._cfg = cfg

    async def Status(self, request: rpb.StatusRequest, context: Any) -> rpb.RunnerStatus:
        return rpb.RunnerStatus(name=self._cfg.runner.name, version=__version__,
                                controller=self._cfg.runner.controller)


async def serve(cfg: Config, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    certs.ensure_runner(cfg.certs_path, cfg.runner.name)
    grpc_server = server.new_server(RUNNER_POLICY)
    runner_pb2_grpc.add_RunnerServicer_to_server(RunnerService(cfg), grpc_server)
    await server.add_health_and_reflection(grpc_server, ["dtask.v1.Runner"])
    files = TlsFiles.in_dir(cfg.certs_path, f"runner-{cfg.runner.name}")
    port = server.bind_in_range(grpc_server, cfg.runner.host, cfg.runner.port_range, server_credentials(files))
    await grpc_server.start()
    log.info("runner %s listening on %s:%d", cfg.runner.name, cfg.runner.host, port)
    await stop.wait()
    await grpc_server.stop(2)


def run(cfg: Config) -> None:
    asyncio.run(serve(cfg))
