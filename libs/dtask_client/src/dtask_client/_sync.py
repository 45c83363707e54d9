"""The synchronous client: `Controller`, for scripts, notebooks, the CLI and `dtask shell`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from dtask_client._follow import Follow, dispatched, noticed
from dtask_client._runner_output import RunnerUnreachable, WholeRead, read_direct
from dtask_client._sync_connection import SyncConnection
from dtask_client._wait import WaitCounts, Waiter
from dtask_client.errors import Conflict, ControllerUnavailable, DtaskError


class Controller(SyncConnection):
    """A connection to a dtask controller; every method returns dtask_common models.

    Defaults match the `dtask` CLI: $DTASK_CONTROLLER (else localhost:50051), the certificates in
    $DTASK_HOME/certs and the operator certificate there. Errors are DtaskError subclasses.
    channel= talks over a grpc.Channel given ready (left open by close()) or made by a factory
    (closed by close()) instead of the mutual-TLS channel made from the certificates.

    After it has reached the controller once, a read (or a drain, pause, resume) that finds it gone is
    sent again within the call's timeout; wait() and logs(follow=True) wait for it to come back.
    """

    # ---- queries ----

    def whoami(self) -> Identity:
        """Role and name of this client's certificate, as the controller sees it."""
        return self._call(c.whoami())

    def executors(self, include_gone: bool = False) -> list[ExecutorInfo]:
        """Every executor (runner) the controller knows."""
        return self._call(c.executors(include_gone))

    def executor(self, name: str) -> ExecutorInfo:
        return self._call(c.executor(name))

    def finished(self) -> bool:
        """True when nothing is pending or running."""
        return self._call(c.finished())

    def queue(self) -> QueueStatus:
        """Task counts per state and whether dispatch is paused."""
        return self._call(c.queue())

    def resource_usage(self, executor: str | None = None, history: int = 60) -> list[ExecutorUsage]:
        """Latest usage sample, dead flag and history of each executor."""
        return self._call(c.resource_usage(executor, history))

    def tasks(
        self,
        states: Iterable[TaskState | str] | None = None,
        tag: str | None = None,
        executor: str | None = None,
        name_contains: str | None = None,
        *,
        name_prefix: str | None = None,
        params: Mapping[str, ParamValue] | None = None,
    ) -> list[Task]:
        """Every task matching the filters (all pages)."""
        wanted = _specs.states_of(states)
        wanted_params = _specs.param_filter(params)
        out: list[Task] = []
        token = ""
        while True:
            page, token = self._call(
                c.list_tasks(wanted, tag, executor, name_contains, token, name_prefix=name_prefix, params=wanted_params)
            )
            out.extend(page)
            if not token:
                return out

    def results_table(
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
        """The results table of a sweep (what `dtask results` prints): tasks named with a prefix or matrix base
        name in names (`"train"` gives every `train[...]`), task ids (in names or ids), or, with neither, every
        task; narrowed by tag and params. cols picks and orders columns, sort/desc orders rows (missing values
        last), minimize/maximize say which way a metric is better (default: higher, lower when its name says
        loss, error or time). An unknown column raises UnknownColumn (a ValueError)."""
        sel = _results.selection(names, ids)
        groups: list[list[Task]] = []
        for prefix in sel.prefixes:
            groups.append(self.tasks(tag=tag, name_prefix=prefix, params=params))
        groups.append([self.task(i) for i in sel.ids])
        if not sel.prefixes and not sel.ids:
            groups.append(self.tasks(tag=tag, params=params))
        return results_table.build(
            _results.merged(groups), cols=cols, sort=sort, desc=desc, minimize=minimize, maximize=maximize
        )

    def results(
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
        """The results table's rows as plain dicts (`pandas.DataFrame(rows)` takes them): a key per column, id,
        parameters, metrics, state, duration_s; a missing value is None; ints stay ints. Arguments as
        results_table."""
        table = self.results_table(
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

    def tasks_pending(self) -> list[Task]:
        return self.tasks([TaskState.PENDING])

    def tasks_running(self) -> list[Task]:
        return self.tasks([TaskState.RUNNING])

    def tasks_finished(self) -> list[Task]:
        return self.tasks(FINISHED_STATES)

    def task(self, task_id: str) -> Task:
        return self._call(c.task(task_id))

    # ---- commands ----

    def submit(
        self, specs: TaskSpec | Iterable[TaskSpec] | str | Path, *, params: Mapping[str, ParamValue] | None = None
    ) -> list[str]:
        """Queue a spec, a list of specs or a TOML task file (all or nothing); returns the new ids.

        params (e.g. {"lr": 0.1, "model": "cnn"}) are set on each given spec (a task file's come from its matrix).
        """
        return self._call(c.submit(_specs.with_params(_specs.specs_of(specs), params)))

    def add_task(self, spec: TaskSpec | str | list[str] | None = None, /, **fields: Any) -> str:
        """Queue one task, from a TaskSpec or from TaskSpec fields (command=... for a shell string)."""
        return self.submit(_specs.spec_from_fields(spec, fields))[0]

    def add_tasks(self, specs: Iterable[TaskSpec | dict[str, Any]] | str | Path) -> list[str]:
        """Queue several tasks (TaskSpecs, dicts of TaskSpec fields, or a task file path)."""
        if isinstance(specs, (str, Path)):
            return self.submit(specs)
        return self.submit([s if isinstance(s, TaskSpec) else _specs.spec_from_fields(None, s) for s in specs])

    def cancel(self, task_id: str) -> Task:
        return self._call(c.cancel(task_id))

    def retry(self, task_id: str) -> Task:
        return self._call(c.retry(task_id))

    def drain(self, name: str, undrain: bool = False) -> ExecutorInfo:
        return self._call(c.drain(name, undrain))

    def pause(self) -> QueueStatus:
        return self._call(c.pause())

    def resume(self) -> QueueStatus:
        return self._call(c.resume())

    def prune(
        self, finished_before: float, *, tag: str = "", dry_run: bool = False, list_limit: int = 20
    ) -> PruneResult:
        """Delete finished tasks that finished before finished_before (seconds since the epoch), of one tag if
        given, except those a pending or running task depends on; dry_run: only say what would be deleted.
        The result names the first list_limit of them."""
        return self._call(c.prune(PruneRequest(finished_before, tag, dry_run, list_limit)))

    # ---- streams ----

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
        """An attempt's output (0: the latest attempt), as it arrives: all of it, or only its last tail_bytes
        (at most what the controller keeps); with follow, until the attempt ends.

        When part of the output can no longer be read (its runner is gone and the controller kept only
        the tail), on_notice is called with what is missing (without on_notice it is logged as a warning).
        Following a task that has not started yet waits for its dispatch first. direct: whether a large whole
        output is read straight from its runner (None: as client.direct_logs says; False: through the controller).
        """
        if not follow:
            task = self.task(task_id)  # NotFound before streaming
            if tail_bytes == 0 and self._direct(direct):
                return self._whole(task, attempt, on_notice)
            return (noticed(chunk, on_notice) for chunk in self._stream(c.output(task_id, attempt, tail_bytes)))
        return self._follow(
            Follow(task_id, attempt, self.address, self.timeout, tail_bytes=tail_bytes, on_notice=on_notice)
        )

    def _whole(self, task: Task, attempt: int, on_notice: Callable[[str], None] | None) -> Iterator[bytes]:
        """The whole output: a large one straight from its runner when it can be reached, else (and from where
        that read stopped) relayed by the controller."""
        read = WholeRead(task, attempt, on_notice)
        if executor := read.executor(list(self._stream(read.probe()))):
            try:
                yield from read_direct(self.executor(executor).address, self._credentials(), read)
                return
            except (RunnerUnreachable, grpc.RpcError, DtaskError) as exc:  # (DtaskError: an executor now unknown)
                read.failed(executor, exc)
        for chunk in self._stream(read.relay()):
            if data := read.relayed(chunk):  # (its notice, if any, is told either way)
                yield data

    def _direct(self, direct: bool | None) -> bool:
        """Whether a whole output may be read from its runner: asked for, and certificate files to dial with."""
        return (self._settings.direct_logs if direct is None else direct) and self._settings.files is not None

    def _credentials(self) -> grpc.ChannelCredentials:
        assert self._settings.files is not None, "a direct read needs the certificate files"
        return channel_credentials(self._settings.files)

    def _follow(self, follow: Follow) -> Iterator[bytes]:
        """Follow one attempt to its end, across controller restarts (output is not repeated)."""
        while True:
            try:
                for chunk in self._stream(follow.call()):
                    if new := follow.piece(chunk):
                        yield new
                # sent once: a task seen after riding out a restart may have ended meanwhile, its output unseen
                if follow.over(self._send(c.task(follow.task_id), self.timeout)):
                    if (rest := follow.rest([chunk for chunk in self._stream(follow.probe())])) is not None:
                        for chunk in self._stream(rest):
                            if new := follow.piece(chunk):
                                yield new
                    return
                outcome = follow.lost(None, time.monotonic())  # the stream ended while the attempt runs on
            except Conflict:
                if follow.started or not follow.undispatched(self.task(follow.task_id)):
                    raise
                for events in self._stream(c.watch_for([follow.task_id], False)):
                    if any(dispatched(event, follow.task_id) for event in events):
                        break
                continue
            except ControllerUnavailable as exc:
                outcome = follow.lost(exc, time.monotonic())
            if isinstance(outcome, DtaskError):
                raise outcome
            self._reconnect(outcome)

    def watch(
        self,
        include_usage: bool = True,
        include_progress: bool = True,
        timeout: float | None = None,
        *,
        select: WatchFilter | None = None,
    ) -> Iterator[ev.WatchEvent]:
        """A snapshot, then every change, until the iterator is closed (or timeout seconds passed).

        select: only the tasks and events that filter chooses (its exclude flags replace the include ones).
        """
        stream = self._stream(c.watch(include_usage, include_progress, select), timeout, quiet_deadline=True)
        try:
            for events in stream:
                yield from events
        finally:
            stream.close()  # type: ignore[attr-defined]

    def wait(
        self,
        ids: Iterable[str] | None = None,
        timeout: float | None = None,
        on_change: Callable[[list[Task]], None] | None = None,
        on_counts: Callable[[WaitCounts], None] | None = None,
    ) -> list[Task]:
        """Block until the given tasks (default: every task) are finished; returns them.

        Raises WaitTimeout after timeout seconds. on_change is called with the watched tasks whenever one of
        them changes (O(tasks) each time); on_counts with how many are in each state after each message of
        events (O(states): for a progress line over any number of tasks).
        """
        wanted = [str(i) for i in ids] if ids is not None else None
        waiter = Waiter(wanted, timeout, time.monotonic(), self.address, self.timeout)
        while True:
            try:
                stream = self._stream(
                    c.watch_for(wanted, on_change is not None, on_change is not None or on_counts is not None),
                    waiter.open(time.monotonic()),
                )
                try:
                    for events in stream:
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
                    stream.close()  # type: ignore[attr-defined]
                outcome = waiter.ended(None, time.monotonic())
            except ControllerUnavailable as exc:
                outcome = waiter.ended(exc, time.monotonic())
            if isinstance(outcome, DtaskError):
                raise outcome from None
            # the controller went away mid-wait (a restart loses nothing): wait on once it is back
            try:
                self._reconnect(outcome)
            except ControllerUnavailable as exc:
                raise waiter.reconnect_failed(exc, time.monotonic()) from None
