"""The store's errors: held by another controller, full, unusable, too new, a snapshot read after its end."""

from __future__ import annotations

import sqlite3


class StoreLocked(RuntimeError):
    """Another controller process holds the store."""


class StoreFull(RuntimeError):
    """A write failed because the store's disk is full; it was rolled back whole."""


class StoreUnusable(RuntimeError):
    """The store file cannot be created or opened, or is not a dtask store; the message names the fix."""


class SchemaTooNew(RuntimeError):
    """The store was written by a newer dtask."""


class SnapshotClosed(sqlite3.ProgrammingError):
    """A snapshot page was asked for after the snapshot was closed (a sqlite3.ProgrammingError, as SQLite raises)."""
