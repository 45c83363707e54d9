"""A damaged store file: recognising SQLite's damage errors, checking the whole file, and the one-line fix."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

DAMAGE_ERRORS = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def is_damage(exc: BaseException) -> bool:
    """Whether a SQLite error says the file itself is damaged (not busy, full or read-only)."""
    return isinstance(exc, sqlite3.DatabaseError) and getattr(exc, "sqlite_errorname", "") in DAMAGE_ERRORS


def damaged_message(path: Path, detail: str) -> str:
    """One line naming the file, what SQLite found, and what to do."""
    detail = " ".join(detail.split())
    return (
        f"the store {path} is damaged (SQLite: {detail}); restore it from a backup, or move it aside to start "
        f"with an empty store (recover what is readable first: `sqlite3 {path} .recover | sqlite3 "
        f"{path}.recovered`, then start with --store {path}.recovered)"
    )


def problem(path: Path, stop: threading.Event | None = None) -> str:
    """'' when PRAGMA quick_check finds the file sound, else its first finding.

    O(size of the file): run it in a thread. Setting stop interrupts it (it then returns '')."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        if stop is not None:
            db.set_progress_handler(lambda: 1 if stop.is_set() else 0, 10_000)
        rows = db.execute("PRAGMA quick_check(1)").fetchall()
    except sqlite3.OperationalError:
        return ""  # interrupted by stop (or the file is busy): no finding
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        db.close()
    text = " ".join(str(r[0]) for r in rows).replace("*** in database main ***", "").strip()
    return "" if text == "ok" else text


async def watch(path: Path, stop: asyncio.Event, cancel: threading.Event) -> str:
    """Check the whole store in a thread while the controller serves; on damage set stop and return the finding."""
    found = await asyncio.to_thread(problem, path, cancel)
    if found:
        stop.set()
    return found
