"""A controller whose store cannot be used says so in one line naming the file and the fix, and exits non-zero."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from dtask_common.models import TaskSpec
from dtask_controller.store import SqliteStore

from tests.faults.helpers import assert_clear_error, exit_output, start_in_readonly_view
from tests.support import free_port_range, start_dtask


def start_fails(home: Path, store: Path, *, readonly: Path | None = None) -> tuple[int, str]:
    """Start a controller on store; return its exit code and output (it must exit by itself)."""
    lo, hi = free_port_range()
    args = ["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", "--store", str(store)]
    if readonly is None:
        proc = start_dtask(args, home, listen=False)
    else:
        proc = start_in_readonly_view(args, home, readonly)
    return exit_output(proc)


def test_store_in_a_read_only_directory(home: Path, tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    store = d / "controller.db"
    rc, out = start_fails(home, store, readonly=d)
    assert_clear_error(rc, out, str(store), "writable")
    assert not store.exists()


def test_store_under_a_file(home: Path, tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a directory\n")
    store = tmp_path / "plain" / "controller.db"
    rc, out = start_fails(home, store)
    assert_clear_error(rc, out, str(store), "--store")


def test_corrupt_store_file(home: Path, tmp_path: Path) -> None:
    store = tmp_path / "controller.db"
    junk = os.urandom(64 * 1024)
    store.write_bytes(junk)
    rc, out = start_fails(home, store)
    assert_clear_error(rc, out, str(store), "not a dtask store", "--store")
    assert store.read_bytes() == junk  # left as it was, for the operator to inspect


def damaged_store(path: Path, tasks: int = 20_000) -> int:
    """A real store with many pending tasks, closed; returns its page size."""
    store = SqliteStore(path, lock=False)
    specs = [TaskSpec(name=f"t{i}", shell=f"echo {i} " + "x" * 200) for i in range(tasks)]
    store.add_tasks(specs, [[] for _ in specs], 0.0)
    store.close()
    with sqlite3.connect(path) as db:
        page: int = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    return page


def assert_damage_reported(home: Path, store: Path) -> None:
    rc, out = start_fails(home, store)
    assert_clear_error(
        rc, out, str(store), "is damaged", "restore it from a backup", "move it aside", f"sqlite3 {store} .recover"
    )
    assert "DatabaseError" not in out and "internal error" not in out, out


def test_a_bad_page_in_the_middle_stops_the_controller_in_one_line(home: Path, tmp_path: Path) -> None:
    store = tmp_path / "controller.db"
    page = damaged_store(store)
    middle = store.stat().st_size // page // 2 * page
    with open(store, "r+b") as f:
        f.seek(middle)
        f.write(b"\xde\xad\xbe\xef" * (page // 4))
    assert_damage_reported(home, store)


def test_damage_met_while_loading_the_tasks_is_reported_the_same_way(home: Path, tmp_path: Path) -> None:
    store = tmp_path / "controller.db"
    page = damaged_store(store)
    size = store.stat().st_size
    with open(store, "r+b") as f:  # every page of the second half: the load of the pending tasks meets one
        for offset in range(size // page // 2 * page, size, page):
            f.seek(offset)
            f.write(b"\xde\xad\xbe\xef" * (page // 4))
    assert_damage_reported(home, store)
