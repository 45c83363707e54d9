"""Log retention's decisions: by age, by total size oldest first, never what is kept; a log being read stays."""

from __future__ import annotations

import os
from pathlib import Path

from dtask_runner.retention import DAY_S, LogFile, Retention, to_remove


def f(stem: str, size: int, mtime: float) -> LogFile:
    return LogFile(stem, Path(f"/logs/{stem}.log"), size, mtime)


def test_by_age_and_by_size_oldest_first_never_what_is_kept() -> None:
    files = [f("1.1", 100, 10.0), f("2.1", 100, 20.0), f("3.1", 100, 30.0), f("4.1", 100, 40.0)]
    assert to_remove(files, set(), 100.0, 75.0, 0) == files[:2]
    assert to_remove(files, {"1.1"}, 100.0, 75.0, 0) == files[1:2]
    assert to_remove(files, set(), 100.0, 0, 250) == files[:2]  # 400 bytes down to 200
    assert to_remove(files, {"1.1", "2.1"}, 100.0, 0, 250) == files[2:]  # kept ones still count
    assert to_remove(files, set(), 100.0, 0, 0) == []  # both off


def test_a_log_read_lately_stays_and_result_files_go_with_their_log(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    old = 1_000.0
    for stem in ("1.1", "2.1"):
        (logs / f"{stem}.log").write_text("out")
        (logs / f"{stem}.result.json").write_text("{}")
        os.utime(logs / f"{stem}.log", (old, old))
    r = Retention(logs, (logs,), max_age_days=1, clock=lambda: old + 2 * DAY_S)
    r.note_read("2", 1)  # the controller reads it: kept while the reads go on
    swept = r.sweep(r.lately_read())
    assert (swept.removed, swept.freed) == (1, 3)
    assert sorted(p.name for p in logs.iterdir()) == ["2.1.log", "2.1.result.json"]
    assert r.removed == 1 and r.logs_bytes == 3
