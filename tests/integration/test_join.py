"""Joining with a one-time token and revoking certificates: a real controller on 127.0.0.1 with real certificates,
real `dtask` subprocesses, and a DTASK_HOME for the controller's machine apart from each joining machine's."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc, runner_pb2_grpc
from dtask.v1 import runner_pb2 as rpb
from dtask_client import Controller
from dtask_common import jointoken
from dtask_common.models import TaskSpec, TaskState
from dtask_common.roles import Role

from tests.support import BIN, Proc, copy_certs, free_port_range, runner_proc, start_dtask, sync_channel, tls

FAST = ("--set", "controller.dead_after_s=0.6", "--set", "controller.lost_after_s=2")
#: Each test's tasks run on its own runner only: the runners carry who=NAME and the tasks ask for it.
LABEL = ("runner", "--label")


def dtask(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DTASK_HOME=str(home))
    env.pop("DTASK_CONFIG", None)
    return subprocess.run([str(BIN / "dtask"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def start_joinable(home: Path, *extra: str) -> tuple[Proc, str]:
    """A controller accepting joins on a port of its own: (the process, the join address)."""
    port = free_port_range(1)[0]
    lo, hi = free_port_range()
    proc = start_dtask(
        [
            *FAST,
            "--set",
            f"controller.join_address=127.0.0.1:{port}",
            "controller",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            *extra,
        ],
        home,
    )
    return proc, f"127.0.0.1:{port}"


def token(home: Path, role: str, name: str, *extra: str) -> str:
    made = dtask(home, "certs", "token", "--role", role, "--name", name, *extra)
    assert made.returncode == 0, made.stderr
    assert f"token {made.stdout.split('.')[0]} for {role} {name}, single use" in made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[tuple[Path, Proc, str]]:
    """The controller's machine: its DTASK_HOME (with the CA key) and a controller run with --allow-join."""
    home = copy_certs(certs_template, tmp_path_factory.mktemp("ctrl") / "home")
    proc, join = start_joinable(home, "--allow-join")
    proc.wait_for(r"accepting joins on 127\.0\.0\.1:\d+")
    try:
        yield home, proc, join
    finally:
        proc.stop()


def operator(home: Path, address: str) -> Controller:
    return Controller(address, certs=home / "certs", timeout=10)


def test_a_runner_joins_with_a_token_and_runs_a_task(cluster: tuple[Path, Proc, str], tmp_path: Path) -> None:
    home, ctl, join = cluster
    t = token(home, "runner", "gpu-join")
    box = tmp_path / "gpu-box"
    lo, hi = free_port_range()
    runner = start_dtask(
        [*LABEL, "who=gpu-join", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", "--join", join, "--token", t], box
    )
    try:
        runner.wait_for(rf"connected to controller {ctl.address} .* as gpu-join")
        certs = box / "certs"
        assert sorted(p.name for p in certs.glob("*.crt")) == ["ca.crt", "runner-gpu-join.crt"]
        assert (certs / "ca.crt").read_bytes() == (home / "certs" / "ca.crt").read_bytes()
        assert {p.name: p.stat().st_mode & 0o777 for p in certs.iterdir()} == {p.name: 0o600 for p in certs.iterdir()}
        assert (box.stat().st_mode & 0o777, certs.stat().st_mode & 0o777) == (0o700, 0o700)
        # The key was made on the runner's machine: the controller's machine never had it.
        assert not (home / "certs" / "runner-gpu-join.key").exists()
        c = operator(home, ctl.address)
        [tid] = c.submit(TaskSpec(name="joined", shell="echo hi", labels={"who": "gpu-join"}))
        [task] = c.wait([tid], timeout=30)
        assert task.state is TaskState.SUCCEEDED and task.attempts[-1].executor == "gpu-join"
        listed = dtask(home, "certs", "list")
        assert any(" gpu-join " in ln and "token " + t[:6] in ln and "valid" in ln for ln in listed.stdout.splitlines())
        tokens = dtask(home, "certs", "tokens", "--all").stdout
        assert any(ln.startswith(t[:6]) and " used " in ln for ln in tokens.splitlines())
    finally:
        runner.stop()
    # The same command again starts from what the first join stored (it does not spend another token).
    again = start_dtask(
        [*LABEL, "who=gpu-join", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}", "--join", join, "--token", t], box
    )
    try:
        again.wait_for(r"connected to controller .* as gpu-join")
        assert not any("joined as" in ln for ln in again.lines)
    finally:
        again.stop()


def test_a_used_token_is_refused(cluster: tuple[Path, Proc, str], tmp_path: Path) -> None:
    home, _, join = cluster
    t = token(home, "viewer", "once")
    first = dtask(tmp_path / "a", "certs", "join", join, "--token", t)
    assert first.returncode == 0, first.stderr
    second = dtask(tmp_path / "b", "certs", "join", join, "--token", t)
    assert second.returncode == 4
    assert "invalid or expired token" in second.stderr and "UNAUTHENTICATED" in second.stderr
    assert not (tmp_path / "b" / "certs" / "viewer.crt").exists()


def test_an_expired_or_revoked_or_forged_token_is_refused_alike(
    cluster: tuple[Path, Proc, str], tmp_path: Path
) -> None:
    home, _, join = cluster
    ca_pem = (home / "certs" / "ca.crt").read_bytes()
    late, _ = jointoken.create(home / "ca", ca_pem, Role.RUNNER, "late", 3600, [], now=time.time() - 7200)
    cut = token(home, "runner", "cut")
    assert dtask(home, "certs", "tokens", "--revoke", cut[:6]).returncode == 0
    good = jointoken.Token.parse(token(home, "runner", "guessed"))
    forged = jointoken.Token(good.id, "x" * 32, good.fingerprint)
    for i, text in enumerate([late.text(), cut, forged.text()]):
        out = dtask(tmp_path / str(i), "certs", "join", join, "--token", text)
        assert out.returncode == 4
        assert "the controller refused the join: invalid or expired token" in out.stderr, out.stderr
    # The forged secret did not spend the real token.
    assert dtask(tmp_path / "real", "certs", "join", join, "--token", good.text()).returncode == 0


class Impostor(controller_pb2_grpc.JoinServicer):
    def __init__(self) -> None:
        self.requests: list[pb.JoinRequest] = []

    def Join(self, request: pb.JoinRequest, context: grpc.ServicerContext) -> pb.JoinResponse:
        self.requests.append(request)
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "invalid or expired token")
        raise AssertionError


def test_the_joining_side_refuses_a_server_of_another_ca_and_sends_nothing(
    cluster: tuple[Path, Proc, str], other_ca: Path, tmp_path: Path
) -> None:
    """A server with a controller certificate of another CA (an impostor) never sees the token or the CSR."""
    home, _, _ = cluster
    t = token(home, "runner", "pinned")
    impostor = Impostor()
    server = grpc.server(futures.ThreadPoolExecutor(2))
    controller_pb2_grpc.add_JoinServicer_to_server(impostor, server)
    key, crt, ca = ((other_ca / f).read_bytes() for f in ("controller.key", "controller.crt", "ca.crt"))
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, crt + ca)]))
    server.start()
    try:
        out = dtask(tmp_path / "box", "certs", "join", f"127.0.0.1:{port}", "--token", t)
    finally:
        server.stop(0)
    assert out.returncode == 4
    assert "is not the controller this token is for" in out.stderr and "nothing was sent" in out.stderr
    assert impostor.requests == []
    assert not (tmp_path / "box" / "certs").exists() or not list((tmp_path / "box" / "certs").iterdir())
    # The token is still good for the real controller.
    assert any(ln.startswith(t[:6]) and " valid " in ln for ln in dtask(home, "certs", "tokens").stdout.splitlines())


def test_joining_is_refused_while_it_is_disabled(home: Path, tmp_path: Path) -> None:
    t = token(home, "runner", "early")
    ctl, join = start_joinable(home)  # a join address, but no --allow-join
    try:
        ctl.wait_for(r"joining disabled, refusing joins on 127\.0\.0\.1:\d+")
        out = dtask(tmp_path / "box", "certs", "join", join, "--token", t)
        assert out.returncode == 4
        assert "joining is disabled on this controller" in out.stderr and "--allow-join" in out.stderr
    finally:
        ctl.stop()
    # Without a join address nothing listens: the joining side says what to turn on.
    port = free_port_range(1)[0]
    out = dtask(tmp_path / "box", "certs", "join", f"127.0.0.1:{port}", "--token", t)
    assert out.returncode == 4 and "connection refused" in out.stderr and "--allow-join" in out.stderr
    assert any(ln.startswith(t[:6]) and " valid " in ln for ln in dtask(home, "certs", "tokens").stdout.splitlines())


def test_the_join_port_serves_join_only(cluster: tuple[Path, Proc, str]) -> None:
    """The join port takes callers without a certificate, so it serves nothing but Join; the Controller port
    still demands a client certificate."""
    home, ctl, join = cluster
    ca = (home / "certs" / "ca.crt").read_bytes()
    with grpc.secure_channel(join, grpc.ssl_channel_credentials(ca)) as ch:
        stub = controller_pb2_grpc.ControllerStub(ch)
        for call, req in [
            (stub.WhoAmI, pb.WhoAmIRequest()),
            (stub.ListTasks, pb.ListTasksRequest()),
            (stub.SubmitTasks, pb.SubmitTasksRequest()),
            (controller_pb2_grpc.CertificatesStub(ch).RevokeCertificate, pb.RevokeCertificateRequest(target="x")),
        ]:
            with pytest.raises(grpc.RpcError) as err:
                call(req, timeout=10)
            assert err.value.code() is grpc.StatusCode.UNIMPLEMENTED
    with grpc.secure_channel(ctl.address, grpc.ssl_channel_credentials(ca)) as ch:
        with pytest.raises(grpc.RpcError) as err:
            controller_pb2_grpc.ControllerStub(ch).WhoAmI(pb.WhoAmIRequest(), timeout=10)
        assert err.value.code() is grpc.StatusCode.UNAVAILABLE


def test_an_operator_token_gives_a_certificate_that_submits(cluster: tuple[Path, Proc, str], tmp_path: Path) -> None:
    home, ctl, join = cluster
    t = token(home, "operator", "alice", "--ttl", "10m")
    laptop = tmp_path / "laptop"
    out = dtask(laptop, "certs", "join", join, "--token", t)
    assert out.returncode == 0, out.stderr
    assert "joined as operator alice" in out.stdout
    me = dtask(laptop, "--controller", ctl.address, "status")
    assert me.returncode == 0 and "operator" in me.stdout and "alice" in me.stdout, me.stdout + me.stderr
    [tid] = operator(laptop, ctl.address).submit(TaskSpec(name="from-laptop", shell="true", labels={"who": "nobody"}))
    assert tid


def test_a_revoked_runner_is_cut_off_and_refused_again(cluster: tuple[Path, Proc, str], tmp_path: Path) -> None:
    """Revoking ends the runner's open session at once (it stops, as on any refusal), its attempt is lost as
    a lost runner's would be, and a new connection with the certificate is refused."""
    home, ctl, join = cluster
    box = tmp_path / "box"
    assert dtask(box, "certs", "join", join, "--token", token(home, "runner", "doomed")).returncode == 0
    runner = runner_proc(box, ctl.address, "doomed", "--label", "who=doomed")
    c = operator(home, ctl.address)
    [tid] = c.submit(TaskSpec(name="long", shell="echo started; sleep 60", labels={"who": "doomed"}))
    try:
        for chunk in c.logs(tid, follow=True):  # until the attempt runs
            if b"started" in chunk:
                break
        revoked = dtask(home, "--controller", ctl.address, "certs", "revoke", "runner/doomed")
        assert revoked.returncode == 0, revoked.stderr
        assert "ended 1 open stream(s)" in revoked.stdout
        assert runner.popen.wait(20) == 1
        assert any("was revoked on" in ln and "UNAUTHENTICATED" in ln for ln in runner.lines)
        [task] = c.wait([tid], timeout=30)
        assert task.state is TaskState.LOST
        again = runner_proc(box, ctl.address, "doomed", wait=False)
        assert again.popen.wait(20) == 1
        assert any("was revoked on" in ln for ln in again.lines)
    finally:
        runner.stop()


def test_revoking_ends_an_open_watch_and_refuses_new_calls(cluster: tuple[Path, Proc, str], tmp_path: Path) -> None:
    home, ctl, join = cluster
    laptop = tmp_path / "laptop"
    assert dtask(laptop, "certs", "join", join, "--token", token(home, "viewer", "lost-laptop")).returncode == 0
    viewer = tls(laptop / "certs", "viewer")
    channel = sync_channel(ctl.address, viewer)
    stub = controller_pb2_grpc.ControllerStub(channel)
    stream = stub.Watch(pb.WatchRequest(), timeout=60)
    next(stream)  # the snapshot: the Watch is open
    ended: list[grpc.RpcError] = []

    def drain() -> None:
        try:
            for _ in stream:
                pass
        except grpc.RpcError as exc:
            ended.append(exc)

    reader = threading.Thread(target=drain)
    reader.start()
    out = operator(home, ctl.address)
    from dtask_client.certificates import revoke_certificate

    recorded, closed = revoke_certificate(out, "lost-laptop")
    assert [(r.role, r.name) for r in recorded] == [("viewer", "lost-laptop")] and closed == 1
    reader.join(20)
    assert ended and ended[0].code() is grpc.StatusCode.UNAUTHENTICATED
    assert "was revoked on" in (ended[0].details() or "")
    with pytest.raises(grpc.RpcError) as err:
        stub.WhoAmI(pb.WhoAmIRequest(), timeout=10)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    channel.close()
    # A new connection is refused too; other certificates carry on.
    with sync_channel(ctl.address, viewer) as fresh, pytest.raises(grpc.RpcError) as err:
        controller_pb2_grpc.ControllerStub(fresh).ListTasks(pb.ListTasksRequest(), timeout=10)
    assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert out.whoami().role == "operator"
    # An operator cannot cut off the certificate it calls with.
    own = dtask(home, "--controller", ctl.address, "certs", "revoke", "operator/operator")
    assert own.returncode != 0 and "the certificate this call is made with" in own.stderr


def test_revocations_persist_across_a_restart_and_work_offline(home: Path, tmp_path: Path) -> None:
    ctl, join = start_joinable(home, "--allow-join")
    laptops = [tmp_path / "one", tmp_path / "two"]
    try:
        for laptop, name in zip(laptops, ("one", "two"), strict=True):
            assert dtask(laptop, "certs", "join", join, "--token", token(home, "viewer", name)).returncode == 0
        assert dtask(home, "--controller", ctl.address, "certs", "revoke", "one").returncode == 0
    finally:
        ctl.stop()
    # With the controller stopped, revoking writes the list it loads when it starts.
    offline = dtask(home, "certs", "revoke", "--offline", "viewer/two")
    assert offline.returncode == 0 and "revoked" in offline.stdout, offline.stderr
    lo, hi = free_port_range()
    again = start_dtask([*FAST, "controller", "--host", "127.0.0.1", "--port-range", f"{lo}-{hi}"], home)
    try:
        for laptop in laptops:
            with (
                sync_channel(again.address, tls(laptop / "certs", "viewer")) as ch,
                pytest.raises(grpc.RpcError) as err,
            ):
                controller_pb2_grpc.ControllerStub(ch).WhoAmI(pb.WhoAmIRequest(), timeout=10)
            assert err.value.code() is grpc.StatusCode.UNAUTHENTICATED
        with sync_channel(again.address, tls(home / "certs", "viewer")) as ch:
            assert controller_pb2_grpc.ControllerStub(ch).WhoAmI(pb.WhoAmIRequest(), timeout=10).role == "viewer"
    finally:
        again.stop()
    listed = dtask(home, "certs", "list").stdout.splitlines()
    assert sum(1 for ln in listed if " revoked " in ln) == 2


def runner_status(address: str, certs: Path, role: str) -> grpc.RpcError | None:
    """Call the Runner service's Status with a certificate: the error, or None when it answered."""
    with sync_channel(address, tls(certs, role)) as ch:
        try:
            runner_pb2_grpc.RunnerStub(ch).Status(rpb.StatusRequest(), timeout=10)
        except grpc.RpcError as exc:
            return exc
    return None


def test_a_runner_refuses_what_the_controller_revoked_even_after_a_restart_alone(
    cluster: tuple[Path, Proc, str], tmp_path: Path
) -> None:
    """The controller tells its runners every revoked certificate (in the Welcome, and at once when one is
    revoked later): the Runner service refuses them, and still does when it restarts without a controller."""
    home, ctl, join = cluster
    early, late = tmp_path / "early", tmp_path / "late"
    assert dtask(early, "certs", "join", join, "--token", token(home, "viewer", "early")).returncode == 0
    assert dtask(late, "certs", "join", join, "--token", token(home, "operator", "late")).returncode == 0
    assert dtask(home, "--controller", ctl.address, "certs", "revoke", "viewer/early").returncode == 0
    runner = runner_proc(home, ctl.address, "gate", "--label", "who=gate")
    try:
        runner.wait_for(r"now refuses \d+ more revoked certificate\(s\): .*viewer/early")  # (and the module's others)
        err = runner_status(runner.address, early / "certs", "viewer")
        assert err is not None and err.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "was revoked on" in (err.details() or "")
        assert runner_status(runner.address, late / "certs", "operator") is None
        # Revoked while the runner is connected: refused as soon as the runner hears of it.
        assert dtask(home, "--controller", ctl.address, "certs", "revoke", "operator/late").returncode == 0
        runner.wait_for(r"now refuses 1 more revoked certificate\(s\): operator/late")
        with sync_channel(runner.address, tls(late / "certs", "operator")) as ch, pytest.raises(grpc.RpcError) as drain:
            runner_pb2_grpc.RunnerStub(ch).Drain(rpb.RunnerDrainRequest(), timeout=10)
        assert drain.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert runner_status(runner.address, home / "certs", "viewer") is None
    finally:
        runner.stop()
    # Restarted with no controller to hear from: the list it was told is still refused.
    alone = runner_proc(home, "127.0.0.1:1", "gate", wait=False)
    alone.wait_for(r"listening on")
    try:
        for certs, role in ((early / "certs", "viewer"), (late / "certs", "operator")):
            err = runner_status(alone.address, certs, role)
            assert err is not None and err.code() is grpc.StatusCode.UNAUTHENTICATED, role
        assert runner_status(alone.address, home / "certs", "viewer") is None
    finally:
        alone.stop()
