"""What one attempt costs the runner: the watchdog writes and cgroup file operations it takes, with real processes."""

from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dtask_common.models import TaskSpec, TaskState
from dtask_runner import cgroup
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.containment import Containment, SweepContainment
from dtask_runner.launcher import Launcher

from tests.integration.runner.conftest import cgroup_containment
from tests.integration.runner.test_launcher import Recorder

ATTEMPTS = 4


def _run_attempts(
    tmp_path: Path, containment: Containment, spec: TaskSpec
) -> tuple[list[bytes], list[Path], list[str]]:
    """Run ATTEMPTS attempts of spec two at a time: what the runner wrote to its watchdog, each attempt's log,
    and the groups left below the runner's cgroup once they ended."""
    sent: list[bytes] = []
    left: list[str] = []

    async def main() -> list[Path]:
        launcher = Launcher(tmp_path / "logs", tmp_path / "work", kill_grace_s=2.0, containment=containment)
        assert launcher.watchdog is not None
        send = launcher.watchdog._send

        def spy(line: bytes) -> None:
            sent.append(line)
            send(line)

        launcher.watchdog._send = spy  # type: ignore[method-assign]
        try:
            logs = []
            for n in range(0, ATTEMPTS, 2):
                es = [launcher.start(AttemptRequest(f"t{n + i}", 1, spec), Recorder()) for i in range(2)]
                results = await asyncio.wait_for(asyncio.gather(*(e.done for e in es)), 60)
                assert [r.state for r in results] == [TaskState.SUCCEEDED] * 2, [r.error for r in results]
                logs += [e.log_path for e in es]
            if containment.group:
                left.extend(p.name for p in Path(containment.group).iterdir() if p.is_dir())
            return logs
        finally:
            await launcher.close()

    logs = asyncio.run(main())
    return sent, logs, left


def test_attempts_in_cgroups_cost_the_watchdog_nothing(tmp_path: Path) -> None:
    # The watchdog kills the runner's cgroup, every attempt's group with it: it need not hear of each.
    sent, _, _ = _run_attempts(tmp_path, cgroup_containment(f"test-{os.getpid()}"), TaskSpec(argv=("true",)))
    assert [line for line in sent if b"+" in line or b"-" in line] == []


def test_attempts_without_cgroups_are_told_to_the_watchdog(tmp_path: Path) -> None:
    sent, _, _ = _run_attempts(tmp_path, SweepContainment("the test asks for it"), TaskSpec(argv=("true",)))
    added = [word for line in sent for word in line.split() if word.startswith(b"+")]
    assert len(added) == ATTEMPTS


def _counting(monkeypatch: pytest.MonkeyPatch, calls: Counter[str], name: str) -> None:
    real: Callable[..., Any] = getattr(cgroup, name)

    def counted(group: Path, *args: Any, **kwargs: Any) -> Any:
        if Path(group).name.startswith("attempt-"):  # an attempt's group (not the runner's, as it stops)
            calls[name] += 1
        return real(group, *args, **kwargs)

    monkeypatch.setattr(cgroup, name, counted)


def test_an_attempt_that_leaves_nothing_has_its_cgroup_removed_in_one_rmdir_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    containment = cgroup_containment(f"test-{os.getpid()}")
    calls: Counter[str] = Counter()
    for name in ("populated", "kill", "_tree", "remove_if_empty", "remove"):
        _counting(monkeypatch, calls, name)
    write = cgroup.write

    def counted_write(group: Path, name: str, value: str) -> None:
        calls[f"write {name}"] += 1
        write(group, name, value)

    monkeypatch.setattr(cgroup, "write", counted_write)
    _, logs, left = _run_attempts(tmp_path, containment, TaskSpec(shell="echo hi"))
    # A task of the runner's own user puts itself into its group (the runner's event loop never waits on it).
    assert calls["write cgroup.procs"] == 0
    # Once the main process is reaped nothing can join its group: an rmdir that works shows it was empty,
    # without a look at cgroup.events, a kill or a walk.
    assert calls["remove_if_empty"] == ATTEMPTS
    assert calls["populated"] == 0
    assert calls["kill"] == 0
    assert calls["remove"] == 0
    assert calls["_tree"] == 0
    assert left == []
    # An attempt's files are what they were: its log, nothing else of it in the log directory.
    assert [p.read_bytes() for p in logs] == [b"hi\n"] * ATTEMPTS
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == sorted(p.name for p in logs)


def test_an_attempt_that_leaves_a_daemon_has_it_killed_and_its_cgroup_removed(tmp_path: Path) -> None:
    # The rmdir finds the group busy: the daemon is killed, then the group goes.
    containment = cgroup_containment(f"test-{os.getpid()}")
    pids = tmp_path / "daemons"
    _, logs, left = _run_attempts(
        tmp_path, containment, TaskSpec(shell=f"setsid sleep 300 >/dev/null 2>&1 & echo $! >> {pids}; echo hi")
    )
    assert left == []
    assert [p.read_bytes() for p in logs] == [b"hi\n"] * ATTEMPTS
    for pid in map(int, pids.read_text().split()):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


FDS = (
    "import os, sys\n"
    "fds = sorted(int(n) for n in os.listdir('/proc/self/fd'))\n"
    "print(fds, os.readlink('/proc/self/fd/1') == os.readlink('/proc/self/fd/2'), os.readlink('/proc/self/fd/1')[:5])\n"
)


@pytest.mark.parametrize("kind", ["cgroup", "sweep"])
def test_a_task_gets_one_pipe_for_stdout_and_stderr_and_no_other_descriptor_of_the_runner(
    tmp_path: Path, kind: str
) -> None:
    containment = (
        cgroup_containment(f"test-{os.getpid()}") if kind == "cgroup" else SweepContainment("the test asks for it")
    )
    _, logs, _ = _run_attempts(tmp_path, containment, TaskSpec(argv=(sys.executable, "-c", FDS)))
    # 0-2, and the descriptor listdir holds while it reads /proc/self/fd.
    assert {p.read_text() for p in logs} == {"[0, 1, 2, 3] True pipe:\n"}
