"""Containment with real processes: daemons that leave the process group die with their attempt
(cancel, timeout, the main process ending), in a cgroup per attempt and with the environment sweep."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from dtask_common.models import AttemptResult, TaskSpec, TaskState
from dtask_runner import cgroup
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.containment import Containment, carriers
from dtask_runner.launcher import Launcher

from tests.integration.runner.conftest import cgroup_containment
from tests.integration.runner.helpers import survivors
from tests.integration.runner.test_launcher import Recorder, _wait_started

# Each line of the pid file: how the process escaped its process group, and its pid.
ESCAPES = (
    'setsid sleep 301 & echo "setsid $!" >> {pids}; '
    # Forked twice (the subshell, then sh), in a session of its own, its parents gone.
    "( setsid sh -c 'sleep 302 & echo \"double-fork $!\" >> {pids}' ); "
    'nohup setsid sleep 303 > /dev/null 2>&1 & echo "nohup $!" >> {pids}; '
)
# Only a cgroup holds a process that dropped the variables the sweep looks for.
NO_TOKEN = 'env -u DTASK_RUNNER_TOKEN -u DTASK_TASK_ID setsid sleep 304 & echo "no-token $!" >> {pids}; '


def _escapes(pids: Path, containment: Containment) -> tuple[str, int]:
    script = ESCAPES + (NO_TOKEN if containment.kind == "cgroup" else "")
    return script.format(pids=pids), script.count("echo")


def _run(
    tmp_path: Path,
    containment: Containment,
    spec: TaskSpec,
    cancel: bool = False,
) -> tuple[AttemptResult, dict[int, str], list[int], bytes]:
    """Run one attempt; what it reported, its pid file, and which of those pids live on after it."""
    pids_file = tmp_path / "pids"

    async def main() -> tuple[AttemptResult, dict[int, str], list[int], bytes]:
        launcher = Launcher(tmp_path / "logs", tmp_path / "work", kill_grace_s=2.0, containment=containment)
        try:
            e = launcher.start(AttemptRequest("t", 1, spec), Recorder())
            if cancel:
                await asyncio.wait_for(_wait_started(e), 30)
                e.cancel("operator asked")
            r = await asyncio.wait_for(e.done, 60)
            written = _read(pids_file)
            # Before the launcher closes: the attempt's own end must have taken them.
            left = await asyncio.to_thread(survivors, list(written), 10)
            return r, written, left, e.log_path.read_bytes()
        finally:
            await launcher.close()
            _kill_our_sleeps(list(_read(pids_file)))  # none should be left; if some are, not for the next test

    return asyncio.run(main())


def _kill_our_sleeps(pids: list[int]) -> None:
    """SIGKILL those of pids that are still one of the tasks' `sleep 30N` (not a process that reused the pid)."""
    for pid in survivors(pids, 0):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                ours = f.read().startswith(b"sleep\x0030")
        except OSError:
            continue
        if ours:
            os.kill(pid, 9)


def _read(path: Path) -> dict[int, str]:
    """pid: how it escaped, from a pid file (none when the task wrote none)."""
    lines = path.read_text().splitlines() if path.exists() else []
    return {int(pid): kind for kind, pid in (line.split() for line in lines)}


@pytest.mark.parametrize("end", ["cancel", "timeout", "exit"])
def test_daemons_that_left_the_group_die_with_the_attempt(tmp_path: Path, containment: Containment, end: str) -> None:
    script, count = _escapes(tmp_path / "pids", containment)
    spec = TaskSpec(
        shell=script + ("echo started" if end == "exit" else "echo started; sleep 200"),
        timeout_s=3.0 if end == "timeout" else 0.0,
    )
    r, written, left, log = _run(tmp_path, containment, spec, cancel=end == "cancel")
    assert b"started" in log, log  # every pid was written before the end
    assert len(written) == count
    assert {written[p] for p in left} == set(), f"survived the {end} of the attempt ({containment.describe()})"
    expected = {
        "cancel": (TaskState.CANCELLED, "cancelled: operator asked"),
        "timeout": (TaskState.FAILED, "timed out after 3 s"),
        "exit": (TaskState.SUCCEEDED, ""),
    }[end]
    assert (r.state, r.error) == expected


@pytest.mark.parametrize("kill_file", [True, False], ids=["cgroup.kill", "pid-by-pid"])
def test_the_attempt_group_is_removed_after_the_attempt(tmp_path: Path, kill_file: bool) -> None:
    c = cgroup_containment(f"test-{os.getpid()}")
    c.kill_file = kill_file  # False: SIGKILL every pid of cgroup.procs, as where cgroup.kill is missing
    pids, where = tmp_path / "pids", tmp_path / "where"
    # The task (root here) nests a group of its own in its attempt's group and moves a daemon there.
    nested = (
        'g=$(sed -n "s/^0:://p" /proc/self/cgroup); echo "$g" > {where}; d={mount}$g/nested; '
        'mkdir "$d" && setsid sh -c "echo \\$\\$ > $d/cgroup.procs && echo nested \\$\\$ >> {pids} '
        '&& exec sleep 305" & '
    )
    wait_for_all = "while [ $(wc -l < {pids}) -lt 4 ]; do sleep 0.01; done; echo started; sleep 200"
    script = (nested + ESCAPES + wait_for_all).format(where=where, mount=_mount_point(), pids=pids)
    try:
        r, written, left, log = _run(tmp_path, c, TaskSpec(shell=script), cancel=True)
        assert r.state is TaskState.CANCELLED, log
        assert sorted(written.values()) == ["double-fork", "nested", "nohup", "setsid"]
        assert left == []
        group = Path(_mount_point() + where.read_text().strip())
        assert group.parent == c.root and group.name == "attempt-t-1"
        assert not group.exists()
    finally:
        c.close()
    assert not c.root.exists()  # the runner's own group goes when it stops


def _mount_point() -> str:
    """Where the cgroup2 hierarchy this process is in is mounted (a group's path goes after it)."""
    base = str(cgroup.find_own_group())
    with open("/proc/self/cgroup") as f:
        own = next(line[3:].strip() for line in f if line.startswith("0::"))
    return base if own == "/" else base[: -len(own)]


def test_the_sweep_finds_an_attempt_by_all_of_its_variables(tmp_path: Path) -> None:
    import subprocess

    env = dict(os.environ, DTASK_RUNNER_TOKEN="tok", DTASK_TASK_ID="a b", DTASK_ATTEMPT="2")
    mine = subprocess.Popen(["sleep", "60"], env=env)
    other = subprocess.Popen(["sleep", "60"], env=dict(env, DTASK_ATTEMPT="3"))
    try:
        assert carriers([b"DTASK_RUNNER_TOKEN=tok", b"DTASK_TASK_ID=a b", b"DTASK_ATTEMPT=2"]) == [mine.pid]
    finally:
        for p in (mine, other):
            p.kill()
            p.wait()


def test_peak_memory_comes_from_the_cgroup_where_it_has_the_memory_controller(tmp_path: Path) -> None:
    c = cgroup_containment(f"test-{os.getpid()}")
    try:
        if not c.memory:
            pytest.skip(
                "the memory controller is not enabled in this cgroup2 tree (on a hybrid layout it is on "
                "cgroup v1): the tree sampling measures peak memory instead"
            )
        # Allocated and gone within a few milliseconds: too short for the sampling, not for memory.peak.
        code = "b = bytearray(150 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096])"
        r, _, _, _ = _run(tmp_path, c, TaskSpec(shell=f'{sys.executable} -c "{code}"'))
        assert r.state is TaskState.SUCCEEDED, r.error
        assert r.peak_rss_bytes > 150 * 1024 * 1024
    finally:
        c.close()


@pytest.mark.parametrize("threaded", [False, True])
def test_an_attempt_whose_log_cannot_be_created_never_runs_its_task(
    tmp_path: Path, containment: Containment, threaded: bool
) -> None:
    """The log is created before the spawn, or (in a thread, after a slow create) while the process is spawned
    (at its gate, with cgroups): when it cannot be, the task does not run, the attempt fails saying why, and
    nothing of it is left."""

    async def main() -> AttemptResult:
        launcher = Launcher(tmp_path / "logs", tmp_path / "work", containment=containment)
        if threaded:
            launcher.log_creation.took(1.0)
            assert not launcher.log_creation.inline()
        try:
            (tmp_path / "logs" / "t1.1.log").mkdir()  # a directory where the log goes: it cannot be opened
            spec = TaskSpec(shell=f"touch {tmp_path}/ran")
            r = await asyncio.wait_for(launcher.start(AttemptRequest("t1", 1, spec), Recorder()).done, 30)
            if containment.kind == "cgroup":
                assert not [p for p in Path(containment.group).iterdir() if p.name.startswith("attempt-")]
            return r
        finally:
            await launcher.close()

    r = asyncio.run(main())
    assert r.state is TaskState.FAILED and "cannot create its log" in r.error, r
    assert not (tmp_path / "ran").exists()
