"""The pid lock: a second process is refused with the holder's pid; the lock goes with its holder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dtask_common.pidlock import LockHeld, PidLock

HOLDER = textwrap.dedent("""
    import sys
    from dtask_common.pidlock import PidLock
    lock = PidLock(sys.argv[1])
    print("held", flush=True)
    sys.stdin.readline()  # hold until told (or until killed)
""")

CONTENDER = textwrap.dedent("""
    import sys
    from dtask_common.pidlock import LockHeld, PidLock
    try:
        PidLock(sys.argv[1])
    except LockHeld as exc:
        print(f"refused {exc.holder}", flush=True)
    else:
        print("taken", flush=True)
""")


def _holder(path: Path) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    return p


def _contend(path: Path) -> str:
    out = subprocess.run([sys.executable, "-c", CONTENDER, str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = _holder(path)
    try:
        assert _contend(path) == f"refused {first.pid}"
        with pytest.raises(LockHeld, match=f"pid {first.pid}"):
            PidLock(path)
    finally:
        first.kill()
        first.wait()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("end", ["exit", "kill -9"])
def test_the_lock_goes_with_its_holder(tmp_path: Path, end: str) -> None:
    path = tmp_path / "x.lock"
    first = _holder(path)
    if end == "exit":
        first.communicate("\n", timeout=60)
    else:
        first.kill()
        first.wait()
    assert _contend(path) == "taken"
    with PidLock(path) as lock:
        assert path.read_text() == str(os.getpid()) and lock.path == path


def test_close_releases_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    lock = PidLock(path)
    assert _contend(path) == f"refused {os.getpid()}"
    lock.close()
    lock.close()  # a second close does nothing
    assert _contend(path) == "taken"


def test_a_lock_file_without_a_pid_yet_names_no_holder(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = _holder(path)
    try:
        os.truncate(path, 0)  # as between the holder's lock and its write of its pid
        with pytest.raises(LockHeld) as caught:
            PidLock(path)
        assert caught.value.holder == "" and "pid unknown" in str(caught.value)
    finally:
        first.kill()
        first.wait()
