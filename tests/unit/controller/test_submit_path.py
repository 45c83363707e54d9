"""The submit path at scale: a batch is written in a few statements, ids follow the largest, nothing is read back."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import fields
from pathlib import Path

import pytest
from dtask_common.config import Config
from dtask_common.models import Resources, TaskSpec, TaskState
from dtask_controller import commands, queries, recovery
from dtask_controller.core import ControllerCore
from dtask_controller.settings import Settings
from dtask_controller.store import SqliteStore
from dtask_controller.store.rows import spec_from_json, spec_to_json


class Counting:
    """The store's connection, counting the statements it is handed (an executemany counts once)."""

    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.calls: list[str] = []

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        self.calls.append(sql)
        return self.db.execute(sql, *args)

    def executemany(self, sql: str, rows: object) -> sqlite3.Cursor:
        self.calls.append(sql)
        return self.db.executemany(sql, rows)  # type: ignore[arg-type]

    def cursor(self) -> Counting:
        return self

    @property
    def lastrowid(self) -> int | None:
        return self.db.execute("SELECT last_insert_rowid()").fetchone()[0]  # type: ignore[no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_a_batch_is_inserted_in_a_few_statements_whatever_its_size(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    db = st._db
    st._db = counting = Counting(db)  # type: ignore[assignment]
    ids = st.add_tasks([TaskSpec(name=f"t{i}", shell="true", tags=("a", "b")) for i in range(1000)], [()] * 1000, 1.0)
    st._db = db
    assert ids == [str(i) for i in range(1, 1001)]
    assert len([s for s in counting.calls if s.lstrip().upper().startswith("INSERT")]) <= 2  # tasks, tags
    assert st.task_states(["1", "1000"]) == {"1": TaskState.PENDING, "1000": TaskState.PENDING}
    assert st.get_task("1000").spec.tags == ("a", "b")  # type: ignore[union-attr]
    st.close()


def test_ids_follow_the_largest_stored_id_and_dependencies_are_kept(tmp_path: Path) -> None:
    st = SqliteStore(tmp_path / "c.db")
    assert st.add_tasks([TaskSpec(name="a", shell="true")] * 3, [(), (), ()], 1.0) == ["1", "2", "3"]
    with st.transaction():
        st._db.execute("DELETE FROM tasks WHERE id = 2")
    assert st.add_tasks([TaskSpec(name="b", shell="true")] * 2, [["1"], ["1", "3"]], 2.0) == ["4", "5"]
    with pytest.raises(ValueError):
        st.add_tasks([TaskSpec(name="c", shell="true")], [], 3.0)
    assert {x.id: x.deps for x in st.active_tasks()} == {"1": (), "3": (), "4": ("1",), "5": ("1", "3")}
    st.close()


def test_the_stored_spec_holds_every_field_that_is_set() -> None:
    full = TaskSpec(
        name="n",
        argv=("a", "b"),
        cwd="/w",
        env={"A": "1"},
        resources=Resources(1.5, 10, 1),
        labels={"k": "v"},
        priority=2,
        max_retries=1,
        timeout_s=3.0,
        depends_on=("1",),
        tags=("t",),
        progress="regex",
        progress_pattern=r"(?P<step>\d+)",
        result_marker="R",
        lost_after_s=7.0,
        params={"model": "cnn", "lr": 1.0, "n": 3, "on": True},
        venv="/v",  # (both only to store them: a valid spec names one)
        conda="c",
    )
    text = spec_to_json(full)
    assert set(json.loads(text)) == {f.name for f in fields(TaskSpec)} - {"shell"}  # argv instead
    assert spec_from_json(text) == full
    assert [type(v) for v in spec_from_json(text).params.values()] == [str, float, int, bool]  # types kept
    plain = TaskSpec(name="p", shell="true")
    assert json.loads(spec_to_json(plain)) == {
        "name": "p",
        "shell": "true",
        "progress": "auto",
    }
    assert spec_from_json(spec_to_json(plain)) == plain
    gpu = TaskSpec(name="g", shell="true", resources=Resources(gpus=1))
    assert json.loads(spec_to_json(gpu))["resources"] == {"cpus": 0.0, "memory_mb": 0, "gpus": 1}
    assert spec_from_json(spec_to_json(gpu)) == gpu
    stored = '{"name":"p","progress":"auto","shell":"true","resources":{"cpus":0.0,"memory_mb":0,"gpus":0}}'
    assert spec_from_json(stored) == plain  # as stored before resources asked for none were left out
    old = '{"name":"p","argv":[],"shell":"true","cwd":"","env":{},"labels":{},"priority":0,"max_retries":0}'
    assert spec_from_json(old) == plain  # a spec stored with every field reads the same


def test_a_submission_without_dependencies_reads_no_task_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def go() -> None:
        e = ControllerCore(SqliteStore(tmp_path / "c.db"), Settings.from_config(Config()))
        recovery.restore(e)
        reads: list[object] = []
        states = e.store.task_states
        monkeypatch.setattr(e.store, "task_states", lambda ids: reads.append(ids) or states(ids))
        ids = commands.submit(e, [TaskSpec(name=f"t{i}", shell="true") for i in range(50)])
        assert ids == [str(i) for i in range(1, 51)] and reads == []
        assert all(e.scheduler.state(t) is TaskState.PENDING for t in ids)
        (dep,) = commands.submit(e, [TaskSpec(name="after", shell="true", depends_on=("1",))])
        assert e.scheduler.state(dep) is TaskState.PENDING and reads  # a dependency is looked up
        e.store.close()

    asyncio.run(go())


def test_list_totals_by_state_come_from_the_queue_counts_and_match_the_store(tmp_path: Path) -> None:
    async def go() -> None:
        e = ControllerCore(SqliteStore(tmp_path / "c.db"), Settings.from_config(Config()))
        recovery.restore(e)
        ids = commands.submit(e, [TaskSpec(name=f"t{i}", shell="true", tags=("x",)) for i in range(30)])
        commands.cancel(e, ids[0])
        commands.cancel(e, ids[1])
        db = e.store._db  # type: ignore[attr-defined]
        e.store._db = counting = Counting(db)  # type: ignore[attr-defined]
        cases: list[tuple[TaskState, ...]] = [(), (TaskState.PENDING,), (TaskState.CANCELLED, TaskState.PENDING)]
        got = [queries.list_tasks(e, states=s, tag="", executor="", name_contains="", after=0, limit=5) for s in cases]
        assert not [c for c in counting.calls if "COUNT(" in c.upper()]
        e.store._db = db  # type: ignore[attr-defined]
        assert [total for _page, total in got] == [30, 28, 30]
        for s, (page, total) in zip(cases, got, strict=True):
            stored_page, stored_total = e.store.list_tasks(states=s, limit=5)
            assert total == stored_total and [t.id for t in page] == [t.id for t in stored_page]
        _page, tagged = queries.list_tasks(
            e, states=(TaskState.PENDING,), tag="x", executor="", name_contains="", after=0, limit=5
        )
        assert tagged == 28  # other filters are counted in the store
        e.store.close()

    asyncio.run(go())
