"""How an attempt's processes are held and ended: a cgroup v2 group each, or the environment sweep.

With cgroups (runner.containment "auto" where a group can be made, or "cgroup"), every attempt
runs in <the runner's own cgroup>/dtask-<runner name>-<pid>/attempt-<task>-<n>: whatever it
starts stays there, setsid and double-forked daemons included, and cgroup.kill ends them all.
Without (runner.containment "sweep", or "auto" where no group can be made), an attempt's leftovers
are found by their environment: every process carrying the runner's DTASK_RUNNER_TOKEN together
with the attempt's DTASK_TASK_ID and DTASK_ATTEMPT; a task that clears those variables escapes.
Either way everything of an attempt is killed when it is cancelled, times out, or its main
process ends, and when the runner stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from dtask_runner import cgroup
from dtask_runner.gate import SH, gated
from dtask_runner.watchdog import TOKEN_ENV, carriers

log = logging.getLogger(__name__)

SETTINGS = ("auto", "cgroup", "sweep")
SWEEP_ROUNDS = 50  # scans of /proc until one finds nothing (each kill may race with a fork)


class ContainmentError(OSError):
    """The containment asked for cannot be had, or an attempt's group cannot be made; says why."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "containment failed"


class Box(Protocol):
    """One attempt's containment, from just before its spawn until everything of it is gone."""

    peak_bytes: int | None  # the attempt's peak memory when the containment measures it
    gated: bool  # the spawned process runs the task only after started()

    def spawn(self, argv: list[str], stdin: int, *, moves_itself: bool = True) -> tuple[list[str], int]:
        """The argv and stdin to spawn the attempt with (in its own session); moves_itself: the task runs as the
        runner's user, and can put itself into a group."""
        ...

    async def started(self, pid: int) -> None:
        """The attempt's main process exists: contain it (it runs the task only after this)."""
        ...

    def reaped(self) -> None:
        """The attempt's main process was reaped: its pid is no longer its own."""
        ...

    async def signal(self, sig: int) -> None:
        """Send sig to every process of the attempt."""
        ...

    async def kill(self) -> None:
        """SIGKILL every process of the attempt, and return once they are gone."""
        ...

    async def close(self) -> None:
        """Kill what is left and release everything the box holds (idempotent)."""
        ...


class Containment(Protocol):
    """How this runner contains its attempts."""

    kind: str  # "cgroup" or "sweep"
    group: str  # the runner's cgroup directory (every attempt's group is below it); "" without

    def describe(self) -> str:
        """The kind, and for the sweep why no cgroup is used: `cgroup` or `sweep: <reason>`."""
        ...

    def attempt(self, task_id: str, attempt: int, token: str) -> Box:
        """A box for one attempt (nothing is created before its spawn)."""
        ...

    def close(self) -> None:
        """Kill what is left of every attempt and remove the runner's groups."""
        ...


def open_containment(setting: str, runner_name: str, base: Path | None = None) -> Containment:
    """The containment runner.containment asks for: auto (cgroup where possible), cgroup or sweep.

    The runner's group goes below base (default: the runner's own cgroup)."""
    match setting:
        case "sweep":
            return SweepContainment('runner.containment is "sweep"')
        case "auto" | "cgroup":
            try:
                return CgroupContainment.create(runner_name, base)
            except cgroup.CgroupError as exc:
                if setting == "cgroup":
                    raise ContainmentError(
                        f'runner.containment is "cgroup" but {exc}; set it to "auto" or "sweep" to run without cgroups'
                    ) from None
                return SweepContainment(str(exc))
        case _:
            raise ContainmentError(f"runner.containment must be one of {', '.join(SETTINGS)}; got {setting!r}")


def _killpg(pgid: int, sig: int) -> None:
    if pgid > 0:  # never 0: that is the runner's own group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def _safe(text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", text)[:80]
    return safe if safe == text else f"{safe}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


# ---- cgroups ----


class CgroupContainment:
    """Every attempt in a cgroup v2 group of its own, below one group of this runner."""

    kind = "cgroup"

    def __init__(self, root: Path, *, kill_file: bool = True, memory: bool = False):
        self.root = root
        self.group = str(root)
        self.kill_file = kill_file  # cgroup.kill exists (else: freeze and SIGKILL pid by pid)
        self.memory = memory  # the memory controller is on for the attempts' groups (memory.peak)

    @classmethod
    def create(cls, runner_name: str, base: Path | None = None) -> CgroupContainment:
        """The runner's group below its own cgroup (or base); CgroupError when none can be made."""
        base = base if base is not None else cgroup.find_own_group()
        if not (base / "cgroup.procs").is_file():
            raise cgroup.CgroupError(f"{base} is not a cgroup v2 group")
        if not os.access(SH, os.X_OK):
            raise cgroup.CgroupError(f"{SH} is missing (it puts each task into its group)")
        stem = f"dtask-{_safe(runner_name)}-{os.getpid()}"
        for n in range(100):  # a group of its own, also when one process holds several runners
            root = base / (stem if n == 0 else f"{stem}.{n}")
            try:
                root.mkdir()
                break
            except FileExistsError:
                continue
            except OSError as exc:
                raise cgroup.CgroupError(
                    f"cannot create a cgroup in {base}: {exc.strerror or exc} (run the runner as root, or in a "
                    "cgroup2 subtree delegated to its user)"
                ) from None
        else:
            raise cgroup.CgroupError(f"cannot create a cgroup in {base}: {stem} and 99 more exist")
        if not os.access(base / "cgroup.procs", os.W_OK):
            root.rmdir()
            raise cgroup.CgroupError(f"cannot move processes out of {base}: its cgroup.procs is not writable")
        memory = False
        with contextlib.suppress(OSError):
            if "memory" in cgroup.read(root, "cgroup.controllers").split():
                cgroup.write(root, "cgroup.subtree_control", "+memory")
                memory = True
        return cls(root, kill_file=(root / "cgroup.kill").exists(), memory=memory)

    def describe(self) -> str:
        return "cgroup"

    def attempt(self, task_id: str, attempt: int, token: str) -> Box:
        return CgroupBox(
            self.root / f"attempt-{_safe(task_id)}-{attempt}", kill_file=self.kill_file, memory=self.memory
        )

    def close(self) -> None:
        problem = cgroup.kill_and_remove(self.root, kill_file=self.kill_file)
        if problem:
            log.warning("%s", problem)


class CgroupBox:
    """One attempt's cgroup: made at spawn, killed with cgroup.kill, removed once empty."""

    gated = True

    def __init__(self, group: Path, *, kill_file: bool = True, memory: bool = False):
        self.group = group
        self.peak_bytes: int | None = None
        self._kill_file = kill_file
        self._memory = memory
        self._pid = 0  # signalled as a process group while it may not be in the group
        self._moves_itself = False  # the process writes itself into the group (else the runner puts it there)
        self._gate = (-1, -1)
        self._made = False
        self._sealed = False  # no process can join the group any more (only the first process ever does)
        self._emptied = False  # seen empty once sealed: nothing in it can ever come back
        self._removed = False
        self._closed = False

    def spawn(self, argv: list[str], stdin: int, *, moves_itself: bool = True) -> tuple[list[str], int]:
        try:
            os.mkdir(self.group)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ContainmentError(f"cannot create the attempt's cgroup {self.group}: {exc.strerror or exc}") from None
        self._made = True
        self._moves_itself = moves_itself
        self._gate = os.pipe2(os.O_CLOEXEC)
        procs = os.path.join(self.group, "cgroup.procs") if moves_itself else ""
        return gated(argv, procs), self._gate[0]

    async def started(self, pid: int) -> None:
        self._pid = pid
        read_end, write_end = self._gate
        os.close(read_end)
        self._gate = (-1, write_end)
        word = "go"
        if not self._moves_itself:
            # The write sleeps in the kernel (a fraction of a millisecond): in a thread, off the event loop.
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(None, cgroup.write, self.group, "cgroup.procs", str(pid))
                self._pid = 0  # in the group: the group reaches all of it (and a reaped pid is never signalled)
                self._sealed = True  # only the runner puts a process into the group, and it did
            except OSError as exc:
                word = f"cannot put the task into its cgroup {self.group}: {exc.strerror or exc}"
                log.error("%s", word)
        with contextlib.suppress(OSError):  # (a shell that ended at once, on a syntax error, reads nothing)
            os.write(write_end, word.replace("\n", " ").encode() + b"\n")
        self._close_gate()

    def reaped(self) -> None:
        # The first process put itself into the group before it started anything, and it is gone: whatever is
        # left of the attempt is in the group, and nothing can join it any more.
        self._pid = 0
        self._sealed = True

    async def signal(self, sig: int) -> None:
        if not self._made:
            _killpg(self._pid, sig)
            return
        members = cgroup.pids(self.group)
        if self._pid and self._pid not in members:  # not in the group yet (and so without children): once
            _killpg(self._pid, sig)
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    async def kill(self) -> None:
        _killpg(self._pid, signal.SIGKILL)
        if not self._made or self._emptied:
            return
        if self._sealed and not self._memory and cgroup.remove_if_empty(self.group):
            # An empty group goes in one rmdir, without a look at cgroup.events first (with the memory
            # controller its memory.peak is read before it goes).
            self._emptied = self._removed = True
            return
        if cgroup.populated(self.group):
            cgroup.kill(self.group, kill_file=self._kill_file)
            if not await cgroup.wait_empty_async(self.group):
                log.warning("cgroup %s still holds processes %s after SIGKILL", self.group, cgroup.pids(self.group))
                return
        self._emptied = self._sealed

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._close_gate()
        if not self._made:
            return
        await self.kill()
        if self._removed:
            return
        if self._memory:
            with contextlib.suppress(OSError, ValueError):
                self.peak_bytes = int(cgroup.read(self.group, "memory.peak"))
        problem = cgroup.remove(self.group)
        if problem:
            log.warning("%s", problem)

    def _close_gate(self) -> None:
        for fd in self._gate:
            if fd >= 0:
                os.close(fd)
        self._gate = (-1, -1)


# ---- the environment sweep ----


class SweepContainment:
    """No cgroups: an attempt's processes are its process group and whatever carries its variables."""

    kind = "sweep"
    group = ""

    def __init__(self, reason: str):
        self.reason = reason

    def describe(self) -> str:
        return f"sweep: {self.reason}"

    def attempt(self, task_id: str, attempt: int, token: str) -> Box:
        return SweepBox((f"{TOKEN_ENV}={token}", f"DTASK_TASK_ID={task_id}", f"DTASK_ATTEMPT={attempt}"))

    def close(self) -> None:
        pass


class SweepBox:
    """One attempt's process group, plus every process whose environment holds all of its entries."""

    peak_bytes: int | None = None
    gated = False

    def __init__(self, entries: Sequence[str]):
        self._entries = tuple(os.fsencode(e) for e in entries)
        self._pid = 0
        self._swept = False

    def spawn(self, argv: list[str], stdin: int, *, moves_itself: bool = True) -> tuple[list[str], int]:
        return argv, stdin

    async def started(self, pid: int) -> None:
        self._pid = pid

    def reaped(self) -> None:
        pass  # its process group is still how its leftovers are found

    async def signal(self, sig: int) -> None:
        _killpg(self._pid, sig)
        await asyncio.to_thread(sweep, self._entries, sig, rounds=1)

    async def kill(self) -> None:
        _killpg(self._pid, signal.SIGKILL)
        killed = await asyncio.to_thread(sweep, self._entries, signal.SIGKILL)
        self._swept = True
        if killed:
            log.info(
                "killed %d processes that had left the process group of attempt %s",
                killed,
                b" ".join(self._entries[1:]).decode(errors="replace"),
            )

    async def close(self) -> None:
        if self._pid and not self._swept:
            await self.kill()


def sweep(entries: Sequence[bytes], sig: int = signal.SIGKILL, *, rounds: int = SWEEP_ROUNDS) -> int:
    """Send sig to every carrier of entries, scanning again until a scan finds none; how many there were."""
    hit: set[int] = set()
    for _ in range(rounds):
        found = carriers(entries)
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        hit.update(found)
        if rounds > 1:
            time.sleep(0.005)
    return len(hit)
