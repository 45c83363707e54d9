"""Hostile values refused where they enter (ids, numbers) and shown without a crash where they are stored."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from dtask_cli import output
from dtask_common import config, ids, taskfile
from dtask_common.export import export_tasks, to_json
from dtask_common.humanize import clock, duration
from dtask_common.models import Attempt, Progress, Resources, Task, TaskSpec, TaskState
from dtask_common.taskfile import TaskFileError
from dtask_tui.app import TuiApp
from dtask_tui.state import ConnState, Layout, TuiState

from tests.unit.tui.fakes import NOW, FakeController, snapshot_event, task, task_event

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize("text", ["1", "12", "9223372036854775807"])
def test_canonical_ids_are_ids(text: str) -> None:
    assert ids.is_task_id(text) and ids.task_id(text) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "it is empty"),
        ("010", "without leading zeros (10)"),
        ("0", "start at 1"),
        ("-1", "without a sign"),
        ("+1", "without a sign"),
        (" 1", "remove the spaces"),
        ("1\n", "remove the spaces"),
        ("9223372036854775808", "larger than the largest task id (9223372036854775807)"),
        ("99999999999999999999999", "larger than the largest task id"),
        ("\u00b2", "decimal numbers"),
        ("\u0661\u0662", "decimal numbers"),
        ("1e3", "decimal numbers"),
        ("x" * 10_000, "decimal numbers"),
    ],
)
def test_anything_else_is_refused_naming_the_field(text: str, why: str) -> None:
    assert not ids.is_task_id(text)
    with pytest.raises(ids.BadTaskId) as exc:
        ids.task_id(text, "depends_on[0]")
    message = str(exc.value)
    assert message.startswith("depends_on[0] ") and why in message
    assert len(message) < 300  # a long text is quoted cut


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "+nan", "1e400", "9" * 400])
@pytest.mark.parametrize("field", ["timeout_s", "resources.cpus"])
def test_task_file_refuses_non_finite_numbers(field: str, value: str) -> None:
    line = f"timeout_s = {value}" if field == "timeout_s" else f"resources = {{ cpus = {value} }}"
    with pytest.raises(TaskFileError) as exc:
        taskfile.parse(f'[[task]]\nname = "t"\ncommand = "true"\n{line}\n', "t.toml")
    assert exc.value.problems == [exc.value.problems[0]]
    assert exc.value.problems[0].startswith(f"t.toml: task 't' (#1): {field}: must be a finite number")


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        ("memory_mb = 9223372036854775808", "resources.memory_mb: must be at most 9223372036854775807"),
        ("gpus = 2147483648", "resources.gpus: must be at most 2147483647"),
        ("gpus = -1", "resources.gpus: must be >= 0"),
    ],
)
def test_task_file_refuses_integers_the_wire_cannot_carry(resources: str, field: str) -> None:
    with pytest.raises(TaskFileError) as exc:
        taskfile.parse(f'[[task]]\ncommand = "true"\nresources = {{ {resources} }}\n', "t.toml")
    assert exc.value.problems == [f"t.toml: task #1: {field}" + exc.value.problems[0].split(field)[1]]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (TaskSpec(shell="x", timeout_s=INF), "timeout_s"),
        (TaskSpec(shell="x", timeout_s=NAN), "timeout_s"),
        (TaskSpec(shell="x", timeout_s=10**400), "timeout_s"),
        (TaskSpec(shell="x", resources=Resources(cpus=NAN)), "resources.cpus"),
        (TaskSpec(shell="x", resources=Resources(cpus=-INF)), "resources.cpus"),
        (TaskSpec(shell="x", resources=Resources(memory_mb=2**63)), "resources.memory_mb"),
        (TaskSpec(shell="x", resources=Resources(gpus=2**31)), "resources.gpus"),
    ],
)
def test_spec_validation_names_the_bad_number(spec: TaskSpec, field: str) -> None:
    assert [e.field for e in spec.errors()] == [field]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("controller.dead_after_s", "inf"),
        ("controller.lost_after_s", "nan"),
        ("runner.cpus", "inf"),
        ("client.timeout_s", "1e400"),
        ("runner.kill_grace_s", "-1"),
        ("runner.memory_mb", "99999999999999999999"),
        ("controller.usage_history", "-5"),
    ],
)
def test_config_refuses_non_finite_negative_and_huge_numbers(
    key: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DTASK_CONFIG", raising=False)
    with pytest.raises(config.ConfigError) as exc:
        config.load(None, {key: value})
    assert key in str(exc.value)


def test_export_and_json_never_write_infinity_or_nan() -> None:
    t = task(1, TaskState.FAILED)
    t.spec = dataclasses.replace(t.spec, timeout_s=INF, resources=Resources(cpus=NAN))
    t.attempts[0].cpu_time_s = -INF
    t.result = {"loss": NAN, "nested": [INF, 1.5]}
    t.progress = Progress(percent=NAN, eta_s=INF, rate=INF)
    text = to_json(export_tasks([t], "x:1", now=NOW))
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the export"))
    [row] = data["tasks"]
    assert row["spec"]["timeout_s"] is None and row["spec"]["resources"]["cpus"] is None
    assert row["result"] == {"loss": None, "nested": [None, 1.5]}
    assert row["attempts"][0]["cpu_time_s"] is None
    json.loads(to_json(output.task_json(t)), parse_constant=lambda c: pytest.fail(c))


def test_timestamps_no_calendar_can_show_are_shown_as_unknown() -> None:
    for at in (INF, NAN, 1e300):
        assert clock(at) == "?"
        a = Attempt("1", 1, dispatched_at=at, finished_at=at, state=TaskState.SUCCEEDED)
        json.loads(to_json(export_tasks([Task("1", TaskSpec(shell="x"), attempts=[a])], now=NOW)))
    assert duration(INF) == "∞" and duration(NAN) == "-" and duration(1e300) == ">100y"


def stored_with_non_finite_numbers() -> Task:
    """A task as a store written before numbers were checked may hold it, or a runner may report it."""
    t = task(7, TaskState.RUNNING, name="odd-7", progress=Progress("epoch", 3, 10, NAN, INF, INF, INF, NOW))
    t.spec = dataclasses.replace(t.spec, timeout_s=INF, resources=Resources(cpus=NAN, memory_mb=0, gpus=0))
    t.attempts[0].cpu_time_s = INF
    t.attempts[0].dispatched_at = NOW - 5
    return t


def test_cli_shows_a_stored_non_finite_number() -> None:
    t = stored_with_non_finite_numbers()
    assert "∞" in output.task_detail(t, now=NOW)
    assert "odd-7" in output.tasks_table([t], now=NOW)


@pytest.mark.parametrize("layout", [Layout.HORIZONTAL, Layout.VERTICAL, Layout.TABLE])
def test_tui_shows_a_stored_non_finite_number(layout: Layout) -> None:
    st = TuiState("127.0.0.1:50051", clock=lambda: NOW)
    st.apply(snapshot_event())
    st.apply(task_event(2, stored_with_non_finite_numbers()))
    st.set_connection(ConnState.CONNECTED)
    app = TuiApp(FakeController(), st)
    st.set_layout(layout)
    st.focus_task = "t7"
    lines = app.render_text((160, 48))
    assert any("odd-7" in line for line in lines)
    if layout is not Layout.TABLE:
        assert any("timeout ∞" in line for line in lines)


def test_client_refuses_a_number_the_wire_cannot_carry_before_sending() -> None:
    from dtask_client import InvalidTask
    from dtask_client import _calls as conn

    specs = [TaskSpec(shell="x"), TaskSpec(name="g", shell="x", resources=Resources(gpus=2**40))]
    with pytest.raises(InvalidTask) as exc:
        conn.submit(specs)
    assert [(e.index, e.field) for e in exc.value.errors] == [(1, "resources.gpus")]
    assert "1 of 2 tasks cannot be sent" in exc.value.message
