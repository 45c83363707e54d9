"""The join port: a server apart from the Controller's, TLS without client certificates, serving Join only."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from dtask.v1 import controller_pb2_grpc
from dtask_common.address import AddressError, check_address
from dtask_common.config import Config
from dtask_common.guard import GuardInterceptor
from dtask_common.joining import DEFAULT_JOIN_PORT
from dtask_common.revocation import Revocations
from dtask_common.tls import TlsFiles
from grpc import aio

from dtask_controller.join_service import JoinService, JoinSettings

log = logging.getLogger(__name__)
#: A caller without a certificate sends one small request: nothing bigger is read.
MAX_JOIN_MESSAGE = 64 * 1024
MAX_CONCURRENT_JOINS = 8
RELOAD_EVERY_S = 1.0


def join_address(cfg: Config) -> tuple[str, int]:
    """(host, port) of the join service: controller.join_address, else controller.host and port 50050."""
    text = cfg.controller.join_address.strip()
    if not text:
        return cfg.controller.host, DEFAULT_JOIN_PORT
    try:
        check_address(text)
    except AddressError as exc:
        raise SystemExit(f"error: controller.join_address: {str(exc).replace('controller address ', '')}") from None
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def start(cfg: Config, controller_port: int) -> aio.Server | None:
    """Serve Join when joining is enabled, or its address is set (it then answers that joining is off)."""
    if not (cfg.controller.join_enabled or cfg.controller.join_address.strip()):
        return None
    host, port = join_address(cfg)
    files = TlsFiles.in_dir(cfg.certs_path, "controller")
    ca, cert, key = files.read()
    server = aio.server(
        interceptors=[GuardInterceptor()],
        options=[("grpc.max_receive_message_length", MAX_JOIN_MESSAGE), ("grpc.so_reuseport", 0)],
        maximum_concurrent_rpcs=MAX_CONCURRENT_JOINS,
    )
    settings = JoinSettings(cfg.certs_path, cfg.ca_path, cfg.controller.join_enabled, controller_port)
    controller_pb2_grpc.add_JoinServicer_to_server(JoinService(settings), server)
    # The chain holds the CA certificate, so that a joiner can check it against its token's fingerprint.
    creds = grpc.ssl_server_credentials([(key, cert + b"\n" + ca)], require_client_auth=False)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_secure_port(where, creds)
    except RuntimeError:
        bound = 0
    if not bound:
        raise SystemExit(f"error: cannot listen for joins on {where}: the port is taken; set controller.join_address")
    await server.start()
    state = "accepting joins" if cfg.controller.join_enabled else "joining disabled, refusing joins"
    log.info("%s on %s:%d", state, host, bound)
    return server


async def reload_revocations(revocations: Revocations, stop: asyncio.Event, certs_dir: Path) -> None:
    """Pick up revocations written by another process (`dtask certs revoke --offline`) while running."""
    warned = False
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), RELOAD_EVERY_S)
        except TimeoutError:
            pass
        try:
            ended = revocations.reload()
            warned = False
        except Exception as exc:  # a damaged file: keep what was loaded, say so once
            if not warned:
                log.warning("cannot reload %s: %s", revocations.path, exc)
            warned = True
            continue
        if ended:
            log.warning("ended %d open call(s) of certificates revoked in %s", ended, certs_dir)
