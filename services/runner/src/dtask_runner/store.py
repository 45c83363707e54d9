"""Finished attempts kept on the runner's disk (one JSON file each) until the controller acknowledges them."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from dtask_common.models import AttemptResult, TaskState

from dtask_runner.executor import safe_stem

log = logging.getLogger("dtask.runner.store")


def result_to_json(r: AttemptResult) -> dict[str, Any]:
    return {
        "task_id": r.task_id, "attempt": r.attempt, "state": r.state.value, "exit_code": r.exit_code,
        "signal": r.signal, "result": r.result, "error": r.error, "started_at": r.started_at,
        "finished_at": r.finished_at, "peak_rss_bytes": r.peak_rss_bytes, "cpu_time_s": r.cpu_time_s,
    }


def result_from_json(d: dict[str, Any]) -> AttemptResult:
    return AttemptResult(
        task_id=str(d["task_id"]), attempt=int(d["attempt"]), state=TaskState(d["state"]),
        exit_code=d.get("exit_code"), signal=d.get("signal"), result=d.get("result"),
        error=str(d.get("error") or ""), started_at=d.get("started_at"), finished_at=d.get("finished_at"),
        peak_rss_bytes=int(d.get("peak_rss_bytes") or 0), cpu_time_s=float(d.get("cpu_time_s") or 0.0),
    )


class ResultStore:
    """Unacknowledged results: written (atomically: temp file + rename) before they are reported, deleted on Ack.

    A runner killed at any moment keeps every result it reported; with fsync a power loss does too.
    """

    def __init__(self, directory: Path, *, fsync: bool = False):
        self.dir = directory
        self.fsync = fsync
        directory.mkdir(parents=True, exist_ok=True)
        self._results: dict[tuple[str, int], AttemptResult] = {}
        for path in sorted(directory.glob("*.json")):
            try:
                r = result_from_json(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable result file %s: %s", path, exc)
                continue
            self._results[(r.task_id, r.attempt)] = r
        if self._results:
            log.info("%d finished attempts await acknowledgement", len(self._results))

    def _path(self, task_id: str, attempt: int) -> Path:
        return self.dir / f"{safe_stem(task_id, attempt)}.json"

    def put(self, r: AttemptResult) -> None:
        path = self._path(r.task_id, r.attempt)
        tmp = path.with_suffix(".tmp")
        data = json.dumps(result_to_json(r), default=str).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self._results[(r.task_id, r.attempt)] = r

    def ack(self, task_id: str, attempt: int) -> bool:
        """Forget a result; False when it was not held."""
        if self._results.pop((task_id, attempt), None) is None:
            return False
        with contextlib.suppress(FileNotFoundError):
            self._path(task_id, attempt).unlink()
        return True

    def get(self, task_id: str, attempt: int) -> AttemptResult | None:
        return self._results.get((task_id, attempt))

    def pending(self) -> list[AttemptResult]:
        return sorted(self._results.values(), key=lambda r: (r.finished_at or 0.0, r.task_id, r.attempt))

    def __len__(self) -> int:
        return len(self._results)
