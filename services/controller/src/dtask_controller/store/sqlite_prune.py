"""The SQLite store's pruning: which finished tasks a prune deletes, their deletion, and giving the freed pages
back to the file system (incremental vacuum) in small steps."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from dtask_common.models import FINISHED_STATES, TaskState

from dtask_controller.store.sqlite_file import SqliteFile

_FINISHED = tuple(sorted(s.value for s in FINISHED_STATES))
_ACTIVE = (TaskState.PENDING.value, TaskState.RUNNING.value)
ID_FLOOR = "task_id_floor"  # meta: the largest id ever given, so that a pruned id is never given again


class SqlitePrune(SqliteFile):
    """Finding and deleting finished tasks; incremental vacuum."""

    def prunable(self, finished_before: float, tag: str = "") -> tuple[list[tuple[str, str, TaskState]], int]:
        """Finished tasks that finished before the time (of that tag): (id, name, state) in id order, and how many
        more match but are kept because a pending or running task depends on them."""
        tag_sql = " AND t.id IN (SELECT task_id FROM task_tags WHERE tag = ?)" if tag else ""
        rows = self._db.execute(
            f"""SELECT t.id, t.name, t.state,
                   EXISTS (SELECT 1 FROM task_deps d JOIN tasks a ON a.id = d.task_id
                           WHERE d.dep_id = t.id AND a.state IN (?, ?))
               FROM tasks t
               WHERE t.state IN ({", ".join("?" * len(_FINISHED))}){tag_sql}
                 AND COALESCE((SELECT MAX(COALESCE(a.finished_at, a.dispatched_at)) FROM attempts a
                               WHERE a.task_id = t.id), t.submitted_at) < ?
               ORDER BY t.id""",
            (*_ACTIVE, *_FINISHED, *((tag,) if tag else ()), finished_before),
        ).fetchall()
        out = [(str(r[0]), r[1], TaskState(r[2])) for r in rows if not r[3]]
        return out, len(rows) - len(out)

    def delete_tasks(self, ids: Sequence[str]) -> None:
        """Delete tasks with their attempts, output tails, tags and dependency links (one commit)."""
        if not ids:
            return
        with self.transaction():
            db = self._db
            db.execute("CREATE TEMP TABLE IF NOT EXISTS prune_ids (id INTEGER PRIMARY KEY)")
            db.execute("DELETE FROM temp.prune_ids")
            db.executemany("INSERT OR IGNORE INTO temp.prune_ids (id) VALUES (?)", [(int(i),) for i in ids])
            (top,) = db.execute("SELECT MAX(id) FROM tasks").fetchone()
            floor = max(int(top or 0), self.id_floor())
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (ID_FLOOR, str(floor)))
            for table, col in (
                ("attempts", "task_id"),
                ("output", "task_id"),
                ("task_tags", "task_id"),
                ("task_deps", "task_id"),
                ("task_deps", "dep_id"),
                ("tasks", "id"),
            ):
                db.execute(f"DELETE FROM {table} WHERE {col} IN (SELECT id FROM temp.prune_ids)")
            db.execute("DELETE FROM temp.prune_ids")

    def id_floor(self) -> int:
        """The largest task id given before the last prune (new ids are above it)."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (ID_FLOOR,)).fetchone()
        return int(row[0]) if row else 0

    def vacuum_step(self, pages: int) -> int:
        """Give up to `pages` free pages back to the file system; returns how many free pages are left (0 when the
        file does not vacuum incrementally: nothing to do step by step)."""
        if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            return 0
        self._db.execute(f"PRAGMA incremental_vacuum({int(pages)})").fetchall()
        return int(self._db.execute("PRAGMA freelist_count").fetchone()[0])

    def checkpoint(self) -> None:
        """Write the WAL back into the file and truncate it (the file shrinks then); skipped while readers hold it."""
        with contextlib.suppress(Exception):
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()

    def file_bytes(self) -> int:
        """The store's size on disk: the file and its WAL."""
        total = 0
        for p in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(OSError):
                total += p.stat().st_size
        return total
