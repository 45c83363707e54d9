"""Every method of the synchronous Controller client against a real controller and runner over mTLS."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from dtask_client import Conflict, Controller
from dtask_common.events import Snapshot, TaskEvent
from dtask_common.models import ExecutorState, Resources, TaskSpec, TaskState

from tests.integration.client.cluster import Cluster

PY = sys.executable


def test_queries_and_identity(live: Cluster) -> None:
    with live.client() as c:
        ident = c.whoami()
        assert (ident.role, ident.name) == ("operator", "operator")
        [r1] = [e for e in c.executors() if e.name == "r1"]
        assert r1.capacity.slots == 2 and r1.state in (ExecutorState.IDLE, ExecutorState.BUSY)
        assert c.executor("r1").name == "r1"
        assert isinstance(c.finished(), bool)
        assert c.queue().paused is False


def test_submit_wait_results_and_lists(live: Cluster) -> None:
    script = "import sys; print('hello'); print('***** eval metrics *****'); print('  acc = 0.5'); sys.exit({code})"
    specs = [
        TaskSpec(name="ok", argv=(PY, "-c", script.format(code=0)), tags=("client-sync",)),
        TaskSpec(name="bad", argv=(PY, "-c", script.format(code=3)), tags=("client-sync",), max_retries=1),
        TaskSpec(name="after", shell="echo after", depends_on=("ok",), tags=("client-sync",)),
    ]
    with live.client() as c:
        ids = c.submit(specs)
        assert len(ids) == 3 and len(set(ids)) == 3
        done = c.wait(ids, timeout=30)
        by = {t.name: t for t in done}
        assert [t.id for t in done] == ids
        assert by["ok"].state is TaskState.SUCCEEDED and by["ok"].result == {"acc": 0.5}
        assert by["bad"].state is TaskState.FAILED and len(by["bad"].attempts) == 2
        assert by["bad"].attempts[0].exit_code == 3 and by["bad"].attempts[0].executor == "r1"
        assert by["after"].state is TaskState.SUCCEEDED
        assert by["after"].attempts[0].dispatched_at >= by["ok"].attempts[0].finished_at  # type: ignore[operator]
        tagged = c.tasks(tag="client-sync")
        assert {t.id for t in tagged} == set(ids)
        assert {t.id for t in c.tasks(["failed"], tag="client-sync")} == {by["bad"].id}
        assert set(ids) <= {t.id for t in c.tasks_finished()}
        assert not set(ids) & {t.id for t in c.tasks_pending() + c.tasks_running()}
        assert {t.id for t in c.tasks(executor="r1", tag="client-sync")} == set(ids)
        assert {t.id for t in c.tasks(name_contains="afte", tag="client-sync")} == {by["after"].id}
        assert b"hello\n" in b"".join(c.logs(by["ok"].id))
        assert b"hello" in b"".join(c.logs(by["bad"].id, attempt=1))
        assert c.task(by["ok"].id).spec.argv == specs[0].argv


def test_submit_task_file_and_follow_logs(live: Cluster, tmp_path: Path) -> None:
    f = tmp_path / "jobs.toml"
    f.write_text(
        '[[task]]\nname = "count-{n}"\n'
        f'command = ["{PY}", "-u", "-c", "import time\\nfor i in range({{n}}): print(i, flush=True); time.sleep(0.1)"]\n'
        'tags = ["client-file"]\n[task.matrix]\nn = [5, 6]\n'
    )
    with live.client() as c:
        ids = c.submit(f)
        assert [c.task(i).name for i in ids] == ["count-5[n=5]", "count-6[n=6]"]
        followed = b"".join(c.logs(ids[1], follow=True))
        assert followed.split() == [str(i).encode() for i in range(6)]
        assert c.wait(ids, timeout=30)[0].state is TaskState.SUCCEEDED


def test_cancel_retry_and_conflict(live: Cluster) -> None:
    with live.client() as c:
        [tid] = c.submit(TaskSpec(name="sleeper", shell="sleep 60", tags=("client-cancel",)))
        t = c.cancel(tid)
        assert t.id == tid
        [t] = c.wait([tid], timeout=20)
        assert t.state is TaskState.CANCELLED
        with pytest.raises(Conflict) as info:
            c.cancel(tid)
        assert tid in info.value.message or "cancel" in info.value.message.lower()
        assert info.value.code == "FAILED_PRECONDITION"
        again = c.retry(tid)
        assert again.state in (TaskState.PENDING, TaskState.RUNNING)
        c.cancel(tid)
        [t] = c.wait([tid], timeout=20)
        assert t.state is TaskState.CANCELLED and len(t.attempts) >= 1


def test_drain_pause_resume(live: Cluster) -> None:
    with live.client() as c:
        assert c.drain("r1").state is ExecutorState.DRAINING
        assert c.drain("r1", undrain=True).state is not ExecutorState.DRAINING
        assert c.pause().paused is True
        [tid] = c.submit(TaskSpec(name="paused", shell="true", tags=("client-pause",)))
        assert c.task(tid).state is TaskState.PENDING
        assert c.queue().paused is True
        assert c.resume().paused is False
        assert c.wait([tid], timeout=20)[0].state is TaskState.SUCCEEDED


def test_watch_and_resource_usage(live: Cluster) -> None:
    with live.client() as c:
        events = c.watch(include_usage=False)
        first = next(events)
        assert isinstance(first.body, Snapshot)
        while not (isinstance(first.body, Snapshot) and first.body.last):
            first = next(events)
        [tid] = c.submit(TaskSpec(name="watched", shell="echo hi", tags=("client-watch",)))
        kinds = []
        for event in events:
            if isinstance(event.body, TaskEvent) and event.body.task.id == tid:
                kinds.append(event.body.kind.value)
                if event.body.task.state.finished:
                    break
        events.close()  # type: ignore[attr-defined]
        assert kinds[0] == "added" and kinds[-1] == "finished"
        usage = c.resource_usage("r1", history=5)
        assert [u.executor for u in usage] == ["r1"] and usage[0].latest is not None
        assert 0 <= usage[0].latest.cpu_percent <= 100 and len(usage[0].history) <= 5


def test_add_task_names_like_the_original(live: Cluster) -> None:
    with live.client() as c:
        tid = c.add_task("echo one", name="added-one", tags=("client-add",), cpus=0)
        more = c.add_tasks(
            [
                {"command": ["echo", "two"], "name": "added-two", "tags": ["client-add"]},
                TaskSpec(name="added-three", shell="echo three", resources=Resources(), tags=("client-add",)),
            ]
        )
        done = c.wait([tid, *more], timeout=20)
        assert [t.state for t in done] == [TaskState.SUCCEEDED] * 3
        assert done[1].spec.argv == ("echo", "two")


def test_context_manager_closes(live: Cluster) -> None:
    c = Controller(live.address, certs=live.certs)
    with c:
        c.whoami()
    with pytest.raises(Exception):  # noqa: B017 - a closed channel refuses calls
        c.whoami()


def test_tasks_pages_through_everything(live: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    from dtask_client import _calls

    with live.client() as c:
        ids = c.submit([TaskSpec(name=f"page-{i}", shell="true", tags=("paging",)) for i in range(20)])
        c.wait(ids, timeout=30)
        monkeypatch.setattr(_calls, "PAGE_SIZE", 7)
        pages: list[str] = []
        real = _calls.list_tasks

        def counting(*args: object, **kw: object) -> object:
            pages.append(str(args[-1]))
            return real(*args, **kw)  # type: ignore[arg-type]

        monkeypatch.setattr(_calls, "list_tasks", counting)
        listed = c.tasks(tag="paging")
    assert [t.id for t in listed] == ids
    assert len(pages) == 3 and pages[0] == "" and all(pages[1:])
