"""Certificates: files, permissions, SANs and role URIs."""

from __future__ import annotations

import shutil
import socket
import stat
from pathlib import Path

import pytest
from dtask_common import certs
from dtask_common.certs import CertError
from dtask_common.roles import Role, parse_role_uri, runner_identity_host


def test_init_writes_expected_files(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    certs.init(d, ["gpu-box.lan", "10.0.0.5"])
    names = sorted(p.name for p in d.iterdir())
    assert names == sorted(
        ["ca.crt"] + [f"{s}.{x}" for s in ("controller", "operator", "viewer") for x in ("crt", "key")]
    )
    for key in d.glob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    # The CA key lives apart from what the services read, in a directory of its own, with the CA's record
    # of the certificates it issued.
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == ["ca.key", "issued.json", "issued.json.lock"]
    assert stat.S_IMODE((tmp_path / "ca").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "ca" / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    info = certs.read_info(d / "controller.crt")
    assert {"localhost", socket.gethostname(), "gpu-box.lan"} <= set(info.dns)
    assert {"127.0.0.1", "10.0.0.5"} <= set(info.ips)
    assert info.role == "controller"


def test_issue_runner_role_uri(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    certs.init(d)
    crt, key = certs.issue(d, Role.RUNNER, "gpu1")
    assert crt.name == "runner-gpu1.crt" and key.name == "runner-gpu1.key"
    info = certs.read_info(crt)
    assert (info.role, info.name) == ("runner", "gpu1")
    certs.check_signed_by(crt, d / "ca.crt")


def test_only_a_runner_certificate_carries_its_runner_identity_name(tmp_path: Path) -> None:
    """A client reading from runner gpu1 dials it as runner_identity_host("gpu1"): only gpu1's certificate names
    it; other runners, other roles, and `--host` cannot."""
    d = tmp_path / "certs"
    certs.init(d)
    own = runner_identity_host("gpu1")
    assert own.endswith(".runner.dtask.invalid") and own != runner_identity_host("gpu2")
    assert own in certs.read_info(certs.issue(d, Role.RUNNER, "gpu1")[0]).dns
    assert own not in certs.read_info(certs.issue(d, Role.RUNNER, "gpu2")[0]).dns
    assert not any(h.endswith(".dtask.invalid") for h in certs.read_info(certs.issue(d, Role.VIEWER, "v")[0]).dns)
    for host in (own, own.upper()):
        with pytest.raises(CertError, match="are the runners' own"):
            certs.issue(d, Role.VIEWER, "sneaky", hosts=[host])
    with pytest.raises(CertError, match="are the runners' own"):
        certs.check_hosts([own])


def test_init_is_idempotent(tmp_path: Path) -> None:
    d = tmp_path / "certs"
    certs.init(d)
    before = (d / "ca.crt").read_bytes()
    assert certs.init(d) == []
    assert (d / "ca.crt").read_bytes() == before


def test_other_ca_detected(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    certs.init(a)
    certs.init(b)
    with pytest.raises(CertError, match="was not issued by the CA"):
        certs.check_signed_by(a / "operator.crt", b / "ca.crt")


def test_bad_name_and_missing_ca(tmp_path: Path) -> None:
    with pytest.raises(CertError, match="where `dtask certs init` ran"):
        certs.issue(tmp_path, Role.RUNNER, "r1")
    certs.init(tmp_path)
    with pytest.raises(CertError, match="bad certificate name"):
        certs.issue(tmp_path, Role.RUNNER, "a/b")


def test_parse_role_uri() -> None:
    assert parse_role_uri("dtask://runner/exec@h") == (Role.RUNNER, "exec@h")
    assert parse_role_uri("dtask://root/x") is None
    assert parse_role_uri("https://x") is None
    assert parse_role_uri("dtask://viewer/") is None


def test_runner_certificate_missing_without_ca_key_says_what_to_copy(tmp_path: Path) -> None:
    """A runner machine holding only copied files: the error names the files and where they come from."""
    ca_side = tmp_path / "ca"
    certs.init(ca_side)
    runner_side = tmp_path / "runner"
    runner_side.mkdir()
    (runner_side / "ca.crt").write_bytes((ca_side / "ca.crt").read_bytes())
    with pytest.raises(CertError) as info:
        certs.ensure_runner(runner_side, "gpu2")
    msg = str(info.value)
    assert f"runner-gpu2.crt and runner-gpu2.key missing in {runner_side}" in msg
    assert "dtask certs issue --role runner --name gpu2 --out DIR" in msg
    assert msg.endswith(f"copy DIR/runner-gpu2.crt, DIR/runner-gpu2.key into {runner_side}/")
    assert sorted(p.name for p in runner_side.iterdir()) == ["ca.crt"]  # nothing made up locally
    empty = tmp_path / "empty"
    with pytest.raises(CertError, match=r"DIR/runner-gpu2.key, DIR/ca.crt into "):
        certs.ensure_runner(empty, "gpu2")


def test_init_keeps_a_copied_ca_certificate(tmp_path: Path) -> None:
    """A runner machine holds ca.crt without ca.key: init does not silently replace the controller's CA."""
    ca_side, copy = tmp_path / "ca", tmp_path / "copy"
    certs.init(ca_side)
    copy.mkdir()
    (copy / "ca.crt").write_bytes((ca_side / "ca.crt").read_bytes())
    with pytest.raises(CertError, match="has no ca.key in .*copy-ca: it was copied from the CA's machine"):
        certs.init(copy)
    assert (copy / "ca.crt").read_bytes() == (ca_side / "ca.crt").read_bytes()
    with pytest.raises(CertError, match=r"no CA key in .* run this on the machine that holds the CA"):
        certs.issue(copy, Role.OPERATOR, "alice")
    certs.init(copy, force=True)
    assert (copy / "ca.crt").read_bytes() != (ca_side / "ca.crt").read_bytes()


def test_ca_key_of_the_earlier_layout_still_issues_and_moves(tmp_path: Path) -> None:
    """A CA key where earlier versions kept it (among the certificates) still issues; moving it keeps it working."""
    d = tmp_path / "certs"
    certs.init(d)
    (tmp_path / "ca" / "ca.key").rename(d / "ca.key")
    shutil.rmtree(tmp_path / "ca")  # the layout of earlier versions: no CA directory (nor its record)
    assert certs.ca_key_path(d) == d / "ca.key"
    crt, _ = certs.issue(d, Role.RUNNER, "old-layout")
    certs.check_signed_by(crt, d / "ca.crt")
    assert certs.init(d) == []  # the CA is there: nothing is replaced
    moved = certs.move_legacy_ca_key(d)
    assert moved == tmp_path / "ca" / "ca.key" and not (d / "ca.key").exists()
    assert stat.S_IMODE(moved.stat().st_mode) == 0o600 and stat.S_IMODE(moved.parent.stat().st_mode) == 0o700
    assert certs.move_legacy_ca_key(d) is None
    crt, _ = certs.issue(d, Role.OPERATOR, "after-move")
    certs.check_signed_by(crt, d / "ca.crt")


def test_ca_key_offline_stops_issuing_but_not_the_certificates(tmp_path: Path) -> None:
    d, offline = tmp_path / "certs", tmp_path / "usb-stick"
    certs.init(d)
    (tmp_path / "ca").rename(offline)
    with pytest.raises(CertError, match=r"no CA key in .*/ca \(ca.key\)"):
        certs.issue(d, Role.RUNNER, "gpu3")
    with pytest.raises(CertError, match="has no ca.key in"):
        certs.init(d)
    crt, _ = certs.issue(d, Role.RUNNER, "gpu3", ca_dir=offline)  # `--set ca=DIR` with the key brought back
    certs.check_signed_by(crt, d / "ca.crt")
    assert certs.ca_dir_for(tmp_path / "x") == tmp_path / "x-ca"
