"""A large output read straight from the runner that ran it (the Runner service's ReadOutput), through a real
controller and runner: also when the controller cannot reach the runner; relayed by the controller when the
client cannot; refused to a caller the role check refuses."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from dtask.v1 import runner_pb2 as rpb
from dtask.v1 import runner_pb2_grpc
from dtask_client import AsyncController
from dtask_client._runner_output import CONNECT_S, DIRECT_MIN_BYTES
from dtask_common import certs
from dtask_common.config import ClientConfig, Config
from dtask_common.models import TaskState
from dtask_common.roles import Role, runner_identity_host
from dtask_runner.attempt_request import safe_stem

from tests.faults.proxy import proxy_to
from tests.integration.client.cluster import Cluster, cluster, start_runner
from tests.support import BIN, copy_certs, free_port_range, start_controller, sync_channel, tls

SIZE = DIRECT_MIN_BYTES + 3 * 1024 * 1024  # more than a direct read needs, and than the controller keeps (1 MiB)


def printed(live: Cluster, expect: Path) -> str:
    """A finished task that printed SIZE random bytes (also into expect)."""
    with live.client() as c:
        tid = c.add_task(f"head -c {SIZE} /dev/urandom | tee {expect}")
        [task] = c.wait([tid], timeout=60)
    assert task.state is TaskState.SUCCEEDED, task
    return tid


def dtask_logs(live: Cluster, tid: str, out: Path, *options: str, set_: str = "") -> subprocess.CompletedProcess[bytes]:
    """`dtask [--set set_] logs tid [options]` into out."""
    env = dict(os.environ, DTASK_HOME=str(live.home), DTASK_CONTROLLER=live.address)
    env.pop("DTASK_CONFIG", None)
    argv = [str(BIN / "dtask"), *(["--set", set_] if set_ else []), "logs", tid, *options]
    with out.open("wb") as f:
        return subprocess.run(argv, stdout=f, stderr=subprocess.PIPE, env=env, timeout=60)


def test_a_large_output_comes_from_its_runner_while_the_controller_cannot_reach_it(
    tmp_path: Path, certs_template: Path
) -> None:
    """The runner's session goes through a proxy that is then cut: the controller has only its 1 MiB tail
    (it would say the rest is gone), the client still reads every byte from the runner itself."""
    home = copy_certs(certs_template, tmp_path / "home")
    ctl = start_controller(home, port_range=free_port_range())
    try:
        with proxy_to(ctl.address) as proxy:
            runner = start_runner(home, proxy.address, "r1")
            runner.wait_for(r"connected to controller .* as r1")
            live = Cluster(home, ctl, [runner])
            try:
                expect = tmp_path / "expect"
                tid = printed(live, expect)
                proxy.down()
                ctl.wait_for(r"executor r1 disconnected")
                notices: list[str] = []
                with live.client("viewer") as c:
                    got = b"".join(c.logs(tid, on_notice=notices.append))
                assert notices == [] and got == expect.read_bytes()

                async def via_async() -> bytes:
                    async with AsyncController(ctl.address, certs=home / "certs", cert=home / "certs/viewer.crt") as ac:
                        return b"".join([data async for data in ac.logs(tid, on_notice=notices.append)])

                assert asyncio.run(via_async()) == expect.read_bytes() and notices == []
                out = tmp_path / "out"
                done = dtask_logs(live, tid, out)
                assert done.returncode == 0 and out.read_bytes() == expect.read_bytes(), done.stderr
                assert b"notice" not in done.stderr
                # Through the controller only (client.direct_logs = false, or --via-controller): its 1 MiB tail.
                with live.client("viewer", config=Config(client=ClientConfig(direct_logs=False))) as c:
                    assert b"".join(c.logs(tid, on_notice=notices.append)) == expect.read_bytes()[-(1 << 20) :]
                    assert len(notices) == 1 and "the controller kept" in notices[0], notices
                    assert b"".join(c.logs(tid, direct=True)) == expect.read_bytes()
                for done in (
                    dtask_logs(live, tid, out, "--via-controller"),
                    dtask_logs(live, tid, out, set_="client.direct_logs=false"),
                ):
                    assert done.returncode == 0 and out.read_bytes() == expect.read_bytes()[-(1 << 20) :], done.stderr
                    assert b"notice: the first " in done.stderr, done.stderr
            finally:
                runner.stop()
    finally:
        ctl.stop()


def test_a_runner_the_client_cannot_reach_is_relayed_by_the_controller(
    tmp_path: Path, certs_template: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The runner advertises an address nothing listens on: the client gives up on it at once and the
    controller relays the whole output instead, byte for byte."""
    with cluster(tmp_path / "c", certs_template, runners=()) as live:
        runner = start_runner(live.home, live.address, "r1", 2, "--set", "runner.advertise_host=127.0.0.2")
        runner.wait_for(r"connected to controller .* as r1")
        live.runners.append(runner)
        expect = tmp_path / "expect"
        tid = printed(live, expect)
        with live.client() as c:
            assert c.executor("r1").address.startswith("127.0.0.2:")
            t0 = time.monotonic()
            notices: list[str] = []
            with caplog.at_level(logging.INFO, logger="dtask_client._runner_output"):
                got = b"".join(c.logs(tid, on_notice=notices.append))
            took = time.monotonic() - t0
        assert any(
            f"task {tid}'s output comes through the controller: runner r1: " in r.message for r in caplog.records
        )
        assert notices == [] and got == expect.read_bytes()
        assert took < CONNECT_S + 10, took

        async def via_async() -> bytes:
            async with AsyncController(live.address, certs=live.certs) as ac:
                return b"".join([data async for data in ac.logs(tid, on_notice=notices.append)])

        assert asyncio.run(via_async()) == expect.read_bytes() and notices == []


def test_a_runner_certificate_without_its_identity_name_is_said_at_start_and_relayed(
    tmp_path: Path, certs_template: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runner certificate issued before runners carried their identity name (made here with the name left
    out): the runner says at start how to issue it again, and the client reads its large output through the
    controller, byte for byte (it cannot tell that runner from another)."""
    home = copy_certs(certs_template, tmp_path / "home")
    legacy = certs._sans

    def without_identity(role: Role, name: str, hosts: list[str], given: set[str]) -> list[x509.GeneralName]:
        return [n for n in legacy(role, name, hosts, given) if n != x509.DNSName(runner_identity_host(name))]

    monkeypatch.setattr(certs, "_sans", without_identity)
    certs.issue(home / "certs", Role.RUNNER, "old", ca_dir=home / "ca")
    monkeypatch.undo()
    ctl = start_controller(home, port_range=free_port_range())
    try:
        runner = start_runner(home, ctl.address, "old")
        try:
            runner.wait_for(
                r"runner-old\.crt does not carry runner old's identity name \([0-9a-f]{40}\.runner\.dtask\.invalid\): "
                r"clients read its large outputs through the controller.*dtask certs issue --role runner --name old"
            )
            runner.wait_for(r"connected to controller .* as old")
            live = Cluster(home, ctl, [runner])
            expect = tmp_path / "expect"
            tid = printed(live, expect)
            with live.client() as c, caplog.at_level(logging.INFO, logger="dtask_client._runner_output"):
                assert b"".join(c.logs(tid)) == expect.read_bytes()
            assert any(
                f"task {tid}'s output comes through the controller: runner old: " in r.message for r in caplog.records
            )
        finally:
            runner.stop()
    finally:
        ctl.stop()
    fresh = start_runner(live.home, ctl.address, "r1")  # (a runner of this version: nothing said)
    try:
        fresh.wait_for(r"runner r1 .* listening on")
        assert "identity name" not in "".join(fresh.lines)
    finally:
        fresh.stop()


def test_the_runner_serves_its_logs_to_readers_only_and_checks_what_is_asked(
    tmp_path: Path, certs_template: Path
) -> None:
    with cluster(tmp_path / "c", certs_template) as live:
        with live.client() as c:
            tid = c.add_task("printf 'hello\\nworld\\n'")
            c.wait([tid], timeout=60)
        address = live.runners[0].address
        with sync_channel(address, tls(live.certs, "viewer")) as ch:
            stub = runner_pb2_grpc.RunnerStub(ch)
            pieces = list(stub.ReadOutput(rpb.RunnerOutputRequest(task_id=tid, attempt=1), timeout=10))
            assert b"".join(p.data for p in pieces) == b"hello\nworld\n" and pieces[-1].eof
            [rest] = stub.ReadOutput(rpb.RunnerOutputRequest(task_id=tid, attempt=1, offset=6), timeout=10)
            assert rest.offset == 6 and rest.data == b"world\n" and rest.eof
            for bad, code in (
                (rpb.RunnerOutputRequest(task_id="../../etc/passwd", attempt=1), grpc.StatusCode.INVALID_ARGUMENT),
                (rpb.RunnerOutputRequest(task_id=tid, attempt=0), grpc.StatusCode.INVALID_ARGUMENT),
                (rpb.RunnerOutputRequest(task_id=tid, attempt=1, offset=-1), grpc.StatusCode.INVALID_ARGUMENT),
                (rpb.RunnerOutputRequest(task_id=tid, attempt=2), grpc.StatusCode.NOT_FOUND),
                (rpb.RunnerOutputRequest(task_id="999999", attempt=1), grpc.StatusCode.NOT_FOUND),
            ):
                with pytest.raises(grpc.RpcError) as err:
                    list(stub.ReadOutput(bad, timeout=10))
                assert err.value.code() is code, bad
        # A runner's certificate is no reader: it may not read another runner's logs.
        with sync_channel(address, tls(live.certs, "runner-r1")) as ch, pytest.raises(grpc.RpcError) as err:
            list(runner_pb2_grpc.RunnerStub(ch).ReadOutput(rpb.RunnerOutputRequest(task_id=tid, attempt=1), timeout=10))
        assert err.value.code() is grpc.StatusCode.PERMISSION_DENIED


def test_a_running_attempt_is_read_up_to_where_its_log_ends_now(tmp_path: Path, certs_template: Path) -> None:
    """A task printing as fast as it can: the call ends at the log's size when it was made, without eof,
    rather than chasing the end of the log for as long as the task runs."""
    with cluster(tmp_path / "c", certs_template) as live:
        with live.client() as c:
            tid = c.add_task("head -c 3000000 /dev/zero; exec cat /dev/zero")
            next(iter(c.logs(tid, follow=True)))  # it runs and prints
            deadline = time.monotonic() + 20
            with sync_channel(live.runners[0].address, tls(live.certs, "viewer")) as ch:
                stub = runner_pb2_grpc.RunnerStub(ch)
                while True:
                    request = rpb.RunnerOutputRequest(task_id=tid, attempt=1)
                    pieces = list(stub.ReadOutput(request, timeout=20))
                    if sum(len(p.data) for p in pieces) >= 3_000_000:
                        break
                    assert time.monotonic() < deadline, "the log never held 3 MB"
            assert not any(p.eof for p in pieces)
            c.cancel(tid)
            c.wait([tid], timeout=30)


def test_another_runner_at_the_runner_s_address_is_not_believed(tmp_path: Path, certs_template: Path) -> None:
    """r1 ran the task and stopped; r2 (a valid runner certificate of the same CA, naming the same host) now
    listens on r1's advertised port and holds a forged log of the attempt. The client dials r1's address, finds
    a peer that is not r1 and takes the controller's copy instead, saying what is gone: never r2's bytes."""
    port = free_port_range(1)[0]
    with cluster(tmp_path / "c", certs_template, runners=()) as live:
        r1 = start_runner(live.home, live.address, "r1", 2, "--port-range", f"{port}-{port}")
        r1.wait_for(r"connected to controller .* as r1")
        expect = tmp_path / "expect"
        tid = printed(Cluster(live.home, live.controller, [r1]), expect)
        r1.stop()
        live.controller.wait_for(r"executor r1 disconnected")
        forged = live.home / "runner" / "r2" / "logs" / f"{safe_stem(tid, 1)}.log"
        forged.parent.mkdir(parents=True, exist_ok=True)
        forged.write_bytes(b"F" * SIZE)
        r2 = start_runner(live.home, live.address, "r2", 2, "--port-range", f"{port}-{port}")
        live.runners.append(r2)
        r2.wait_for(r"connected to controller .* as r2")
        with live.client() as c:
            assert c.executor("r1").address == c.executor("r2").address == f"127.0.0.1:{port}"
            notices: list[str] = []
            got = b"".join(c.logs(tid, on_notice=notices.append))
        assert b"F" * 64 not in got and got == expect.read_bytes()[-1024 * 1024 :]
        assert len(notices) == 1 and "runner r1 is not connected" in notices[0]
