"""The controller's SQLite schema as numbered migrations, applied in order on open."""

from __future__ import annotations

import sqlite3

from dtask_controller.store.errors import SchemaTooNew

MIGRATIONS: tuple[str, ...] = (
    # 1: tasks, attempts, output tails, executors, settings
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        submitted_at REAL NOT NULL,
        error TEXT NOT NULL DEFAULT '',
        result TEXT,
        progress TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        retries_used INTEGER NOT NULL DEFAULT 0,
        executor TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX tasks_state ON tasks (state, id);
    CREATE INDEX tasks_executor ON tasks (executor, id);
    CREATE TABLE task_tags (tag TEXT NOT NULL, task_id INTEGER NOT NULL, PRIMARY KEY (tag, task_id)) WITHOUT ROWID;
    CREATE TABLE task_deps (task_id INTEGER NOT NULL, dep_id INTEGER NOT NULL, PRIMARY KEY (task_id, dep_id))
        WITHOUT ROWID;
    CREATE TABLE attempts (
        task_id INTEGER NOT NULL,
        number INTEGER NOT NULL,
        executor TEXT NOT NULL,
        gpu_ids TEXT NOT NULL DEFAULT '[]',
        dispatched_at REAL,
        finished_at REAL,
        state TEXT NOT NULL,
        exit_code INTEGER,
        signal INTEGER,
        error TEXT NOT NULL DEFAULT '',
        result TEXT,
        peak_rss_bytes INTEGER NOT NULL DEFAULT 0,
        cpu_time_s REAL NOT NULL DEFAULT 0,
        duration_s REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (task_id, number)
    );
    CREATE INDEX attempts_running ON attempts (state, executor);
    CREATE TABLE output (
        task_id INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        start INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (task_id, attempt)
    );
    CREATE TABLE executors (
        name TEXT PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        address TEXT NOT NULL DEFAULT '',
        version TEXT NOT NULL DEFAULT '',
        capacity TEXT NOT NULL DEFAULT '{}',
        labels TEXT NOT NULL DEFAULT '{}'
    );
    """,
    # 2: an operator's drain survives restarts
    """
    ALTER TABLE executors ADD COLUMN drained INTEGER NOT NULL DEFAULT 0;
    """,
    # 3: a task queued again because its latest attempt was lost can take that attempt back after a restart:
    # set (1 when the loss used a retry, else 0) only while it waits so; any other change of state clears it
    """
    ALTER TABLE tasks ADD COLUMN lost_used_retry INTEGER;
    """,
    # 4: an attempt keeps the live metrics it reported (a JSON list of [name, at, value], bounded per metric)
    """
    ALTER TABLE attempts ADD COLUMN metrics TEXT;
    """,
    # 5: task parameters by name and value, for the params filter of ListTasks (the spec holds them too); a
    # number is stored as a number (3 matches 3.0), a string as 's:' + text, a boolean as 'b:true' or 'b:false'
    """
    CREATE TABLE task_params (key TEXT NOT NULL, value NOT NULL, task_id INTEGER NOT NULL,
        PRIMARY KEY (key, value, task_id)) WITHOUT ROWID;
    """,
    # 6: pruning. The dependants of a task are found by its id (a prune keeps a task that an active one needs);
    # the file gives the pages a prune frees back (auto_vacuum INCREMENTAL: set on a new file before its first
    # table; an existing file takes it with a one-time VACUUM after this migration, see sqlite_file.py)
    """
    CREATE INDEX task_deps_dep ON task_deps (dep_id, task_id);
    """,
)

VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> int:
    """Bring the database to VERSION; returns the version it had before."""
    current = db.execute("PRAGMA user_version").fetchone()[0]
    if current > VERSION:
        raise SchemaTooNew(
            f"the store has schema version {current} but this controller knows up to {VERSION}; "
            "upgrade dtask or point --store at another file"
        )
    for number in range(current, VERSION):
        db.executescript("BEGIN;" + MIGRATIONS[number] + f"; PRAGMA user_version = {number + 1}; COMMIT;")
    return int(current)
