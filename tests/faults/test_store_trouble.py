"""A controller whose store cannot be used says so in one line naming the file and the fix, and exits non-zero."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import BIN, Proc, free_port_range, start_dtask


def start_fails(home: Path, store: Path, *, readonly: Path | None = None) -> tuple[int, str]:
    """Start a controller on store; return its exit code and output (it must exit by itself)."""
    lo, hi = free_port_range()
    args = ["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", "--store", str(store)]
    if readonly is None:
        proc = start_dtask(args, home, listen=False)
    else:
        proc = _start_in_readonly_view(args, home, readonly)
    try:
        rc = proc.popen.wait(20)
    finally:
        proc.kill9()
    out = "".join(proc.lines) if proc.lines else ""
    return rc, out


def _start_in_readonly_view(args: list[str], home: Path, readonly: Path) -> Proc:
    """`dtask ARGS` seeing `readonly` as a read-only directory: chmod for a normal user; for root (whom
    permissions do not stop), a read-only bind mount in a private mount namespace."""
    env = dict(os.environ, DTASK_HOME=str(home), PYTHONUNBUFFERED="1")
    env.pop("DTASK_CONFIG", None)
    argv = [str(BIN / "dtask"), *args]
    if os.geteuid() == 0:
        unshare = shutil.which("unshare")
        if unshare is None or subprocess.run([unshare, "-m", "true"], capture_output=True).returncode != 0:
            pytest.skip("running as root without mount namespaces: cannot make a directory read-only")
        argv = [unshare, "-m", "sh", "-c", 'mount --bind -o ro "$0" "$0" && exec "$@"', str(readonly), *argv]
    else:
        readonly.chmod(0o555)
    popen = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             errors="replace", start_new_session=True)
    proc = Proc(popen)
    proc.start_reader()
    return proc


def assert_clear_error(rc: int, out: str, *must: str) -> None:
    assert rc != 0, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, out
    for text in must:
        assert text in errors[0], out


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
