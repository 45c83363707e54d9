"""Pruning finished tasks from a live controller: a dry run deletes nothing, a task that a pending one depends on
is kept, an open Watch gets a fresh snapshot without the deleted tasks, the store file shrinks (page count and
size, read from the live file), deleted ids are never given again; and `dtask prune` asks before deleting."""

from __future__ import annotations

import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_client.errors import DtaskError, NotFound, PermissionDenied
from dtask_common import events as ev
from dtask_common.models import TaskSpec, TaskState

from tests.e2e.cli.conftest import run_dtask
from tests.integration.client.cluster import Cluster, cluster

BIG = "head -c 300000 /dev/zero | tr '\\0' x"  # 300 kB of output: its tail is kept in the store


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("prune-cluster"), certs_template, runners=("r1",), slots=2) as c:
        yield c


def store_pages(home: Path) -> tuple[int, int]:
    """(page count, bytes of the file and its WAL) of the live store, read through a read-only connection."""
    db_path = home / "controller.db"
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        mode = db.execute("PRAGMA auto_vacuum").fetchone()[0]
    finally:
        db.close()
    assert mode == 2  # INCREMENTAL
    wal = db_path.with_name(db_path.name + "-wal")
    return pages, db_path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_prune_keeps_dependencies_tells_watchers_and_shrinks_the_store(live: Cluster) -> None:
    with live.client() as c:
        old = c.submit([TaskSpec(name=f"old{i}", shell=BIG, tags=("sweep",)) for i in range(40)])
        assert {t.state for t in c.wait(old, timeout=60)} == {TaskState.SUCCEEDED}
        cutoff = time.time()
        newer = c.add_task(command="true", name="newer", tags=("sweep",))
        c.wait([newer], timeout=30)
        c.pause()
        needed = old[0]
        waiting = c.add_task(command="true", name="waits", depends_on=[needed])
        assert c.task(waiting).state is TaskState.PENDING

        events: queue.Queue[ev.WatchEvent] = queue.Queue()
        watching = live.client()

        def follow() -> None:
            try:
                for e in watching.watch(include_usage=False):
                    events.put(e)
            except DtaskError:
                pass  # ended when the test closes its client

        threading.Thread(target=follow, daemon=True).start()
        first = events.get(timeout=10)
        assert isinstance(first.body, ev.Snapshot)
        pages_before, bytes_before = store_pages(live.home)

        plan = c.prune(cutoff, dry_run=True, list_limit=5)
        assert plan.dry_run and plan.count == 39 and plan.kept_as_dependencies == 1
        assert [t.id for t in plan.tasks] == old[1:6] and plan.tasks[0].name == "old1"
        assert plan.tasks[0].state is TaskState.SUCCEEDED
        assert c.task(old[1]).state is TaskState.SUCCEEDED  # nothing deleted
        assert store_pages(live.home)[0] == pages_before

        done = c.prune(cutoff, list_limit=0)
        assert done.count == 39 and done.kept_as_dependencies == 1 and not done.dry_run and done.tasks == ()
        assert done.freed_bytes > 5_000_000
        for tid in (old[1], old[20], old[-1]):
            with pytest.raises(NotFound):
                c.task(tid)
        assert c.task(needed).state is TaskState.SUCCEEDED
        assert c.task(newer).state is TaskState.SUCCEEDED
        pages_after, bytes_after = store_pages(live.home)
        assert pages_after < pages_before / 2 and bytes_after < bytes_before / 2
        assert c.queue().succeeded == 2

        # The watcher is sent a fresh snapshot (resync) without the deleted tasks.
        seen: set[str] = set()
        resynced = False
        deadline = time.monotonic() + 20
        while True:
            e = events.get(timeout=max(0.1, deadline - time.monotonic()))
            resynced = resynced or e.resync
            if resynced:
                if isinstance(e.body, ev.Snapshot):
                    seen |= {t.id for t in e.body.tasks}
                    if e.body.last:
                        break
        assert seen == {needed, newer, waiting}
        watching.close()

        again = c.prune(cutoff)
        assert again.count == 0 and again.kept_as_dependencies == 1
        fresh = c.add_task(command="true", name="fresh")
        assert int(fresh) > int(old[-1])  # a deleted id is never given again
        c.resume()
        assert {t.state for t in c.wait([waiting, fresh], timeout=30)} == {TaskState.SUCCEEDED}

        with live.client("viewer") as viewer, pytest.raises(PermissionDenied):
            viewer.prune(time.time())


def test_dtask_prune_lists_asks_and_deletes(live: Cluster) -> None:
    with live.client() as c:
        ids = c.submit([TaskSpec(name=f"cli{i}", shell="true", tags=("cli",)) for i in range(3)])
        c.wait(ids, timeout=30)
    run = lambda *a, **kw: run_dtask(live.home, live.address, *a, **kw)  # noqa: E731
    dry = run("prune", "--finished-before", "0s", "--tag", "cli", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "3 finished tasks finished before" in dry.stdout and "tagged cli will be deleted" in dry.stdout
    assert all(f"  {i}  succeeded  cli" in dry.stdout for i in ids)
    assert "dry run: nothing deleted" in dry.stdout
    asked = run("prune", "--finished-before", "0s", "--tag", "cli", input="")
    assert asked.returncode == 2 and "add --yes" in asked.stderr
    with live.client() as c:
        assert c.task(ids[0]).state is TaskState.SUCCEEDED
    done = run("prune", "--finished-before", "0s", "--tag", "cli", "--yes")
    assert done.returncode == 0, done.stderr
    assert "deleted 3 tasks; the store shrank by" in done.stdout
    with live.client() as c:
        with pytest.raises(NotFound):
            c.task(ids[0])
    bad = run("prune", "--finished-before", "30 days")
    assert bad.returncode == 2 and "'30 days' is not an age" in bad.stderr
    none = run("prune", "--finished-before", "0s", "--tag", "cli", "--yes")
    assert none.returncode == 0 and "no finished tasks finished before" in none.stdout
