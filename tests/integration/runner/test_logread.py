"""A real `dtask runner` answering the controller's reads of an attempt's log: ranges of its own logs, refusals of
anything else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask.v1 import controller_pb2 as pb

from tests.integration.runner.fake_controller import FakeController, FakeSession
from tests.support import Proc, free_port_range, start_dtask


@pytest.fixture
def runner(home: Path, fake: FakeController) -> Iterator[Proc]:
    lo, hi = free_port_range()
    args = ["runner", "--controller", fake.address, "--name", "r1", "--host", "127.0.0.1"]
    proc = start_dtask([*args, "--port-range", f"{lo}-{hi}", "--gpus", "none"], home)
    try:
        yield proc
    finally:
        proc.stop()


def read(s: FakeSession, rid: int, task_id: str, attempt: int, offset: int, max_bytes: int) -> pb.OutputRead:
    s.send(
        pb.ControllerMessage(
            read_output=pb.ReadOutput(
                request_id=rid, task_id=task_id, attempt=attempt, offset=offset, max_bytes=max_bytes
            )
        )
    )
    reply: pb.OutputRead = s.next("output_read", lambda r: r.request_id == rid)
    return reply


def test_reads_of_its_own_log(home: Path, fake: FakeController, runner: Proc, tmp_path: Path) -> None:
    s = fake.session()
    expect = tmp_path / "expect"
    s.assign("7", 1, shell=f"head -c 300000 /dev/urandom | tee {expect}")
    data, fin = s.output_of("7", 1)
    assert fin.state == 3 and data == expect.read_bytes()
    whole = read(s, 1, "7", 1, 0, 1 << 20)
    assert whole.data == data and whole.offset == 0 and whole.eof and not whole.error
    part = read(s, 2, "7", 1, 1000, 500)
    assert part.data == data[1000:1500] and part.offset == 1000 and not part.eof
    end = read(s, 3, "7", 1, len(data), 100)
    assert end.data == b"" and end.eof
    capped = read(s, 4, "7", 1, 0, 2**31 - 1)  # asked for more than one reply may carry: what fits
    assert capped.data == data and capped.eof


def test_running_attempt_is_not_at_its_end(fake: FakeController, runner: Proc, tmp_path: Path) -> None:
    s = fake.session()
    gate = tmp_path / "gate"
    s.assign("5", 1, shell=f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; echo second")
    s.next("output", lambda o: o.task_id == "5" and b"first" in o.data)
    r = read(s, 1, "5", 1, 0, 1000)
    assert r.data == b"first\n" and not r.eof  # it still runs: more may come
    gate.touch()
    s.next("finished", lambda f: f.task_id == "5")
    r = read(s, 2, "5", 1, 0, 1000)
    assert r.data == b"first\nsecond\n" and r.eof


def test_refuses_what_is_not_its_own(home: Path, fake: FakeController, runner: Proc, tmp_path: Path) -> None:
    s = fake.session()
    log_dir = home / "runner" / "r1" / "logs"
    secret = tmp_path / "secret"
    secret.write_bytes(b"not a log\n")
    log_dir.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, log_dir / "9.1.log")
    never = read(s, 1, "8", 1, 0, 100)
    assert never.data == b"" and "no log of attempt '8'/1" in never.error
    for rid, task_id in enumerate(["../../../etc/passwd", "8/../../x", "", "08"], start=2):
        r = read(s, rid, task_id, 1, 0, 100)
        assert r.data == b"" and "is not one this runner ran" in r.error, (task_id, r)
    assert "is not one this runner ran" in read(s, 10, "8", 0, 0, 100).error
    linked = read(s, 11, "9", 1, 0, 100)
    assert linked.data == b"" and "symbolic link" in linked.error
    bad = read(s, 12, "9", 1, -5, 100)
    assert bad.data == b"" and "is not a range" in bad.error
    s.assign("3", 1, shell="echo still serving")  # the session goes on
    data, fin = s.output_of("3", 1)
    assert data == b"still serving\n" and fin.state == 3
