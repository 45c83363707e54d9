"""An attempt's memory and CPU: sampled from its process tree while it runs, completed by wait4 and its cgroup."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from typing import Any

import psutil

STATS_FIRST_S = 0.05
STATS_INTERVAL_S = 0.5


class Footprint:
    """The peak resident memory and the CPU time of an attempt's processes."""

    def __init__(self) -> None:
        self.peak_rss = 0
        self.cpu_time = 0.0
        self.rss = 0  # at the latest sample
        self.cpu_percent = 0.0  # between the latest two samples; 100 = one core busy
        self.pids: tuple[int, ...] = ()  # the tree at the latest sample
        self._at: float | None = None

    def sampled(self, rss: int, cpu: float, pids: tuple[int, ...] = (), at: float | None = None) -> None:
        """A sample of the whole tree: its resident memory, the CPU time it used so far, its processes, and
        when (monotonic seconds)."""
        now = time.monotonic() if at is None else at
        if self._at is not None and now > self._at:
            self.cpu_percent = max(0.0, (cpu - self.cpu_time) / (now - self._at) * 100.0)
        self._at = now
        self.rss = rss
        self.pids = pids
        self.peak_rss = max(self.peak_rss, rss)
        self.cpu_time = max(self.cpu_time, cpu)

    def reaped(self, rusage: resource.struct_rusage) -> None:
        """The main process's rusage from wait4 (covers its reaped children too)."""
        # A child's ru_maxrss starts at the runner's own high-water mark (fork/exec inherits
        # it), so it only tells about the task when it is above that.
        maxrss = rusage.ru_maxrss * 1024
        if maxrss > resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024:
            self.peak_rss = max(self.peak_rss, maxrss)
        self.cpu_time = max(self.cpu_time, rusage.ru_utime + rusage.ru_stime)

    def contained(self, peak_bytes: int | None) -> None:
        """The cgroup's memory.peak, when the attempt had a cgroup: it is the whole truth."""
        if peak_bytes is not None:
            self.peak_rss = peak_bytes


class TreeSampler:
    """Samples the task tree's memory and CPU: first after STATS_FIRST_S (a task that ends sooner
    costs nothing but a timer), then every STATS_INTERVAL_S; wait4's rusage covers the rest."""

    def __init__(self, footprint: Footprint, pid: int, exited: asyncio.Future[Any]):
        self._footprint = footprint
        self._pid = pid
        self._exited = exited
        self._loop = asyncio.get_running_loop()
        self._root: psutil.Process | None = None
        self._delay = STATS_FIRST_S
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(self._delay, self._sample)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sample(self) -> None:
        self._timer = None
        if self._exited.done():  # reaped: the pid may belong to someone else now
            return
        try:
            if self._root is None:
                self._root = psutil.Process(self._pid)
            root = self._root
            rss, cpu = 0, 0.0
            procs = [root]
            with contextlib.suppress(psutil.Error):
                procs += root.children(recursive=True)
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu += t.user + t.system + (t.children_user + t.children_system if p is root else 0.0)
        except psutil.Error:
            return
        self._footprint.sampled(rss, cpu, tuple(p.pid for p in procs))
        self._delay = min(STATS_INTERVAL_S, self._delay * 3)
        self._timer = self._loop.call_later(self._delay, self._sample)
