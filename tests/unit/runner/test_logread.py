"""The runner's answer to one read of a log: the range asked for, capped, and refusals of what is not its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_common.models import ReadOutputCmd
from dtask_runner import logread
from dtask_runner.logread import read_log


def test_ranges_eof_and_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "12.2.log").write_bytes(b"0123456789")
    r = read_log(tmp_path, ReadOutputCmd(5, "12", 2, 3, 4), running=False)
    assert (r.request_id, r.offset, r.data, r.eof, r.error) == (5, 3, b"3456", False, "")
    assert read_log(tmp_path, ReadOutputCmd(6, "12", 2, 3, 100), running=False).eof
    assert not read_log(tmp_path, ReadOutputCmd(7, "12", 2, 3, 100), running=True).eof  # more may come
    assert read_log(tmp_path, ReadOutputCmd(8, "12", 2, 50, 100), running=False).data == b""
    monkeypatch.setattr(logread, "MAX_READ", 2)
    assert read_log(tmp_path, ReadOutputCmd(9, "12", 2, 0, 100), running=False).data == b"01"


def test_refusals(tmp_path: Path) -> None:
    (tmp_path / "3.1.log").mkdir()
    assert "not a regular file" in read_log(tmp_path, ReadOutputCmd(1, "3", 1, 0, 10), running=False).error
    assert "no log of attempt '4'/1" in read_log(tmp_path, ReadOutputCmd(2, "4", 1, 0, 10), running=False).error
    long_id = "9" * 300
    r = read_log(tmp_path, ReadOutputCmd(3, long_id, 1, 0, 10), running=False)
    assert r.error == "that attempt is not one this runner ran" and r.data == b""
    assert "is not a range" in read_log(tmp_path, ReadOutputCmd(4, "4", 1, 0, 0), running=False).error
