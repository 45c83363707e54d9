"""dtask's own files are private whatever the umask: a home dtask creates, its certificates and CA key,
the controller's store (with its WAL and SHM), the runner's logs, journal and work dir; a loose home is
warned about at start."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_common.models import TaskSpec, TaskState

from tests.support import BIN, Proc, free_port_range, running, start_controller, start_dtask

LOOSE = "may enter it; make it private with chmod 700"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def start_runner(home: Path, controller: str, name: str, umask: int = -1) -> Proc:
    lo, hi = free_port_range()
    return start_dtask(
        ["runner", "--controller", controller, "--name", name, "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"],
        home,
        umask=umask,
    )


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_a_home_dtask_creates_is_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    home = tmp_path / "new" / "home"
    env = dict(os.environ, DTASK_HOME=str(home))
    env.pop("DTASK_CONFIG", None)
    made = subprocess.run(
        [str(BIN / "dtask"), "certs", "init"], env=env, umask=umask, capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0, made.stderr
    lo, hi = free_port_range()
    ctl = start_dtask(["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"], home, umask=umask)
    with running(ctl), running(start_runner(home, ctl.address, "m1", umask)) as runner:
        runner.wait_for("connected to controller")
        c = Controller(ctl.address, certs=home / "certs", timeout=10)
        [tid] = c.submit(TaskSpec(name="t", shell='echo hello; echo \'{"a": 1}\' > "$DTASK_RESULT_FILE"'))
        [task] = c.wait([tid], timeout=30)
        assert task.state is TaskState.SUCCEEDED and task.result == {"a": 1}
        # While the controller runs, its store has a WAL and an SHM file: the store's mode, not the umask's.
        store = [home / f"controller.db{suffix}" for suffix in ("", "-wal", "-shm", ".lock")]
        assert {p.name: mode(p) for p in store} == {p.name: 0o600 for p in store}
        state = home / "runner" / "m1"
        dirs = [
            home,
            home / "certs",
            home / "ca",
            home / "runner",
            state,
            state / "logs",
            state / "results",
            state / "work",
        ]
        assert {str(d): mode(d) for d in dirs} == {str(d): 0o700 for d in dirs}
        files = [
            *(home / "certs").glob("*.key"),
            home / "ca" / "ca.key",
            state / "logs" / f"{tid}.1.log",
            state / "results" / "results.jsonl",
            state / "runner.lock",
        ]
        assert len(files) == 8  # controller, operator, viewer, runner-m1, CA; log, journal, lock
        assert {str(f): mode(f) for f in files} == {str(f): 0o600 for f in files}
        assert not (home / "certs" / "ca.key").exists()
    assert not any(LOOSE in line for line in [*ctl.lines, *runner.lines])


def test_a_loose_home_is_warned_about_at_start(home: Path) -> None:
    home.chmod(0o755)
    with running(start_controller(home)) as ctl:
        line = ctl.wait_for(f"{home} .* is mode 0755: its group and others {LOOSE} {home}$")
        assert "WARN" in line.string
        with running(start_runner(home, ctl.address, "r1")) as runner:
            runner.wait_for(f"{home} .* is mode 0755: its group and others {LOOSE} {home}$")
    home.chmod(0o700)
    with running(start_controller(home)) as ctl:
        ctl.wait_for("listening on")
    assert not any(LOOSE in line for line in ctl.lines)


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_store_classes_create_private_files_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """The store classes themselves (a process with this umask), also over files an earlier version left looser."""
    old = tmp_path / "old"
    old.mkdir()
    for name in ("controller.db-wal", "controller.db-shm", "results.jsonl"):
        (old / name).write_bytes(b"")
        (old / name).chmod(0o644)
    script = """
import asyncio, json, os, sys
from pathlib import Path
from dtask_controller.store import SqliteStore
from dtask_runner.journal import ResultJournal
from dtask_runner.attempt_request import AttemptRequest
from dtask_runner.launcher import Launcher
from dtask_common.models import TaskSpec
t = Path(sys.argv[1])
open_modes = {}
for where in (t / "new" / "a", t / "old"):
    store = SqliteStore(where / "controller.db")
    store.set_meta("k", "v")
    for suffix in ("-wal", "-shm"):  # there while the store is open
        path = where / ("controller.db" + suffix)
        open_modes[str(path)] = os.stat(path).st_mode & 0o777
    store.close()
print(json.dumps(open_modes))
ResultJournal(t / "new" / "results")
ResultJournal(t / "old")
class Sink:
    def on_output(self, e): pass
    def on_progress(self, e, p): pass
async def main():
    launcher = Launcher(t / "new" / "logs", t / "new" / "work", watchdog=False)
    await launcher.start(AttemptRequest("x", 1, TaskSpec(shell="echo hi")), Sink()).done
    await launcher.close()
asyncio.run(main())
"""
    done = subprocess.run(
        [str(BIN / "python"), "-c", script, str(tmp_path)], umask=umask, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout).values()) == {0o600}
    new = tmp_path / "new"
    assert {str(d): mode(d) for d in (new, new / "a", new / "results", new / "logs", new / "work")} == {
        str(d): 0o700 for d in (new, new / "a", new / "results", new / "logs", new / "work")
    }
    files = [
        new / "a" / "controller.db",
        new / "a" / "controller.db.lock",
        new / "results" / "results.jsonl",
        new / "logs" / "x.1.log",
        old / "controller.db",
        old / "results.jsonl",
    ]
    assert {str(f): mode(f) for f in files} == {str(f): 0o600 for f in files}
