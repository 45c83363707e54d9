"""The SQLite store: round trips, filters and pages, the process lock, and recovery after a crash."""

from __future__ import annotations

import inspect
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dtask_common.models import Capacity, Progress, Resources, TaskSpec, TaskState
from dtask_controller.store import SnapshotClosed, SqliteStore, Store, StoreLocked
from dtask_controller.store.schema import VERSION


def spec(name: str, **kw: object) -> TaskSpec:
    return TaskSpec(name=name, shell=f"echo {name}", **kw)  # type: ignore[arg-type]


def test_round_trip_of_tasks_and_attempts(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    full = TaskSpec(
        name="train",
        argv=("python", "t.py"),
        cwd="/w",
        env={"A": "1"},
        resources=Resources(1.5, 100, 1),
        labels={"k": "v"},
        priority=3,
        max_retries=2,
        timeout_s=9.5,
        depends_on=("1",),
        tags=("x", "y"),
        progress="regex",
        progress_pattern=r"(?P<step>\d+)",
        result_marker="RESULT",
    )
    ids = st.add_tasks([spec("a"), full], [[], ["1"]], now=100.0)
    assert ids == ["1", "2"]
    st.add_attempt("2", 1, "r1", [0], now=101.0)
    st.finish_attempt("2", 1, TaskState.FAILED, finished_at=103.0, exit_code=1, error="boom", result={"m": 1})
    st.set_task("2", TaskState.FAILED, error="boom", result={"m": 1})
    st.set_progress([("2", Progress(label="e", step=3, total=10))])
    t = st.get_task("2")
    assert t is not None and t.spec == full and t.state is TaskState.FAILED and t.error == "boom"
    assert t.result == {"m": 1} and t.progress == Progress(label="e", step=3, total=10)
    (a,) = t.attempts
    assert (a.number, a.executor, a.gpu_ids, a.exit_code, a.state, a.duration_s) == (
        1,
        "r1",
        (0,),
        1,
        TaskState.FAILED,
        2.0,
    )
    assert st.get_task("99") is None and st.get_task("x") is None
    active = list(st.active_tasks())
    assert [(x.id, x.deps) for x in active] == [("1", ())]
    st.close()


def test_filters_and_pages(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    st.add_tasks([spec(f"t{i}", tags=("even",) if i % 2 == 0 else ()) for i in range(250)], [[]] * 250, now=1.0)
    st.add_attempt("5", 1, "r9", [], now=2.0)
    page, total = st.list_tasks(limit=100)
    assert total == 250 and [t.id for t in page] == [str(i) for i in range(1, 101)]
    page, _ = st.list_tasks(after=int(page[-1].id), limit=100)
    assert page[0].id == "101"
    page, total = st.list_tasks(tag="even", limit=1000)
    assert total == 125 and all("even" in t.spec.tags for t in page)
    page, total = st.list_tasks(states=[TaskState.RUNNING])
    assert total == 1 and page[0].id == "5" and page[0].attempts[0].executor == "r9"
    page, total = st.list_tasks(executor="r9")
    assert [t.id for t in page] == ["5"]
    page, total = st.list_tasks(name_contains="t24")
    assert sorted(t.spec.name for t in page) == ["t24", *(f"t24{i}" for i in range(10))]
    assert st.counts()[TaskState.PENDING] == 249
    st.close()


def test_second_store_on_same_file_is_refused(tmp_path: Path) -> None:
    first = SqliteStore(tmp_path / "c.db")
    with pytest.raises(StoreLocked, match="another controller .* is using the store"):
        SqliteStore(tmp_path / "c.db")
    first.close()
    SqliteStore(tmp_path / "c.db").close()


def test_schema_version_and_executors(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    assert st._db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    st.upsert_executor("r1", 5.0, "h:1", "0.1.0", Capacity(slots=2, gpus=(0, 1)), {"a": "b"})
    st.upsert_executor("r1", 6.0, "h:2", "0.1.0", Capacity(slots=2, gpus=(0, 1)), {"a": "b"})
    assert st.executors() == [("r1", 6.0, Capacity(slots=2, gpus=(0, 1)), {"a": "b"}, "h:2", "0.1.0", False)]
    st.set_executor_drained("r1", True)
    assert st.executors()[0][-1] is True
    st.close()


CRASHER = textwrap.dedent("""
    import os, sys
    from dtask_common.models import TaskSpec, TaskState
    from dtask_controller.store import SqliteStore
    st = SqliteStore(sys.argv[1])
    ids = st.add_tasks([TaskSpec(name=f"t{i}", shell="true") for i in range(500)], [[]] * 500, now=1.0)
    st.add_attempt("7", 1, "r1", [1], now=2.0)
    st.finish_attempt("7", 1, TaskState.SUCCEEDED, finished_at=3.0, exit_code=0, result={"acc": 0.9})
    st.set_task("7", TaskState.SUCCEEDED, result={"acc": 0.9})
    st.add_attempt("8", 1, "r1", [], now=2.0)
    st.write_output([("7", 1, 10, b"tail\\xff")])
    print("committed", flush=True)
    os.kill(os.getpid(), 9)
""")


def test_recovery_after_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    out = subprocess.run([sys.executable, "-c", CRASHER, str(db)], capture_output=True, text=True, timeout=60)
    assert out.returncode == -9 and "committed" in out.stdout, out.stderr
    st = SqliteStore(db)  # the lock died with the process
    counts = st.counts()
    assert (counts[TaskState.PENDING], counts[TaskState.RUNNING], counts[TaskState.SUCCEEDED]) == (498, 1, 1)
    t = st.get_task("7")
    assert t is not None and t.result == {"acc": 0.9} and t.attempts[0].gpu_ids == (1,)
    assert st.output("7", 1) == (10, b"tail\xff")
    running = [a for a in st.active_tasks() if a.state is TaskState.RUNNING]
    assert [(a.id, a.attempts, a.executor) for a in running] == [("8", 1, "r1")]
    assert [t.id for t in st.list_tasks(after=499)[0]] == ["500"]  # the last id committed
    st.close()


def test_migrates_an_older_store(tmp_path: Path) -> None:
    from dtask_controller.store.schema import MIGRATIONS

    db = sqlite3.connect(tmp_path / "c.db", isolation_level=None)
    db.executescript("BEGIN;" + MIGRATIONS[0] + "; PRAGMA user_version = 1; COMMIT;")
    db.execute("INSERT INTO executors (name, first_seen, last_seen) VALUES ('old', 1, 2)")
    db.close()
    st = SqliteStore(tmp_path / "c.db")
    assert st._db.execute("PRAGMA user_version").fetchone()[0] == VERSION
    assert st.executors()[0][0] == "old" and st.executors()[0][-1] is False
    st.close()


def test_a_task_pending_after_a_loss_keeps_the_loss_across_a_reopen(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    st.add_tasks([spec("a"), spec("b"), spec("c")], [[], [], []], now=1.0)
    for tid, used in (("1", True), ("2", False), ("3", True)):
        st.add_attempt(tid, 1, "r1", [1], now=2.0)
        st.finish_attempt(tid, 1, TaskState.LOST, finished_at=3.0, error="executor r1 is gone")
        st.set_task(tid, TaskState.PENDING, error="executor r1 is gone", retries_used=int(used), lost_used_retry=used)
    st.set_task("3", TaskState.PENDING, error="", result=None, retries_used=0)  # an operator's retry: no loss kept
    st.close()
    st = SqliteStore(tmp_path / "c.db")
    active = {t.id: t for t in st.active_tasks()}
    assert [(active[t].lost, active[t].gpu_ids) for t in ("1", "2", "3")] == [
        (("r1", True), (1,)),
        (("r1", False), (1,)),
        (None, (1,)),
    ]
    st.reopen_attempt("1", 1, "r1", 0)
    assert next(t for t in st.active_tasks() if t.id == "1").lost is None
    st.close()


def _busy_readers(st: SqliteStore) -> int:
    """1 while a read transaction keeps the WAL from being checkpointed whole, else 0."""
    return int(st._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0])


def test_snapshot_pages_stay_consistent_while_a_writer_commits(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    st.add_tasks([spec(f"t{i}") for i in range(5)], [[]] * 5, now=1.0)
    pages = st.read_snapshot(2)
    first = next(pages)
    st.add_tasks([spec("late")], [[]], now=2.0)  # commits between pages
    st.set_task("4", TaskState.FAILED, error="boom")
    st.add_attempt("5", 1, "r1", [], now=3.0)
    assert _busy_readers(st) == 1  # the snapshot still reads its own transaction
    rest = list(pages)
    assert [[t.id for t in p] for p in [first, *rest]] == [["1", "2"], ["3", "4"], ["5"]]
    assert all(t.state is TaskState.PENDING and not t.attempts for p in rest for t in p)
    assert _busy_readers(st) == 0  # exhausted: its transaction ended
    again = [t for p in st.read_snapshot(2) for t in p]
    assert [t.id for t in again] == ["1", "2", "3", "4", "5", "6"] and again[3].state is TaskState.FAILED
    st.close()


def test_snapshot_pages_of_an_empty_store_and_of_a_whole_last_page(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    assert list(st.read_snapshot(2)) == []
    st.add_tasks([spec(f"t{i}") for i in range(4)], [[]] * 4, now=1.0)
    assert [[t.id for t in p] for p in st.read_snapshot(2)] == [["1", "2"], ["3", "4"]]  # no empty page after
    st.close()


def test_a_snapshot_closed_early_ends_its_transaction_and_refuses_more_pages(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    st.add_tasks([spec(f"t{i}") for i in range(5)], [[]] * 5, now=1.0)
    pages = st.read_snapshot(2)
    next(pages)
    pages.close()
    st.add_tasks([spec("late")], [[]], now=2.0)
    assert _busy_readers(st) == 0
    with pytest.raises(SnapshotClosed) as caught:
        next(pages)
    assert isinstance(caught.value, sqlite3.ProgrammingError)  # what a reader closed under SQLite raises
    done = st.read_snapshot(10)
    assert len(next(done)) == 6
    done.close()  # closed once exhausted: nothing more to refuse
    assert next(done, None) is None
    st.close()


def test_the_sqlite_store_has_every_method_of_the_store_protocol() -> None:
    members = [n for n in vars(Store) if not n.startswith("_")]
    assert "read_snapshot" in members and "path" in members
    st = inspect.getmembers(SqliteStore)
    for name in members:
        if name == "path":
            continue  # an attribute of each store
        assert name in dict(st), f"SqliteStore lacks {name}"
        want = list(inspect.signature(getattr(Store, name)).parameters)
        assert list(inspect.signature(getattr(SqliteStore, name)).parameters) == want, name
    typed: type[Store] = SqliteStore  # and mypy checks open_store, which returns a SqliteStore as a Store
    assert typed is SqliteStore
