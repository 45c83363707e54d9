"""Servers bind the first free port of their range, and say clearly when the range is full."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.support import free_port_range, start_controller, start_dtask


def test_takes_next_port_when_first_is_busy(home: Path) -> None:
    lo, hi = free_port_range(3)
    with socket.socket() as s:
        s.bind(("127.0.0.1", lo))
        s.listen()
        proc = start_controller(home, port_range=(lo, hi))
        try:
            assert proc.address == f"127.0.0.1:{lo + 1}"
        finally:
            proc.stop()


def test_second_controller_takes_next_port(home: Path, tmp_path: Path) -> None:
    lo, hi = free_port_range(3)
    first = start_controller(home, port_range=(lo, hi))
    try:
        other_home = tmp_path / "other"
        import shutil

        shutil.copytree(home / "certs", other_home / "certs")
        second = start_controller(other_home, port_range=(lo, hi))
        try:
            assert first.address.endswith(f":{lo}") and second.address.endswith(f":{lo + 1}")
        finally:
            second.stop()
    finally:
        first.stop()


def test_full_range_is_a_clear_error(home: Path) -> None:
    lo, hi = free_port_range(2)
    socks = []
    try:
        for port in (lo, hi):
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.listen()
            socks.append(s)
        proc = start_dtask(["controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"], home, listen=False)
        code = proc.popen.wait(30)
        out = "".join(proc.lines) + (proc.popen.stdout.read() if proc.popen.stdout else "")
        assert code != 0
        assert f"no free port in {lo}-{hi}" in out
        assert "Traceback" not in out
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("bad", ["abc", "10-5"])
def test_bad_port_range_flag(home: Path, bad: str) -> None:
    proc = start_dtask(["controller", "--port-range", bad], home, listen=False)
    assert proc.popen.wait(30) == 1
