"""A real `dtask runner` process against a scripted controller: hello, tasks, output, progress, results,
GPUs, reconnection, cancel, kill -9, and the Runner service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask.v1 import runner_pb2 as rpb
from dtask.v1 import runner_pb2_grpc
from dtask_runner.output import MAX_CHUNK

from tests.integration.runner.fake_controller import FakeController
from tests.integration.runner.helpers import gone, wait_file
from tests.support import Proc, free_port_range, grpcurl_args, start_dtask, sync_channel, tls

TQDM_TASK = (
    "import time\nfrom tqdm import tqdm\n"
    "for _ in tqdm(range(40), desc='train'):\n    time.sleep(0.02)\n"
    "print('***** train metrics *****')\nprint('  train_loss = 0.125')\nprint('  epoch = 2')\n"
)


def start_runner(home: Path, controller: str, *extra: str, name: str = "r1") -> Proc:
    lo, hi = free_port_range()
    return start_dtask(
        [
            "runner",
            "--controller",
            controller,
            "--name",
            name,
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            *extra,
        ],
        home,
    )


@pytest.fixture
def runner(home: Path, fake: FakeController) -> Iterator[Proc]:
    proc = start_runner(
        home,
        fake.address,
        "--gpus",
        "0,1",
        "--label",
        "zone=a",
        "--label",
        "kind=gpu",
        "--slots",
        "3",
        "--cpus",
        "3.5",
        "--memory-mb",
        "2048",
        "--advertise-host",
        "gpu-box-1",
    )
    try:
        yield proc
    finally:
        proc.stop()


def test_hello_tqdm_task_output_progress_result_and_ack(home: Path, fake: FakeController, runner: Proc) -> None:
    s = fake.session()
    h = s.hello
    assert h.name == "r1" and s.peer_name == "r1" and h.protocol_version == 2 and h.version
    assert h.capacity.slots == 3 and list(h.capacity.gpus) == [0, 1] and h.capacity.cpus == 3.5
    assert h.capacity.memory_mb == 2048 and dict(h.labels) == {"zone": "a", "kind": "gpu"}
    assert h.runner_address == "gpu-box-1:" + runner.address.rsplit(":", 1)[1]
    runner.wait_for(r"connected to controller 127\.0\.0\.1:\d+ \(fake\) as r1")
    usage = s.next("usage")
    assert usage.sample.per_cpu_percent and usage.sample.ram_percent > 0 and not usage.sample.gpus

    s.assign("7", 1, argv=[sys.executable, "-c", TQDM_TASK], name="train")
    progress = s.next("progress", lambda p: p.task_id == "7")
    assert progress.progress.label == "train" and progress.progress.total == 40
    data, fin = s.output_of("7", 1)
    assert b"train: 100%" in data and b"train_loss = 0.125" in data
    assert fin.state == 3 and fin.exit_code == 0 and dict(fin.result) == {"train_loss": 0.125, "epoch": 2}
    assert fin.HasField("started_at") and fin.HasField("finished_at")
    ups = [m.progress for m in s.seen if m.WhichOneof("msg") == "progress" and m.progress.task_id == "7"]
    ran = (fin.finished_at.ToNanoseconds() - fin.started_at.ToNanoseconds()) / 1e9
    assert 1 <= len(ups) <= ran / 0.2 + 2  # 40 redraws, throttled to at most 5 per second
    log_dir = home / "runner" / "r1" / "logs"
    assert (log_dir / "7.1.log").read_bytes() == data
    results = home / "runner" / "r1" / "results"
    deadline = time.monotonic() + 10
    while list(results.glob("*.json")) and time.monotonic() < deadline:  # acked: the runner forgets it
        time.sleep(0.02)
    assert list(results.glob("*.json")) == []


def test_gpus_failure_and_missing_program(fake: FakeController, runner: Proc) -> None:
    s = fake.session()
    s.assign("g", 1, gpu_ids=(1,), shell='echo "cvd=$CUDA_VISIBLE_DEVICES id=$DTASK_TASK_ID/$DTASK_ATTEMPT"')
    data, fin = s.output_of("g", 1)
    assert data == b"cvd=1 id=g/1\n" and fin.state == 3
    s.assign("f", 2, argv=[sys.executable, "-c", "raise RuntimeError('diverged')"])
    data, fin = s.output_of("f", 2)
    assert fin.state == 4 and fin.exit_code == 1 and fin.error == "exit code 1: RuntimeError: diverged"
    s.assign("m", 1, argv=["definitely-not-installed"])
    data, fin = s.output_of("m", 1)
    assert fin.state == 4 and "definitely-not-installed" in fin.error and b"not found" in data


def test_cancel_kills_the_tree(tmp_path: Path, fake: FakeController, runner: Proc) -> None:
    s = fake.session()
    pids = tmp_path / "pids"
    s.assign("c", 1, shell=f"sleep 600 & echo $! > {pids}; sleep 600 & echo $! >> {pids}; echo $$ >> {pids}; wait")
    pid_list = [int(x) for x in wait_file(pids).split()]
    s.cancel("c", 1, "operator cancelled")
    fin = s.next("finished", lambda f: f.task_id == "c")
    assert fin.state == 5 and "operator cancelled" in fin.error
    assert gone(pid_list)


def test_reconnect_keeps_tasks_running_and_reports_once(home: Path, tmp_path: Path) -> None:
    fake = FakeController(home / "certs", auto_ack=False).start()
    port = fake.port
    proc = start_runner(home, fake.address, "--slots", "2")
    try:
        s = fake.session()
        gate = tmp_path / "gate"
        s.assign(
            "long",
            1,
            shell=f"echo first; while [ ! -e {gate} ]; do sleep 0.05; done; "
            f"head -c 3000000 /dev/zero | tr '\\0' y; echo second",
        )
        s.next("output", lambda o: o.task_id == "long")
        s.assign("quick", 1, shell="echo quick")
        fin = s.next("finished", lambda f: f.task_id == "quick")  # not acknowledged
        fake.stop()  # the controller goes away
        proc.wait_for(r"controller .* unavailable|session with .* ended")
        gate.touch()  # the task goes on and finishes while no controller is there
        proc.wait_for(r"attempt long/1 succeeded")
        fake = FakeController(home / "certs", port=port, auto_ack=False).start()
        s2 = fake.session()
        assert [r.task_id for r in s2.hello.running] == []
        unreported = {(r.task_id, r.attempt): r for r in s2.hello.unreported_results}
        assert set(unreported) == {("long", 1), ("quick", 1)}
        assert unreported[("quick", 1)] == fin and unreported[("long", 1)].state == 3
        # The output written while no controller was there follows, from where it stopped.
        log = (home / "runner" / "r1" / "logs" / "long.1.log").read_bytes()
        assert len(log) == len("first\n") + 3_000_000 + len("second\n")
        got = b""
        while len(got) < len(log) - 6:
            chunk = s2.next("output", lambda o: o.task_id == "long")
            assert chunk.offset == 6 + len(got) and len(chunk.data) <= MAX_CHUNK
            got += chunk.data
        assert b"first\n" + got == log
        # Results in the Hello are not sent again on this session; after the ack they are gone.
        s2.ack("long", 1)
        s2.ack("quick", 1)
        s2.assign("after", 1, shell="echo after")
        s2.next("finished", lambda f: f.task_id == "after")
        finished = [m.finished.task_id for m in s2.seen if m.WhichOneof("msg") == "finished"]
        assert finished == ["after"]
        assert len(proc.lines) and "connected to controller" in "".join(proc.lines)
    finally:
        proc.stop()
        fake.stop()


def test_running_attempts_listed_after_reconnect(home: Path, tmp_path: Path) -> None:
    fake = FakeController(home / "certs").start()
    port = fake.port
    proc = start_runner(home, fake.address)
    try:
        s = fake.session()
        s.assign("run", 3, shell="echo 'step: 3 / 10'; sleep 600")
        assert s.next("progress", lambda p: p.task_id == "run").progress.step == 3
        fake.stop()
        fake = FakeController(home / "certs", port=port).start()
        s2 = fake.session()
        assert [(r.task_id, r.attempt) for r in s2.hello.running] == [("run", 3)]
        # The latest progress is sent again on the new session, without new output.
        p = s2.next("progress", lambda p: p.task_id == "run").progress
        assert (p.label, p.step, p.total) == ("step", 3, 10)
        s2.cancel("run", 3)
        assert s2.next("finished", lambda f: f.task_id == "run").state == 5
    finally:
        proc.stop()
        fake.stop()


def test_unacked_results_survive_a_runner_restart(home: Path) -> None:
    fake = FakeController(home / "certs", auto_ack=False).start()
    try:
        proc = start_runner(home, fake.address)
        s = fake.session()
        s.assign("keep", 1, shell="echo kept")
        s.next("finished", lambda f: f.task_id == "keep")
        assert proc.stop() == 0
        proc = start_runner(home, fake.address)
        s2 = fake.session()
        assert [(r.task_id, r.state) for r in s2.hello.unreported_results] == [("keep", 3)]
        proc.stop()
    finally:
        fake.stop()


def test_kill9_of_the_runner_kills_its_tasks(home: Path, tmp_path: Path, fake: FakeController) -> None:
    proc = start_runner(home, fake.address, "--slots", "2")
    s = fake.session()
    p1, p2 = tmp_path / "p1", tmp_path / "p2"
    s.assign("a", 1, shell=f"sleep 600 & echo $! > {p1}; sleep 600 & echo $! >> {p1}; echo $$ >> {p1}; wait")
    s.assign("b", 1, shell=f"(sleep 600 & echo $! > {p2}; sleep 600 & echo $! >> {p2}; echo $$ >> {p2}; wait) & wait")
    pids = [int(x) for x in wait_file(p1).split()] + [int(x) for x in wait_file(p2).split()]
    proc.kill9()
    assert gone(pids)


def test_kill9_of_the_runner_kills_what_left_the_task_group(home: Path, tmp_path: Path, fake: FakeController) -> None:
    proc = start_runner(home, fake.address)
    try:
        s = fake.session()
        p, q = tmp_path / "p", tmp_path / "q"
        # The escaped process writes its own pid once it is in its new session.
        s.assign(
            "a",
            1,
            shell=f"setsid sh -c 'echo $$ > {q}; exec sleep 600' & sleep 600 & echo $! > {p}; echo $$ >> {p}; wait",
        )
        child, shell = (int(x) for x in wait_file(p, lines=2).split())
        escaped = int(wait_file(q, lines=1))
        assert os.getsid(escaped) == escaped != os.getsid(shell)  # its own session: no group kill reaches it
        proc.kill9()
        assert gone([escaped, child, shell])
    finally:
        proc.kill9()  # a failure above must not leave the runner (or its tasks: the watchdog ends them)


def test_sigterm_stops_tasks_and_reports_them(home: Path, tmp_path: Path, fake: FakeController) -> None:
    proc = start_runner(home, fake.address)
    s = fake.session()
    pids = tmp_path / "pids"
    s.assign("t", 1, shell=f"sleep 600 & echo $! > {pids}; sleep 600 & echo $! >> {pids}; echo $$ >> {pids}; wait")
    pid_list = [int(x) for x in wait_file(pids).split()]
    assert proc.stop(signal.SIGTERM) == 0
    fin = s.next("finished", lambda f: f.task_id == "t")
    assert fin.state == 4 and fin.error == "the runner stopped while the attempt ran"  # FAILED: may be retried
    assert gone(pid_list)


def test_runner_service_status_drain_health_reflection(home: Path, fake: FakeController, runner: Proc) -> None:
    s = fake.session()
    s.next("usage")
    certs = home / "certs"
    with sync_channel(runner.address, tls(certs, "viewer")) as ch:
        stub = runner_pb2_grpc.RunnerStub(ch)
        st = stub.Status(rpb.StatusRequest(), timeout=10)
        assert st.name == "r1" and st.connected and list(st.capacity.gpus) == [0, 1] and st.HasField("last_usage")
        assert dict(st.labels) == {"zone": "a", "kind": "gpu"} and not st.draining
        import grpc

        with pytest.raises(grpc.RpcError) as err:
            stub.Drain(rpb.RunnerDrainRequest(), timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    s.assign("r", 1, shell="sleep 600")
    with sync_channel(runner.address, tls(certs, "operator")) as ch:
        stub = runner_pb2_grpc.RunnerStub(ch)
        deadline = time.monotonic() + 10
        while not stub.Status(rpb.StatusRequest(), timeout=10).running and time.monotonic() < deadline:
            time.sleep(0.02)
        st = stub.Drain(rpb.RunnerDrainRequest(), timeout=10)
        assert st.draining and [r.task_id for r in st.running] == ["r"]
        assert s.next("drain").draining
        assert not stub.Drain(rpb.RunnerDrainRequest(undrain=True), timeout=10).draining
        assert not s.next("drain").draining
    out = subprocess.run(
        [*grpcurl_args(tls(certs, "viewer")), runner.address, "list"], capture_output=True, text=True, timeout=30
    )
    assert "dtask.v1.Runner" in out.stdout and "grpc.health.v1.Health" in out.stdout, out.stderr
    out = subprocess.run(
        [*grpcurl_args(tls(certs, "viewer")), runner.address, "dtask.v1.Runner/Status"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(out.stdout)["name"] == "r1"
    s.cancel("r", 1)


def test_runner_without_a_controller_keeps_retrying(home: Path) -> None:
    lo, _ = free_port_range(1)
    proc = start_runner(home, f"127.0.0.1:{lo}")
    try:
        proc.wait_for(r"unavailable")
        proc.wait_for(r"reconnecting to .* in \d")
        proc.wait_for(r"reconnecting to .* in \d")
    finally:
        assert proc.stop() == 0
