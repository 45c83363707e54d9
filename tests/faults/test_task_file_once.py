"""`--tasks FILE`: the tasks and the "queued once" mark are stored together, so a failure between the
two neither loses nor duplicates them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from dtask_controller.store import SqliteStore

from tests.faults.helpers import exit_output
from tests.support import free_port_range, start_dtask

TASKS = (
    '[[task]]\nname = "prep"\ncommand = "true"\n\n'
    '[[task]]\nname = "train"\ncommand = "echo {lr}"\ndepends_on = ["prep"]\n[task.matrix]\nlr = [0.1, 0.01]\n'
)


def stored(store: Path) -> tuple[int, int]:
    """(tasks, task-file marks) in the store file."""
    with sqlite3.connect(store) as db:
        tasks = db.execute("SELECT COUNT(*) FROM tasks").fetchone()[0]
        marks = db.execute("SELECT COUNT(*) FROM meta WHERE key LIKE 'tasks_file:%'").fetchone()[0]
    db.close()
    return tasks, marks


def test_a_failed_mark_write_stores_no_task_and_a_restart_queues_them_once(home: Path, tmp_path: Path) -> None:
    store, tasks = tmp_path / "controller.db", tmp_path / "tasks.toml"
    tasks.write_text(TASKS)
    SqliteStore(store, lock=False).close()
    with sqlite3.connect(store) as db:  # the mark's write fails inside the store itself
        db.execute(
            "CREATE TRIGGER no_mark BEFORE INSERT ON meta WHEN NEW.key LIKE 'tasks_file:%' "
            "BEGIN SELECT RAISE(ABORT, 'the mark cannot be written'); END"
        )
    db.close()
    lo, hi = free_port_range()
    args = [
        "controller",
        "--host",
        "127.0.0.1",
        "--port-range",
        f"{lo}-{hi}",
        "--store",
        str(store),
        "--tasks",
        str(tasks),
    ]
    rc, out = exit_output(start_dtask(args, home, listen=False))
    assert rc != 0, out
    assert "the mark cannot be written" in out, out
    assert stored(store) == (0, 0), out

    with sqlite3.connect(store) as db:
        db.execute("DROP TRIGGER no_mark")
    db.close()
    for round_ in range(2):
        proc = start_dtask(args, home)
        try:
            proc.wait_for("already queued in this store" if round_ else r"task file .*: queued 3 tasks")
        finally:
            assert proc.stop() == 0, "".join(proc.lines)
        assert stored(store) == (3, 1), "".join(proc.lines)
