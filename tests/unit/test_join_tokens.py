"""Join tokens, the CA's records and the join limiter, without a network."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from dtask_common import certrecords, certs, jointoken
from dtask_common.certrecords import RecordError
from dtask_common.jointoken import Token, TokenError
from dtask_common.roles import Role
from dtask_controller.join_limit import JoinLimiter, peer_host


@pytest.fixture
def ca(tmp_path: Path) -> tuple[Path, bytes]:
    d = tmp_path / "certs"
    certs.init(d)
    return tmp_path / "ca", (d / "ca.crt").read_bytes()


def test_a_token_is_single_use_and_only_its_hash_is_kept(ca: tuple[Path, bytes]) -> None:
    ca_dir, pem = ca
    token, rec = jointoken.create(ca_dir, pem, Role.RUNNER, "gpu1", 3600, ["gpu1.lan"])
    assert Token.parse(token.text()) == token and token.fingerprint == jointoken.fingerprint(pem)
    assert token.secret not in (ca_dir / jointoken.TOKENS_FILE).read_text()
    assert jointoken.consume(ca_dir, token.id, "x" * 32) is None  # a wrong secret does not use it up
    used = jointoken.consume(ca_dir, token.id, token.secret)
    assert used is not None and (used.role, used.name, used.hosts) == ("runner", "gpu1", ["gpu1.lan"])
    assert jointoken.consume(ca_dir, token.id, token.secret) is None
    assert [r.state(time.time()) for r in jointoken.tokens(ca_dir)] == ["used"]


def test_tokens_expire_and_can_be_revoked(ca: tuple[Path, bytes]) -> None:
    ca_dir, pem = ca
    now = 1_000_000.0
    old, _ = jointoken.create(ca_dir, pem, Role.VIEWER, "v", 60, [], now=now)
    assert jointoken.consume(ca_dir, old.id, old.secret, now=now + 61) is None
    cut, _ = jointoken.create(ca_dir, pem, Role.OPERATOR, "o", 60, [], now=time.time())
    assert jointoken.revoke(ca_dir, cut.id).state(time.time()) == "revoked"
    assert jointoken.consume(ca_dir, cut.id, cut.secret) is None
    with pytest.raises(TokenError, match="no token"):
        jointoken.revoke(ca_dir, "zzzzzz")


@pytest.mark.parametrize("ttl", [0, -1, jointoken.MAX_TTL_S + 1])
def test_a_ttl_out_of_bounds_is_refused(ca: tuple[Path, bytes], ttl: float) -> None:
    with pytest.raises(TokenError, match="--ttl must be"):
        jointoken.create(ca[0], ca[1], Role.RUNNER, "r", ttl, [])


def test_no_token_for_a_controller_and_bad_text_is_named() -> None:
    with pytest.raises(TokenError, match="not a dtask join token"):
        Token.parse("abc.def")


def test_revoking_resolves_names_roles_and_serials(ca: tuple[Path, bytes]) -> None:
    ca_dir, _ = ca
    d = ca_dir.parent / "certs"
    certs.issue(d, Role.RUNNER, "gpu1")
    issued = certrecords.issued(ca_dir)
    assert {(i.role, i.name, i.by) for i in issued} >= {("runner", "gpu1", "issue"), ("operator", "operator", "init")}
    gpu1 = next(i for i in issued if i.name == "gpu1")
    assert [r.serial for r in certrecords.resolve("runner/gpu1", issued)] == [gpu1.serial]
    assert [r.name for r in certrecords.resolve(gpu1.serial.upper(), issued)] == ["gpu1"]
    with pytest.raises(RecordError, match="no certificate named"):
        certrecords.resolve("nobody", issued)
    with pytest.raises(RecordError):  # never the controller's own certificate
        certrecords.resolve(next(i.name for i in issued if i.role == "controller"), issued)
    first = certrecords.add_revoked(d, certrecords.resolve("gpu1", issued))
    again = certrecords.add_revoked(d, certrecords.resolve("gpu1", issued))
    assert first == again and len(json.loads((d / certrecords.REVOKED_FILE).read_text())) == 1


def test_the_limiter_bounds_each_address_and_all() -> None:
    lim = JoinLimiter(per_peer=2, total=3, window_s=60)
    assert [lim.allow("a", 0), lim.allow("a", 1), lim.allow("a", 2)] == [True, True, False]
    assert [lim.allow("b", 3), lim.allow("c", 4)] == [True, False]  # 3 in all
    assert lim.allow("a", 61) and lim.allow("c", 62)  # the window moved on
    assert peer_host("ipv4:10.0.0.7:5123") == "10.0.0.7" and peer_host("ipv6:[::1]:5123") == "::1"
