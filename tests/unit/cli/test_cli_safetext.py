"""Every CLI command prints the controller's strings with control and bidi characters escaped (piped)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import Result
from dtask_client import NotFound
from dtask_common.models import (
    Attempt,
    Capacity,
    ExecutorInfo,
    ExecutorState,
    Identity,
    Progress,
    Task,
    TaskSpec,
    TaskState,
)

from tests.unit.cli import fakes
from tests.unit.cli.fakes import NOW, FakeController

E = "\x1b]52;c;aGk=\x07\u202e\x9b"  # clipboard write, reversed text, a C1 CSI
SEEN = "\\x1b]52;c;aGk=\\x07\\u202e\\x9b"
FORBIDDEN = {
    *map(chr, range(0x20)),
    "\x7f",
    *map(chr, range(0x80, 0xA0)),
    *"\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c",
} - {"\n"}


def hostile_task(state: TaskState = TaskState.FAILED) -> Task:
    spec = TaskSpec(
        name=f"n{E}",
        shell=f"echo {E}",
        cwd=f"/w{E}",
        env={f"K{E}": f"v{E}"},
        labels={"l": E},
        tags=(f"t{E}",),
        depends_on=(f"d{E}",),
    )
    return Task(
        "9",
        spec,
        state,
        NOW - 10,
        [Attempt("9", 1, f"r{E}", (), NOW - 9, NOW - 8, state, exit_code=1, error=f"boom {E}\nnext")],
        progress=Progress(label=f"p{E}", step=1, total=2),
        result={f"k{E}": f"v{E}"},
        error=f"boom {E}\nnext",
    )


def hostile_executor() -> ExecutorInfo:
    return ExecutorInfo(
        f"x{E}",
        ExecutorState.IDLE,
        Capacity(slots=1),
        {f"z{E}": E},
        f"a{E}",
        f"v{E}",
        1,
        NOW - 1,
        NOW,
        (f"9{E}",),
        None,
    )


def clean(r: Result) -> str:
    assert not FORBIDDEN & set(r.output), repr(r.output)
    return r.output


@pytest.mark.parametrize(
    "args",
    [
        ("tasks",),
        ("task", "9"),
        ("wait",),
        ("cancel", "9"),
        ("retry", "9"),
        ("executors",),
        ("usage",),
        ("drain", "x"),
        ("status",),
    ],
)
def test_commands_escape_what_the_controller_sent(
    fake: FakeController, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]
) -> None:
    fake.task_list = [hostile_task()]
    monkeypatch.setattr(fakes, "sample_executors", lambda: [hostile_executor()])
    monkeypatch.setattr(FakeController, "whoami", lambda self: Identity("viewer", f"me{E}", f"c{E}", f"v{E}"))
    out = clean(run(*args))
    assert SEEN in out


def test_task_detail_shows_every_field_escaped(fake: FakeController, run: Callable[..., Result]) -> None:
    fake.task_list = [hostile_task(TaskState.RUNNING)]
    out = clean(run("task", "9"))
    for text in (
        f"n{SEEN}",
        f"echo {SEEN}",
        f"/w{SEEN}",
        f"K{SEEN}=v{SEEN}",
        f"t{SEEN}",
        f"d{SEEN}",
        f"p{SEEN}",
        f"k{SEEN}=v{SEEN}",
        f"boom {SEEN}\\nnext",
        f"r{SEEN}",
    ):
        assert text in out, text


def test_error_messages_escaped(fake: FakeController, run: Callable[..., Result]) -> None:
    fake.fail = NotFound(f"no task {E}")
    r = run("task", "9")
    assert r.exit_code == 6
    assert f"no task {SEEN}" in clean(r)


def test_json_is_exact_and_has_no_raw_c1_or_bidi(fake: FakeController, run: Callable[..., Result]) -> None:
    import json

    fake.task_list = [hostile_task()]
    out = clean(run("tasks", "--json"))
    assert json.loads(out)[0]["name"] == f"n{E}"


def test_tables_align_wide_characters_in_cells(fake: FakeController, run: Callable[..., Result]) -> None:
    from dtask_common.safetext import cells

    fake.task_list = [hostile_task(), Task("10", TaskSpec(name="日本語のタスク", shell="true"), TaskState.PENDING, NOW)]
    lines = clean(run("tasks")).splitlines()
    state_at = {
        cells(line[: line.index(word)]) for line, word in zip(lines, ("STATE", "failed", "pending"), strict=True)
    }
    assert len(state_at) == 1
