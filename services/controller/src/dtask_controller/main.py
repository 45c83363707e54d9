"""Controller process: open the store (one controller per store), serve, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import sqlite3
import threading
from pathlib import Path

import grpc
from dtask.v1 import controller_pb2_grpc
from dtask_common import __version__, server
from dtask_common.certrecords import RecordError
from dtask_common.config import Config
from dtask_common.config.effective import controller_summary
from dtask_common.metrics_http import MetricsServer, start_metrics
from dtask_common.private import warn_if_loose
from dtask_common.revocation import Revocations
from dtask_common.roles import CONTROLLER_POLICY
from dtask_common.taskfile import TaskFileError
from dtask_common.tls import TlsFiles, server_credentials

from dtask_controller import commands, join_server, lifecycle, prune, recovery, reports
from dtask_controller.certificates import CertificatesService
from dtask_controller.core import ControllerCore
from dtask_controller.errors import InvalidTasks
from dtask_controller.servicer import ControllerService
from dtask_controller.settings import Settings
from dtask_controller.store import SchemaTooNew, StoreLocked, StoreUnusable, integrity, open_store

log = logging.getLogger(__name__)

# A queue of a million tasks is millions of long-lived objects: with the collector's defaults (a collection
# every 700 allocations, older generations every 10 of the younger) submitting them spends a quarter of its CPU
# walking them again and again. Collections stay, rarer; garbage that only a collection frees lives a little longer.
GC_THRESHOLDS = (50_000, 20, 20)


async def serve(cfg: Config, stop: asyncio.Event | None = None) -> None:
    """Serve the Controller service until stop is set (or a signal arrives)."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    warn_if_loose(cfg.home_path, log)
    try:
        store = open_store(cfg.store_path, sync=cfg.controller.sync)
    except (StoreLocked, StoreUnusable, SchemaTooNew) as exc:
        raise SystemExit(f"error: {exc}") from None
    try:
        revocations = Revocations(cfg.certs_path)
    except RecordError as exc:
        store.close()
        raise SystemExit(f"error: {exc}") from None
    cancel_check = threading.Event()
    check: asyncio.Task[str] | None = None
    metrics_server: MetricsServer | None = None
    pruning: asyncio.Task[None] | None = None
    joins: grpc.aio.Server | None = None
    reload: asyncio.Task[None] | None = None
    try:
        core = ControllerCore(store, Settings.from_config(cfg))
        core.revoked = revocations.known
        revocations.on_revoked = functools.partial(reports.revoked, core)
        recovery.restore(core)
        if cfg.controller.tasks:
            try:
                commands.queue_task_file(core, cfg.controller.tasks)
            except TaskFileError as exc:
                raise SystemExit(f"error: {exc}") from None
            except InvalidTasks as exc:
                raise SystemExit(f"task file {Path(cfg.controller.tasks)}: {exc}") from None
        ticker = lifecycle.Ticker(core)
        grpc_server = server.new_server(CONTROLLER_POLICY, revocations)
        controller_pb2_grpc.add_ControllerServicer_to_server(ControllerService(core), grpc_server)
        controller_pb2_grpc.add_CertificatesServicer_to_server(
            CertificatesService(revocations, cfg.ca_path), grpc_server
        )
        await server.add_health_and_reflection(grpc_server, ["dtask.v1.Controller", "dtask.v1.Certificates"])
        creds = server_credentials(TlsFiles.in_dir(cfg.certs_path, "controller"))
        port = server.bind_in_range(grpc_server, cfg.controller.host, cfg.controller.port_range, creds)
        await grpc_server.start()
        metrics_server = _serve_metrics(core, cfg, loop)
        joins = await join_server.start(cfg, port)
        reload = asyncio.create_task(join_server.reload_revocations(revocations, stop, cfg.certs_path))
        ticker.start()
        if cfg.controller.retention_days > 0:
            pruning = asyncio.create_task(prune.auto_prune(core, cfg.controller.retention_days))
        check = asyncio.create_task(integrity.watch(store.path, stop, cancel_check))
        log.info(
            "controller %s %s listening on %s:%d (store %s, certificates in %s)",
            cfg.controller.name,
            __version__,
            cfg.controller.host,
            port,
            store.path,
            cfg.certs_path,
        )
        log.info("controller settings: %s", controller_summary(cfg))
        await stop.wait()
        log.info("controller stopping (grace %gs)", cfg.controller.shutdown_grace_s)
        if pruning is not None:
            pruning.cancel()
            await asyncio.gather(pruning, return_exceptions=True)
        await ticker.stop()
        if joins is not None:
            await joins.stop(0)
        await asyncio.wait_for(grpc_server.stop(cfg.controller.shutdown_grace_s), cfg.controller.shutdown_grace_s + 2)
        lifecycle.flush(core)
        log.info("controller stopped")
        cancel_check.set()
        if found := await check:
            raise SystemExit(f"error: {integrity.damaged_message(store.path, found)}")
    except sqlite3.DatabaseError as exc:
        if not integrity.is_damage(exc):
            raise
        raise SystemExit(f"error: {integrity.damaged_message(store.path, str(exc))}") from None
    finally:
        if metrics_server is not None:
            metrics_server.close()
        if joins is not None:
            await joins.stop(0)
        if reload is not None:
            reload.cancel()
            await asyncio.wait([reload])
        cancel_check.set()
        if check is not None and not check.done():
            await asyncio.wait([check])
        store.close()


def _serve_metrics(core: ControllerCore, cfg: Config, loop: asyncio.AbstractEventLoop) -> MetricsServer | None:
    """The /metrics endpoint when controller.metrics_address is set (the core observes its histograms then)."""
    if not cfg.controller.metrics_address:
        return None
    from dtask_controller.metrics import ControllerMetrics  # only a controller that serves metrics needs them

    metrics = ControllerMetrics()
    srv = start_metrics(metrics.prometheus, cfg.controller.metrics_address, "controller.metrics_address")
    if srv is None:
        return None
    core.enable_metrics(metrics)
    metrics.watch(core, loop)
    log.info("controller metrics at %s (plain HTTP)", srv.url)
    return srv


def run(cfg: Config) -> None:
    gc.set_threshold(*GC_THRESHOLDS)
    asyncio.run(serve(cfg))
