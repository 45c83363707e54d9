"""Finished attempts kept on the runner's disk (an append-only journal) until the controller acknowledges them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from dtask_common.models import AttemptResult, TaskState
from dtask_common.private import open_private, private_dir

log = logging.getLogger(__name__)

JOURNAL = "results.jsonl"
# Rewrite the journal once it is this large and at least twice the size of what it still holds.
COMPACT_BYTES = 1024 * 1024


def result_to_json(r: AttemptResult) -> dict[str, Any]:
    return {
        "task_id": r.task_id,
        "attempt": r.attempt,
        "state": r.state.value,
        "exit_code": r.exit_code,
        "signal": r.signal,
        "result": r.result,
        "error": r.error,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "peak_rss_bytes": r.peak_rss_bytes,
        "cpu_time_s": r.cpu_time_s,
        "output_bytes": r.output_bytes,
    }


def result_from_json(d: dict[str, Any]) -> AttemptResult:
    return AttemptResult(
        task_id=str(d["task_id"]),
        attempt=int(d["attempt"]),
        state=TaskState(d["state"]),
        exit_code=d.get("exit_code"),
        signal=d.get("signal"),
        result=d.get("result"),
        error=str(d.get("error") or ""),
        started_at=d.get("started_at"),
        finished_at=d.get("finished_at"),
        peak_rss_bytes=int(d.get("peak_rss_bytes") or 0),
        cpu_time_s=float(d.get("cpu_time_s") or 0.0),
        output_bytes=int(d.get("output_bytes") or 0),
    )


def _put_line(r: AttemptResult) -> bytes:
    return json.dumps({"put": result_to_json(r)}, default=str, separators=(",", ":")).encode() + b"\n"


class ResultJournal:
    """Unacknowledged results, in `results.jsonl`: a `put` line is appended (one write) before a
    result is reported, an `ack` line when the controller acknowledges it.

    A runner killed at any moment keeps every result it reported: a write that returned is in the
    file, and a line cut short by the kill belongs to a result that was never reported (it is
    skipped). With fsync a power loss keeps them too. An ack line lost in a crash only makes the
    runner report an acknowledged result again, which the controller acknowledges again.
    The journal is rewritten on open (dropping acknowledged results and any cut line) and emptied
    or rewritten as it grows. Result files of earlier versions (`*.json`) are taken over on open.
    """

    def __init__(self, directory: Path, *, fsync: bool = False):
        self.dir = directory
        self.fsync = fsync
        private_dir(directory)
        self.path = directory / JOURNAL
        self._results: dict[tuple[str, int], AttemptResult] = {}
        self._sizes: dict[tuple[str, int], int] = {}  # journal bytes of each held result
        self._live = 0  # their sum
        legacy = self._load_legacy()
        self._load_journal()
        self._fd = -1
        self._size = 0
        self._rewrite()
        for path in legacy:
            with contextlib.suppress(OSError):
                path.unlink()
        if self._results:
            log.info("%d finished attempts await acknowledgement", len(self._results))

    def _load_legacy(self) -> list[Path]:
        taken = []
        for path in sorted(self.dir.glob("*.json")):
            try:
                r = result_from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable result file %s: %s", path, exc)
                continue
            self._results[(r.task_id, r.attempt)] = r
            taken.append(path)
        return taken

    def _load_journal(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if "put" in entry:
                    r = result_from_json(entry["put"])
                    self._results[(r.task_id, r.attempt)] = r
                else:
                    task_id, attempt = entry["ack"]
                    self._results.pop((str(task_id), int(attempt)), None)
            except (ValueError, KeyError, TypeError) as exc:
                if n < len(lines):  # the last line may have been cut short by a kill: never reported
                    log.warning("ignoring unreadable line %d of %s: %s", n, self.path, exc)

    def _rewrite(self) -> None:
        """Write the journal afresh with what it holds now (temp file + rename)."""
        tmp = self.path.with_suffix(".tmp")
        lines = {key: _put_line(r) for key, r in self._results.items()}
        fd = open_private(tmp, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, b"".join(lines.values()))
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._sizes = {key: len(line) for key, line in lines.items()}
        self._size = self._live = sum(self._sizes.values())

    def _append(self, line: bytes) -> OSError | None:
        """Append a line; on a write error (disk full) take back what part of it got in, return the error."""
        view = memoryview(line)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            return exc
        self._size += len(line)
        return None

    def put(self, r: AttemptResult) -> None:
        key = (r.task_id, r.attempt)
        line = _put_line(r)
        error = self._append(line)
        if error is None and self.fsync:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                error = exc
        if error is not None:  # still reported: held in memory until acknowledged
            log.error(
                "cannot record the result of attempt %s/%d in %s: %s; it is held in memory until the "
                "controller acknowledges it (a runner restart before then loses it)",
                r.task_id,
                r.attempt,
                self.path,
                error.strerror or error,
            )
            line = b""
        self._results[key] = r
        self._live += len(line) - self._sizes.get(key, 0)
        self._sizes[key] = len(line)

    def ack(self, task_id: str, attempt: int) -> bool:
        """Forget a result; False when it was not held."""
        key = (task_id, attempt)
        if self._results.pop(key, None) is None:
            return False
        self._live -= self._sizes.pop(key, 0)
        if not self._results and self._size >= COMPACT_BYTES:
            os.ftruncate(self._fd, 0)  # nothing held: start the journal again
            self._size = 0
            return True
        error = self._append(json.dumps({"ack": [task_id, attempt]}, separators=(",", ":")).encode() + b"\n")
        if error is not None:
            log.warning(
                "cannot record the acknowledgement of attempt %s/%d in %s: %s; a restarted runner reports it again",
                task_id,
                attempt,
                self.path,
                error.strerror or error,
            )
        elif self._size >= COMPACT_BYTES and self._size >= 2 * self._live:
            try:
                self._rewrite()
            except OSError as exc:
                log.warning("cannot compact %s: %s", self.path, exc.strerror or exc)
        return True

    def get(self, task_id: str, attempt: int) -> AttemptResult | None:
        return self._results.get((task_id, attempt))

    def pending(self) -> list[AttemptResult]:
        return sorted(self._results.values(), key=lambda r: (r.finished_at or 0.0, r.task_id, r.attempt))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __len__(self) -> int:
        return len(self._results)
