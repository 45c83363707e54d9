"""A real controller with a cgroup runner and a sweep runner: `dtask cancel` and timeouts leave no
daemon behind, and `dtask executors` and the runner's Status say how each contains its tasks."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dtask.v1 import runner_pb2 as rpb
from dtask.v1 import runner_pb2_grpc
from dtask_common.models import TaskState
from dtask_runner.cgroup import CgroupError
from dtask_runner.containment import CgroupContainment

from tests.e2e.cli.conftest import run_dtask
from tests.e2e.test_runner_e2e import client, controller_proc
from tests.integration.runner.helpers import survivors, wait_file
from tests.integration.runner.test_containment import ESCAPES, NO_TOKEN
from tests.support import Proc, copy_certs, free_port_range, start_dtask, sync_channel, tls


def _cgroup_problem() -> str:
    """'' where this process can make cgroup2 groups, else why not."""
    try:
        CgroupContainment.create(f"probe-{os.getpid()}").close()
    except CgroupError as exc:
        return str(exc)
    return ""


@dataclass
class Live:
    home: Path
    controller: Proc
    runners: dict[str, Proc]
    cgroup_problem: str


def _runner(home: Path, controller: str, name: str, containment: str, *extra: str) -> Proc:
    lo, hi = free_port_range()
    proc = start_dtask(
        [
            "--set",
            f"runner.containment={containment}",
            "runner",
            "--controller",
            controller,
            "--name",
            name,
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            "--label",
            f"contain={containment}",
            *extra,
        ],
        home,
    )
    proc.wait_for(rf"connected to controller .* as {name}")
    return proc


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Live]:
    home = copy_certs(certs_template, tmp_path_factory.mktemp("contain") / "home")
    problem = _cgroup_problem()
    ctl = controller_proc(home)
    runners: dict[str, Proc] = {}
    try:
        runners["sweep"] = _runner(home, ctl.address, "r2", "sweep")
        if not problem:
            runners["cgroup"] = _runner(home, ctl.address, "r1", "cgroup")
        yield Live(home, ctl, runners, problem)
    finally:
        for p in [*runners.values(), ctl]:
            p.stop()


def _mode(live: Live, mode: str) -> Proc:
    if mode not in live.runners:
        pytest.skip(f"cgroup mode needs a writable cgroup2 group here: {live.cgroup_problem}")
    return live.runners[mode]


@pytest.mark.parametrize("mode", ["cgroup", "sweep"])
@pytest.mark.parametrize("end", ["cancel", "timeout"])
def test_no_daemon_outlives_a_cancelled_or_timed_out_task(live: Live, tmp_path: Path, mode: str, end: str) -> None:
    _mode(live, mode)
    pids = tmp_path / "pids"
    with client(live.home, live.controller.address) as c:
        tid = c.add_task(
            ESCAPES.format(pids=pids) + "echo started; sleep 200",
            labels={"contain": mode},
            timeout_s=4.0 if end == "timeout" else 0.0,
        )
        written = [int(line.split()[1]) for line in wait_file(pids, lines=3).splitlines()]
        if end == "cancel":
            out = run_dtask(live.home, live.controller.address, "cancel", tid)
            assert out.returncode == 0, out.stderr
        [t] = c.wait([tid], timeout=30)
    assert t.state is (TaskState.CANCELLED if end == "cancel" else TaskState.FAILED), t.error
    assert t.attempts[-1].executor == ("r1" if mode == "cgroup" else "r2")
    assert survivors(written, 10) == []


def test_executors_and_status_say_how_tasks_are_contained(live: Live) -> None:
    out = run_dtask(live.home, live.controller.address, "executors", "--json")
    assert out.returncode == 0, out.stderr
    shown = {e["name"]: e["containment"] for e in json.loads(out.stdout)}
    assert shown["r2"] == 'sweep: runner.containment is "sweep"'
    if "cgroup" in live.runners:
        assert shown["r1"] == "cgroup"
    table = run_dtask(live.home, live.controller.address, "executors").stdout
    assert "CONTAINMENT" in table.splitlines()[0]
    assert 'r2: sweep: runner.containment is "sweep"' in table
    for mode, proc in live.runners.items():
        with sync_channel(proc.address, tls(live.home / "certs", "viewer")) as ch:
            st = runner_pb2_grpc.RunnerStub(ch).Status(rpb.StatusRequest(), timeout=10)
        assert st.containment.partition(":")[0] == mode
        assert proc.wait_for(r"tasks contained by (\S+)").group(1).rstrip(":") == mode


def test_a_runner_killed_with_kill_9_takes_even_tokenless_daemons_with_it(live: Live, tmp_path: Path) -> None:
    _mode(live, "cgroup")
    proc = _runner(live.home, live.controller.address, "r3", "cgroup", "--label", "only=r3")
    try:
        group = Path(proc.wait_for(r"tasks contained by cgroup in (\S+)").group(1))
        pids = tmp_path / "pids"
        with client(live.home, live.controller.address) as c:
            c.add_task(NO_TOKEN.format(pids=pids) + "echo started; sleep 200", labels={"only": "r3"})
            written = [int(line.split()[1]) for line in wait_file(pids, lines=1).splitlines()]
        proc.kill9()
        assert survivors(written, 10) == []  # the watchdog killed the runner's cgroup
        deadline = time.monotonic() + 10
        while group.exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # the watchdog removes the group once it is empty (nothing tells the test)
        assert not group.exists()
    finally:
        proc.stop()
