"""Task env values against a real controller and runner: viewers see them masked, operators and the task see them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dtask_client import Controller
from dtask_common import events as ev
from dtask_common.models import Task, TaskSpec, TaskState
from dtask_common.redact import HIDDEN

from tests.e2e.cli.conftest import run_dtask
from tests.integration.client.cluster import Cluster, cluster

SECRET = "s3cret-token-42"
ENV = {"API_TOKEN": SECRET, "EMPTY": ""}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, certs_template: Path) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("secrets"), certs_template, runners=("r1",)) as c:
        yield c


@pytest.fixture(scope="module")
def done_id(live: Cluster) -> str:
    """A finished task that printed its API_TOKEN."""
    with live.client() as c:
        (tid,) = c.submit(TaskSpec(name="uses-token", shell='printf "token=%s" "$API_TOKEN"', env=ENV))
        (task,) = c.wait([tid], timeout=30)
    assert task.state is TaskState.SUCCEEDED, task.error
    return tid


def masked(t: Task) -> bool:
    return dict(t.spec.env) == {"API_TOKEN": HIDDEN, "EMPTY": HIDDEN}


def test_get_and_list_masked_for_viewer_while_the_task_got_the_values(live: Cluster, done_id: str) -> None:
    with live.client("viewer") as v:
        assert masked(v.task(done_id))
        assert masked(next(t for t in v.tasks() if t.id == done_id))
        assert b"".join(v.logs(done_id)) == f"token={SECRET}".encode()  # what the runner gave the task
    with live.client("operator") as o:
        assert dict(o.task(done_id).spec.env) == ENV
        assert dict(next(t for t in o.tasks() if t.id == done_id).spec.env) == ENV


def _watch_until_added(c: Controller, started: threading.Event, found: list[Task], name: str) -> None:
    for event in c.watch(include_usage=False, include_progress=False, timeout=30):
        body = event.body
        if isinstance(body, ev.Snapshot):
            found += [t for t in body.tasks if t.spec.name == "uses-token"]
            if body.last:
                started.set()
        elif isinstance(body, ev.TaskEvent) and body.task.spec.name == name:
            found.append(body.task)
            return


def test_watch_snapshot_and_events_masked_per_watcher(live: Cluster, done_id: str) -> None:
    results: dict[str, list[Task]] = {"viewer": [], "operator": []}
    clients = {role: live.client(role) for role in results}
    started = {role: threading.Event() for role in results}
    threads = [
        threading.Thread(target=_watch_until_added, args=(clients[r], started[r], results[r], "later")) for r in results
    ]
    try:
        for t in threads:
            t.start()
        assert all(s.wait(20) for s in started.values())
        with live.client() as o:
            o.submit(TaskSpec(name="later", shell="true", env=ENV))
        for t in threads:
            t.join(30)
    finally:
        for c in clients.values():
            c.close()
    snap_v, added_v = results["viewer"]
    snap_o, added_o = results["operator"]
    assert snap_v.id == done_id and masked(snap_v) and masked(added_v)
    assert dict(snap_o.spec.env) == ENV and dict(added_o.spec.env) == ENV


def test_cli_with_viewer_certificate_masks(live: Cluster, done_id: str) -> None:
    viewer = ("--cert", str(live.certs / "viewer.crt"))
    detail = run_dtask(live.home, live.address, *viewer, "task", done_id)
    assert detail.returncode == 0, detail.stderr
    assert f"API_TOKEN={HIDDEN}" in detail.stdout and SECRET not in detail.stdout
    for args in (("task", done_id, "--json"), ("tasks", "--json"), ("export",)):
        r = run_dtask(live.home, live.address, *viewer, *args)
        assert r.returncode == 0, r.stderr
        assert SECRET not in r.stdout and HIDDEN in r.stdout, args
    exported = json.loads(run_dtask(live.home, live.address, *viewer, "export").stdout)
    assert {t["id"]: t["spec"]["env"] for t in exported["tasks"]}[done_id] == {"API_TOKEN": HIDDEN, "EMPTY": HIDDEN}
    operator = run_dtask(live.home, live.address, "task", done_id)
    assert f"API_TOKEN={SECRET}" in operator.stdout


def test_a_missing_program_does_not_quote_the_tasks_path(live: Cluster) -> None:
    with live.client() as o:
        (tid,) = o.submit(TaskSpec(name="no-such", argv=("no-such-program-x",), env={"PATH": "/opt/s3cret/bin"}))
        (task,) = o.wait([tid], timeout=30)
    assert task.state is TaskState.FAILED and "no-such-program-x" in task.error
    assert "s3cret" not in task.error and "the task's env" in task.error
