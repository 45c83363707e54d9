"""`make demo`: a controller and two runners on this machine running examples/sweep.toml.

Shows the TUI when there is a terminal, otherwise follows the sweep with `dtask wait`; stops
everything it started on exit or Ctrl+C. Exit code 0 when the sweep ended as planned (every
task succeeded except the combination that fails on purpose, after its retry).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
DTASK = str(BIN / "dtask")
LISTEN = re.compile(r"listening on (\S+):(\d+)")
PLANNED_FAILURE = "train[model=cnn,lr=0.5]"


class Service:
    """A dtask service started by the demo, its output copied to a log file."""

    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str]):
        self.name, self.log = name, log
        self.listening = threading.Event()
        self.address = ""
        self.popen = subprocess.Popen(
            [DTASK, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            errors="replace", start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        with self.log.open("w") as f:
            for line in self.popen.stdout:
                f.write(line)
                f.flush()
                m = LISTEN.search(line)
                if m and not self.listening.is_set():
                    self.address = f"127.0.0.1:{m.group(2)}"
                    self.listening.set()
        self.listening.set()

    def wait_listening(self, timeout: float = 30.0) -> str:
        if not self.listening.wait(timeout) or not self.address:
            raise SystemExit(f"demo: the {self.name} did not start; see {self.log}:\n{self.log.read_text()[-2000:]}")
        return self.address

    def stop(self) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--no-tui", action="store_true", help="Follow with `dtask wait` even on a terminal.")
    ap.add_argument("--slots", type=int, default=2, help="Slots per runner (default 2).")
    args = ap.parse_args()
    home = Path(os.environ.get("DTASK_HOME") or Path.cwd() / ".dtask").absolute()
    demo = home / "demo"
    shutil.rmtree(demo, ignore_errors=True)
    demo.mkdir(parents=True)
    env = dict(os.environ, DTASK_HOME=str(home), PYTHONUNBUFFERED="1",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("DTASK_CONFIG", None)
    subprocess.run([DTASK, "certs", "ensure"], env=env, check=True)
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.no_tui and shutil.which("dtask-tui", path=str(BIN))

    services: list[Service] = []

    def stop_all(*_: object) -> None:
        for s in reversed(services):
            s.stop()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        ctl = Service("controller", ["controller", "--host", "127.0.0.1", "--store", str(demo / "controller.db")],
                      demo / "controller.log", env)
        services.append(ctl)
        address = ctl.wait_listening()
        env["DTASK_CONTROLLER"] = address
        print(f"demo: controller at {address} (log {ctl.log})", flush=True)
        for name in ("demo-1", "demo-2"):
            r = Service(f"runner {name}", ["runner", "--controller", address, "--name", name, "--slots",
                                           str(args.slots), "--host", "127.0.0.1", "--gpus", "none",
                                           "--log-dir", str(demo / name), "--task-env-path", sys.prefix],
                        demo / f"{name}.log", env)
            services.append(r)
        for r in services[1:]:
            r.wait_listening()
        print(f"demo: runners demo-1 and demo-2 with {args.slots} slots each (logs in {demo})", flush=True)
        ids = subprocess.run([DTASK, "submit", str(HERE / "sweep.toml")], env=env, check=True,
                             capture_output=True, text=True).stdout.split()
        print(f"demo: submitted examples/sweep.toml as tasks {', '.join(ids)}", flush=True)
        reach = "" if address.endswith(":50051") else f"DTASK_CONTROLLER={address} "
        print(f"demo: from another terminal in this directory: {reach}.venv/bin/dtask tasks", flush=True)
        if interactive:
            print("demo: opening the TUI (q to quit; the demo stops everything it started)", flush=True)
            subprocess.run([str(BIN / "dtask-tui"), "--controller", address], env=env)
            return 0
        started = time.monotonic()
        subprocess.run([DTASK, "wait", *ids], env=env)
        print(f"demo: the sweep took {time.monotonic() - started:.1f} s", flush=True)
        code = check(ids, env)
        ranked = ["results", "train", "--sort", "eval_accuracy", "--desc"]
        print(f"demo: the sweep ranked by its metric (dtask {' '.join(ranked)}; * marks the best):", flush=True)
        subprocess.run([DTASK, *ranked], env=env, check=True)
        return code
    except KeyboardInterrupt:
        print("\ndemo: interrupted", flush=True)
        return 130
    finally:
        stop_all()
        print("demo: stopped the controller and the runners", flush=True)


def check(ids: list[str], env: dict[str, str]) -> int:
    """0 when every task succeeded except the planned failure, which failed after its retry."""
    import json

    out = subprocess.run([DTASK, "tasks", "--json", "--tag", "sweep"], env=env, check=True,
                         capture_output=True, text=True).stdout
    tasks = {t["id"]: t for t in json.loads(out)}
    problems = []
    for tid in ids:
        t = tasks.get(tid)
        if t is None:
            problems.append(f"task {tid} is missing")
        elif t["name"] == PLANNED_FAILURE:
            if t["state"] != "failed" or len(t["attempts"]) != 2:
                problems.append(f"{t['name']}: expected failed after 2 attempts, got {t['state']} "
                                f"after {len(t['attempts'])}")
        elif t["state"] != "succeeded":
            problems.append(f"{t['name']}: expected succeeded, got {t['state']} ({t['error']})")
    if problems:
        print("demo: unexpected outcome:\n  " + "\n  ".join(problems), flush=True)
        return 1
    print(f"demo: as planned: {len(ids) - 1} tasks succeeded; {PLANNED_FAILURE} failed on purpose "
          "and was retried once (see `dtask task ID`)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
