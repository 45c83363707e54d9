"""Each client error type from a real server condition; no raw grpc.RpcError escapes."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import grpc
import pytest
from dtask_client import (
    AsyncController,
    CertificateError,
    Conflict,
    Controller,
    ControllerUnavailable,
    DtaskError,
    InvalidTask,
    NotFound,
    PermissionDenied,
)
from dtask_common.models import TaskSpec

from tests.integration.client.cluster import Cluster
from tests.support import free_port_range, start_controller


def test_not_found(live: Cluster) -> None:
    with live.client() as c, pytest.raises(NotFound) as info:
        c.task("987654321")
    assert info.value.code == "NOT_FOUND" and "987654321" in info.value.message


def test_invalid_spec_carries_field_errors(live: Cluster) -> None:
    specs = [TaskSpec(name="good", shell="true"), TaskSpec(name="broken", shell="", max_retries=-1)]
    with live.client() as c:
        with pytest.raises(InvalidTask) as info:
            c.submit(specs)
        assert info.value.code == "INVALID_ARGUMENT"
        assert {(e.index, e.task_name) for e in info.value.errors} == {(1, "broken")}
        assert {e.field for e in info.value.errors} >= {"command", "max_retries"}
        assert not c.tasks(name_contains="good")  # all or nothing


def test_invalid_task_file_is_reported_before_dialling(tmp_path: Path, live: Cluster) -> None:
    f = tmp_path / "bad.toml"
    f.write_text('[[task]]\nname = "x"\ncommand = 3\n')
    with live.client() as c, pytest.raises(InvalidTask, match=r"bad.toml: task 'x' \(#1\): command"):
        c.submit(f)


def test_viewer_cannot_submit(live: Cluster) -> None:
    with live.client("viewer") as c:
        assert c.whoami().role == "viewer"
        assert isinstance(c.tasks(), list)  # viewers read
        with pytest.raises(PermissionDenied) as info:
            c.submit(TaskSpec(name="nope", shell="true"))
    assert "viewer" in info.value.message and "operator" in info.value.message


def test_cancel_of_finished_task_conflicts(live: Cluster) -> None:
    with live.client() as c:
        [tid] = c.submit(TaskSpec(name="quick", shell="true"))
        c.wait([tid], timeout=20)
        with pytest.raises(Conflict):
            c.cancel(tid)


def test_stopped_controller(home: Path) -> None:
    ctl = start_controller(home)
    address = ctl.address
    with Controller(address, certs=home / "certs") as c:
        assert c.whoami().role == "operator"
        ctl.stop()
        with pytest.raises(ControllerUnavailable) as info:
            c.tasks()
    assert address in info.value.message and "make run-controller" in info.value.message

    async def aio() -> None:
        async with AsyncController(address, certs=home / "certs") as a:
            await a.finished()

    with pytest.raises(ControllerUnavailable):
        asyncio.run(aio())


def test_nothing_listening(live: Cluster) -> None:
    lo, _ = free_port_range(1)
    with Controller(f"127.0.0.1:{lo}", certs=live.certs) as c, pytest.raises(ControllerUnavailable) as info:
        c.executors()
    assert f"cannot reach the controller at 127.0.0.1:{lo}" in info.value.message


def test_missing_certificate_files(tmp_path: Path) -> None:
    with pytest.raises(CertificateError, match=r"does not exist.*dtask certs init"):
        Controller("127.0.0.1:1", certs=tmp_path)


def test_certificate_from_another_ca_is_caught_locally(live: Cluster, other_ca: Path, tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(live.certs, mixed)
    for suffix in (".crt", ".key"):
        shutil.copy(other_ca / f"operator{suffix}", mixed / f"operator{suffix}")
    with pytest.raises(CertificateError, match="was not issued by the CA"):
        Controller(live.address, certs=mixed)


def test_other_ca_handshake_fails_with_a_hint(live: Cluster, other_ca: Path) -> None:
    with Controller(live.address, certs=other_ca) as c, pytest.raises(ControllerUnavailable) as info:
        c.whoami()
    assert "TLS handshake" in info.value.message and "CA" in info.value.message


def test_errors_share_one_base_and_never_leak_rpc_errors(live: Cluster) -> None:
    for cls in (ControllerUnavailable, CertificateError, PermissionDenied, NotFound, InvalidTask, Conflict):
        assert issubclass(cls, DtaskError) and not issubclass(cls, grpc.RpcError)
    with live.client() as c:
        try:
            c.retry("987654321")
        except DtaskError as exc:
            assert not isinstance(exc, grpc.RpcError) and exc.__cause__ is None
