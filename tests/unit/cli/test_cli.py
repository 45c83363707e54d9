"""`dtask` command parsing, human output, JSON shapes and error exit codes (stand-in client)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result
from dtask_cli.submit_cmd import memory_mb, seconds
from dtask_client import Conflict, ControllerUnavailable, NotFound, PermissionDenied
from dtask_common.exitcodes import CERTIFICATE, CONFLICT, INVALID, NOT_FOUND, PERMISSION, UNAVAILABLE, USAGE
from dtask_common.models import Resources, TaskSpec, TaskState

from tests.unit.cli.fakes import FakeController, specs_file

Run = Callable[..., Result]
ESC = "\x1b["


def test_submit_file_prints_ids(run: Run, fake: FakeController, tmp_path: Path) -> None:
    f = specs_file(tmp_path, '[[task]]\nname = "t"\ncommand = "echo {x}"\n[task.matrix]\nx = [1, 2]\n')
    r = run("submit", str(f))
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == ["100", "101"]
    assert [s.shell for s in fake.submitted[0]] == ["echo 1", "echo 2"]


def test_submit_command_after_dashdash_with_every_flag(run: Run, fake: FakeController) -> None:
    r = run(
        "submit",
        "--name",
        "hello",
        "--cpus",
        "1.5",
        "--memory",
        "2G",
        "--gpus",
        "1",
        "--priority",
        "7",
        "--retries",
        "2",
        "--timeout",
        "10m",
        "--label",
        "zone=a",
        "--tag",
        "x",
        "--tag",
        "y",
        "--after",
        "12",
        "--progress",
        "tqdm",
        "--env",
        "A=1",
        "--cwd",
        "/w",
        "--",
        "python",
        "train.py",
        "--lr",
        "0.1",
    )
    assert r.exit_code == 0, r.output
    [spec] = fake.submitted[0]
    assert spec.argv == ("python", "train.py", "--lr", "0.1") and spec.shell == ""
    assert spec.name == "hello" and spec.resources == Resources(cpus=1.5, memory_mb=2048, gpus=1)
    assert (spec.priority, spec.max_retries, spec.timeout_s) == (7, 2, 600.0)
    assert dict(spec.labels) == {"zone": "a"} and spec.tags == ("x", "y") and spec.depends_on == ("12",)
    assert spec.progress == "tqdm" and dict(spec.env) == {"A": "1"} and spec.cwd == "/w"
    assert r.stdout.strip() == "100"


def test_submit_single_quoted_command_runs_in_a_shell(run: Run, fake: FakeController) -> None:
    r = run("submit", "--json", "--", "echo hi | wc -c")
    assert r.exit_code == 0, r.output
    assert fake.submitted[0][0].shell == "echo hi | wc -c"
    assert json.loads(r.stdout) == {"ids": ["100"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit"], "give one task file"),
        (["submit", "a.toml", "--", "echo"], "not both"),
        (["submit", "--"], "nothing after `--`"),
        (["submit", "--gpus", "1", "x.toml"], "--gpus applies to `-- CMD`"),
        (["submit", "--memory", "lots", "--", "x"], "is not a size"),
        (["submit", "--timeout", "soon", "--", "x"], "is not a duration"),
        (["submit", "--label", "novalue", "--", "x"], "KEY=VALUE"),
        (["tasks", "--state", "bogus"], "'bogus' is not a state"),
        (["tasks", "--state", "runing"], "(did you mean 'running'?)"),
    ],
)
def test_usage_errors(run: Run, fake: FakeController, args: list[str], message: str) -> None:
    r = run(*args)
    assert r.exit_code == USAGE, r.output
    assert message in r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr  # one line, no usage block
    assert "--help`)" in r.stderr and r.stdout == ""
    assert not fake.submitted


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("localhost", "controller address 'localhost' has no port; use HOST:PORT, e.g. localhost:50051"),
        ("localhost:50O51", "port '50O51' is not a number from 1 to 65535"),
        ("localhost:99999", "port '99999' is not a number from 1 to 65535"),
        (":50051", "controller address ':50051' has no host"),
        ("http://ctrl:50051", "give HOST:PORT without a scheme"),
        ("::1", "write an IPv6 address in brackets, e.g. [::1]:50051"),
    ],
)
def test_bad_controller_address_is_a_usage_error(run: Run, address: str, message: str) -> None:
    r = run("--controller", address, "tasks")
    assert r.exit_code == USAGE, r.output
    assert r.stderr.startswith(f"error: controller address {address!r}") and message in r.stderr
    assert r.stderr.count("\n") == 1


def test_good_controller_addresses_pass() -> None:
    from dtask_client.errors import check_address

    for a in ("localhost:50051", "10.0.0.5:1", "[::1]:50051", "ctrl.example.org:65535"):
        assert check_address(a) == a


def test_non_utf8_command_line_bytes_are_field_errors() -> None:
    from dtask_client import InvalidTask
    from dtask_client._specs import specs_of

    bad = "caf\udce9"  # what Python makes of the byte 0xe9 in argv under a UTF-8 locale
    with pytest.raises(InvalidTask) as info:
        specs_of([TaskSpec(name="n", argv=("echo", bad), env={"A": bad})])
    fields = [(e.field, e.index) for e in info.value.errors]
    assert fields == [("argv[1]", 0), ("env.A", 0)]
    assert "is not valid UTF-8 (byte 0xe9)" in info.value.errors[0].message


def test_unexpected_exception_is_one_line(run: Run, fake: FakeController) -> None:
    fake.fail = RuntimeError("boom")
    r = run("tasks")
    assert r.exit_code == 1
    assert r.stderr == "error: internal error: RuntimeError: boom (set DTASK_DEBUG=1 for the traceback)\n"


def test_certs_issue_out_lists_every_file_and_where_to_copy(run: Run, tmp_path: Path) -> None:
    d, out = tmp_path / "certs", tmp_path / "gpu1"
    assert run("--certs", str(d), "certs", "init").exit_code == 0
    r = run("--certs", str(d), "certs", "issue", "--role", "runner", "--name", "gpu1", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert r.stdout.split() == [
        "wrote",
        str(out / "runner-gpu1.crt"),
        "wrote",
        str(out / "runner-gpu1.key"),
        "wrote",
        str(out / "ca.crt"),
    ]
    assert "copy runner-gpu1.crt, runner-gpu1.key, ca.crt into $DTASK_HOME/certs/ on the runner machine" in r.stderr
    assert (out.stat().st_mode & 0o777, (out / "runner-gpu1.key").stat().st_mode & 0o777) == (0o700, 0o600)
    r = run("--certs", str(d), "certs", "init", "--host", "ctrl.example.org")
    assert "restart a running controller" in r.stderr
    r = run("--certs", str(d), "certs", "issue", "--role", "operator", "--name", "alice", "--out", str(out))
    assert "--certs DIR --cert DIR/operator-alice.crt" in r.stderr
    assert "EXPIRED" not in run("--certs", str(d), "certs", "show").stdout


def test_invalid_task_file_names_file_task_and_field(run: Run, fake: FakeController, tmp_path: Path) -> None:
    f = specs_file(tmp_path, '[[task]]\nname = "a"\ncommand = "x"\npriority = "high"\ncolour = 1\n')
    r = run("submit", str(f))
    assert r.exit_code == INVALID
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {f}: task 'a' (#1): unknown key 'colour'")
    assert f"{f}: task 'a' (#1): priority: must be an integer, got 'high'" in lines[1]
    assert "Traceback" not in r.output and not fake.submitted


def test_invalid_flag_task_is_rejected_locally(run: Run, fake: FakeController) -> None:
    r = run("submit", "--retries", "1000", "--", "x")
    assert r.exit_code == INVALID and "max_retries: must be an integer from 0 to 100" in r.stderr


def test_tasks_table_and_filters(run: Run, fake: FakeController) -> None:
    r = run("tasks")
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:5] == ["ID", "NAME", "STATE", "TRIES", "EXECUTOR"]
    assert ESC not in r.stdout  # no colour when not a terminal
    row = {ln.split()[0]: ln for ln in lines[1:]}
    assert "succeeded" in row["1"] and "failed" in row["2"] and "RuntimeError: nan" in row["2"]
    assert " 2 " in row["2"]  # two tries
    assert "45%" in row["3"] and "9/20" in row["3"] and "Epoch 1" in row["3"]
    # columns are aligned: every STATE cell starts at the same offset
    col = lines[0].index("STATE")
    assert all(ln[col:].split()[0] in {s.value for s in TaskState} for ln in lines[1:])
    r = run("tasks", "--state", "finished", "--tag", "sweep", "--executor", "r1", "--name", "train")
    assert r.exit_code == 0
    states, tag, executor, name = fake.calls[-1][1]
    assert set(states) == {TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED, TaskState.LOST}
    assert (tag, executor, name) == ("sweep", "r1", "train")


def test_tasks_colours_on_a_terminal(run: Run, fake: FakeController) -> None:
    r = run("tasks", color=True)
    assert f"{ESC}32msucceeded" in r.stdout and f"{ESC}31mfailed" in r.stdout


def test_tasks_json_shape(run: Run, fake: FakeController) -> None:
    r = run("tasks", "--json")
    data = json.loads(r.stdout)
    assert [t["id"] for t in data] == ["1", "2", "3", "4"]
    t = data[1]
    assert set(t) == {
        "id",
        "name",
        "params",
        "state",
        "spec",
        "submitted_at",
        "dispatched_at",
        "finished_at",
        "duration_s",
        "executor",
        "attempts",
        "progress",
        "result",
        "error",
        "stale_since",
        "usage",
    }
    assert t["state"] == "failed" and len(t["attempts"]) == 2 and t["attempts"][1]["executor"] == "r2"
    assert t["spec"]["argv"] == ["python", "train.py"] and t["spec"]["max_retries"] == 1
    assert t["submitted_at"] == "2023-11-14T22:12:20.000Z"
    assert data[2]["progress"]["percent"] == 45.0 and data[0]["result"] == {"eval_loss": 0.12}


def test_task_detail_and_json(run: Run, fake: FakeController) -> None:
    r = run("task", "2")
    assert r.exit_code == 0
    assert "RuntimeError: nan" in r.stdout and "2 (max_retries 1)" in r.stdout  # attempts, retries allowed
    assert "EXECUTOR" in r.stdout and "r2" in r.stdout
    assert json.loads(run("task", "2", "--json").stdout)["id"] == "2"


def test_logs_writes_raw_bytes(run: Run, fake: FakeController) -> None:
    r = run("logs", "3", "-f")
    assert r.exit_code == 0
    assert r.stdout_bytes == b"line 1\n\xffbad utf8\n"
    assert fake.calls[-1] == ("logs", ("3", 0, True))


def test_wait_exit_codes(run: Run, fake: FakeController) -> None:
    r = run("wait", "1", "3")
    assert r.exit_code == 0, r.output
    assert fake.calls[-1] == ("wait", (["1", "3"], None))
    r = run("wait")
    assert r.exit_code == 1 and "1 of 4 tasks did not succeed" in r.stderr
    data = json.loads(run("wait", "--json", "2").stdout)
    assert data[0]["state"] == "failed"


def test_export_to_file(run: Run, fake: FakeController, tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    r = run("export", str(out))
    assert r.exit_code == 0 and "exported 4 tasks" in r.stderr
    data = json.loads(out.read_text())
    assert set(data) == {"exported_at", "controller", "tasks"}
    assert data["controller"] == "127.0.0.1:50051" and len(data["tasks"]) == 4
    assert data["exported_at"].endswith("Z")
    assert json.loads(run("export").stdout)["tasks"][0]["id"] == "1"


def test_executors_and_usage(run: Run, fake: FakeController) -> None:
    r = run("executors")
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATE", "BUSY"]
    assert "r1" in lines[1] and "idle" in lines[1] and "38%" in lines[1] and "zone=a" in lines[1]
    assert "dead" in lines[2] and "0,1" in lines[2]
    data = json.loads(run("executors", "--json").stdout)
    assert data[0]["capacity"] == {"slots": 2, "cpus": 0.0, "memory_mb": 0, "gpus": []}
    assert data[0]["last_usage"]["per_cpu_percent"] == [50.0, 25.0]
    r = run("usage")
    assert "PER-CORE" in r.stdout and "50 25" in r.stdout and "dead" in r.stdout
    data = json.loads(run("usage", "--json", "--history", "5").stdout)
    assert data[0]["executor"] == "r1" and len(data[0]["history"]) == 1 and data[1]["dead"] is True
    assert fake.calls[-1] == ("usage", (None, 5))


def test_commands(run: Run, fake: FakeController) -> None:
    r = run("cancel", "3", "4")
    assert r.exit_code == 0 and r.stdout.count("cancelled") == 2
    assert "pending" in run("retry", "2").stdout
    assert "draining" in run("drain", "r1").stdout
    assert fake.calls[-1] == ("drain", ("r1", False))
    assert "paused" in run("pause").stdout and "dispatching" in run("resume").stdout
    s = run("status")
    assert "you are operator" in s.stdout and "1 pending" in s.stdout


def test_cancel_reports_each_failure(run: Run, fake: FakeController) -> None:
    r = run("cancel", "3", "99")
    assert r.exit_code == NOT_FOUND
    assert "3  eval  cancelled" in r.stdout and "99: no task 99" in r.stderr


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (
            ControllerUnavailable(
                "cannot reach the controller at 127.0.0.1:50051: start one with `make run-controller`"
            ),
            UNAVAILABLE,
        ),
        (PermissionDenied("CancelTask denied for role viewer (viewer): it needs the operator role"), PERMISSION),
        (NotFound("no task 42"), NOT_FOUND),
        (Conflict("task 1 is succeeded; only pending or running tasks can be cancelled"), CONFLICT),
    ],
)
@pytest.mark.parametrize("args", [["tasks"], ["cancel", "1"], ["task", "1"], ["executors", "--json"]])
def test_client_errors_are_one_line_with_exit_codes(
    run: Run, fake: FakeController, error: Exception, code: int, args: list[str]
) -> None:
    fake.fail = error
    r = run(*args)
    assert r.exit_code == code
    assert r.stderr.startswith(f"error: {error}") and r.stderr.count("\n") == 1
    assert r.stdout == ""


def test_missing_certificates(run: Run, tmp_path: Path) -> None:
    r = run("--certs", str(tmp_path / "none"), "tasks")
    assert r.exit_code == CERTIFICATE
    assert r.stderr.startswith("error: CA certificate ") and "dtask certs init" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_sizes_and_durations() -> None:
    assert [memory_mb(x) for x in ("512", "512M", "4G", "4GiB", "1024K", "0")] == [512, 512, 4096, 4096, 1, 0]
    assert [seconds(x) for x in ("90", "90s", "10m", "2h", "1.5d")] == [90, 90, 600, 7200, 129600]


def test_certs_ensure_leaves_copied_certificates_alone(run: Run, tmp_path: Path) -> None:
    """A runner machine holds ca.crt and its own certificate but no CA key: nothing is created there."""
    d = tmp_path / "certs"
    d.mkdir()
    (d / "ca.crt").write_text("copied")
    r = run("--certs", str(d), "certs", "ensure")
    assert r.exit_code == 0 and r.output == ""
    assert sorted(p.name for p in d.iterdir()) == ["ca.crt"] and (d / "ca.crt").read_text() == "copied"
    fresh = tmp_path / "fresh"
    r = run("--certs", str(fresh), "certs", "ensure")
    assert r.exit_code == 0 and "created a local CA" in r.output and "Running on several machines" in r.output
    assert {"ca.crt", "operator.crt", "viewer.crt", "controller.crt"} <= {p.name for p in fresh.iterdir()}
    assert "ca.key" not in {p.name for p in fresh.iterdir()} and (tmp_path / "fresh-ca" / "ca.key").is_file()


def test_wait_progress_line() -> None:
    from dtask_cli.tasks_cmd import _progress_line
    from dtask_client import WaitCounts

    from tests.unit.cli.fakes import sample_tasks

    line = _progress_line(WaitCounts.of(sample_tasks()))
    assert line.startswith("██████████··········  2/4 finished".replace("  ", " "))
    assert "\x1b[33m1 pending\x1b[0m" in line and "\x1b[31m1 failed\x1b[0m" in line


def test_runner_with_a_bad_controller_address_stops_at_once(run: Run) -> None:
    """Without a port gRPC would dial :443 and retry for ever; the runner refuses to start instead."""
    r = run("runner", "--controller", "ctrl.example.org", "--name", "x1")
    assert r.exit_code == USAGE and r.stderr.startswith("error: controller address 'ctrl.example.org' has no port")
    r = run("runner", "--controller", "localhost:50051", "--name", "x1", "--gpus", "foo")
    assert r.exit_code == 1 and r.stderr == "error: runner.gpus must be auto, none or GPU indexes like 0,1; got 'foo'\n"


def test_global_position_of_a_command_option_is_explained(run: Run, fake: FakeController) -> None:
    r = run("--json", "tasks")
    assert r.exit_code == USAGE
    assert r.stderr == "error: --json is an option of `dtask tasks`: put it after the command (dtask tasks --json)\n"


def test_add_task_keyword_typo_names_the_field() -> None:
    from dtask_client._specs import spec_from_fields

    with pytest.raises(TypeError, match=r"unknown task fields nmae \(did you mean 'name' for 'nmae'\?\)"):
        spec_from_fields("echo", {"nmae": "x"})


def test_version(run: Run) -> None:
    from dtask_common import __version__

    r = run("--version")
    assert r.exit_code == 0 and r.stdout == f"dtask {__version__}\n"


def test_relative_script_without_cwd_gets_a_note(
    run: Run, fake: FakeController, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "train.py").write_text("")
    monkeypatch.chdir(tmp_path)
    r = run("submit", "--", "python3", "scripts/train.py")
    assert r.exit_code == 0 and r.stdout.strip() == "100"
    assert "note: scripts/train.py is relative to this directory" in r.stderr and '--cwd "$PWD"' in r.stderr
    r = run("submit", "--cwd", str(tmp_path), "--", "python3 scripts/train.py --lr 1")
    assert r.exit_code == 0 and "note:" not in r.stderr


def test_wait_with_nothing_to_wait_for_says_so(run: Run, fake: FakeController) -> None:
    fake.task_list = []
    r = run("wait")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == "no tasks to wait for\n"


def test_too_big_task_file_says_to_split_it(run: Run, fake: FakeController, tmp_path: Path) -> None:
    from dtask_client import ResourceExhausted

    f = specs_file(tmp_path, '[[task]]\nname = "t"\ncommand = "echo {x}"\n[task.matrix]\nx = [1, 2]\n')
    fake.fail = ResourceExhausted("2 tasks in one request; at most 1 are accepted per call")
    r = run("submit", str(f))
    assert r.exit_code == 1
    assert r.stderr.startswith(f"error: {f}: 2 tasks in one request; at most 1 are accepted per call: split the task")


def test_certs_init_moves_a_ca_key_of_the_earlier_layout(run: Run, tmp_path: Path) -> None:
    """A CA key among the certificates (where earlier versions kept it) moves to the CA dir with one line."""
    d = tmp_path / "certs"
    assert run("--certs", str(d), "certs", "init").exit_code == 0
    assert (tmp_path / "ca" / "ca.key").is_file() and not (d / "ca.key").exists()
    (tmp_path / "ca" / "ca.key").rename(d / "ca.key")
    r = run("--certs", str(d), "certs", "issue", "--role", "operator", "--name", "bob")
    assert r.exit_code == 0, r.output
    assert f"moved the CA key {d / 'ca.key'} to {tmp_path / 'ca' / 'ca.key'}" in r.stderr
    assert not (d / "ca.key").exists() and (tmp_path / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    r = run("--certs", str(d), "certs", "init")
    assert r.exit_code == 0 and "moved" not in r.stderr and f"the CA key is in {tmp_path / 'ca'}" in r.stdout


def test_usage_and_executors_say_the_same_state_words(run: Run, fake: FakeController) -> None:
    def states(text: str) -> dict[str, str]:
        return {line.split()[0]: line.split()[1] for line in text.splitlines()[1:] if line.strip()}

    assert states(run("usage").stdout) == states(run("executors").stdout) == {"r1": "idle", "r2": "dead"}
    by_name = {u["executor"]: u["state"] for u in json.loads(run("usage", "--json").stdout)}
    assert by_name == {e["name"]: e["state"] for e in json.loads(run("executors", "--json").stdout)}
