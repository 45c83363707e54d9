"""A controller whose store cannot be used says so in one line naming the file and the fix, and exits non-zero."""

from __future__ import annotations

import os
from pathlib import Path

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
