"""Typed descriptors of the controller's RPCs, and the requests the clients build with them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import runner_pb2 as rpb
from dtask_common import convert
from dtask_common import events as ev
from dtask_common.models import (
    MAX_WATCH_IDS,
    ExecutorInfo,
    ExecutorUsage,
    FieldError,
    Identity,
    OutputChunk,
    ParamValue,
    PruneRequest,
    PruneResult,
    QueueStatus,
    Task,
    TaskSpec,
    TaskState,
    WatchFilter,
)

from dtask_client.errors import InvalidTask

T = TypeVar("T")
SERVICE = "dtask.v1.Controller"
PAGE_SIZE = 500
WAIT_BATCH = 256  # events per Watch message a wait() asks for


@dataclass(frozen=True)
class Rpc:
    """One method of the Controller service: its name, message types, and whether a repeat is harmless.

    safe_to_retry holds for reads and for writes whose repeat changes nothing (drain, pause): a call the
    controller may have carried out before its answer was lost is sent again only then.
    """

    name: str
    request: type[Any]
    response: type[Any]
    safe_to_retry: bool
    streaming: bool = False
    service: str = SERVICE

    @property
    def path(self) -> str:
        return f"/{self.service}/{self.name}"

    def method(self, channel: Any) -> Any:
        """This method's multicallable on a grpc or grpc.aio channel (what the generated stub holds)."""
        make = channel.unary_stream if self.streaming else channel.unary_unary
        return make(
            self.path,
            request_serializer=self.request.SerializeToString,
            response_deserializer=self.response.FromString,
            _registered_method=True,
        )


WHO_AM_I = Rpc("WhoAmI", pb.WhoAmIRequest, pb.Identity, safe_to_retry=True)
LIST_EXECUTORS = Rpc("ListExecutors", pb.ListExecutorsRequest, pb.ListExecutorsResponse, safe_to_retry=True)
GET_EXECUTOR = Rpc("GetExecutor", pb.GetExecutorRequest, cpb.ExecutorInfo, safe_to_retry=True)
GET_RESOURCE_USAGE = Rpc(
    "GetResourceUsage", pb.GetResourceUsageRequest, pb.GetResourceUsageResponse, safe_to_retry=True
)
LIST_TASKS = Rpc("ListTasks", pb.ListTasksRequest, pb.ListTasksResponse, safe_to_retry=True)
GET_TASK = Rpc("GetTask", pb.GetTaskRequest, cpb.Task, safe_to_retry=True)
IS_FINISHED = Rpc("IsFinished", pb.IsFinishedRequest, pb.IsFinishedResponse, safe_to_retry=True)
GET_TASK_OUTPUT = Rpc("GetTaskOutput", pb.GetTaskOutputRequest, pb.OutputChunk, safe_to_retry=True, streaming=True)
WATCH = Rpc("Watch", pb.WatchRequest, pb.WatchEvent, safe_to_retry=True, streaming=True)
SUBMIT_TASKS = Rpc("SubmitTasks", pb.SubmitTasksRequest, pb.SubmitTasksResponse, safe_to_retry=False)
CANCEL_TASK = Rpc("CancelTask", pb.CancelTaskRequest, cpb.Task, safe_to_retry=False)
RETRY_TASK = Rpc("RetryTask", pb.RetryTaskRequest, cpb.Task, safe_to_retry=False)
DRAIN_EXECUTOR = Rpc("DrainExecutor", pb.DrainExecutorRequest, cpb.ExecutorInfo, safe_to_retry=True)
PAUSE_QUEUE = Rpc("PauseQueue", pb.PauseQueueRequest, cpb.QueueStatus, safe_to_retry=True)
RESUME_QUEUE = Rpc("ResumeQueue", pb.ResumeQueueRequest, cpb.QueueStatus, safe_to_retry=True)
# Not resent: a prune that committed before its reply was lost would be answered "nothing to delete".
PRUNE = Rpc("Prune", pb.PruneRequest, pb.PruneResponse, safe_to_retry=False)

#: The Runner service's ReadOutput: a large output read from the runner that ran it (see _runner_output.py).
RUNNER_READ_OUTPUT = Rpc(
    "ReadOutput",
    rpb.RunnerOutputRequest,
    rpb.RunnerOutputPiece,
    safe_to_retry=True,
    streaming=True,
    service="dtask.v1.Runner",
)

#: Every client-facing method of the controller (Connect is the runners' stream).
RPCS = (
    WHO_AM_I,
    LIST_EXECUTORS,
    GET_EXECUTOR,
    GET_RESOURCE_USAGE,
    LIST_TASKS,
    GET_TASK,
    IS_FINISHED,
    GET_TASK_OUTPUT,
    WATCH,
    SUBMIT_TASKS,
    CANCEL_TASK,
    RETRY_TASK,
    DRAIN_EXECUTOR,
    PAUSE_QUEUE,
    RESUME_QUEUE,
    PRUNE,
)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One unary call: the method, its request, and how to turn the reply into models."""

    rpc: Rpc
    request: Any
    convert: Callable[[Any], T]


@dataclass(frozen=True)
class StreamCall(Generic[T]):
    """One server-streaming call: the method, its request, and how to turn each message into a model."""

    rpc: Rpc
    request: Any
    convert: Callable[[Any], T]


def runner_output(task_id: str, attempt: int, offset: int) -> StreamCall[OutputChunk]:
    """An attempt's log on the runner that ran it, from offset (each piece as an OutputChunk at its offset)."""
    return StreamCall(
        RUNNER_READ_OUTPUT,
        rpb.RunnerOutputRequest(task_id=task_id, attempt=attempt, offset=offset),
        lambda piece: OutputChunk(task_id, attempt, piece.offset, piece.data),
    )


def whoami() -> Call[Identity]:
    return Call(WHO_AM_I, pb.WhoAmIRequest(), convert.identity_from_pb)


def executors(include_gone: bool) -> Call[list[ExecutorInfo]]:
    return Call(
        LIST_EXECUTORS,
        pb.ListExecutorsRequest(include_gone=include_gone),
        lambda r: [convert.executor_from_pb(e) for e in r.executors],
    )


def executor(name: str) -> Call[ExecutorInfo]:
    return Call(GET_EXECUTOR, pb.GetExecutorRequest(name=name), convert.executor_from_pb)


def finished() -> Call[bool]:
    return Call(IS_FINISHED, pb.IsFinishedRequest(), lambda r: bool(r.finished))


def queue() -> Call[QueueStatus]:
    return Call(IS_FINISHED, pb.IsFinishedRequest(), lambda r: convert.queue_from_pb(r.queue))


def resource_usage(executor: str | None, history: int) -> Call[list[ExecutorUsage]]:
    return Call(
        GET_RESOURCE_USAGE,
        pb.GetResourceUsageRequest(executor=executor or "", history=history),
        lambda r: [convert.executor_usage_from_pb(u) for u in r.executors],
    )


def list_tasks(
    states: list[TaskState],
    tag: str | None,
    executor: str | None,
    name_contains: str | None,
    page_token: str,
    *,
    name_prefix: str | None = None,
    params: Mapping[str, ParamValue] | None = None,
) -> Call[tuple[list[Task], str]]:
    req = pb.ListTasksRequest(
        states=[convert.state_to_pb(s) for s in states],
        tag=tag or "",
        executor=executor or "",
        name_contains=name_contains or "",
        page_size=PAGE_SIZE,
        page_token=page_token,
        name_prefix=name_prefix or "",
        params=convert.params_to_pb(params) if params else None,
    )
    return Call(LIST_TASKS, req, lambda r: ([convert.task_from_pb(t) for t in r.tasks], r.next_page_token))


def task(task_id: str) -> Call[Task]:
    return Call(GET_TASK, pb.GetTaskRequest(task_id=str(task_id)), convert.task_from_pb)


def submit(specs: list[TaskSpec]) -> Call[list[str]]:
    try:
        tasks = convert.specs_to_pb(specs)
    except (ValueError, TypeError, OverflowError):  # a number the wire cannot carry (e.g. gpus=2**40)
        errors = [
            FieldError(e.field, e.message, i, s.name if isinstance(s.name, str) else "")
            for i, s in enumerate(specs)
            for e in s.errors()
        ]
        raise InvalidTask(
            f"{len({e.index for e in errors}) or 1} of {len(specs)} tasks cannot be sent: "
            + "; ".join(str(e) for e in errors[:5]),
            errors=errors,
        ) from None
    return Call(SUBMIT_TASKS, pb.SubmitTasksRequest(tasks=tasks), lambda r: list(r.task_ids))


def cancel(task_id: str) -> Call[Task]:
    return Call(CANCEL_TASK, pb.CancelTaskRequest(task_id=str(task_id)), convert.task_from_pb)


def retry(task_id: str) -> Call[Task]:
    return Call(RETRY_TASK, pb.RetryTaskRequest(task_id=str(task_id)), convert.task_from_pb)


def drain(name: str, undrain: bool) -> Call[ExecutorInfo]:
    return Call(DRAIN_EXECUTOR, pb.DrainExecutorRequest(name=name, undrain=undrain), convert.executor_from_pb)


def pause() -> Call[QueueStatus]:
    return Call(PAUSE_QUEUE, pb.PauseQueueRequest(), convert.queue_from_pb)


def resume() -> Call[QueueStatus]:
    return Call(RESUME_QUEUE, pb.ResumeQueueRequest(), convert.queue_from_pb)


def prune(request: PruneRequest) -> Call[PruneResult]:
    return Call(PRUNE, convert.prune_request_to_pb(request), convert.prune_result_from_pb)


def output(task_id: str, attempt: int, tail_bytes: int = 0, follow: bool = False) -> StreamCall[OutputChunk]:
    """An attempt's output (0: the latest attempt): all of it, or its last tail_bytes; with follow, to its end
    (each chunk says its attempt and offset, to resume a follow where it stopped)."""
    return StreamCall(
        GET_TASK_OUTPUT,
        pb.GetTaskOutputRequest(task_id=str(task_id), attempt=attempt, follow=follow, tail_bytes=tail_bytes),
        convert.output_from_pb,
    )


def watch(
    include_usage: bool, include_progress: bool, select: WatchFilter | None = None
) -> StreamCall[list[ev.WatchEvent]]:
    """A Watch (select: a filter, sent as it is); each message gives its events in order (a batch: several)."""
    if select is None:
        select = WatchFilter(exclude_usage=not include_usage, exclude_progress=not include_progress)
    return StreamCall(WATCH, convert.watch_filter_to_pb(select), convert.events_from_pb)


def watch_for(
    ids: list[str] | None, include_progress: bool, every_change: bool = True
) -> StreamCall[list[ev.WatchEvent]]:
    """The Watch a wait() (or a follow waiting for a dispatch) reads: only the awaited tasks, no usage, no
    executors, events batched; every task when ids is None, empty or longer than a Watch takes. Without
    every_change, tasks send events only as they finish (or are retried, or added): a plain wait needs no more."""
    listed = ids is not None and 0 < len(set(ids)) <= MAX_WATCH_IDS
    select = WatchFilter(
        task_ids=tuple(ids) if listed and ids is not None else (),
        exclude_usage=True,
        exclude_progress=not include_progress,
        exclude_executors=True,
        max_batch=WAIT_BATCH,
        exclude_unfinished=not every_change,
    )
    return watch(False, include_progress, select)


def task_page(
    states: list[TaskState],
    tag: str | None,
    executor: str | None,
    name_contains: str | None,
    page_token: str,
    page_size: int,
    *,
    name_prefix: str | None = None,
    params: Mapping[str, ParamValue] | None = None,
) -> Call[tuple[list[Task], str, int]]:
    """One page of ListTasks as (tasks, next_page_token, total matching over all pages)."""
    req = pb.ListTasksRequest(
        states=[convert.state_to_pb(s) for s in states],
        tag=tag or "",
        executor=executor or "",
        name_contains=name_contains or "",
        page_size=page_size,
        page_token=page_token,
        name_prefix=name_prefix or "",
        params=convert.params_to_pb(params) if params else None,
    )
    return Call(
        LIST_TASKS, req, lambda r: ([convert.task_from_pb(t) for t in r.tasks], r.next_page_token, int(r.total))
    )


def watch_window(
    include_usage: bool, include_progress: bool, finished_limit: int, max_batch: int
) -> StreamCall[list[ev.WatchEvent]]:
    """Watch with a snapshot of the unfinished tasks and only the newest finished ones, events in batches."""
    select = WatchFilter(
        exclude_usage=not include_usage,
        exclude_progress=not include_progress,
        finished_limit=finished_limit,
        max_batch=max_batch,
    )
    return watch(include_usage, include_progress, select)
