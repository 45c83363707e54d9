"""dtask-tui in a real terminal: tmux at a fixed size against a real controller and runner."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import BIN, Proc, free_port_range, start_controller, start_dtask

COLS, ROWS = 120, 32


def ensure_tmux() -> str:
    """tmux, installed with apt-get when missing and possible; else skip saying why."""
    found = shutil.which("tmux")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            "tmux is not installed and cannot be installed here (needs root and apt-get): "
            "install tmux to run the terminal test"
        )
    done = subprocess.run(
        ["apt-get", "install", "-y", "-q", "tmux"],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
    )
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=180)
        done = subprocess.run(
            ["apt-get", "install", "-y", "-q", "tmux"],
            capture_output=True,
            text=True,
            timeout=180,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"),
        )
    found = shutil.which("tmux")
    if not found:
        pytest.skip(f"tmux could not be installed: {done.stderr.strip()[-300:]}")
    return found


class Tmux:
    """One tmux server on a private socket running one program at a fixed size."""

    def __init__(self, tmux: str, socket: str):
        self.tmux = tmux
        self.socket = socket

    def cmd(self, *args: str, check: bool = True) -> str:
        out = subprocess.run([self.tmux, "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        if check and out.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        exports = [f"{k}={v}" for k, v in env.items()]
        self.cmd(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            "tui",
            "-x",
            str(COLS),
            "-y",
            str(ROWS),
            "env",
            *exports,
            *command,
        )
        self.cmd("set-option", "-t", "tui", "remain-on-exit", "on")

    def keys(self, *keys: str) -> None:
        self.cmd("send-keys", "-t", "tui", *keys)

    def screen(self) -> str:
        return self.cmd("capture-pane", "-p", "-t", "tui")

    def dead(self) -> bool:
        return self.cmd("display-message", "-p", "-t", "tui", "#{pane_dead}", check=False).strip() == "1"

    def wait_for(self, pattern: str, timeout: float = 15.0) -> re.Match[str]:
        """Poll the screen until pattern shows (tmux has no change event to wait on; bounded)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if m := rx.search(text):
                return m
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} not on screen after {timeout}s:\n{text}")
            time.sleep(0.1)

    def wait_gone(self, pattern: str, timeout: float = 15.0) -> None:
        """Poll the screen until pattern no longer shows (bounded)."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while rx.search(text := self.screen()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} still on screen after {timeout}s:\n{text}")
            time.sleep(0.1)

    def kill(self) -> None:
        self.cmd("kill-server", check=False)


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    t = Tmux(ensure_tmux(), f"dtask-e2e-{os.getpid()}-{time.monotonic_ns()}")
    try:
        yield t
    finally:
        t.kill()


@pytest.fixture
def cluster(home: Path) -> Iterator[tuple[Proc, Proc]]:
    ctrl = start_controller(home)
    lo, hi = free_port_range()
    runner = start_dtask(
        [
            "runner",
            "--controller",
            ctrl.address,
            "--name",
            "r1",
            "--slots",
            "2",
            "--gpus",
            "none",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
        ],
        home,
    )
    try:
        yield ctrl, runner
    finally:
        runner.stop()
        ctrl.stop()


def dtask(home: Path, address: str, *args: str) -> str:
    env = dict(os.environ, DTASK_HOME=str(home))
    env.pop("DTASK_CONFIG", None)
    out = subprocess.run(
        [str(BIN / "dtask"), "--controller", address, *args], capture_output=True, text=True, timeout=30, env=env
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.timeout(90)
def test_tui_in_tmux_watches_cancels_and_exports(
    home: Path, cluster: tuple[Proc, Proc], tmux: Tmux, tmp_path: Path
) -> None:
    ctrl, _runner = cluster
    quick = dtask(home, ctrl.address, "submit", "--name", "quick", "--", "echo 'loss = 0.25'").strip()
    long_id = dtask(
        home,
        ctrl.address,
        "submit",
        "--name",
        "long",
        "--",
        'for i in $(seq 1 600); do echo "step: $i / 600"; echo "DTASK_METRIC {\\"loss\\": $((600 / i))}"; '
        "sleep 0.05; done",
    ).strip()
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    env = {"DTASK_HOME": str(home), "PYTHONUNBUFFERED": "1", "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    tmux.start(["sh", "-c", f"cd {workdir} && exec {BIN / 'dtask-tui'} --controller {ctrl.address}"], env)

    # top bar: who ⇆ where, connected; the live progress bar of the long task moves
    tmux.wait_for(r"operator \(operator\) ⇆ .*" + re.escape(ctrl.address))
    first = int(tmux.wait_for(r"long\s+(\d+)/600")[1])
    later = first
    deadline = time.monotonic() + 10
    while later <= first and time.monotonic() < deadline:
        time.sleep(0.2)
        later = int(tmux.wait_for(r"long\s+(\d+)/600")[1])
    assert later > first, "the progress bar did not move"
    tmux.wait_for(r"quick\s+succeeded")

    # the long task's live metric as a chart (m), drawn in braille, then back to the table
    tmux.keys("j", "m")
    tmux.wait_for(r"Metrics of long \(" + long_id + r"\) — running")
    tmux.wait_for(r"loss = \d+")
    tmux.wait_for(r"[\u2801-\u28ff]")
    tmux.keys("Escape")
    tmux.wait_gone(r"Metrics of long")
    tmux.keys("k")

    # Executors tab: r1 with usage figures
    tmux.keys("e")
    tmux.wait_for(r"Executor\s+State\s+Run\s+GPU\s+VMem\s+RAM\s+Swap\s+CPU")
    tmux.wait_for(r"r1\s+(busy|idle)\s+1/2")
    first_sample = tmux.wait_for(r"Sampled\s+(\d\d:\d\d:\d\d)")[1]
    tmux.wait_for(r"Sampled\s+(?!" + first_sample + r")\d\d:\d\d:\d\d", 5)  # usage arrives every second
    tmux.keys("t")

    # search, then cancel the long task through the yes/no dialog
    tmux.keys("/", "long", "Enter")
    tmux.wait_for(r"/long")
    assert "quick" not in tmux.screen().split("────")[0]
    tmux.keys("c")
    tmux.wait_for(r"Cancel task long \(" + long_id + r", running\)\?")
    tmux.keys("y")
    tmux.wait_for(r"long\s+cancelled")
    assert json.loads(dtask(home, ctrl.address, "task", long_id, "--json"))["state"] == "cancelled"
    tmux.keys("Escape")  # clears the search
    tmux.wait_gone(r"/long")

    # filters: succeeded only
    tmux.keys("4")
    tmux.wait_for(r"quick\s+succeeded")  # shown by the All view too: the filtered list may not be drawn yet
    tmux.wait_gone(r"long\s+cancelled")
    tmux.keys("1")

    # export through the dialog; the file equals what `dtask export` writes
    tmux.keys("C-e")
    m = tmux.wait_for(r"Path: (\S+tasks_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.json)")
    tmux.keys("Enter")
    tmux.wait_for(r"exported 2 tasks")
    exported = json.loads(Path(m[1]).read_text())
    assert Path(m[1]).parent == workdir
    other = tmp_path / "cli.json"
    dtask(home, ctrl.address, "export", str(other))
    expected = json.loads(other.read_text())
    exported.pop("exported_at")
    expected.pop("exported_at")
    assert exported == expected
    assert {t["id"] for t in exported["tasks"]} == {quick, long_id}

    # the Results view of a 1x2 sweep: its parameter and metric as columns, the best marked, sorted with keys
    sweep = tmp_path / "sw.toml"
    sweep.write_text(
        '[[task]]\nname = "sw"\n'
        "command = \"echo '***** eval metrics *****'; echo '  score = {n}'\"\n"
        "[task.matrix]\nn = [1, 2]\n"
    )
    dtask(home, ctrl.address, "submit", str(sweep))
    tmux.wait_for(r"sw\[n=2\]\s+succeeded")
    tmux.wait_for(r"sw\[n=1\]\s+succeeded")
    tmux.keys("/", "sw[", "Enter")
    tmux.wait_for(r"/sw\[")
    tmux.keys("R")
    tmux.wait_for(r"Results of sw\[\.\.\.\] — 2 tasks — in submission order")
    tmux.wait_for(r"id\s+n\s+score\s+state")
    tmux.wait_for(r"\d+\s+2\s+2\*\s+succeeded")  # the highest score is marked
    tmux.keys("s", "s", "s", "S")  # id, n, score; then descending
    tmux.wait_for(r"sorted by score ↓")
    top = tmux.screen().split("score↓")[1].split()
    assert top[3:5] == ["2", "2*"], top  # after state, duration_s and the id: the best first
    tmux.keys("Escape")
    tmux.wait_gone(r"Results of sw")
    tmux.keys("Escape")  # clears the search
    tmux.wait_gone(r"/sw\[")

    # help panel from the bindings table, then quit
    tmux.keys("?")
    tmux.wait_for(r"Export all tasks to a JSON file")
    tmux.keys("Escape")
    tmux.wait_gone(r"Export all tasks to a JSON file")
    tmux.keys("q")
    deadline = time.monotonic() + 10
    while not tmux.dead():
        assert time.monotonic() < deadline, "dtask-tui did not exit on q"
        time.sleep(0.1)


@pytest.mark.timeout(60)
def test_tui_with_a_viewer_certificate_shows_actions_unavailable(
    home: Path, cluster: tuple[Proc, Proc], tmux: Tmux
) -> None:
    ctrl, _runner = cluster
    task_id = dtask(home, ctrl.address, "submit", "--name", "sleeper", "--", "sleep 30").strip()
    certs = home / "certs"
    env = {"DTASK_HOME": str(home), "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    tmux.start(
        [
            str(BIN / "dtask-tui"),
            "--controller",
            ctrl.address,
            "--cert",
            str(certs / "viewer.crt"),
            "--key",
            str(certs / "viewer.key"),
        ],
        env,
    )
    tmux.wait_for(r"viewer \(viewer\) ⇆ .*connected")
    tmux.wait_for(r"sleeper\s+running")
    tmux.wait_for(r"\(viewer: read-only\)")
    tmux.keys("c")
    tmux.wait_for(r"cancel is unavailable: this is a viewer certificate")
    assert "Cancel task" not in tmux.screen()
    assert json.loads(dtask(home, ctrl.address, "task", task_id, "--json"))["state"] == "running"
    tmux.keys("q")
    deadline = time.monotonic() + 10
    while not tmux.dead():
        assert time.monotonic() < deadline, "dtask-tui did not exit on q"
        time.sleep(0.1)


@pytest.mark.timeout(60)
def test_dtask_wait_on_a_terminal_shows_how_many_tasks_are_in_each_state(
    home: Path, cluster: tuple[Proc, Proc], tmux: Tmux, tmp_path: Path
) -> None:
    """`dtask wait` on a terminal redraws one progress line from the counts per state as the tasks move (two
    slots: the third task waits, then runs and fails), then prints the table and exits 1."""
    ctrl, _runner = cluster
    go = [tmp_path / "go1", tmp_path / "go2"]
    ids = [
        dtask(home, ctrl.address, "submit", "--name", f"held{n}", "--", f"while [ ! -e {g} ]; do sleep 0.05; done")
        for n, g in enumerate(go, 1)
    ]
    ids.append(dtask(home, ctrl.address, "submit", "--name", "bad", "--", "exit 3"))
    env = {"DTASK_HOME": str(home), "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    done = tmp_path / "exit"
    wait = f"{BIN / 'dtask'} --controller {ctrl.address} wait {' '.join(i.strip() for i in ids)}"
    tmux.start(["sh", "-c", f'{wait}; echo "exit $?" > {done}'], env)
    tmux.wait_for(r"(?m)0/3 finished · 1 pending · 2 running *$", timeout=20)
    go[0].touch()
    tmux.wait_for(r"(?m)2/3 finished · 1 running · 1 succeeded · 1 failed *$")
    go[1].touch()
    deadline = time.monotonic() + 10
    while not done.exists():
        assert time.monotonic() < deadline, "dtask wait did not return"
        time.sleep(0.05)
    assert done.read_text() == "exit 1\n"
    # (the pane's "dead" line may have scrolled the first line off the screen: read its history too)
    lines = tmux.cmd("capture-pane", "-p", "-S", "-50", "-t", "tui").splitlines()
    first = lines.index(next(line for line in lines if "finished" in line))
    assert lines[first] == "█" * 20 + " 3/3 finished · 2 succeeded · 1 failed", lines
    assert lines[first + 1].split()[:3] == ["ID", "NAME", "STATE"] and "1 of 3 tasks did not succeed" in lines, lines
