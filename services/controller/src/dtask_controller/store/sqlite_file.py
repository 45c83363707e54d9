"""The SQLite store's file: 0600 and locked to one controller, its connections (WAL) and its transactions."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from dtask_common.pidlock import LockHeld, PidLock
from dtask_common.private import FILE_MODE, open_private, private_dir

from dtask_controller.store.errors import StoreFull, StoreLocked, StoreUnusable
from dtask_controller.store.integrity import damaged_message
from dtask_controller.store.schema import migrate

log = logging.getLogger(__name__)
VACUUM_AT_START_MAX_BYTES = (
    256 * 1024 * 1024
)  # an older file up to this size is switched to incremental vacuum at start


def _unusable(path: Path, exc: OSError | sqlite3.Error) -> StoreUnusable:
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_CORRUPT":
        return StoreUnusable(damaged_message(path, str(exc)))
    if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
        return StoreUnusable(
            f"the store {path} is not a dtask store or is damaged (SQLite: {exc}); move it aside "
            "to start with an empty store, or point --store at the right file"
        )
    if path.parent.exists() and not path.parent.is_dir():
        reason = f"{path.parent} is a file, not a directory"
    else:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return StoreUnusable(
        f"cannot use the store {path}: {reason}; make its directory writable or point --store "
        "at a file in a writable directory"
    )


def _make_private(path: Path) -> None:
    """The store file 0600 before SQLite opens it (its WAL and SHM files take the store's mode)."""
    os.close(open_private(path, os.O_RDWR))
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(path.with_name(path.name + suffix), FILE_MODE)  # left by an earlier version


def _lock(path: Path) -> PidLock:
    """The process lock beside the store file: one controller per store."""
    try:
        return PidLock(path.with_name(path.name + ".lock"))
    except LockHeld as exc:
        raise StoreLocked(
            f"another controller (pid {exc.holder or 'unknown'}) is using the store {path}; stop it first, "
            "or give this one its own store with --store FILE"
        ) from None


def _vacuum_incrementally(db: sqlite3.Connection, path: Path) -> None:
    """A file made before auto_vacuum INCREMENTAL takes it with one VACUUM, done now when the file is small enough
    to be quick; a larger one is left as it is (it works, it only keeps freed pages) and the log says how."""
    if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2:
        return
    size = path.stat().st_size
    if size > VACUUM_AT_START_MAX_BYTES:
        log.warning(
            "the store %s (%d MiB) keeps the pages pruning frees; to give them back to the disk, stop the "
            "controller once and run: sqlite3 %s 'PRAGMA auto_vacuum=INCREMENTAL; VACUUM;'",
            path,
            size >> 20,
            path,
        )
        return
    try:
        db.execute("VACUUM")
    except sqlite3.OperationalError as exc:  # a full disk: the store works as it was
        log.warning("the store %s could not be rewritten for incremental vacuum: %s", path, exc)
    else:
        log.info("the store %s now gives pages freed by pruning back to the disk (VACUUM, once)", path)


class SqliteFile:
    """One SQLite file per controller, opened and migrated; every write runs in a transaction committed before returning."""

    def __init__(self, path: Path, *, sync: str = "normal", lock: bool = True):
        self.path = Path(path)
        self._lock: PidLock | None = None
        db: sqlite3.Connection | None = None
        try:
            private_dir(self.path.parent)
            if lock:
                self._lock = _lock(self.path)
            _make_private(self.path)
            db = self._connect(sync)
            migrate(db)
            _vacuum_incrementally(db, self.path)
        except (OSError, sqlite3.Error) as exc:
            if db is not None:
                db.close()
            if self._lock is not None:
                self._lock.close()
            raise _unusable(self.path, exc) from None
        self._db = db
        self._depth = 0
        self._observe: Callable[[float], None] | None = None

    def observe_commits(self, observe: Callable[[float], None]) -> None:
        """Call observe with the seconds each commit took, from now on."""
        self._observe = observe

    def _connect(self, sync: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file (before its first table)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={'FULL' if sync == 'full' else 'NORMAL'}")
        db.execute("PRAGMA foreign_keys=OFF")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def _reader(self) -> sqlite3.Connection:
        """A separate read connection (for snapshots that span many event-loop turns)."""
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def close(self) -> None:
        """Close the connection and release the process lock."""
        with contextlib.suppress(sqlite3.Error):
            self._db.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes; the outermost block commits (or rolls back on error)."""
        if self._depth == 0:
            self._db.execute("BEGIN IMMEDIATE")
        self._depth += 1
        try:
            yield
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0:
                self._end_failed(exc)
            raise
        self._depth -= 1
        if self._depth == 0:
            started = time.perf_counter() if self._observe is not None else 0.0
            try:
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._end_failed(exc)
                raise
            if self._observe is not None:
                self._observe(time.perf_counter() - started)

    def _end_failed(self, exc: BaseException) -> None:
        """Roll back (SQLite may have done so already, e.g. on a full disk); a full disk is StoreFull."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        if getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL":
            raise StoreFull(
                f"the store {self.path} is full (no space left on its disk); nothing of this request "
                "was stored: free space there and try again"
            ) from exc
