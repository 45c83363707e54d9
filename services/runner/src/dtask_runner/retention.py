"""Attempt log retention: logs (and result files) of finished attempts past runner.log_retention_days, or past
runner.log_max_bytes in total (oldest first), are removed; never those of running, unacknowledged or lately read
attempts."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dtask_runner.attempt_request import safe_stem

log = logging.getLogger(__name__)

DAY_S = 86400.0
SWEEP_INTERVAL_S = 3600.0  # a sweep at start, then once an hour
FINISH_SWEEP_MIN_S = 60.0  # with a size limit, also after an attempt ends, at most once a minute
READ_GRACE_S = 600.0  # a log the controller read this recently is kept (a read of many chunks is not cut short)
_LOG = re.compile(r"^(?P<stem>.+\.\d+)\.log$")


@dataclass(frozen=True, slots=True)
class LogFile:
    """One attempt's log on disk."""

    stem: str  # safe_stem(task_id, attempt)
    path: Path
    size: int
    mtime: float  # the last write: when the attempt ended (or last wrote output)


def to_remove(
    files: Iterable[LogFile], keep: Collection[str], now: float, max_age_s: float, max_bytes: int
) -> list[LogFile]:
    """The logs a sweep removes (no I/O): older than max_age_s (> 0), then, while all the logs together are larger
    than max_bytes (> 0), the oldest; never one whose stem is in keep."""
    files = list(files)
    total = sum(f.size for f in files)
    removable = sorted((f for f in files if f.stem not in keep), key=lambda f: (f.mtime, f.stem))
    out: list[LogFile] = []
    for f in removable:  # oldest first: once one stays, every newer one stays too
        too_old = max_age_s > 0 and now - f.mtime > max_age_s
        too_big = max_bytes > 0 and total > max_bytes
        if not (too_old or too_big):
            break
        out.append(f)
        total -= f.size
    return out


def scan(log_dir: Path) -> list[LogFile]:
    """Every attempt log in log_dir (regular files named <task>.<attempt>.log)."""
    out = []
    try:
        entries = list(os.scandir(log_dir))
    except OSError as exc:
        log.warning("log retention: cannot list %s: %s", log_dir, exc.strerror or exc)
        return []
    for entry in entries:
        m = _LOG.match(entry.name)
        if m is None:
            continue
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            if entry.is_file(follow_symlinks=False):
                out.append(LogFile(m.group("stem"), Path(entry.path), st.st_size, st.st_mtime))
    return out


@dataclass(frozen=True, slots=True)
class Swept:
    """What one sweep did."""

    removed: int
    freed: int
    kept_bytes: int


@dataclass
class Retention:
    """The runner's log retention: its settings, the logs lately read, and what the sweeps did."""

    log_dir: Path
    result_dirs: tuple[Path, ...]
    max_age_days: float = 0.0
    max_bytes: int = 0
    clock: Callable[[], float] = time.time
    reads: dict[str, float] = field(default_factory=dict)  # stem -> when it was last read (monotonic)
    logs_bytes: int = 0  # the logs' total at the last sweep
    removed: int = 0  # logs removed since start
    last_finish_sweep: float = float("-inf")

    @property
    def enabled(self) -> bool:
        return self.max_age_days > 0 or self.max_bytes > 0

    def note_read(self, task_id: str, attempt: int) -> None:
        """The controller reads this attempt's log: keep it for READ_GRACE_S more."""
        self.reads[safe_stem(task_id, attempt)] = time.monotonic()

    def lately_read(self) -> set[str]:
        now = time.monotonic()
        for stem in [s for s, at in self.reads.items() if now - at > READ_GRACE_S]:
            del self.reads[stem]
        return set(self.reads)

    def sweep_after_finish(self) -> bool:
        """Whether an attempt's end should sweep now: with a size limit, at most once a minute."""
        if self.max_bytes <= 0 or time.monotonic() - self.last_finish_sweep < FINISH_SWEEP_MIN_S:
            return False
        self.last_finish_sweep = time.monotonic()
        return True

    def sweep(self, keep: Collection[str]) -> Swept:
        """Remove what to_remove says (blocking file I/O: run it in a worker thread); keep: stems never removed."""
        files = scan(self.log_dir)
        total = sum(f.size for f in files)
        if not self.enabled:
            self.logs_bytes = total
            return Swept(0, 0, total)
        gone = to_remove(files, keep, self.clock(), self.max_age_days * DAY_S, self.max_bytes)
        removed = freed = 0
        for f in gone:
            try:
                f.path.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.warning("log retention: cannot remove %s: %s", f.path, exc.strerror or exc)
                continue
            removed += 1
            freed += f.size
            for d in self.result_dirs:
                with contextlib.suppress(OSError):
                    (d / f"{f.stem}.result.json").unlink()
        self.logs_bytes = total - freed
        self.removed += removed
        return Swept(removed, freed, total - freed)
