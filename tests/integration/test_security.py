"""Mutual TLS and roles against a real controller process: who may call what."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc

from tests.support import Proc, grpcurl_args, sync_channel, tls

ROLES = {"runner": "runner-r1", "operator": "operator", "viewer": "viewer"}
# (rpc kind, roles allowed)
MATRIX = {"connect": {"runner"}, "command": {"operator"}, "query": {"viewer", "operator"}}


def call(stub: controller_pb2_grpc.ControllerStub, kind: str) -> grpc.StatusCode:
    try:
        if kind == "query":
            stub.ListTasks(pb.ListTasksRequest(), timeout=10)
        elif kind == "command":
            stub.ResumeQueue(pb.ResumeQueueRequest(), timeout=10)
        else:
            stream = stub.Connect(iter([pb.RunnerMessage(hello=pb.Hello(name="r1"))]), timeout=10)
            next(iter(stream))
        return grpc.StatusCode.OK
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.PERMISSION_DENIED:
            assert "denied for role" in (exc.details() or "")
        return exc.code()


@pytest.mark.parametrize("role", sorted(ROLES))
@pytest.mark.parametrize("kind", sorted(MATRIX))
def test_role_matrix(controller: Proc, home: Path, role: str, kind: str) -> None:
    with sync_channel(controller.address, tls(home / "certs", ROLES[role])) as ch:
        code = call(controller_pb2_grpc.ControllerStub(ch), kind)
    if role in MATRIX[kind]:
        assert code != grpc.StatusCode.PERMISSION_DENIED
    else:
        assert code == grpc.StatusCode.PERMISSION_DENIED


def test_denial_names_role_and_rpc(controller: Proc, home: Path) -> None:
    with sync_channel(controller.address, tls(home / "certs", "viewer")) as ch:
        with pytest.raises(grpc.RpcError) as exc:
            controller_pb2_grpc.ControllerStub(ch).SubmitTasks(pb.SubmitTasksRequest(), timeout=10)
    assert exc.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert exc.value.details() == "SubmitTasks denied for role viewer (viewer): it needs the operator role"


def test_whoami_reports_certificate_identity(controller: Proc, home: Path) -> None:
    with sync_channel(controller.address, tls(home / "certs", "viewer")) as ch:
        ident = controller_pb2_grpc.ControllerStub(ch).WhoAmI(pb.WhoAmIRequest(), timeout=10)
    assert (ident.role, ident.name) == ("viewer", "viewer")
    assert ident.controller_name.startswith("ctrl@")


def _unavailable(channel: grpc.Channel) -> None:
    with channel:
        with pytest.raises(grpc.RpcError) as exc:
            controller_pb2_grpc.ControllerStub(channel).ListTasks(pb.ListTasksRequest(), timeout=5)
    assert exc.value.code() == grpc.StatusCode.UNAVAILABLE


def test_no_client_certificate_is_refused(controller: Proc, home: Path) -> None:
    creds = grpc.ssl_channel_credentials(root_certificates=(home / "certs" / "ca.crt").read_bytes())
    _unavailable(grpc.secure_channel(controller.address, creds))


def test_other_ca_is_refused(controller: Proc, other_ca: Path, home: Path) -> None:
    files = tls(other_ca, "operator")
    creds = grpc.ssl_channel_credentials(
        root_certificates=(home / "certs" / "ca.crt").read_bytes(),
        private_key=files.key.read_bytes(),
        certificate_chain=files.cert.read_bytes(),
    )
    _unavailable(grpc.secure_channel(controller.address, creds))


def test_plaintext_is_refused(controller: Proc) -> None:
    _unavailable(grpc.insecure_channel(controller.address))


def test_grpcurl_list_describe_health(controller: Proc, home: Path) -> None:
    base = grpcurl_args(tls(home / "certs", "operator"))
    out = subprocess.run([*base, controller.address, "list"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "dtask.v1.Controller" in out.stdout.split()
    out = subprocess.run(
        [*base, controller.address, "describe", "dtask.v1.Controller"], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    assert "rpc SubmitTasks" in out.stdout and "all or nothing" in out.stdout
    out = subprocess.run(
        [*base, controller.address, "describe", "dtask.v1.Controller.ListTasks"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and "rpc ListTasks" in out.stdout and "paged" in out.stdout, out.stderr
    out = subprocess.run(
        [*base, controller.address, "describe", "dtask.v1.OutputChunk"], capture_output=True, text=True, timeout=30
    )
    assert "bytes data = 4;" in out.stdout
    out = subprocess.run(
        [*base, "-d", '{"service": "dtask.v1.Controller"}', controller.address, "grpc.health.v1.Health/Check"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0 and '"SERVING"' in out.stdout, out.stderr


def test_grpcurl_refused_with_other_ca(controller: Proc, other_ca: Path, home: Path) -> None:
    files = tls(other_ca, "operator")
    args = [*grpcurl_args(files)]
    args[2] = str(home / "certs" / "ca.crt")
    out = subprocess.run([*args, controller.address, "list"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
