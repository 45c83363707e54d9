"""The Controller servicer: validates requests, converts proto<->model, calls the core's commands and queries, maps errors."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from dtask.v1 import common_pb2 as cpb
from dtask.v1 import controller_pb2 as pb
from dtask.v1 import controller_pb2_grpc
from dtask_common import __version__, convert, ids, redact
from dtask_common.authz import peer_identity
from dtask_common.models import MAX_NAME, MAX_SUBMIT, ParamValue, Task, TaskState, ValidationError
from dtask_common.models.params import errors as param_errors
from dtask_common.roles import Role

from dtask_controller import commands, prune, queries, runner_session, streams, task_errors
from dtask_controller.core import ControllerCore
from dtask_controller.errors import Conflict, InvalidTasks, NotFound, SlowWatcher, TooLarge
from dtask_controller.store import StoreFull
from dtask_controller.watchpb import ConvertedEvents

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_PAGE = 1000
DEFAULT_PAGE = 100
ERRORS_KEY = "dtask-task-errors-bin"

_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (SlowWatcher, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StoreFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ValueError, grpc.StatusCode.INVALID_ARGUMENT),
)


async def _fail(context: Any, exc: Exception) -> None:
    if isinstance(exc, InvalidTasks):
        context.set_trailing_metadata(((ERRORS_KEY, task_errors.trailer(exc.errors)),))
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
    for kind, code in _CODES:
        if isinstance(exc, kind):
            await context.abort(code, str(exc))
    raise exc


def mapped(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Turn the core's errors into gRPC statuses whose messages say what to do."""

    @functools.wraps(fn)
    async def run(self: Any, request: Any, context: Any) -> T:
        try:
            return await fn(self, request, context)
        except (NotFound, Conflict, TooLarge, StoreFull, ValueError) as exc:
            await _fail(context, exc)
            raise  # unreachable: abort raises

    return run


def _states(values: Any) -> list[TaskState]:
    out = []
    for v in values:
        try:
            out.append(convert.state_from_pb(v))
        except ValueError:
            raise ValueError(
                f"unknown task state {v}; use PENDING, RUNNING, SUCCEEDED, FAILED, CANCELLED or LOST"
            ) from None
    return out


def _param_filter(request: pb.ListTasksRequest) -> dict[str, ParamValue]:
    """The params filter of a ListTasks request, checked like a spec's params."""
    wanted = convert.params_from_pb(request.params)
    problems = param_errors(wanted)
    if problems:
        raise ValueError("params: " + "; ".join(f"{e.field}: {e.message}" for e in problems))
    if len(request.name_prefix.encode()) > MAX_NAME:
        raise ValueError(f"name_prefix is longer than {MAX_NAME} bytes; shorten it")
    return wanted


def masked(context: Any) -> bool:
    """Whether the caller sees task env values masked: everyone but operators (runners get theirs on Connect)."""
    ident = peer_identity(context)
    return ident is None or ident[0] is not Role.OPERATOR


def task_pb(task: Task, hide: bool) -> cpb.Task:
    """A task as a client may see it: every task sent to clients goes through here."""
    return convert.task_to_pb(redact.hide_env(task) if hide else task)


class ControllerService(controller_pb2_grpc.ControllerServicer):
    """Every Controller RPC; role checks already happened in the interceptor."""

    def __init__(self, core: ControllerCore):
        self.core = core
        self._events = ConvertedEvents()  # each published event converted once per audience

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: Any) -> pb.Identity:
        ident = peer_identity(context)
        role, name = (ident[0].value, ident[1]) if ident else ("", "")
        return pb.Identity(role=role, name=name, controller_name=self.core.settings.name, version=__version__)

    def Connect(self, request_iterator: Any, context: Any) -> AsyncIterator[pb.ControllerMessage]:
        return runner_session.connect(self.core, request_iterator, context)

    # ---- queries ----

    @mapped
    async def ListExecutors(self, request: pb.ListExecutorsRequest, context: Any) -> pb.ListExecutorsResponse:
        return pb.ListExecutorsResponse(
            executors=[convert.executor_to_pb(e) for e in queries.executors(self.core, request.include_gone)]
        )

    @mapped
    async def GetExecutor(self, request: pb.GetExecutorRequest, context: Any) -> cpb.ExecutorInfo:
        return convert.executor_to_pb(queries.executor(self.core, request.name))

    @mapped
    async def GetResourceUsage(self, request: pb.GetResourceUsageRequest, context: Any) -> pb.GetResourceUsageResponse:
        if request.history < 0:
            raise ValueError("history must be >= 0 (0: the default of 60 samples)")
        history = request.history or self.core.settings.usage_history
        names = (
            [queries.executor(self.core, request.executor).name]
            if request.executor
            else [e.name for e in queries.executors(self.core)]
        )
        return pb.GetResourceUsageResponse(
            executors=[convert.executor_usage_to_pb(queries.usage(self.core, n, history)) for n in names]
        )

    @mapped
    async def ListTasks(self, request: pb.ListTasksRequest, context: Any) -> pb.ListTasksResponse:
        if request.page_size < 0:
            raise ValueError("page_size must be >= 0 (0: 100, at most 1000)")
        size = min(request.page_size or DEFAULT_PAGE, MAX_PAGE)
        after = 0
        if request.page_token:
            if not request.page_token.startswith("after:") or not ids.is_task_id(request.page_token[6:]):
                raise ValueError(
                    f"page_token {request.page_token!r} is not one this controller gave; "
                    "pass the next_page_token of the previous page, or none for the first page"
                )
            after = int(request.page_token[6:])
        tasks, total = queries.list_tasks(
            self.core,
            states=_states(request.states),
            tag=request.tag,
            executor=request.executor,
            name_contains=request.name_contains,
            after=after,
            limit=size + 1,
            name_prefix=request.name_prefix,
            params=_param_filter(request),
        )
        more = len(tasks) > size
        tasks = tasks[:size]
        hide = masked(context)
        return pb.ListTasksResponse(
            tasks=[task_pb(t, hide) for t in tasks],
            next_page_token=f"after:{tasks[-1].id}" if more else "",
            total=total,
        )

    @mapped
    async def GetTask(self, request: pb.GetTaskRequest, context: Any) -> cpb.Task:
        return task_pb(queries.task(self.core, ids.task_id(request.task_id)), masked(context))

    @mapped
    async def IsFinished(self, request: pb.IsFinishedRequest, context: Any) -> pb.IsFinishedResponse:
        q = queries.queue(self.core)
        return pb.IsFinishedResponse(finished=q.finished, queue=convert.queue_to_pb(q))

    async def GetTaskOutput(self, request: pb.GetTaskOutputRequest, context: Any) -> AsyncIterator[pb.OutputChunk]:
        try:
            async for chunk in streams.output(
                self.core, ids.task_id(request.task_id), request.attempt, request.follow, request.tail_bytes
            ):
                yield convert.output_to_pb(chunk)
        except (NotFound, Conflict, ValueError) as exc:
            await _fail(context, exc)

    async def Watch(self, request: pb.WatchRequest, context: Any) -> AsyncIterator[pb.WatchEvent]:
        hide = masked(context)
        try:
            select = convert.watch_filter_from_pb(request)
            async for event in streams.watch(self.core, history=self.core.settings.usage_history, select=select):
                if isinstance(event, list):
                    yield self._events.batch(event, hide)
                else:
                    yield self._events.get(event, hide)
        except (SlowWatcher, ValueError) as exc:
            await _fail(context, exc)

    # ---- commands ----

    @mapped
    async def SubmitTasks(self, request: pb.SubmitTasksRequest, context: Any) -> pb.SubmitTasksResponse:
        if len(request.tasks) > MAX_SUBMIT:  # before converting them all
            raise TooLarge(
                f"{len(request.tasks)} tasks in one request; at most {MAX_SUBMIT} are accepted per call: "
                "split the batch into several submissions"
            )
        specs = [convert.spec_from_pb(s) for s in request.tasks]
        try:
            ids = commands.submit(self.core, specs)
        except ValidationError as exc:  # pragma: no cover - validate_batch reports, never raises
            raise InvalidTasks(exc.errors, len(specs)) from None
        return pb.SubmitTasksResponse(task_ids=ids)

    @mapped
    async def CancelTask(self, request: pb.CancelTaskRequest, context: Any) -> cpb.Task:
        return task_pb(commands.cancel(self.core, ids.task_id(request.task_id)), masked(context))

    @mapped
    async def RetryTask(self, request: pb.RetryTaskRequest, context: Any) -> cpb.Task:
        return task_pb(commands.retry(self.core, ids.task_id(request.task_id)), masked(context))

    @mapped
    async def DrainExecutor(self, request: pb.DrainExecutorRequest, context: Any) -> cpb.ExecutorInfo:
        return convert.executor_to_pb(commands.drain(self.core, request.name, request.undrain))

    @mapped
    async def PauseQueue(self, request: pb.PauseQueueRequest, context: Any) -> cpb.QueueStatus:
        return convert.queue_to_pb(commands.set_paused(self.core, True))

    @mapped
    async def ResumeQueue(self, request: pb.ResumeQueueRequest, context: Any) -> cpb.QueueStatus:
        return convert.queue_to_pb(commands.set_paused(self.core, False))

    @mapped
    async def Prune(self, request: pb.PruneRequest, context: Any) -> pb.PruneResponse:
        req = convert.prune_request_from_pb(request)
        if req.list_limit > MAX_PAGE:
            raise ValueError(f"list_limit {req.list_limit} is more than {MAX_PAGE}; the count covers the rest")
        return convert.prune_result_to_pb(await prune.prune(self.core, req))
