"""Runners with the real controller: a task file with tqdm tasks, retries, GPUs and labels; live
progress through Watch; a controller restart mid-run; a runner killed with kill -9."""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_common import events as ev
from dtask_common.models import Progress, TaskState

from tests.integration.runner.helpers import gone
from tests.support import Proc, free_port_range, start_dtask

FAST = ("--set", "controller.dead_after_s=1", "--set", "controller.lost_after_s=2")
PY = sys.executable

TQDM = (
    "import time\\nfrom tqdm import tqdm\\n"
    "for _ in tqdm(range({n}), desc='{desc}'):\\n    time.sleep({dt})\\n"
    "print('***** eval metrics *****')\\nprint('  eval_accuracy = 0.875')\\n"
)


def controller_proc(home: Path, port_range: tuple[int, int] | None = None) -> Proc:
    lo, hi = port_range or free_port_range()
    return start_dtask([*FAST, "controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"], home)


def runner_proc(home: Path, controller: str, name: str, *extra: str) -> Proc:
    lo, hi = free_port_range()
    proc = start_dtask(
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
    proc.wait_for(rf"connected to controller .* as {name}")
    return proc


def client(home: Path, address: str) -> Controller:
    return Controller(address, certs=home / "certs", timeout=10)


@pytest.fixture
def cluster(home: Path) -> Iterator[tuple[Proc, Proc, Proc]]:
    ctl = controller_proc(home)
    procs = [ctl]
    try:
        r1 = runner_proc(home, ctl.address, "r1", "--label", "zone=a")
        procs.append(r1)
        r2 = runner_proc(home, ctl.address, "r2", "--gpus", "0,1", "--label", "zone=b")
        procs.append(r2)
        yield ctl, r1, r2
    finally:
        for p in reversed(procs):
            p.stop()


def test_task_file_runs_on_two_runners_with_live_progress(
    home: Path, tmp_path: Path, cluster: tuple[Proc, Proc, Proc]
) -> None:
    ctl, r1, r2 = cluster
    taskfile = tmp_path / "tasks.toml"
    taskfile.write_text(f"""
[[task]]
name = "tqdm-{{i}}"
command = ["{PY}", "-c", "{TQDM.format(n=30, desc="train", dt=0.03)}"]
[task.matrix]
i = [1, 2]

[[task]]
name = "flaky"
command = 'echo "attempt $DTASK_ATTEMPT"; test "$DTASK_ATTEMPT" -ge 2 || {{ echo "RuntimeError: flaky" >&2; exit 7; }}'
max_retries = 2

[[task]]
name = "gpu"
command = 'echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES"'
resources = {{ gpus = 2 }}

[[task]]
name = "zone-a"
command = "hostname"
labels = {{ zone = "a" }}
""")
    with client(home, ctl.address) as c:
        progress: list[tuple[str, Progress]] = []
        watching = threading.Event()

        def watch() -> None:
            with client(home, ctl.address) as w:
                for e in w.watch(include_usage=False):
                    watching.set()
                    if isinstance(e.body, ev.ProgressEvent):
                        progress.append((e.body.task_id, e.body.progress))
                    if len(progress) > 1000:
                        return

        threading.Thread(target=watch, daemon=True).start()
        assert watching.wait(10)
        ids = c.submit(taskfile)
        assert len(ids) == 5
        seen_live = None
        deadline = time.monotonic() + 30
        while seen_live is None and time.monotonic() < deadline:  # GetTask shows progress while it runs
            t = c.task(ids[0])
            if t.state is TaskState.RUNNING and t.progress is not None and t.progress.total == 30:
                seen_live = t.progress
            elif t.state.finished:
                break
            time.sleep(0.05)
        tasks = {t.spec.name: t for t in c.wait(ids, timeout=60)}
        assert seen_live is not None and seen_live.label == "train"
        tqdm_tasks = [t for n, t in tasks.items() if n.startswith("tqdm-")]
        assert len(tqdm_tasks) == 2
        for t in tqdm_tasks:
            assert t.state is TaskState.SUCCEEDED and t.result == {"eval_accuracy": 0.875}
            assert t.attempts[-1].executor in ("r1", "r2") and t.attempts[-1].duration_s > 0.5
        tqdm_ids = {t.id for t in tqdm_tasks}
        live = [p for tid, p in progress if tid in tqdm_ids]
        assert live and all(p.label == "train" and p.total == 30 for p in live)
        flaky = tasks["flaky"]
        assert flaky.state is TaskState.SUCCEEDED and len(flaky.attempts) == 2
        assert flaky.attempts[0].state is TaskState.FAILED and flaky.attempts[0].exit_code == 7
        assert "RuntimeError: flaky" in flaky.attempts[0].error
        gpu = tasks["gpu"]
        assert gpu.state is TaskState.SUCCEEDED and gpu.attempts[-1].executor == "r2"
        assert b"".join(c.logs(gpu.id)) == b"CUDA_VISIBLE_DEVICES=0,1\n"
        zone = tasks["zone-a"]
        assert zone.state is TaskState.SUCCEEDED and zone.attempts[-1].executor == "r1"


def test_controller_restart_mid_run(home: Path, tmp_path: Path) -> None:
    port_range = free_port_range()
    ctl = controller_proc(home, port_range)
    r1 = runner_proc(home, ctl.address, "r1")
    try:
        gate = tmp_path / "gate"
        with client(home, ctl.address) as c:
            tid = c.add_task(
                f"echo started; while [ ! -e {gate} ]; do sleep 0.05; done; echo finished", name="survivor"
            )
            deadline = time.monotonic() + 20
            while c.task(tid).state is not TaskState.RUNNING and time.monotonic() < deadline:
                time.sleep(0.05)
            assert c.task(tid).state is TaskState.RUNNING
        assert ctl.stop() == 0
        r1.wait_for(r"unavailable|session with .* ended")
        ctl = controller_proc(home, port_range)
        r1.lines.clear()
        r1.wait_for(r"connected to controller .* 1 running")
        gate.touch()
        with client(home, ctl.address) as c:
            [t] = c.wait([tid], timeout=30)
            assert t.state is TaskState.SUCCEEDED and len(t.attempts) == 1
            assert t.attempts[0].executor == "r1"
            assert b"finished" in b"".join(c.logs(tid))
    finally:
        r1.stop()
        ctl.stop()


def test_runner_kill9_attempt_lost_and_requeued(home: Path, tmp_path: Path) -> None:
    ctl = controller_proc(home)
    r1 = runner_proc(home, ctl.address, "r1")
    r2 = runner_proc(home, ctl.address, "r2")
    runners = {"r1": r1, "r2": r2}
    try:
        gate = tmp_path / "gate"
        with client(home, ctl.address) as c:
            tid = c.add_task(
                f"echo $$ > {tmp_path}/pid-$DTASK_ATTEMPT; while [ ! -e {gate} ]; do sleep 0.05; done",
                name="victim",
                max_retries=1,
            )
            deadline = time.monotonic() + 20
            while c.task(tid).state is not TaskState.RUNNING and time.monotonic() < deadline:
                time.sleep(0.05)
            first = c.task(tid).attempts[-1].executor
            pid_file = tmp_path / "pid-1"
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
            pid = int(pid_file.read_text())
            runners[first].kill9()
            assert gone([pid])  # the task died with its runner
            deadline = time.monotonic() + 30
            while len(c.task(tid).attempts) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            t = c.task(tid)
            assert t.attempts[0].state is TaskState.LOST
            other = "r2" if first == "r1" else "r1"
            assert t.attempts[1].executor == other
            gate.touch()
            [t] = c.wait([tid], timeout=30)
            assert t.state is TaskState.SUCCEEDED and len(t.attempts) == 2
    finally:
        for p in (r1, r2, ctl):
            p.stop()


def test_runner_whose_name_is_not_its_certificate_is_refused_clearly(home: Path) -> None:
    certs = home / "certs"
    for ext in ("crt", "key"):  # the certificate of r1 under another runner's name
        shutil.copy(certs / f"runner-r1.{ext}", certs / f"runner-impostor.{ext}")
    ctl = controller_proc(home)
    lo, hi = free_port_range()
    proc = start_dtask(
        [
            "runner",
            "--controller",
            ctl.address,
            "--name",
            "impostor",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
        ],
        home,
    )
    try:
        m = proc.wait_for(r"ERROR .*refused.*")
        assert "PERMISSION_DENIED" in m.group(0) and "'r1'" in m.group(0) and "--name r1" in m.group(0)
        assert proc.popen.wait(30) == 1  # it stops: a reconnect cannot change its certificate
        assert not any("reconnecting to" in line for line in proc.lines)
        assert "Traceback" not in "".join(proc.lines)
        with client(home, ctl.address) as c:
            assert [e.name for e in c.executors()] == []
    finally:
        proc.stop()
        ctl.stop()
