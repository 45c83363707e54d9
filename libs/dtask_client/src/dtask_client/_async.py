"""The asyncio client: `AsyncController`, the same API as Controller with coroutines and async iterators."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc
from dtask_common import events as ev
from dtask_common import results_table
from dtask_common.models import (
    FINISHED_STATES,
    ExecutorInfo,
    ExecutorUsage,
    Identity,
    ParamValue,
    PruneRequest,
    PruneResult,
    QueueStatus,
    Task,
    TaskSpec,
    TaskState,
    WatchFilter,
)
from dtask_common.results_table import Cell, ResultsTable
from dtask_common.tls import channel_credentials

from dtask_client import _calls as c
from dtask_client import _results, _specs
from dtask_client._async_connection import AsyncConnection
from dtask_client._follow import Follow, dispatched, noticed
from dtask_client._runner_output import RunnerUnreachable, WholeRead, read_direct_async
from dtask_client._wait import WaitCounts, Waiter
from dtask_client.errors import Conflict, ControllerUnavailable, DtaskError


class AsyncController(AsyncConnection):
    """The asyncio twin of Controller: same constructor and defaults, methods are coroutines.

    logs() and watch() are async iterators. The channel is opened on first use inside the
    running event loop; `async with AsyncController(...) as c:` closes it. channel= takes a
    grpc.aio.Channel given ready (left open by close()) or a factory called in the running loop.

    Like Controller it rides out a controller restart: safe calls are sent again within their
    timeout, and wait() and logs(follow=True) wait for the controller to return, for up to the
    client's timeout; a controller still away then is ControllerUnavailable.
    """

    # ---- queries ----

    async def whoami(self) -> Identity:
        return await self._call(c.whoami())

    async def executors(self, include_gone: bool = False) -> list[ExecutorInfo]:
        return await self._call(c.executors(include_gone))

    async def executor(self, name: str) -> ExecutorInfo:
        return await self._call(c.executor(name))

    async def finished(self) -> bool:
        return await self._call(c.finished())

    async def queue(self) -> QueueStatus:
        return await self._call(c.queue())

    async def resource_usage(self, executor: str | None = None, history: int = 60) -> list[ExecutorUsage]:
        return await self._call(c.resource_usage(executor, history))

    async def tasks(
        self,
        states: Iterable[TaskState | str] | None = None,
        tag: str | None = None,
        executor: str | None = None,
        name_contains: str | None = None,
        *,
        name_prefix: str | None = None,
        params: Mapping[str, ParamValue] | None = None,
    ) -> list[Task]:
        wanted = _specs.states_of(states)
        wanted_params = _specs.param_filter(params)
        out: list[Task] = []
        token = ""
        while True:
            page, token = await self._call(
                c.list_tasks(wanted, tag, executor, name_contains, token, name_prefix=name_prefix, params=wanted_params)
            )
            out.extend(page)
            if not token:
                return out

    async def task_page(
        self,
        states: Iterable[TaskState | str] | None = None,
        tag: str | None = None,
        executor: str | None = None,
        name_contains: str | None = None,
        page_token: str = "",
        page_size: int = c.PAGE_SIZE,
    ) -> tuple[list[Task], str, int]:
        """One page of tasks in id order: (tasks, the token of the next page or "", how many match in all)."""
        wanted = _specs.states_of(states)
        return await self._call(c.task_page(wanted, tag, executor, name_contains, page_token, page_size))

    async def results_table(
        self,
        names: str | Sequence[str] | None = None,
        *,
        ids: Iterable[str] | None = None,
        tag: str | None = None,
        params: Mapping[str, ParamValue] | None = None,
        cols: Sequence[str] | None = None,
        sort: str | None = None,
        desc: bool = False,
        minimize: Sequence[str] = (),
        maximize: Sequence[str] = (),
    ) -> ResultsTable:
        """The results table of a sweep, as Controller.results_table."""
        sel = _results.selection(names, ids)
        groups: list[list[Task]] = []
        for prefix in sel.prefixes:
            groups.append(await self.tasks(tag=tag, name_prefix=prefix, params=params))
        groups.append([await self.task(i) for i in sel.ids])
        if not sel.prefixes and not sel.ids:
            groups.append(await self.tasks(tag=tag, params=params))
        return results_table.build(
            _results.merged(groups), cols=cols, sort=sort, desc=desc, minimize=minimize, maximize=maximize
        )

    async def results(
        self,
        names: str | Sequence[str] | None = None,
        *,
        ids: Iterable[str] | None = None,
        tag: str | None = None,
        params: Mapping[str, ParamValue] | None = None,
        cols: Sequence[str] | None = None,
        sort: str | None = None,
        desc: bool = False,
        minimize: Sequence[str] = (),
        maximize: Sequence[str] = (),
    ) -> list[dict[str, Cell]]:
        """The results table's rows as plain dicts, as Controller.results."""
        table = await self.results_table(
            names,
            ids=ids,
            tag=tag,
            params=params,
            cols=cols,
            sort=sort,
            desc=desc,
            minimize=minimize,
            maximize=maximize,
        )
        return table.plain_rows()

    async def tasks_pending(self) -> list[Task]:
        return await self.tasks([TaskState.PENDING])

    async def tasks_running(self) -> list[Task]:
        return await self.tasks([TaskState.RUNNING])

    async def tasks_finished(self) -> list[Task]:
        return await self.tasks(FINISHED_STATES)

    async def task(self, task_id: str) -> Task:
        return await self._call(c.task(task_id))

    # ---- commands ----

    async def submit(
        self, specs: TaskSpec | Iterable[TaskSpec] | str | Path, *, params: Mapping[str, ParamValue] | None = None
    ) -> list[str]:
        return await self._call(c.submit(_specs.with_params(_specs.specs_of(specs), params)))

    async def add_task(self, spec: TaskSpec | str | list[str] | None = None, /, **fields: Any) -> str:
        return (await self.submit(_specs.spec_from_fields(spec, fields)))[0]

    async def add_tasks(self, specs: Iterable[TaskSpec | dict[str, Any]] | str | Path) -> list[str]:
        if isinstance(specs, (str, Path)):
            return await self.submit(specs)
        return await self.submit([s if isinstance(s, TaskSpec) else _specs.spec_from_fields(None, s) for s in specs])

    async def cancel(self, task_id: str) -> Task:
        return await self._call(c.cancel(task_id))

    async def retry(self, task_id: str) -> Task:
        return await self._call(c.retry(task_id))

    async def drain(self, name: str, undrain: bool = False) -> ExecutorInfo:
        return await self._call(c.drain(name, undrain))

    async def pause(self) -> QueueStatus:
        return await self._call(c.pause())

    async def resume(self) -> QueueStatus:
        return await self._call(c.resume())

    async def prune(
        self, finished_before: float, *, tag: str = "", dry_run: bool = False, list_limit: int = 20
    ) -> PruneResult:
        """Delete finished tasks that finished before finished_before (seconds since the epoch), of one tag if
        given, except those a pending or running task depends on; dry_run: only say what would be deleted.
        The result names the first list_limit of them."""
        return await self._call(c.prune(PruneRequest(finished_before, tag, dry_run, list_limit)))

    # ---- streams ----

    async def logs(
        self,
        task_id: str,
        attempt: int = 0,
        follow: bool = False,
        *,
        tail_bytes: int = 0,
        on_notice: Callable[[str], None] | None = None,
        direct: bool | None = None,
    ) -> AsyncIterator[bytes]:
        """An attempt's output (0: the latest attempt), as it arrives: all of it, or only its last tail_bytes;
        with follow, until the attempt ends (across restarts). on_notice and direct: as Controller.logs."""
        if not follow:
            task = await self.task(task_id)  # NotFound before streaming
            want = self._settings.direct_logs if direct is None else direct
            if tail_bytes == 0 and want and self._settings.files is not None:
                async for data in self._whole(WholeRead(task, attempt, on_notice)):
                    yield data
                return
            async for chunk in self._stream(c.output(task_id, attempt, tail_bytes)):
                yield noticed(chunk, on_notice)
            return
        follow_ = Follow(
            task_id, attempt, self.address, self.timeout, self.timeout, tail_bytes=tail_bytes, on_notice=on_notice
        )
        async for data in self._follow(follow_):
            yield data

    async def _whole(self, read: WholeRead) -> AsyncIterator[bytes]:
        """As Controller._whole: a large output from its runner, else (and the rest) relayed by the controller."""
        if executor := read.executor([chunk async for chunk in self._stream(read.probe())]):
            assert self._settings.files is not None
            try:
                address = (await self.executor(executor)).address
                async for data in read_direct_async(address, channel_credentials(self._settings.files), read):
                    yield data
                return
            except (RunnerUnreachable, grpc.RpcError, DtaskError) as exc:  # (DtaskError: an executor now unknown)
                read.failed(executor, exc)
        async for chunk in self._stream(read.relay()):
            if data := read.relayed(chunk):  # (its notice, if any, is told either way)
                yield data

    async def _follow(self, follow: Follow) -> AsyncIterator[bytes]:
        while True:
            try:
                async for chunk in self._stream(follow.call()):
                    if new := follow.piece(chunk):
                        yield new
                # sent once: a task seen after riding out a restart may have ended meanwhile, its output unseen
                if follow.over(await self._send(c.task(follow.task_id), self.timeout)):
                    if (rest := follow.rest([chunk async for chunk in self._stream(follow.probe())])) is not None:
                        async for chunk in self._stream(rest):
                            if new := follow.piece(chunk):
                                yield new
                    return
                outcome = follow.lost(None, time.monotonic())  # the stream ended while the attempt runs on
            except Conflict:
                if follow.started or not follow.undispatched(await self.task(follow.task_id)):
                    raise
                async for events in self._stream(c.watch_for([follow.task_id], False)):
                    if any(dispatched(event, follow.task_id) for event in events):
                        break
                continue
            except ControllerUnavailable as exc:
                outcome = follow.lost(exc, time.monotonic())
            if isinstance(outcome, DtaskError):
                raise outcome
            await self._reconnect(outcome)

    async def watch(
        self,
        include_usage: bool = True,
        include_progress: bool = True,
        timeout: float | None = None,
        *,
        select: WatchFilter | None = None,
    ) -> AsyncIterator[ev.WatchEvent]:
        """A snapshot, then every change (select: only what that filter chooses; its exclude flags rule)."""
        stream = self._stream(c.watch(include_usage, include_progress, select), timeout, quiet_deadline=True)
        try:
            async for events in stream:
                for event in events:
                    yield event
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    async def watch_window(
        self,
        include_usage: bool = True,
        include_progress: bool = True,
        finished_limit: int = 0,
        max_batch: int = 0,
        timeout: float | None = None,
    ) -> AsyncIterator[ev.WatchEvent]:
        """Watch whose snapshot holds only the newest finished_limit finished tasks; batches come unpacked."""
        call = c.watch_window(include_usage, include_progress, finished_limit, max_batch)
        async for events in self._stream(call, timeout, quiet_deadline=True):
            for event in events:
                yield event

    async def wait(
        self,
        ids: Iterable[str] | None = None,
        timeout: float | None = None,
        on_change: Callable[[list[Task]], None] | None = None,
        on_counts: Callable[[WaitCounts], None] | None = None,
    ) -> list[Task]:
        wanted = [str(i) for i in ids] if ids is not None else None
        waiter = Waiter(wanted, timeout, time.monotonic(), self.address, self.timeout, give_up_after=self.timeout)
        while True:
            try:
                stream = self._stream(
                    c.watch_for(wanted, on_change is not None, on_change is not None or on_counts is not None),
                    waiter.open(time.monotonic()),
                )
                try:
                    async for events in stream:
                        progress = waiter.apply_all(events, every=on_change is not None)
                        if progress is None:
                            continue
                        if on_change is not None:
                            on_change(progress.tasks)
                        if on_counts is not None:
                            on_counts(waiter.counts())
                        if progress.done:
                            return progress.tasks
                finally:
                    await stream.aclose()  # type: ignore[attr-defined]
                outcome = waiter.ended(None, time.monotonic())
            except ControllerUnavailable as exc:
                outcome = waiter.ended(exc, time.monotonic())
            if isinstance(outcome, DtaskError):
                raise outcome from None
            try:
                await self._reconnect(outcome)
            except ControllerUnavailable as exc:
                raise waiter.reconnect_failed(exc, time.monotonic()) from None
