"""The `dtask` command end to end: a real controller and runners, real subprocesses, real certificates."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.e2e.cli.conftest import Dtask, run_dtask
from tests.integration.client.cluster import Cluster
from tests.support import BIN, free_port_range

PY = sys.executable
REPO = Path(__file__).resolve().parents[3]


def lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip()]


def test_submit_file_wait_tasks_task_logs_export(dtask: Dtask, tmp_path: Path) -> None:
    f = tmp_path / "jobs.toml"
    f.write_text(
        '[defaults]\ntags = ["cli-file"]\n\n'
        '[[task]]\nname = "hello-{n}"\n'
        "command = \"echo hello {n}; echo '***** eval metrics *****'; echo '  score = {n}'\"\n"
        "[task.matrix]\nn = [1, 2]\n\n"
        '[[task]]\nname = "boom"\ncommand = "echo about to fail; exit 3"\nmax_retries = 1\n'
    )
    r = dtask("submit", str(f))
    assert r.returncode == 0, r.stderr
    ids = r.stdout.split()
    assert len(ids) == 3 and all(i.isdigit() for i in ids)
    w = dtask("wait", *ids)
    assert w.returncode == 1, w.stderr  # boom failed
    assert "1 of 3 tasks did not succeed" in w.stderr
    table = {ln.split()[0]: ln for ln in lines(w.stdout)[1:]}
    assert "succeeded" in table[ids[0]] and "failed" in table[ids[2]] and " 2 " in table[ids[2]]
    assert dtask("wait", ids[0], ids[1]).returncode == 0

    t = dtask("tasks", "--tag", "cli-file", "--state", "failed")
    assert [ln.split()[0] for ln in lines(t.stdout)[1:]] == [ids[2]]
    data = json.loads(dtask("tasks", "--tag", "cli-file", "--json").stdout)
    assert [d["id"] for d in data] == ids
    assert data[0]["result"] == {"score": 1} and data[0]["spec"]["tags"] == ["cli-file"]
    assert data[2]["state"] == "failed" and len(data[2]["attempts"]) == 2
    assert data[2]["attempts"][0]["exit_code"] == 3 and data[2]["finished_at"].endswith("Z")

    detail = dtask("task", ids[2]).stdout
    assert "boom" in detail and "failed" in detail and "2 (max_retries 1)" in detail
    assert json.loads(dtask("task", ids[0], "--json").stdout)["name"] == "hello-1[n=1]"

    assert dtask("logs", ids[0]).stdout.startswith("hello 1\n")
    assert "about to fail" in dtask("logs", ids[2], "--attempt", "1").stdout

    out = tmp_path / "export.json"
    e = dtask("export", str(out))
    assert e.returncode == 0, e.stderr
    exported = json.loads(out.read_text())
    assert set(exported) == {"exported_at", "controller", "tasks"}
    assert set(ids) <= {t["id"] for t in exported["tasks"]}
    assert json.loads(dtask("export").stdout)["tasks"][0]["spec"]["command"]


def test_submit_command_and_follow_logs(dtask: Dtask) -> None:
    code = "import time\nfor i in range(5):\n    print('tick', i, flush=True)\n    time.sleep(0.2)"
    r = dtask("submit", "--name", "ticker", "--tag", "cli-cmd", "--retries", "1", "--", PY, "-u", "-c", code)
    assert r.returncode == 0, r.stderr
    [tid] = r.stdout.split()
    f = dtask("logs", tid, "-f")
    assert f.returncode == 0 and f.stdout.split("\n")[:5] == [f"tick {i}" for i in range(5)]
    d = json.loads(dtask("task", tid, "--json").stdout)
    assert d["spec"]["argv"][:2] == [PY, "-u"] and d["spec"]["max_retries"] == 1
    assert dtask("wait", tid).returncode == 0


def test_cancel_retry_and_conflict(dtask: Dtask) -> None:
    [tid] = dtask("submit", "--name", "sleeper", "--", "sleep 60").stdout.split()
    c = dtask("cancel", tid)
    assert c.returncode == 0 and tid in c.stdout
    w = dtask("wait", tid, "--json")
    assert w.returncode == 1 and json.loads(w.stdout)[0]["state"] == "cancelled"
    again = dtask("cancel", tid)
    assert again.returncode == 8 and again.stderr.startswith("error: ") and len(lines(again.stderr)) == 1
    assert f"dtask retry {tid}" in again.stderr  # the fix a CLI user can type
    r = dtask("retry", tid)
    assert r.returncode == 0 and tid in r.stdout
    dtask("cancel", tid)
    assert dtask("wait", tid, "--timeout", "20").returncode == 1


def test_wait_timeout(dtask: Dtask) -> None:
    [tid] = dtask("submit", "--", "sleep 30").stdout.split()
    w = dtask("wait", tid, "--timeout", "0.5")
    assert w.returncode == 9 and "unfinished after 0.5 s" in w.stderr
    dtask("cancel", tid)


def test_executors_usage_pause_drain_json(dtask: Dtask) -> None:
    ex = json.loads(dtask("executors", "--json").stdout)
    assert {"r1", "r2"} <= {e["name"] for e in ex}
    assert set(ex[0]) >= {"name", "state", "capacity", "labels", "address", "version", "running_task_ids"}
    table = dtask("executors").stdout
    assert lines(table)[0].split()[:2] == ["NAME", "STATE"] and "r1" in table and "r2" in table
    u = json.loads(dtask("usage", "--json", "--history", "3").stdout)
    assert {"r1", "r2"} <= {x["executor"] for x in u} and all(len(x["history"]) <= 3 for x in u)
    assert "PER-CORE" in dtask("usage").stdout
    assert "draining" in dtask("drain", "r2").stdout
    # `usage` says an executor's state in the words of `executors`, in the table and in JSON
    said = {line.split()[0]: line.split()[1] for line in lines(dtask("usage").stdout)[1:]}
    assert said["r2"] == "draining" and said["r1"] in ("idle", "busy")
    assert {x["executor"]: x["state"] for x in json.loads(dtask("usage", "--json").stdout)}["r2"] == "draining"
    assert "draining" not in dtask("drain", "--undo", "r2").stdout
    assert "paused" in dtask("pause").stdout
    assert "dispatching" in dtask("resume").stdout
    s = json.loads(dtask("status", "--json").stdout)
    assert s["role"] == "operator" and s["queue"]["paused"] is False


def test_errors_one_line_with_exit_codes(live: Cluster, dtask: Dtask, tmp_path: Path, other_ca: Path) -> None:
    def one_line(r: object, code: int, *needles: str) -> None:
        assert r.returncode == code, (r.returncode, r.stderr)  # type: ignore[attr-defined]
        err = r.stderr  # type: ignore[attr-defined]
        assert err.startswith("error: ") and len(lines(err)) == 1 and "Traceback" not in err, err
        for n in needles:
            assert n in err, err

    lo, _ = free_port_range(1)
    one_line(run_dtask(live.home, f"127.0.0.1:{lo}", "tasks"), 3, f"127.0.0.1:{lo}", "make run-controller")
    one_line(dtask("--certs", str(tmp_path / "nowhere"), "tasks"), 4, "nowhere/ca.crt", "dtask certs init")
    one_line(dtask("--certs", str(other_ca), "tasks"), 3, "TLS handshake", "CA")
    one_line(dtask("--cert", str(live.certs / "viewer.crt"), "submit", "--", "true"), 5, "viewer", "operator")
    one_line(dtask("task", "987654321"), 6, "987654321")
    one_line(dtask("logs", "987654321"), 6)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[task]]\nname = "x"\ncommand = "true"\ntimeout_s = "soon"\n')
    one_line(dtask("submit", str(bad)), 7, f"{bad}: task 'x' (#1): timeout_s: must be a number")
    viewer_reads = dtask("--cert", str(live.certs / "viewer.crt"), "tasks")
    assert viewer_reads.returncode == 0


def test_shell_through_a_pipe(dtask: Dtask) -> None:
    [tid] = dtask("submit", "--name", "for-shell", "--", "echo shell").stdout.split()
    assert dtask("wait", tid).returncode == 0
    r = dtask("shell", input=f"executors()\ntasks_finished()\nfinished()\ndtask.task('{tid}').state.value\n")
    assert r.returncode == 0, r.stderr
    assert "connected to" in r.stderr and "as operator" in r.stderr
    out = r.stdout
    assert "NAME" in out and "r1" in out and "r2" in out  # executors() as a table
    assert "for-shell" in out and "succeeded" in out and "tasks)" in out  # tasks_finished() as a table
    assert "'succeeded'" in out


def test_shell_names_of_the_original(dtask: Dtask) -> None:
    code = (
        "print(sorted(n for n in ('executors', 'finished', 'resource_usage', 'tasks', 'tasks_pending', "
        "'tasks_running', 'tasks_finished', 'add_task', 'add_tasks') if callable(globals()[n])))"
    )
    r = dtask("shell", "-c", code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("'") == 18


def test_follow_logs_of_a_task_that_has_not_started(live: Cluster, dtask: Dtask, tmp_path: Path) -> None:
    mark = tmp_path / "first-may-end"
    [first] = dtask("submit", "--name", "first", "--", f"while [ ! -e {mark} ]; do sleep 0.05; done").stdout.split()
    [second] = dtask("submit", "--name", "second", "--after", first, "--", "echo second ran").stdout.split()
    assert json.loads(dtask("task", second, "--json").stdout)["state"] == "pending"
    f = subprocess.Popen(
        [str(BIN / "dtask"), "logs", "-f", second],
        env=_env(live),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    mark.touch()
    out, err = f.communicate(timeout=30)
    assert f.returncode == 0, err
    assert out == "second ran\n"
    assert dtask("logs", second).stdout == "second ran\n"


def test_examples_chain_and_gpu_run(live: Cluster, dtask: Dtask) -> None:
    """examples/chain.toml runs in dependency order; examples/gpu.toml on a runner offering GPU indexes."""
    from tests.integration.client.cluster import start_runner, wait_for_executors

    gpubox = start_runner(live.home, live.address, "gpubox", 2, "--gpus", "0,1")
    try:
        wait_for_executors(live.address, live.certs, {"gpubox"})
        chain = dtask("submit", str(REPO / "examples" / "chain.toml")).stdout.split()
        gpu = dtask("submit", str(REPO / "examples" / "gpu.toml")).stdout.split()
        assert len(chain) == 5 and len(gpu) == 3
        w = dtask("wait", "--json", *chain, *gpu, timeout=90)
        assert w.returncode == 0, w.stdout + w.stderr
        tasks = {t["name"]: t for t in json.loads(w.stdout)}
        order = ["prepare", "train[lr=0.05]", "evaluate", "report"]
        starts = [tasks[n]["dispatched_at"] for n in order]
        assert starts == sorted(starts)
        assert tasks["evaluate"]["result"] == {"chain_score": 0.93}
        big = tasks["finetune-large"]
        assert big["executor"] == "gpubox" and sorted(big["attempts"][0]["gpu_ids"]) == [0, 1]
        assert "on GPUs 0,1" in dtask("logs", big["id"]).stdout
    finally:
        gpubox.stop()


def _env(live: Cluster) -> dict[str, str]:
    env = dict(os.environ, DTASK_HOME=str(live.home), DTASK_CONTROLLER=live.address, PYTHONUNBUFFERED="1")
    env.pop("DTASK_CONFIG", None)
    return env


def test_ctrl_c_during_logs_follow_and_wait_exits_130_quietly(live: Cluster, dtask: Dtask) -> None:
    [tid] = dtask("submit", "--name", "interrupted", "--", "echo started; sleep 60").stdout.split()
    try:
        logs = subprocess.Popen(
            [str(BIN / "dtask"), "logs", "-f", tid], env=_env(live), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert logs.stdout is not None
        assert logs.stdout.readline() == b"started\n"  # following: the task's first line arrived
        logs.send_signal(signal.SIGINT)
        _, err = logs.communicate(timeout=15)
        assert logs.returncode == 130 and b"Traceback" not in err and b"Aborted" not in err, err

        master, slave = pty.openpty()  # wait draws its progress line on a terminal: proof it is waiting
        wait = subprocess.Popen(
            [str(BIN / "dtask"), "wait", tid],
            env=_env(live),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
        )
        os.close(slave)
        seen = b""
        deadline = time.monotonic() + 20
        while b"running" not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([master], [], [], 1)[0]:
                seen += os.read(master, 4096)
        wait.send_signal(signal.SIGINT)
        assert wait.wait(15) == 130
        with contextlib.suppress(OSError):
            while select.select([master], [], [], 0.5)[0]:
                chunk = os.read(master, 4096)
                if not chunk:
                    break
                seen += chunk
        os.close(master)
        assert b"Traceback" not in seen and b"Aborted" not in seen, seen
        c = dtask("cancel", tid)  # a running task is stopped after the reply: the reply says so
        assert c.returncode == 0 and f"{tid}  interrupted  running (stopping: SIGTERM" in c.stdout, c.stdout
    finally:
        dtask("cancel", tid)


def test_shell_c_errors_are_one_line_with_exit_codes(dtask: Dtask) -> None:
    r = dtask("shell", "-c", "task('987654321')")
    assert r.returncode == 6 and r.stderr.startswith("error: no task with id '987654321'"), r.stderr
    assert "Traceback" not in r.stderr and len(lines(r.stderr)) == 1
    r = dtask("shell", "-c", "x = (")
    assert r.returncode == 2 and r.stderr.startswith("error: -c: ") and len(lines(r.stderr)) == 1, r.stderr
    r = dtask("shell", "-c", "x = finished()\nprint('finished:', x)\nx")
    assert r.returncode == 0 and r.stdout.splitlines()[0] in ("finished: True", "finished: False"), r.stderr
    r = dtask("shell", input="task('987654321')\nprint('still here')\n")
    assert r.returncode == 0 and "NotFound: no task with id '987654321'" in r.stderr
    assert "Traceback" not in r.stderr and "still here" in r.stdout


def test_command_line_mistakes(live: Cluster, dtask: Dtask, tmp_path: Path) -> None:
    r = dtask("submit", "--name", "latin1", "--", "echo", os.fsdecode(b"caf\xe9"))
    assert r.returncode == 7 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("error: task 'latin1' (#1): argv[1]: is not valid UTF-8 (byte 0xe9)")
    assert len(lines(r.stderr)) == 1
    r = dtask("--controller", "localhost", "tasks")
    assert r.returncode == 2 and "has no port" in r.stderr and len(lines(r.stderr)) == 1
    r = run_dtask(live.home, live.runners[0].address, "tasks")
    assert r.returncode == 1 and "is not a dtask controller (a runner's port?" in r.stderr, r.stderr

    with socket.socket() as srv:  # a web server where the controller was expected
        srv.bind(("127.0.0.1", 0))
        srv.listen()

        def answer() -> None:
            with contextlib.suppress(OSError):
                conn, _ = srv.accept()
                with conn:
                    conn.recv(4096)
                    conn.sendall(b"HTTP/1.0 400 Bad Request\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        r = run_dtask(live.home, f"127.0.0.1:{srv.getsockname()[1]}", "tasks")
    assert r.returncode == 3 and "answers, but not with TLS: it is not a dtask controller" in r.stderr, r.stderr


def test_runner_without_its_certificate_says_what_to_copy(live: Cluster, tmp_path: Path) -> None:
    """A second machine with only ca.crt copied: the runner names the files to fetch, creates nothing."""
    home = tmp_path / "gpu-box"
    (home / "certs").mkdir(parents=True)
    shutil.copy(live.certs / "ca.crt", home / "certs" / "ca.crt")
    r = run_dtask(home, None, "runner", "--controller", live.address, "--name", "gpu9", timeout=30)
    assert r.returncode == 4 and len(lines(r.stderr)) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "dtask certs issue --role runner --name gpu9 --out DIR" in r.stderr
    assert f"copy DIR/runner-gpu9.crt, DIR/runner-gpu9.key into {home / 'certs'}/" in r.stderr
    assert sorted(p.name for p in (home / "certs").iterdir()) == ["ca.crt"]


def test_services_check_their_own_certificate_before_serving(live: Cluster, tmp_path: Path, other_ca: Path) -> None:
    """A runner certificate from another CA, a controller without its certificate: one line, exit 4, at once."""
    home = tmp_path / "mixed"
    (home / "certs").mkdir(parents=True)
    shutil.copy(other_ca / "ca.crt", home / "certs" / "ca.crt")
    for ext in ("crt", "key"):
        shutil.copy(live.certs / f"runner-r1.{ext}", home / "certs" / f"runner-r1.{ext}")
    r = run_dtask(home, None, "runner", "--controller", live.address, "--name", "r1", timeout=30)
    assert r.returncode == 4 and len(lines(r.stderr)) == 1, r.stderr
    assert f"{home / 'certs' / 'runner-r1.crt'} was not issued by the CA" in r.stderr
    r = run_dtask(home, None, "controller", "--store", str(tmp_path / "c.db"), timeout=30)
    assert r.returncode == 4 and len(lines(r.stderr)) == 1, r.stderr
    assert "no controller certificate" in r.stderr and "on the machine that holds the CA" in r.stderr


def test_certificate_the_controller_refuses_or_that_expired(live: Cluster, tmp_path: Path, other_ca: Path) -> None:
    """A controller trusting another CA closes the connection: the error says the certificate may be refused."""
    from tests.support import LISTEN_RE, Proc

    picky = tmp_path / "picky"
    (picky / "certs").mkdir(parents=True)
    shutil.copy(other_ca / "ca.crt", picky / "certs" / "ca.crt")  # trusts clients of the other CA only
    for f in ("controller.crt", "controller.key"):
        shutil.copy(live.certs / f, picky / "certs" / f)
    lo, hi = free_port_range()
    code = (
        "import logging; logging.basicConfig(level=logging.INFO); from dtask_common import config; "
        "from dtask_controller.main import run; "
        f"run(config.load(None, {{'controller.host': '127.0.0.1', 'controller.port_range': '{lo}-{hi}'}}))"
    )
    # started past `dtask controller`, which would refuse its own certificate from another CA
    ctl = Proc(
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=dict(os.environ, DTASK_HOME=str(picky)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    )
    ctl.start_reader()
    ctl.address = f"127.0.0.1:{ctl.wait_for(LISTEN_RE.pattern).group(2)}"
    try:
        r = run_dtask(live.home, ctl.address, "tasks")
    finally:
        ctl.stop()
    assert r.returncode == 3 and len(lines(r.stderr)) == 1, r.stderr
    assert "closed the connection: it may refuse your certificate" in r.stderr

    expired = expired_operator(live.certs, tmp_path)
    r = run_dtask(live.home, live.address, "--cert", str(expired), "tasks")
    assert r.returncode == 4 and len(lines(r.stderr)) == 1, r.stderr
    assert f"{expired} expired on " in r.stderr and "dtask certs issue --role operator --name old" in r.stderr
    assert "operator/old; subject CN=old; EXPIRED " in run_dtask(live.home, None, "certs", "show", str(expired)).stdout


def expired_operator(certs_dir: Path, out: Path) -> Path:
    """An operator certificate from the cluster's CA that expired yesterday."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from dtask_common.roles import Role, role_uri

    ca = x509.load_pem_x509_certificate((certs_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((certs_dir.parent / "ca" / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(role_uri(Role.OPERATOR, "old"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    crt = out / "old.crt"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (out / "old.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return crt


def test_logs_follow_and_wait_carry_on_across_a_controller_restart(home: Path, tmp_path: Path) -> None:
    """A controller restart mid-command: `logs -f` goes on without repeating output, `wait` keeps waiting."""
    from tests.integration.client.cluster import wait_for_executors
    from tests.support import runner_proc, start_controller

    port, _ = free_port_range(1)
    ctl = start_controller(home, port_range=(port, port))
    runner = runner_proc(home, ctl.address, "r1", "--gpus", "none", wait=False)
    mark = tmp_path / "go-on"
    try:
        wait_for_executors(ctl.address, home / "certs", {"r1"})
        [tid] = run_dtask(
            home,
            ctl.address,
            "submit",
            "--name",
            "survivor",
            "--",
            f"echo first; while [ ! -e {mark} ]; do sleep 0.05; done; echo second; echo third",
        ).stdout.split()
        env = dict(os.environ, DTASK_HOME=str(home), DTASK_CONTROLLER=ctl.address, PYTHONUNBUFFERED="1")
        env.pop("DTASK_CONFIG", None)
        logs = subprocess.Popen(
            [str(BIN / "dtask"), "logs", "-f", tid], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert logs.stdout is not None and logs.stdout.readline() == b"first\n"
        master, slave = pty.openpty()  # wait's progress line on a terminal shows it is watching
        wait = subprocess.Popen(
            [str(BIN / "dtask"), "wait", tid],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        werr = read_until(master, b"1 running")
        ctl.stop()
        ctl = start_controller(home, port_range=(port, port))
        wait_for_executors(ctl.address, home / "certs", {"r1"})
        mark.touch()
        out, err = logs.communicate(timeout=30)
        assert logs.returncode == 0, err
        assert out == b"second\nthird\n"  # the rest, nothing twice
        assert b"waiting for the controller at" in err and b"Traceback" not in err
        wout, _ = wait.communicate(timeout=30)
        werr += read_until(master, None)
        os.close(master)
        assert wait.returncode == 0, werr
        assert "survivor  succeeded" in wout
        assert b"waiting for the controller at" in werr and b"Traceback" not in werr
    finally:
        runner.stop()
        ctl.stop()


def read_until(fd: int, needle: bytes | None, timeout: float = 20.0) -> bytes:
    """Read a pty until needle appears (None: until the other side closed it)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle is None or needle not in seen:
        assert time.monotonic() < deadline, seen
        if select.select([fd], [], [], 0.5)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the writer closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen
