"""Results that arrive together (one batch, or several runners in one turn of the event loop) are committed in one
store transaction, and nobody (the runner's ack, watchers, waiters) hears of them before it has committed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from dtask.v1 import controller_pb2 as pb
from dtask_common import convert
from dtask_common.config import Config
from dtask_common.models import AttemptResult, Capacity, TaskSpec, TaskState
from dtask_controller import commands, recovery, reports, runner_session
from dtask_controller.core import ControllerCore
from dtask_controller.group_commit import GroupCommit
from dtask_controller.ownership import ReportGuard
from dtask_controller.queries import CoreOwners
from dtask_controller.runner_messages import AckCmd, AssignCmd, Hello, Session
from dtask_controller.settings import Settings
from dtask_controller.store import SqliteStore


def drain(s: Session) -> list[object]:
    out = []
    while not s.outbox.empty():
        out.append(s.outbox.get_nowait())
    return out


def finished(task_id: str) -> pb.RunnerMessage:
    return convert.report_to_pb(AttemptResult(task_id, 1, TaskState.SUCCEEDED, exit_code=0))


class Commits:
    """Counts the store's COMMITs (SQLite's statement trace) and what had been told by then."""

    def __init__(self, store: SqliteStore, sessions: list[Session], waiters: list[asyncio.Event]) -> None:
        self.told_at_commit: list[int] = []  # acks queued and waiters woken when each COMMIT ran
        self._sessions, self._waiters = sessions, waiters
        store._db.set_trace_callback(self._trace)

    def _trace(self, sql: str) -> None:
        if sql.strip().upper() == "COMMIT":
            acks = sum(isinstance(c, AckCmd) for s in self._sessions for c in list(s.outbox._queue))  # type: ignore[attr-defined]
            self.told_at_commit.append(acks + sum(w.is_set() for w in self._waiters))

    @property
    def count(self) -> int:
        return len(self.told_at_commit)


async def stream(*msgs: pb.RunnerMessage, hold: asyncio.Event) -> AsyncIterator[pb.RunnerMessage]:
    """A runner's requests: msgs, then the stream stays open until hold is set."""
    for m in msgs:
        yield m
    await hold.wait()


@contextlib.contextmanager
def two_runners(tmp_path: Path) -> Iterator[tuple[ControllerCore, list[Session], list[str]]]:
    core = ControllerCore(SqliteStore(tmp_path / "c.db"), Settings.from_config(Config()))
    recovery.restore(core)
    sessions = [reports.connected(core, Hello(n, capacity=Capacity(slots=2), protocol_version=2)) for n in ("r1", "r2")]
    try:
        yield core, sessions, commands.submit(core, [TaskSpec(name=f"t{i}", shell="true") for i in range(6)])
    finally:
        core.store.close()


def test_results_of_one_batch_and_of_two_runners_at_once_are_one_commit_told_after_it(tmp_path: Path) -> None:
    async def go() -> None:
        with two_runners(tmp_path) as (core, sessions, ids):
            await asyncio.sleep(0)
            core.dispatch()
            given = {s.name: [c.task_id for c in drain(s) if isinstance(c, AssignCmd)] for s in sessions}
            assert sorted(given["r1"] + given["r2"]) == ids[:4]
            waiters = [core.task_waiters.setdefault(t, asyncio.Event()) for t in ids[:4]]
            assert isinstance(core.store, SqliteStore)
            commits = Commits(core.store, sessions, waiters)
            hold = asyncio.Event()
            batch = pb.RunnerMessage(batch=pb.RunnerBatch(messages=[finished(t) for t in given["r1"]]))
            readers = [
                asyncio.create_task(
                    runner_session._read(core, s, stream(*msgs, hold=hold), ReportGuard(s.name, CoreOwners(core)))
                )
                for s, msgs in zip(sessions, ([batch], [finished(t) for t in given["r2"]]), strict=True)
            ]
            for _ in range(5):
                await asyncio.sleep(0)
            # Two results in one batch from r1 and two single messages from r2, all in one turn: one commit,
            # and not one ack was in an outbox nor one waiter woken when it committed.
            assert commits.count == 1, commits.told_at_commit
            assert commits.told_at_commit == [0]
            assert core.reports_in.groups == 1 and core.reports_in.works == 3
            for s in sessions:
                acks = sorted(c.task_id for c in drain(s) if isinstance(c, AckCmd))
                assert acks == sorted(given[s.name])
            assert all(w.is_set() for w in waiters)
            states = {t: task.state for t in ids[:4] if (task := core.store.get_task(t)) is not None}
            assert states == dict.fromkeys(ids[:4], TaskState.SUCCEEDED)
            hold.set()
            await asyncio.gather(*readers)

    asyncio.run(go())


def test_when_the_group_cannot_commit_each_sender_is_tried_alone() -> None:
    async def go() -> None:
        applied: list[str] = []
        failed: list[str] = []
        tries = 0

        @contextlib.contextmanager
        def change() -> Iterator[None]:
            nonlocal tries
            tries += 1
            done = len(applied)
            try:
                yield
            except Exception:
                del applied[done:]  # rolled back
                raise

        def work(who: str, ok: bool = True) -> None:
            applied.append(who)
            if not ok:
                raise OSError(f"{who} cannot be stored")

        g = GroupCommit(change)
        g.add("a", lambda: work("a"), lambda exc: failed.append(f"a: {exc}"))
        g.add("b", lambda: work("b", ok=False), lambda exc: failed.append(f"b: {exc}"))
        g.add("a", lambda: work("a2"), lambda exc: failed.append(f"a: {exc}"))
        await asyncio.sleep(0)
        assert tries == 3 and applied == ["a", "a2"] and failed == ["b: b cannot be stored"]
        assert g.groups == 1 and g.works == 2 and len(g) == 0

    asyncio.run(go())
