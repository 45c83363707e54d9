"""proto <-> model conversion round trips."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from dtask.v1 import controller_pb2 as pb
from dtask_common import convert
from dtask_common import events as ev
from dtask_common import models as m

REPO = Path(__file__).resolve().parents[2]


def full_task() -> m.Task:
    spec = m.TaskSpec(
        name="train[lr=0.1]",
        argv=("python", "train.py", "--lr", "0.1"),
        cwd="/w",
        env={"A": "1"},
        resources=m.Resources(cpus=1.5, memory_mb=2048, gpus=2),
        labels={"zone": "a"},
        priority=5,
        max_retries=2,
        timeout_s=30.5,
        depends_on=("prep",),
        tags=("sweep",),
        progress="regex",
        progress_pattern=r"(?P<step>\d+)",
        result_marker="RESULT:",
        params={"lr": 0.1, "model": "cnn", "n": 3, "on": True, "whole": 1.0},
    )
    attempt = m.Attempt(
        task_id="7",
        number=1,
        executor="r1",
        gpu_ids=(0, 1),
        dispatched_at=1700000000.25,
        finished_at=1700000100.5,
        state=m.TaskState.FAILED,
        exit_code=1,
        signal=None,
        error="RuntimeError: x",
        result={"loss": 0.5, "nested": {"a": [1, "b"]}},
        peak_rss_bytes=1 << 30,
        cpu_time_s=12.5,
        duration_s=100.25,
    )
    return m.Task(
        id="7",
        spec=spec,
        state=m.TaskState.RUNNING,
        submitted_at=1699999999.0,
        attempts=[attempt, m.Attempt(task_id="7", number=2, executor="r2", dispatched_at=1700000200.0)],
        progress=m.Progress(
            label="epoch", step=3, total=10, percent=30.0, rate=1.5, elapsed_s=2.0, eta_s=4.5, updated_at=1700000201.0
        ),
        result=None,
        error="",
    )


def test_task_round_trip() -> None:
    t = full_task()
    assert convert.task_from_pb(convert.task_to_pb(t)) == t


def test_params_keep_their_types_and_order_over_the_wire() -> None:
    back = convert.task_from_pb(convert.task_to_pb(full_task())).spec.params
    assert list(back) == ["lr", "model", "n", "on", "whole"]
    assert [type(v) for v in back.values()] == [float, str, int, bool, float]


def test_whole_numbers_of_a_result_read_back_as_ints() -> None:
    """A Struct carries every number as a double: epoch = 2 came back 2.0; a whole number now reads as an int."""
    result = {"epoch": 2, "loss": 0.25, "big": 2**53, "huge": 2.0**60, "nested": {"steps": [1, 2.5]}, "neg": -3}
    t = m.Task(id="1", spec=m.TaskSpec(shell="true"), result=result)
    back = convert.task_from_pb(convert.task_to_pb(t)).result
    assert back == result
    assert type(back["epoch"]) is int and type(back["neg"]) is int and type(back["big"]) is int
    assert type(back["loss"]) is float and type(back["huge"]) is float  # beyond 2**53 a double is not exact
    assert [type(x) for x in back["nested"]["steps"]] == [int, float]


def test_minimal_task_round_trip_keeps_absent_fields_absent() -> None:
    t = m.Task(id="1", spec=m.TaskSpec(shell="true"))
    back = convert.task_from_pb(convert.task_to_pb(t))
    assert back == t and back.progress is None and back.submitted_at is None


def test_usage_and_executor_round_trip() -> None:
    u = m.UsageSample(
        at=5.5,
        cpu_percent=12.0,
        per_cpu_percent=(1.0, 2.0),
        ram_percent=40.0,
        swap_percent=None,
        load_avg=(0.1, 0.2, 0.3),
        gpus=(m.GpuUsage(index=0, name="A100", util_percent=99.0, memory_percent=50.0, memory_total_bytes=80),),
        ram_total_bytes=100,
        ram_used_bytes=40,
    )
    assert convert.usage_from_pb(convert.usage_to_pb(u)) == u
    e = m.ExecutorInfo(
        name="r1",
        state=m.ExecutorState.DRAINING,
        capacity=m.Capacity(slots=2, cpus=8, memory_mb=1024, gpus=(0, 1)),
        labels={"a": "b"},
        address="h:1",
        version="0.1.0",
        protocol_version=1,
        connected_since=1.0,
        last_seen=2.0,
        running_task_ids=("3",),
        last_usage=u,
    )
    assert convert.executor_from_pb(convert.executor_to_pb(e)) == e


def test_attempt_result_and_events_round_trip() -> None:
    r = m.AttemptResult(
        task_id="1",
        attempt=2,
        state=m.TaskState.SUCCEEDED,
        exit_code=0,
        result={"acc": 0.9},
        started_at=1.0,
        finished_at=2.0,
        peak_rss_bytes=5,
        cpu_time_s=0.5,
    )
    assert convert.attempt_result_from_pb(convert.attempt_result_to_pb(r)) == r
    task = full_task()
    bodies: list[ev.EventBody] = [
        ev.Snapshot(
            tasks=[task],
            executors=[m.ExecutorInfo(name="r1")],
            usage=[m.ExecutorUsage(executor="r1")],
            queue=m.QueueStatus(paused=True, pending=3),
            last=True,
        ),
        ev.TaskEvent(kind=ev.TaskEventKind.DISPATCHED, task=task),
        ev.ProgressEvent(task_id="7", attempt=2, progress=m.Progress(step=1)),
        ev.ExecutorEvent(kind=ev.ExecutorEventKind.DEAD, executor=m.ExecutorInfo(name="r2")),
        ev.UsageEvent(executor="r1", sample=m.UsageSample(at=1.0)),
        ev.QueueEvent(queue=m.QueueStatus(running=1)),
    ]
    for i, body in enumerate(bodies):
        e = ev.WatchEvent(seq=i + 1, at=10.0 + i, body=body)
        assert convert.event_from_pb(convert.event_to_pb(e)) == e


def test_state_enums_complete() -> None:
    for s in m.TaskState:
        assert convert.state_from_pb(convert.state_to_pb(s)) is s
    for x in m.ExecutorState:
        assert convert.executor_state_from_pb(convert.executor_state_to_pb(x)) is x


def test_runner_session_messages_round_trip() -> None:
    spec = m.TaskSpec(name="a", argv=("true",))
    result = m.AttemptResult(task_id="1", attempt=1, state=m.TaskState.SUCCEEDED, exit_code=0)
    hello = m.Hello(
        name="r1",
        address="h:1",
        capacity=m.Capacity(slots=2, gpus=(0,)),
        labels={"a": "b"},
        running=(m.RunningAttempt("2", 1, 5.0),),
        unreported=(result,),
        version="0.1.0",
        protocol_version=1,
        draining=True,
        instance_id="p1",
        containment="cgroup",
    )
    commands: list[m.Command] = [
        m.WelcomeCmd(
            "ctrl",
            "r1",
            2.0,
            (("1", 1, 10),),
            output_tail_bytes=1 << 20,
            revoked=(m.Revoked("ab12", "viewer", "v", 5.5),),
        ),
        m.AssignCmd("1", 1, spec, (0,)),
        m.CancelCmd("1", 1, "stop"),
        m.AckCmd("1", 1),
        m.ReadOutputCmd(7, "1", 1, 100, 4096),
        m.RevokedCmd((m.Revoked("ab12", "viewer", "v", 5.5), m.Revoked("cd34", "operator", "o", 6.0))),
    ]
    for cmd in commands:
        assert convert.command_from_pb(convert.command_to_pb(cmd)) == cmd
    reports: list[m.Report] = [
        hello,
        m.UsageSample(at=1.0, cpu_percent=3.0),
        m.ProgressReport("1", 1, m.Progress(step=2)),
        m.OutputChunk("1", 1, 0, b"x"),
        result,
        m.DrainReport(True),
        m.RefusalReport("1", 1, "full"),
    ]
    for report in reports:
        assert convert.report_from_pb(convert.report_to_pb(report)) == report
    assert convert.hello_from_pb(convert.hello_to_pb(hello), name="r2") == dataclasses.replace(hello, name="r2")


def test_unknown_session_messages_raise() -> None:
    with pytest.raises(convert.UnknownMessage, match="runner message without a body"):
        convert.report_from_pb(pb.RunnerMessage())
    with pytest.raises(convert.UnknownMessage, match="controller message without a body"):
        convert.command_from_pb(pb.ControllerMessage())
    with pytest.raises(ValueError, match="watch event without a body"):
        convert.event_from_pb(pb.WatchEvent(seq=3))
    with pytest.raises(ValueError, match="unknown task event kind 99"):
        convert.event_from_pb(pb.WatchEvent(seq=3, task=pb.TaskEvent(kind=99)))  # type: ignore[arg-type]


_SESSION_MESSAGES = (
    "RunnerMessage",
    "ControllerMessage",
    "Hello",
    "Welcome",
    "Assign",
    "Cancel",
    "Ack",
    "UsageReport",
    "ProgressUpdate",
    "AttemptFinished",
    "DrainState",
    "AssignmentRefused",
    "OutputOffset",
)


def test_only_convert_builds_runner_session_messages() -> None:
    """Every runner <-> controller message is built in dtask_common.convert, nowhere else."""
    pattern = re.compile(r"\.(" + "|".join(_SESSION_MESSAGES) + r")\(")
    offenders = []
    for root in ("libs", "services", "clients", "bench"):
        for path in (REPO / root).rglob("*.py"):
            rel = str(path.relative_to(REPO))
            if "dtask_common/convert/" in rel or rel.endswith("_pb2.py") or rel.endswith("_pb2_grpc.py"):
                continue
            offenders += [f"{rel}: {hit.group(0)}" for hit in pattern.finditer(path.read_text())]
    assert offenders == []


def test_every_field_of_a_spec_round_trips_with_its_model_type() -> None:
    # Every field set, to a value other than its default: spec_from_pb reads only the fields a message sets.
    spec = dataclasses.replace(
        full_task().spec, shell="echo hi", lost_after_s=90.0, venv="/opt/venv", conda="base", progress="tqdm"
    )
    assert all(
        getattr(spec, f.name) != f.default for f in dataclasses.fields(spec) if f.default is not dataclasses.MISSING
    )
    back = convert.spec_from_pb(convert.spec_to_pb(spec))
    assert back == spec
    assert isinstance(back.argv, tuple) and isinstance(back.tags, tuple) and isinstance(back.depends_on, tuple)
    assert type(back.env) is dict and type(back.labels) is dict and type(back.params) is dict
    wire = {f.name for f in convert.spec_to_pb(spec).DESCRIPTOR.fields}
    assert wire == {f.name for f in dataclasses.fields(m.TaskSpec)}  # a new field on one side only fails here
    empty = convert.spec_from_pb(convert.spec_to_pb(m.TaskSpec()))
    assert empty == m.TaskSpec() and empty.progress == "auto"
