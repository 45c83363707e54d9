"""kill -9 of the controller around a large submission: acknowledged tasks survive, a batch is all or nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from dtask_client import DtaskError
from dtask_common.models import TaskSpec

from tests.faults.helpers import client, controller_proc
from tests.support import Proc, free_port_range

N = 5000


def batch(tag: str) -> list[TaskSpec]:
    return [TaskSpec(name=f"{tag}-{i}", shell=f"echo {i}", tags=(tag,)) for i in range(N)]


def restart(home: Path, ctl: Proc, port_range: tuple[int, int]) -> Proc:
    ctl.kill9()
    return controller_proc(home, port_range=port_range)


def test_acknowledged_submission_survives_kill9(home: Path) -> None:
    port_range = free_port_range()
    ctl = controller_proc(home, port_range=port_range)
    try:
        with client(home, ctl.address, timeout=60) as c:
            c.pause()  # no runner anyway; keeps the store's view simple
            ids = c.submit(batch("acked"))
        assert len(ids) == N
        ctl = restart(home, ctl, port_range)
        with client(home, ctl.address, timeout=60) as c:
            tasks = c.tasks(tag="acked")
            assert [t.id for t in tasks] == ids
            assert {t.spec.name for t in tasks} == {f"acked-{i}" for i in range(N)}
            assert c.queue().pending == N
    finally:
        ctl.stop()


def test_kill9_during_submission_keeps_all_or_none_of_the_batch(home: Path) -> None:
    port_range = free_port_range()
    ctl = controller_proc(home, port_range=port_range)
    try:
        with client(home, ctl.address, timeout=60) as c:
            c.pause()
        specs = batch("warmup")
        started = time.monotonic()
        with client(home, ctl.address, timeout=60) as c:  # timed as each round submits: a fresh connection
            c.submit(specs)
        took = time.monotonic() - started
        # No event marks "the controller is halfway through a request": kill at spread points of its duration.
        outcomes = []
        for k, fraction in enumerate((0.6, 0.85, 0.92, 0.97, 1.0, 1.1)):
            tag = f"round{k}"
            specs = batch(tag)
            result: dict[str, object] = {}

            def submit(
                specs: list[TaskSpec] = specs, result: dict[str, object] = result, address: str = ctl.address
            ) -> None:
                try:
                    with client(home, address, timeout=30) as c:
                        result["ids"] = c.submit(specs)
                except DtaskError as exc:
                    result["error"] = exc

            t = threading.Thread(target=submit, daemon=True)
            t.start()
            time.sleep(took * fraction)
            ctl = restart(home, ctl, port_range)
            t.join(30)
            assert not t.is_alive()
            with client(home, ctl.address, timeout=60) as c:
                kept = [x.id for x in c.tasks(tag=tag)]
            assert len(kept) in (0, N), f"kill at {fraction:.0%} of a submission left {len(kept)} of {N} tasks"
            if "ids" in result:  # acknowledged: every id is there
                assert kept == result["ids"]
            outcomes.append(len(kept))
        with client(home, ctl.address, timeout=60) as c:
            assert c.queue().pending == N + sum(outcomes)
    finally:
        ctl.stop()
