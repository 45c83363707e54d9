"""Runner process: the Runner service, the controller session and usage sampling until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket

from dtask.v1 import runner_pb2_grpc
from dtask_common import __version__, certs, server
from dtask_common.address import PortRanges
from dtask_common.certrecords import RecordError
from dtask_common.config import Config
from dtask_common.config.effective import runner_summary
from dtask_common.metrics_http import start_metrics
from dtask_common.pidlock import LockHeld, PidLock
from dtask_common.private import warn_if_loose
from dtask_common.revocation import Revocations
from dtask_common.roles import RUNNER_POLICY, runner_identity_host
from dtask_common.tls import TlsFiles, server_credentials

from dtask_runner.containment import ContainmentError
from dtask_runner.controller_session import ControllerSession
from dtask_runner.refusal import Refused
from dtask_runner.runner import Runner
from dtask_runner.servicer import RunnerService
from dtask_runner.taskuser import RunAsError, TaskUser, task_user

log = logging.getLogger(__name__)


def advertised(cfg: Config, port: int) -> str:
    """The Runner service address the controller and clients should use."""
    rc = cfg.runner
    host = rc.advertise_host or (rc.host if rc.host not in ("", "0.0.0.0", "::", "[::]") else _this_host())
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def _this_host() -> str:
    fqdn = socket.getfqdn()
    return fqdn if fqdn and not fqdn.startswith("localhost") else socket.gethostname()


def lock_name(runner: Runner) -> PidLock:
    """Hold a lock on the runner's state directory: one runner per name and DTASK_HOME on a machine."""
    try:
        return PidLock(runner.state_dir / "runner.lock")
    except LockHeld as exc:
        raise SystemExit(
            f"error: another runner (pid {exc.holder or '?'}) is already running as {runner.name} with "
            f"{runner.state_dir}; give this one another name with --name (NAME=... for make "
            "run-runner)"
        ) from None


def warn_without_identity(files: TlsFiles, name: str) -> None:
    """Say so when this runner's certificate lacks its runner identity name (one issued before runners had it):
    a client cannot tell the runner from another then, so it reads this runner's large outputs through the
    controller."""
    try:
        dns = certs.read_info(files.cert).dns
    except certs.CertError:
        return  # (the server credentials say what is wrong with the file)
    if runner_identity_host(name) not in dns:
        log.warning(
            "%s does not carry runner %s's identity name (%s): clients read its large outputs through the "
            "controller, not straight from it; issue it again on the controller's machine "
            "(dtask certs issue --role runner --name %s --out DIR) and copy it here to let them",
            files.cert,
            name,
            runner_identity_host(name),
            name,
        )


def usable_runner(cfg: Config, user: TaskUser | None = None) -> Runner:
    """The Runner, once its directories are there and writable; else exit with one line that says what to do."""
    try:
        runner = Runner(cfg, user=user)
    except (RunAsError, ContainmentError) as exc:
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:
        raise SystemExit(
            f"error: the runner cannot use {exc.filename or 'its directories'}: "
            f"{exc.strerror or exc}; make it a writable directory or choose others with "
            "--log-dir / --work-dir (DTASK_HOME holds the runner's state)"
        ) from None
    for where, flag in ((runner.log_dir, "--log-dir"), (runner.work_dir, "--work-dir")):
        probe = where / f".dtask-write-test-{os.getpid()}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SystemExit(
                f"error: the runner cannot write in {where}: {exc.strerror or exc}; make it "
                f"writable or choose another directory with {flag}"
            ) from None
    return runner


async def serve(cfg: Config, stop: asyncio.Event | None = None) -> None:
    """Run the runner until stop is set (or a signal arrives); stop its tasks on the way out."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        user = task_user(cfg.runner.run_as)
    except RunAsError as exc:
        raise SystemExit(f"error: {exc}") from None
    warn_if_loose(cfg.home_path, log)
    certs.ensure_runner(cfg.certs_path, cfg.runner.name, cfg.ca_path)
    files = TlsFiles.in_dir(cfg.certs_path, f"runner-{cfg.runner.name}")
    warn_without_identity(files, cfg.runner.name)
    runner = usable_runner(cfg, user)
    lock = lock_name(runner)
    try:
        revocations = Revocations(runner.state_dir)  # the controller's revoked list, as it last told this runner
    except RecordError as exc:
        raise SystemExit(f"error: {exc}") from None
    grpc_server = server.new_server(RUNNER_POLICY, revocations)
    runner_pb2_grpc.add_RunnerServicer_to_server(RunnerService(runner), grpc_server)
    await server.add_health_and_reflection(grpc_server, ["dtask.v1.Runner"])
    port = server.bind_in_range(grpc_server, cfg.runner.host, cfg.runner.port_range, server_credentials(files))
    await grpc_server.start()
    runner.address = advertised(cfg, port)
    c = runner.capacity
    log.info(
        "runner %s %s listening on %s:%d (advertised as %s); %d slots, %g cpus, %d MiB, GPUs %s, labels %s",
        runner.name,
        __version__,
        cfg.runner.host,
        port,
        runner.address,
        c.slots,
        c.cpus,
        c.memory_mb,
        ",".join(map(str, c.gpus)) or "none",
        runner.labels or "none",
    )
    log.info("runner settings: %s", runner_summary(cfg))
    log.info("attempt logs in %s, work dir %s", runner.log_dir, runner.work_dir)
    if user is not None:
        log.info(
            "tasks run as %s (uid %d, gid %d, groups %s)",
            user.name,
            user.uid,
            user.gid,
            ",".join(map(str, user.groups)) or "none",
        )
    containment = runner.launcher.containment
    log.info("tasks contained by %s%s", containment.describe(), f" in {containment.group}" if containment.group else "")
    session = ControllerSession(
        runner,
        cfg.runner.controller,
        files,
        reconnect_max_s=cfg.runner.reconnect_max_s,
        ranges=PortRanges(cfg.controller.port_range, cfg.runner.port_range),
        revocations=revocations,
    )
    runner.uplink = session
    session_task = loop.create_task(session.run(), name="session")
    tasks = [
        session_task,
        loop.create_task(runner.usage_loop(), name="usage"),
        loop.create_task(runner.retention_loop(), name="retention"),
    ]
    metrics_server = None
    if cfg.runner.metrics_address:
        from dtask_runner.metrics import runner_registry  # only a runner that serves metrics needs them

        metrics_server = start_metrics(
            runner_registry(runner, loop), cfg.runner.metrics_address, "runner.metrics_address"
        )
        if metrics_server is not None:
            log.info("runner metrics at %s (plain HTTP)", metrics_server.url)
    if runner.retention.enabled:
        log.info(
            "log retention: %s, %s",
            f"{runner.retention.max_age_days:g} days" if runner.retention.max_age_days else "no age limit",
            f"at most {runner.retention.max_bytes} bytes" if runner.retention.max_bytes else "no size limit",
        )
    stopped = loop.create_task(stop.wait())
    refused: Refused | None = None
    try:
        await asyncio.wait([stopped, session_task], return_when=asyncio.FIRST_COMPLETED)
        if session_task.done() and isinstance(session_task.exception(), Refused):
            refused = session_task.exception()  # type: ignore[assignment]
            log.error("%s", refused)
        log.info("runner stopping: ending %d running attempts", len(runner.running()))
        await runner.close()
    finally:
        stopped.cancel()
        for t in tasks:
            t.cancel()
        await asyncio.gather(stopped, *tasks, return_exceptions=True)
        await session.close()
        if metrics_server is not None:
            metrics_server.close()
        await grpc_server.stop(1)
        lock.close()
        log.info("runner stopped")
    if refused is not None:
        raise SystemExit(f"error: {refused}")


def run(cfg: Config) -> None:
    asyncio.run(serve(cfg))
