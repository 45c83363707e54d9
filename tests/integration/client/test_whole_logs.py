"""The whole output of an attempt through a real controller and runner: past what the controller keeps, its tail
only, while it runs (follow), into a file with `dtask logs`, and after its runner is gone (a notice)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import threading
import time
from pathlib import Path

from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_client import AsyncController
from dtask_common.models import TaskState

from tests.integration.client.cluster import Cluster, cluster
from tests.integration.runner.helpers import wait_file
from tests.support import BIN, sync_channel, tls

KEPT = 1024 * 1024  # what the controller keeps of an attempt's output (the default)


def printer(n: int, expect: Path) -> str:
    """A task printing n random bytes, also written to expect for the test to compare with."""
    return f"head -c {n} /dev/urandom | tee {expect}"


def run_to_end(live: Cluster, shell: str) -> str:
    with live.client() as c:
        tid = c.add_task(shell)
        [task] = c.wait([tid], timeout=60)
    assert task.state is TaskState.SUCCEEDED, task
    return tid


def raw_output(live: Cluster, tid: str, tail_bytes: int = 0) -> list[pb.OutputChunk]:
    with sync_channel(live.address, tls(live.certs, "viewer")) as ch:
        stub = controller_pb2_grpc.ControllerStub(ch)
        return list(stub.GetTaskOutput(pb.GetTaskOutputRequest(task_id=tid, tail_bytes=tail_bytes), timeout=60))


def held_up_to(live: Cluster, tid: str, n: int, timeout: float = 30.0) -> None:
    """Until the controller has the attempt's output up to byte n (bounded poll: no event says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunks = raw_output(live, tid, tail_bytes=1)
        if chunks and chunks[-1].total_bytes >= n:
            return
        time.sleep(0.02)
    raise TimeoutError(f"the controller never had {n} bytes of task {tid}'s output")


def dtask_logs(live: Cluster, tid: str, out: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, DTASK_HOME=str(live.home), DTASK_CONTROLLER=live.address)
    env.pop("DTASK_CONFIG", None)
    with out.open("wb") as f:
        return subprocess.run(
            [str(BIN / "dtask"), "logs", tid, *args], env=env, stdout=f, stderr=subprocess.PIPE, timeout=120
        )


def test_the_whole_output_past_what_the_controller_keeps(live: Cluster, tmp_path: Path) -> None:
    expect = tmp_path / "expect"
    tid = run_to_end(live, printer(3 * KEPT + 12345, expect))
    want = expect.read_bytes()
    with live.client() as c:
        notices: list[str] = []
        got = b"".join(c.logs(tid, on_notice=notices.append))
    assert len(got) == len(want) and hashlib.sha256(got).digest() == hashlib.sha256(want).digest()
    assert notices == []

    async def via_async() -> bytes:
        async with AsyncController(live.address, certs=live.certs, cert=live.certs / "viewer.crt") as ac:
            return b"".join([data async for data in ac.logs(tid, on_notice=notices.append)])

    assert asyncio.run(via_async()) == want and notices == []
    chunks = raw_output(live, tid)
    assert [c.offset for c in chunks] == [sum(len(x.data) for x in chunks[:i]) for i in range(len(chunks))]
    assert {c.total_bytes for c in chunks} == {len(want)} and not any(c.notice for c in chunks)


def test_tail_bytes_gives_only_the_tail(live: Cluster, tmp_path: Path) -> None:
    expect = tmp_path / "expect"
    tid = run_to_end(live, printer(2 * KEPT, expect))
    want = expect.read_bytes()
    with live.client() as c:
        assert b"".join(c.logs(tid, tail_bytes=1000)) == want[-1000:]
        assert b"".join(c.logs(tid, tail_bytes=5 * KEPT)) == want[-KEPT:]  # at most what the controller keeps
    chunks = raw_output(live, tid, tail_bytes=1000)
    assert chunks[0].offset == len(want) - 1000 and chunks[0].total_bytes == len(want)


def test_dtask_logs_into_a_file_is_byte_exact(live: Cluster, tmp_path: Path) -> None:
    expect = tmp_path / "expect"
    tid = run_to_end(live, printer(2 * KEPT + 7, expect))
    out = tmp_path / "out"
    done = dtask_logs(live, tid, out)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == expect.read_bytes() and done.stderr == b""


def test_following_a_long_output_gets_all_of_it(live: Cluster, tmp_path: Path) -> None:
    expect, half, gate = tmp_path / "expect", tmp_path / "half", tmp_path / "gate"
    shell = (
        f"head -c {2 * KEPT} /dev/urandom | tee {expect}; echo > {half}; "
        f"while [ ! -e {gate} ]; do sleep 0.05; done; head -c {KEPT + 99} /dev/urandom | tee -a {expect}"
    )
    got = bytearray()
    with live.client() as c:
        tid = c.add_task(shell)
        wait_file(half, lines=1)
        held_up_to(live, tid, 2 * KEPT)  # the controller keeps only the last half of what it printed so far

        def follow() -> None:
            for data in c.logs(tid, follow=True):
                got.extend(data)
                if len(got) >= 2 * KEPT and not gate.exists():
                    gate.touch()  # the rest is printed while the follow is live

        t = threading.Thread(target=follow, daemon=True)
        t.start()
        t.join(60)
        assert not t.is_alive()
    assert bytes(got) == expect.read_bytes()


def test_once_the_runner_is_gone_the_tail_with_a_notice(tmp_path: Path, certs_template: Path) -> None:
    with cluster(tmp_path / "c", certs_template) as live:
        expect = tmp_path / "expect"
        tid = run_to_end(live, printer(3 * KEPT, expect))
        want = expect.read_bytes()
        live.runners[0].stop()
        live.controller.wait_for(r"executor r1 disconnected")
        notices: list[str] = []
        with live.client() as c:
            got = b"".join(c.logs(tid, on_notice=notices.append))
        assert got == want[-KEPT:]
        assert notices == [
            f"the first {2 * KEPT} bytes of this attempt's output are gone: runner r1 is not connected; "
            "showing the last 1 MiB the controller kept"
        ]
        chunks = raw_output(live, tid)
        assert chunks[0].notice == notices[0] and not any(c.notice for c in chunks[1:])
        assert chunks[0].offset == 2 * KEPT and chunks[0].total_bytes == len(want)
        out = tmp_path / "out"
        done = dtask_logs(live, tid, out)
        assert done.returncode == 0 and out.read_bytes() == want[-KEPT:]  # stdout: the task's bytes only
        assert b"notice: " in done.stderr and b"runner r1 is not connected" in done.stderr
