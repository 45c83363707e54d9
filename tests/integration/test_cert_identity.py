"""A certificate names exactly one dtask role: none, several, or one hidden in a DNS name are refused
over real mutual TLS, whatever the order of the names in the certificate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import certs
from dtask_common.roles import Role

from tests.support import Proc, sync_channel, tls


def forge(certs_dir: Path, stem: str, names: list[x509.GeneralName]) -> None:
    """A client certificate signed by the real CA in certs_dir with exactly these SANs."""
    ca = x509.load_pem_x509_certificate((certs_dir / "ca.crt").read_bytes())
    key_path = certs.ca_key_path(certs_dir)
    assert key_path is not None
    ca_key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (certs_dir / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (certs_dir / f"{stem}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


URI = x509.UniformResourceIdentifier
CASES = {
    "operator-then-viewer": [URI("dtask://operator/a"), URI("dtask://viewer/b")],
    "viewer-then-operator": [URI("dtask://viewer/b"), URI("dtask://operator/a")],
    "two-operators": [URI("dtask://operator/a"), URI("dtask://operator/b")],
    "role-in-a-dns-name": [x509.DNSName("dtask://operator/a"), x509.DNSName("localhost")],
    "no-role": [URI("https://example.com/a"), x509.DNSName("localhost")],
}


def call(address: str, certs_dir: Path, stem: str, rpc: str) -> grpc.RpcError:
    with sync_channel(address, tls(certs_dir, stem)) as ch:
        stub = controller_pb2_grpc.ControllerStub(ch)
        with pytest.raises(grpc.RpcError) as exc:
            if rpc == "WhoAmI":
                stub.WhoAmI(pb.WhoAmIRequest(), timeout=10)
            else:
                stub.ListTasks(pb.ListTasksRequest(), timeout=10)
    return exc.value


@pytest.mark.parametrize("case", sorted(CASES))
def test_certificate_without_exactly_one_role_is_refused(controller: Proc, home: Path, case: str) -> None:
    d = home / "certs"
    forge(d, case, CASES[case])
    for rpc in ("WhoAmI", "ListTasks"):
        err = call(controller.address, d, case, rpc)
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, (rpc, err)
        details = err.details() or ""
        assert details.startswith(f"{rpc} denied: the client certificate carries "), details
        assert "exactly one" in details and "dtask certs issue" in details, details
    if case.endswith(("-then-viewer", "-then-operator", "operators")):
        assert "2 dtask roles" in details and "dtask://operator/a" in details, details
    else:
        assert "no dtask role" in details, details


def test_a_single_role_among_other_names_is_accepted(controller: Proc, home: Path) -> None:
    d = home / "certs"
    forge(d, "mixed", [x509.DNSName("localhost"), URI("https://example.com/x"), URI("dtask://viewer/v2")])
    with sync_channel(controller.address, tls(d, "mixed")) as ch:
        ident = controller_pb2_grpc.ControllerStub(ch).WhoAmI(pb.WhoAmIRequest(), timeout=10)
    assert (ident.role, ident.name) == ("viewer", "v2")


def test_issue_never_makes_a_second_role(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    certs.init_ca(d)
    for bad in ("dtask://operator/a", "a/b", "x y"):
        with pytest.raises(certs.CertError, match="host name or IP"):
            certs.issue(d, Role.VIEWER, "v", hosts=[bad])
    crt, _ = certs.issue(d, Role.VIEWER, "v", hosts=["gpu-1.example.com", "10.0.0.7", "::1"])
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["dtask://viewer/v"]
