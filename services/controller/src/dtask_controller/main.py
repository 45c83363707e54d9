"""Controller process: build the server from the config, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from dtask.v1 import controller_pb2_grpc
from dtask_common import __version__, server
from dtask_common.config import Config
from dtask_common.roles import CONTROLLER_POLICY
from dtask_common.tls import TlsFiles, server_credentials

from dtask_controller.service import ControllerService

log = logging.getLogger("dtask.controller")


async def serve(cfg: Config, stop: asyncio.Event | None = None) -> None:
    """Serve the Controller service until stop is set (or a signal arrives)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    grpc_server = server.new_server(CONTROLLER_POLICY)
    service = ControllerService(cfg)
    controller_pb2_grpc.add_ControllerServicer_to_server(service, grpc_server)
    await server.add_health_and_reflection(grpc_server, ["dtask.v1.Controller"])
    creds = server_credentials(TlsFiles.in_dir(cfg.certs_path, "controller"))
    port = server.bind_in_range(grpc_server, cfg.controller.host, cfg.controller.port_range, creds)
    await grpc_server.start()
    log.info(
        "controller %s %s listening on %s:%d (certificates in %s)",
        cfg.controller.name, __version__, cfg.controller.host, port, cfg.certs_path,
    )
    await stop.wait()
    log.info("controller stopping")
    await grpc_server.stop(cfg.controller.shutdown_grace_s)
    log.info("controller stopped")


def run(cfg: Config) -> None:
    asyncio.run(serve(cfg))
