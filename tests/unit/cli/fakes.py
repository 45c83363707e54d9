"""A stand-in Controller for CLI parsing and formatting tests (the real one is tested end to end)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dtask_client import WaitCounts
from dtask_client import _specs as conn
from dtask_common.models import (
    Attempt,
    Capacity,
    ExecutorInfo,
    ExecutorState,
    ExecutorUsage,
    Identity,
    Progress,
    QueueStatus,
    Resources,
    Task,
    TaskSpec,
    TaskState,
    UsageSample,
)

NOW = 1_700_000_000.0


def sample_tasks() -> list[Task]:
    ok = Task(
        "1",
        TaskSpec(name="train[lr=0.1]", shell="python train.py --lr 0.1", tags=("sweep",)),
        TaskState.SUCCEEDED,
        NOW - 60,
        [Attempt("1", 1, "r1", (), NOW - 50, NOW - 40, TaskState.SUCCEEDED, exit_code=0, duration_s=10.0)],
        result={"eval_loss": 0.12},
    )
    bad = Task(
        "2",
        TaskSpec(name="train[lr=1.0]", argv=("python", "train.py"), max_retries=1),
        TaskState.FAILED,
        NOW - 60,
        [
            Attempt("2", 1, "r1", (), NOW - 50, NOW - 45, TaskState.FAILED, exit_code=1, error="RuntimeError: nan"),
            Attempt("2", 2, "r2", (), NOW - 44, NOW - 40, TaskState.FAILED, exit_code=1, error="RuntimeError: nan"),
        ],
        error="RuntimeError: nan",
    )
    run = Task(
        "3",
        TaskSpec(name="eval", shell="sleep 9", resources=Resources(gpus=1)),
        TaskState.RUNNING,
        NOW - 30,
        [Attempt("3", 1, "r2", (0,), NOW - 20)],
        progress=Progress(label="Epoch 1", step=9, total=20, percent=45.0, eta_s=12.0),
    )
    pend = Task("4", TaskSpec(name="report", shell="true", depends_on=("3",)), TaskState.PENDING, NOW - 10)
    return [ok, bad, run, pend]


def sample_executors() -> list[ExecutorInfo]:
    u = UsageSample(
        at=NOW,
        cpu_percent=37.5,
        per_cpu_percent=(50.0, 25.0),
        ram_percent=61.0,
        swap_percent=0.0,
        load_avg=(0.5, 0.4, 0.3),
    )
    return [
        ExecutorInfo(
            "r1",
            ExecutorState.IDLE,
            Capacity(slots=2),
            {"zone": "a"},
            "127.0.0.1:50100",
            "0.1.0",
            1,
            NOW - 100,
            NOW,
            (),
            u,
        ),
        ExecutorInfo(
            "r2",
            ExecutorState.DEAD,
            Capacity(slots=1, gpus=(0, 1)),
            {},
            "",
            "0.1.0",
            1,
            NOW - 100,
            NOW - 10,
            ("3",),
            None,
        ),
    ]


@dataclass
class FakeController:
    """Records calls and returns canned models; `fail` makes every call raise that error."""

    address: str = "127.0.0.1:50051"
    task_list: list[Task] = field(default_factory=sample_tasks)
    submitted: list[list[TaskSpec]] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    fail: Exception | None = None
    output: list[bytes] = field(default_factory=lambda: [b"line 1\n", b"\xffbad utf8\n"])

    def _rec(self, name: str, arg: Any = None) -> None:
        self.calls.append((name, arg))
        if self.fail is not None:
            raise self.fail

    def __enter__(self) -> FakeController:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def close(self) -> None:
        pass

    def whoami(self) -> Identity:
        self._rec("whoami")
        return Identity("operator", "operator", "ctrl@test", "0.1.0")

    def tasks(
        self,
        states: Iterable[Any] | None = None,
        tag: str | None = None,
        executor: str | None = None,
        name_contains: str | None = None,
        *,
        name_prefix: str | None = None,
        params: Any = None,
    ) -> list[Task]:
        wanted = conn.states_of(states)
        self._rec("tasks", (wanted, tag, executor, name_contains))
        return [t for t in self.task_list if not wanted or t.state in wanted]

    def task(self, task_id: str) -> Task:
        self._rec("task", task_id)
        for t in self.task_list:
            if t.id == task_id:
                return t
        from dtask_client import NotFound

        raise NotFound(f"no task {task_id}")

    def submit(self, specs: Any) -> list[str]:
        self._rec("submit", specs)
        specs = conn.specs_of(specs)
        self.submitted.append(specs)
        return [str(100 + i) for i in range(len(specs))]

    def executors(self, include_gone: bool = False) -> list[ExecutorInfo]:
        self._rec("executors", include_gone)
        return sample_executors()

    def resource_usage(self, executor: str | None = None, history: int = 60) -> list[ExecutorUsage]:
        self._rec("usage", (executor, history))
        return [
            ExecutorUsage(e.name, e.dead, e.last_usage, (e.last_usage,) if e.last_usage else ())
            for e in sample_executors()
        ]

    def queue(self) -> QueueStatus:
        self._rec("queue")
        return QueueStatus(False, 1, 1, 1, 1, 0, 0)

    def cancel(self, task_id: str) -> Task:
        self._rec("cancel", task_id)
        t = self.task(task_id)
        t.state = TaskState.CANCELLED
        return t

    def retry(self, task_id: str) -> Task:
        self._rec("retry", task_id)
        t = self.task(task_id)
        t.state = TaskState.PENDING
        return t

    def drain(self, name: str, undrain: bool = False) -> ExecutorInfo:
        self._rec("drain", (name, undrain))
        e = sample_executors()[0]
        e.state = ExecutorState.IDLE if undrain else ExecutorState.DRAINING
        return e

    def pause(self) -> QueueStatus:
        self._rec("pause")
        return QueueStatus(paused=True, pending=3)

    def resume(self) -> QueueStatus:
        self._rec("resume")
        return QueueStatus(paused=False, pending=3)

    def logs(
        self,
        task_id: str,
        attempt: int = 0,
        follow: bool = False,
        *,
        tail_bytes: int = 0,
        on_notice: Callable[[str], None] | None = None,
        direct: bool | None = None,
    ) -> Iterator[bytes]:
        self._rec("logs", (task_id, attempt, follow))
        return iter(self.output)

    def wait(
        self,
        ids: Iterable[str] | None = None,
        timeout: float | None = None,
        on_change: Callable[[list[Task]], None] | None = None,
        on_counts: Callable[[WaitCounts], None] | None = None,
    ) -> list[Task]:
        self._rec("wait", (list(ids) if ids is not None else None, timeout))
        chosen = [t for t in self.task_list if ids is None or t.id in ids]
        for t in chosen:
            if not t.state.finished:
                t.state = TaskState.SUCCEEDED
        return chosen


def specs_file(tmp: Path, text: str) -> Path:
    p = tmp / "jobs.toml"
    p.write_text(text)
    return p
