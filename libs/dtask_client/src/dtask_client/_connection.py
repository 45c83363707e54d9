"""What the sync and asyncio clients share: settings, requests, conversions and the wait logic."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from dtask.v1 import controller_pb2 as pb
from dtask_common import config as config_mod
from dtask_common import convert, taskfile
from dtask_common import events as ev
from dtask_common.certs import CertError
from dtask_common.config import Config, ConfigError
from dtask_common.models import (
    FINISHED_STATES,
    ExecutorInfo,
    ExecutorUsage,
    FieldError,
    Identity,
    QueueStatus,
    Resources,
    Task,
    TaskSpec,
    TaskState,
)
from dtask_common.suggest import closest
from dtask_common.tls import TlsFiles

from dtask_client.errors import CertificateError, InvalidTask, NotFound, check_address

T = TypeVar("T")
PAGE_SIZE = 500
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Settings:
    """Where the controller is and which certificate to present."""

    address: str
    files: TlsFiles
    timeout: float


def resolve(address: str | None = None, *, certs: str | Path | None = None, cert: str | Path | None = None,
            key: str | Path | None = None, timeout: float | None = None, config: Config | None = None) -> Settings:
    """Apply the defaults the CLI uses: $DTASK_CONTROLLER, $DTASK_HOME/certs, the operator certificate."""
    if config is None:
        try:
            config = config_mod.load()
        except ConfigError as exc:
            raise CertificateError(f"cannot read the dtask configuration: {exc}", "CONFIG") from None
    addr = check_address(address or os.environ.get(config_mod.ENV_CONTROLLER) or config.client.controller)
    certs_dir = Path(certs).expanduser().absolute() if certs else config.certs_path
    default = TlsFiles.in_dir(certs_dir, "operator")
    cert_path = Path(cert).expanduser().absolute() if cert else default.cert
    if key:
        key_path = Path(key).expanduser().absolute()
    else:
        key_path = cert_path.with_suffix(".key") if cert else default.key
    files = TlsFiles(certs_dir / "ca.crt", cert_path, key_path)
    try:
        files.check()
    except CertError as exc:
        raise CertificateError(str(exc)) from None
    return Settings(addr, files, float(timeout if timeout is not None else config.client.timeout_s))


@dataclass(frozen=True)
class Call(Generic[T]):
    """One unary call: the stub method's name, its request and how to turn the reply into models."""

    method: str
    request: Any
    convert: Callable[[Any], T]


def whoami() -> Call[Identity]:
    return Call("WhoAmI", pb.WhoAmIRequest(), convert.identity_from_pb)


def executors(include_gone: bool) -> Call[list[ExecutorInfo]]:
    return Call("ListExecutors", pb.ListExecutorsRequest(include_gone=include_gone),
                lambda r: [convert.executor_from_pb(e) for e in r.executors])


def executor(name: str) -> Call[ExecutorInfo]:
    return Call("GetExecutor", pb.GetExecutorRequest(name=name), convert.executor_from_pb)


def finished() -> Call[bool]:
    return Call("IsFinished", pb.IsFinishedRequest(), lambda r: bool(r.finished))


def queue() -> Call[QueueStatus]:
    return Call("IsFinished", pb.IsFinishedRequest(), lambda r: convert.queue_from_pb(r.queue))


def resource_usage(executor: str | None, history: int) -> Call[list[ExecutorUsage]]:
    return Call("GetResourceUsage", pb.GetResourceUsageRequest(executor=executor or "", history=history),
                lambda r: [convert.executor_usage_from_pb(u) for u in r.executors])


def states_of(states: Iterable[TaskState | str] | None) -> list[TaskState]:
    """TaskStates from models or names ("running", "FAILED"); "finished" means every finished state."""
    out: list[TaskState] = []
    for s in states or ():
        if isinstance(s, TaskState):
            out.append(s)
            continue
        name = str(s).strip().lower()
        if name == "finished":
            out.extend(sorted(FINISHED_STATES, key=list(TaskState).index))
            continue
        try:
            out.append(TaskState(name))
        except ValueError:
            known = ", ".join([*(t.value for t in TaskState), "finished"])
            raise ValueError(f"unknown task state {s!r}; use one of {known}") from None
    return list(dict.fromkeys(out))


def list_tasks(states: list[TaskState], tag: str | None, executor: str | None, name_contains: str | None,
               page_token: str) -> Call[tuple[list[Task], str]]:
    req = pb.ListTasksRequest(states=[convert.state_to_pb(s) for s in states], tag=tag or "",
                              executor=executor or "", name_contains=name_contains or "",
                              page_size=PAGE_SIZE, page_token=page_token)
    return Call("ListTasks", req, lambda r: ([convert.task_from_pb(t) for t in r.tasks], r.next_page_token))


def task(task_id: str) -> Call[Task]:
    return Call("GetTask", pb.GetTaskRequest(task_id=str(task_id)), convert.task_from_pb)


def specs_of(specs: TaskSpec | Iterable[TaskSpec] | str | Path) -> list[TaskSpec]:
    """A spec, specs, or a task file path as a list of specs (a bad file raises InvalidTask)."""
    if isinstance(specs, (str, Path)):
        try:
            return taskfile.load(specs)
        except taskfile.TaskFileError as exc:
            raise InvalidTask(str(exc)) from None
    if isinstance(specs, TaskSpec):
        return [specs]
    out = list(specs)
    for s in out:
        if not isinstance(s, TaskSpec):
            raise TypeError(f"submit() takes TaskSpec objects or a task file path, got {type(s).__name__}")
    errors = [e for i, s in enumerate(out) for e in not_utf8(i, s)]
    if errors:
        raise InvalidTask(f"{len(errors)} task field{'s are' if len(errors) > 1 else ' is'} not UTF-8 text",
                          errors=errors)
    return out


def not_utf8(index: int, spec: TaskSpec) -> list[FieldError]:
    """A FieldError per string of the spec that cannot travel (e.g. undecodable bytes from a command line)."""
    values: list[tuple[str, str]] = [("name", spec.name), ("shell", spec.shell), ("cwd", spec.cwd),
                                      ("progress_pattern", spec.progress_pattern),
                                      ("result_marker", spec.result_marker)]
    values += [(f"argv[{i}]", a) for i, a in enumerate(spec.argv)]
    values += [(f"env.{k}", f"{k}={v}") for k, v in spec.env.items()]
    values += [(f"labels.{k}", f"{k}={v}") for k, v in spec.labels.items()]
    values += [(f"tags[{i}]", t) for i, t in enumerate(spec.tags)]
    values += [(f"depends_on[{i}]", d) for i, d in enumerate(spec.depends_on)]
    out = []
    for fieldname, text in values:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(text[exc.start])
            shown = f" (byte 0x{code - 0xDC00:02x})" if 0xDC80 <= code <= 0xDCFF else ""
            out.append(FieldError(fieldname, f"is not valid UTF-8{shown}; dtask sends text: produce such bytes "
                                  "inside the command (e.g. printf) or use a UTF-8 locale", index,
                                  spec.name.encode("utf-8", "replace").decode()))
    return out


def submit(specs: list[TaskSpec]) -> Call[list[str]]:
    try:
        tasks = convert.specs_to_pb(specs)
    except (ValueError, TypeError, OverflowError):  # a number the wire cannot carry (e.g. gpus=2**40)
        errors = [FieldError(e.field, e.message, i, s.name if isinstance(s.name, str) else "")
                  for i, s in enumerate(specs) for e in s.errors()]
        raise InvalidTask(f"{len({e.index for e in errors}) or 1} of {len(specs)} tasks cannot be sent: "
                          + "; ".join(str(e) for e in errors[:5]), errors=errors) from None
    return Call("SubmitTasks", pb.SubmitTasksRequest(tasks=tasks), lambda r: list(r.task_ids))


def cancel(task_id: str) -> Call[Task]:
    return Call("CancelTask", pb.CancelTaskRequest(task_id=str(task_id)), convert.task_from_pb)


def retry(task_id: str) -> Call[Task]:
    return Call("RetryTask", pb.RetryTaskRequest(task_id=str(task_id)), convert.task_from_pb)


def drain(name: str, undrain: bool) -> Call[ExecutorInfo]:
    return Call("DrainExecutor", pb.DrainExecutorRequest(name=name, undrain=undrain), convert.executor_from_pb)


def pause() -> Call[QueueStatus]:
    return Call("PauseQueue", pb.PauseQueueRequest(), convert.queue_from_pb)


def resume() -> Call[QueueStatus]:
    return Call("ResumeQueue", pb.ResumeQueueRequest(), convert.queue_from_pb)


def output_request(task_id: str, attempt: int, follow: bool) -> Any:
    return pb.GetTaskOutputRequest(task_id=str(task_id), attempt=attempt, follow=follow)


def output_data(chunk: Any) -> bytes:
    return bytes(chunk.data)


def output_piece(chunk: Any) -> tuple[int, int, bytes]:
    """(attempt, offset, data) of an output chunk, to resume a follow where it stopped."""
    return int(chunk.attempt), int(chunk.offset), bytes(chunk.data)


def unseen(offset: int, data: bytes, next_offset: int) -> bytes:
    """The part of a chunk at offset not yet passed on (chunks repeat after a reconnect)."""
    if offset + len(data) <= next_offset:
        return b""
    return data[max(0, next_offset - offset):]


def attempt_over(task: Task, number: int) -> bool:
    """True when attempt number (0: the latest) of the task has ended, or the task has no such attempt."""
    attempts = task.attempts if number == 0 else [a for a in task.attempts if a.number == number]
    if not attempts:
        return task.state.finished
    a = attempts[-1]
    return a.finished_at is not None or a.state.finished


def watch_request(include_usage: bool, include_progress: bool) -> Any:
    return pb.WatchRequest(exclude_usage=not include_usage, exclude_progress=not include_progress)


def event_of(msg: Any) -> ev.WatchEvent:
    return convert.event_from_pb(msg)


@dataclass
class WaitState:
    """Tracks tasks from a Watch stream until the awaited ones are all finished (no I/O).

    Keeps the set of awaited tasks not yet finished, so each event costs O(1) whatever the queue size.
    """

    ids: list[str] | None
    tasks: dict[str, Task] = field(default_factory=dict)
    _unfinished: set[str] = field(default_factory=set)
    _snapshot_done: bool = False
    _snapshot_just_done: bool = False

    def __post_init__(self) -> None:
        if self.ids is not None:
            self._unfinished = set(self.ids)  # unknown until the snapshot shows them

    def apply(self, event: ev.WatchEvent) -> None:
        body = event.body
        if event.resync:
            self._snapshot_done = False
        if isinstance(body, ev.Snapshot):
            for t in body.tasks:
                self._put(t)
            if body.last:
                self._snapshot_done = self._snapshot_just_done = True
        elif isinstance(body, ev.TaskEvent):
            self._put(body.task)
        elif isinstance(body, ev.ProgressEvent):
            current = self.tasks.get(body.task_id)
            if current is not None:
                current.progress = body.progress

    def _put(self, t: Task) -> None:
        if self.ids is not None and t.id not in self._unfinished and t.id not in self.tasks:
            return  # not awaited
        self.tasks[t.id] = t
        if t.state.finished:
            self._unfinished.discard(t.id)
        else:
            self._unfinished.add(t.id)

    @property
    def ready(self) -> bool:
        return self._snapshot_done

    def missing(self) -> list[str]:
        """Awaited ids the controller does not know (meaningful once the snapshot is complete)."""
        return [i for i in self.ids or () if i not in self.tasks]

    def check(self) -> None:
        """Raise NotFound for awaited ids that the snapshot just completed does not hold (once per snapshot)."""
        if not self._snapshot_just_done:
            return
        self._snapshot_just_done = False
        if gone := self.missing():
            raise NotFound(f"no task with id {gone[0]!r}; list tasks with ListTasks (dtask tasks)", "NOT_FOUND")

    def watched(self) -> list[Task]:
        if self.ids is None:
            return sorted(self.tasks.values(), key=_id_key)
        return [self.tasks[i] for i in self.ids if i in self.tasks]

    def done(self) -> bool:
        return self._snapshot_done and not self._unfinished


def _id_key(t: Task) -> tuple[int, str]:
    return (int(t.id), t.id) if t.id.isdigit() else (1 << 62, t.id)


_SPEC_FIELDS = set(TaskSpec.__dataclass_fields__)


def spec_from_fields(spec: TaskSpec | str | list[str] | None, fields: dict[str, Any]) -> TaskSpec:
    """A TaskSpec from keyword fields: command= (shell string or argv list), cpus/memory_mb/gpus, ...

    A positional string or list is the command, so add_task("python train.py") works.
    """
    if isinstance(spec, TaskSpec):
        return spec
    values = dict(fields)
    command = values.pop("command", spec)
    if isinstance(command, str):
        values.setdefault("shell", command)
    elif command is not None:
        values.setdefault("argv", tuple(command))
    res = values.pop("resources", None)
    res_fields = {k: values.pop(k) for k in ("cpus", "memory_mb", "gpus") if k in values}
    if isinstance(res, Resources):
        values["resources"] = res
    elif res is not None or res_fields:
        values["resources"] = Resources(**{**dict(res or {}), **res_fields})
    if "retries" in values:
        values["max_retries"] = values.pop("retries")
    unknown = set(values) - _SPEC_FIELDS
    if unknown:
        known = sorted(_SPEC_FIELDS | {"command", "cpus", "gpus", "memory_mb", "retries"})
        hints = [(u, closest(u, known)) for u in sorted(unknown)]
        hint = ", ".join(f"{h!r} for {u!r}" for u, h in hints if h is not None)
        raise TypeError(f"unknown task fields {', '.join(sorted(unknown))}"
                        + (f" (did you mean {hint}?)" if hint else "") + f"; use {', '.join(known)}")
    for k in ("argv", "depends_on", "tags"):
        if k in values and not isinstance(values[k], tuple):
            values[k] = (values[k],) if isinstance(values[k], str) else tuple(values[k])
    return TaskSpec(**values)


def dispatched(event: ev.WatchEvent, task_id: str) -> bool:
    """True when the event shows the task past PENDING (its output can be followed)."""
    body = event.body
    tasks = body.tasks if isinstance(body, ev.Snapshot) else [body.task] if isinstance(body, ev.TaskEvent) else []
    return any(t.id == task_id and t.state is not TaskState.PENDING for t in tasks)
