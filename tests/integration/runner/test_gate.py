"""The gate with real shells: a shell task passes it in its own shell (one exec), keeping $0, its arguments, line
numbers, exit code, signal and stdin; a task that cannot be put into its group, or gets no "go", never runs."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from dtask_common.models import AttemptResult, TaskSpec, TaskState
from dtask_runner import spawn
from dtask_runner.containment import Containment
from dtask_runner.gate import SH, gated

from tests.integration.runner.conftest import cgroup_containment
from tests.integration.runner.test_launcher import run_one


def _run(tmp_path: Path, containment: Containment, spec: TaskSpec) -> tuple[AttemptResult, str]:
    r, log, _ = run_one(tmp_path, spec, containment=containment)
    return r, log.decode()


def test_a_shell_task_is_spawned_as_one_shell(
    tmp_path: Path, containment: Containment, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[list[str]] = []
    real = spawn.subprocess.Popen

    def spy(argv: list[str], **kw: Any) -> subprocess.Popen[bytes]:
        spawned.append(list(argv))
        return real(argv, **kw)

    monkeypatch.setattr(spawn.subprocess, "Popen", spy)
    r, log = _run(tmp_path, containment, TaskSpec(shell="echo hi"))
    assert r.state is TaskState.SUCCEEDED and log == "hi\n"
    [argv] = [a for a in spawned if any("echo hi" in word for word in a)]  # (not the watchdog)
    # The script itself, behind the gate in the same shell: no `exec "$@"` of a second sh.
    assert argv[:2] == [SH, "-c"] and len(argv) == 3 and argv[2].endswith("echo hi")
    assert argv.count(SH) == 1 and 'exec "$@"' not in argv[2]


def test_a_shell_task_keeps_its_name_line_numbers_and_exit_code(tmp_path: Path, containment: Containment) -> None:
    r, log = _run(tmp_path, containment, TaskSpec(shell='no_such_command_x; echo "$0 $#"\n\nno_such_command_y'))
    assert r.state is TaskState.FAILED and r.exit_code == 127
    assert log == f"{SH}: 1: no_such_command_x: not found\n{SH} 0\n{SH}: 3: no_such_command_y: not found\n"


def test_a_syntax_error_on_the_first_line_is_on_line_1(tmp_path: Path, containment: Containment) -> None:
    r, log = _run(tmp_path, containment, TaskSpec(shell="echo )\necho never"))
    assert r.state is TaskState.FAILED and r.exit_code == 2
    assert log.startswith(f"{SH}: 1: Syntax error") and "never" not in log


def test_a_shell_task_keeps_its_signal_and_reads_dev_null(tmp_path: Path, containment: Containment) -> None:
    r, log = _run(
        tmp_path, containment, TaskSpec(shell='read x; echo "[$x] $? $(readlink /proc/$$/fd/0)"; kill -TERM $$')
    )
    assert r.state is TaskState.FAILED and r.signal == 15
    assert log == "[] 1 /dev/null\n"


def test_an_argv_shell_keeps_its_name_and_arguments(tmp_path: Path, containment: Containment) -> None:
    r, log = _run(tmp_path, containment, TaskSpec(argv=(SH, "-c", 'echo "$0|$#|$*"; exit 3', "name", "a b", "c")))
    assert r.state is TaskState.FAILED and r.exit_code == 3
    assert log == "name|2|a b c\n"


def test_a_task_is_in_its_group_before_its_first_command(tmp_path: Path) -> None:
    for n, spec in enumerate((TaskSpec(shell="cat /proc/$$/cgroup"), TaskSpec(argv=("cat", "/proc/self/cgroup")))):
        c = cgroup_containment(f"test-{os.getpid()}-{n}")  # (closed with its launcher)
        r, log = _run(tmp_path / str(n), c, spec)
        assert r.state is TaskState.SUCCEEDED, r.error
        assert log.strip().endswith(f"/{Path(c.group).name}/attempt-t1-1"), log


def _gate(argv: list[str], procs: str, word: bytes | None) -> subprocess.CompletedProcess[bytes]:
    """Run argv behind the gate with a pipe as stdin that carries word (None: closed at once)."""
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen(gated(argv, procs), stdin=read_end, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    finally:
        os.close(read_end)
    if word is not None:
        with contextlib.suppress(BrokenPipeError):  # (a gate that failed does not read it)
            os.write(write_end, word)
    os.close(write_end)
    out, _ = proc.communicate(timeout=30)
    return subprocess.CompletedProcess(argv, proc.returncode, out)


@pytest.mark.parametrize("shell", [True, False])
def test_a_task_that_cannot_put_itself_into_its_group_never_runs(tmp_path: Path, shell: bool) -> None:
    ran = tmp_path / "ran"
    argv = [SH, "-c", f"touch {ran}"] if shell else ["touch", str(ran)]
    done = _gate(argv, str(tmp_path / "gone" / "cgroup.procs"), b"go\n")
    assert done.returncode == 125 and not ran.exists()
    assert done.stdout.decode().endswith(f"error: cannot put the task into its cgroup {tmp_path}/gone\n")


@pytest.mark.parametrize("shell", [True, False])
@pytest.mark.parametrize(
    ("word", "error"),
    [(b"no room in the group\n", "no room in the group"), (None, "the runner ended before the task started")],
)
def test_a_task_without_the_runners_go_never_runs(tmp_path: Path, shell: bool, word: bytes | None, error: str) -> None:
    ran = tmp_path / "ran"
    argv = [SH, "-c", f"touch {ran}"] if shell else ["touch", str(ran)]
    # Put into its group by the runner, or by itself (here into a stand-in file).
    for procs in ("", str(tmp_path / "cgroup.procs")):
        done = _gate(argv, procs, word)
        assert (done.returncode, done.stdout.decode()) == (125, f"error: {error}\n") and not ran.exists()
