"""The SQLite store's pruning: which tasks it selects, their deletion, ids never given again, and the switch of
an older file to incremental vacuum."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from dtask_common.models import TaskSpec, TaskState
from dtask_controller.store import SqliteStore
from dtask_controller.store import sqlite_file as sf
from dtask_controller.store.schema import MIGRATIONS


def spec(name: str, **kw: object) -> TaskSpec:
    return TaskSpec(name=name, shell="true", **kw)  # type: ignore[arg-type]


def finish(st: SqliteStore, tid: str, at: float, state: TaskState = TaskState.SUCCEEDED) -> None:
    st.add_attempt(tid, 1, "r1", (), at - 1)
    st.finish_attempt(tid, 1, state, finished_at=at)
    st.set_task(tid, state)


def test_selects_finished_before_by_tag_and_keeps_what_active_tasks_need(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    a, b, c, d, e = st.add_tasks([spec("a", tags=("t",)), spec("b"), spec("c"), spec("d"), spec("e")], [[]] * 5, 1.0)
    finish(st, a, 10.0)
    finish(st, b, 10.0, TaskState.FAILED)
    finish(st, c, 50.0)  # too recent
    st.set_task(d, TaskState.CANCELLED)  # cancelled before it ran: its submission (1.0) counts
    (f,) = st.add_tasks([spec("f")], [[b]], 60.0)  # pending, needs b
    st.add_deps([(f, b)])
    found, kept = st.prunable(20.0)
    assert [(tid, state) for tid, _n, state in found] == [(a, TaskState.SUCCEEDED), (d, TaskState.CANCELLED)]
    assert kept == 1
    assert st.prunable(20.0, tag="t") == ([(a, "a", TaskState.SUCCEEDED)], 0)
    st.delete_tasks([a, d])
    assert st.get_task(a) is None and st.get_task(d) is None and st.output(a, 1) is None
    assert st.get_task(b) is not None and st.task_states([e])[e] is TaskState.PENDING
    st.close()


def test_an_id_deleted_is_never_given_again(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    ids = st.add_tasks([spec("a"), spec("b")], [[], []], 1.0)
    for tid in ids:
        finish(st, tid, 2.0)
    st.delete_tasks(ids)
    st.close()
    st = SqliteStore(tmp_path / "c.db")  # across a restart too
    assert st.add_tasks([spec("c")], [[]], 3.0) == ["3"]
    st.close()


def test_a_new_store_vacuums_incrementally_and_shrinks_after_a_delete(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    assert st._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    ids = st.add_tasks([spec(f"t{i}") for i in range(50)], [[]] * 50, 1.0)
    for tid in ids:
        finish(st, tid, 2.0)
    st.write_output([(tid, 1, 0, b"x" * 100_000) for tid in ids])
    st.checkpoint()
    pages = st._db.execute("PRAGMA page_count").fetchone()[0]
    st.delete_tasks(ids)
    steps = 0
    while st.vacuum_step(64):
        steps += 1
    st.checkpoint()
    assert steps > 1  # in small steps
    assert st._db.execute("PRAGMA page_count").fetchone()[0] < pages / 10
    assert st.file_bytes() < pages * 4096 / 10
    st.close()


def older_file(path: Path) -> None:
    """A store made before migration 4: no incremental vacuum."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for n in range(3):
        db.executescript("BEGIN;" + MIGRATIONS[n] + f"; PRAGMA user_version = {n + 1}; COMMIT;")
    db.close()


def test_an_older_small_store_is_switched_at_start(tmp_path: Path) -> None:
    older_file(tmp_path / "c.db")
    st = SqliteStore(tmp_path / "c.db")
    assert st._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    st.close()


def test_an_older_large_store_is_left_as_it_is_and_the_log_says_how(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    older_file(tmp_path / "c.db")
    monkeypatch.setattr(sf, "VACUUM_AT_START_MAX_BYTES", 0)
    with caplog.at_level(logging.WARNING, "dtask_controller"):
        st = SqliteStore(tmp_path / "c.db")
    assert st._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0
    assert "PRAGMA auto_vacuum=INCREMENTAL; VACUUM;" in caplog.text
    assert st.vacuum_step(64) == 0  # nothing to do step by step: a prune does not loop on it
    st.close()
