"""A runner told to run more than it can (slots, its prefetch queue, GPUs) refuses the assignment back to the
controller; what fits in its queue waits there and starts the moment a slot frees."""

from __future__ import annotations

from pathlib import Path

from tests.integration.runner.fake_controller import FakeController
from tests.support import Proc, free_port_range, start_dtask

GATED = 'echo "$DTASK_TASK_ID"; while [ ! -e {d}/go-$DTASK_TASK_ID ]; do sleep 0.02; done'


def _runner(home: Path, fake: FakeController, *extra: str, prefetch: int = 0) -> Proc:
    lo, hi = free_port_range()
    return start_dtask(
        [
            "--set",
            f"runner.prefetch={prefetch}",
            "runner",
            "--controller",
            fake.address,
            "--name",
            "r1",
            "--host",
            "127.0.0.1",
            "--port-range",
            f"{lo}-{hi}",
            *extra,
        ],
        home,
    )


def test_an_assignment_beyond_the_slots_is_refused_and_runs_once_a_slot_is_free(
    home: Path, tmp_path: Path, fake: FakeController
) -> None:
    r = _runner(home, fake, "--slots", "1", "--gpus", "none")
    try:
        s = fake.session()
        s.assign("a", 1, shell=GATED.format(d=tmp_path))
        s.next("output", lambda o: o.task_id == "a")
        s.assign("b", 1, shell=GATED.format(d=tmp_path))
        refused = s.next("refused")
        assert (refused.task_id, refused.attempt) == ("b", 1)
        assert "all 1 slot busy (running a/1)" in refused.reason
        r.wait_for(r"attempt b/1 refused: all 1 slot busy")
        assert not any("attempt b/1 started" in line or "running it anyway" in line for line in r.lines)
        (tmp_path / "go-a").touch()
        assert s.next("finished").task_id == "a"
        s.assign("b", 2, shell=GATED.format(d=tmp_path))  # the controller queued it again: now it fits
        s.next("output", lambda o: o.task_id == "b" and o.attempt == 2)
        (tmp_path / "go-b").touch()
        fin = s.next("finished")
        assert (fin.task_id, fin.attempt, fin.state) == ("b", 2, 3)
    finally:
        r.stop()


def test_an_assignment_on_a_gpu_in_use_is_refused(home: Path, tmp_path: Path, fake: FakeController) -> None:
    r = _runner(home, fake, "--slots", "2", "--gpus", "0,1")
    try:
        s = fake.session()
        s.assign("a", 1, gpu_ids=(0,), shell=GATED.format(d=tmp_path))
        s.next("output", lambda o: o.task_id == "a")
        s.assign("b", 1, gpu_ids=(0,), shell=GATED.format(d=tmp_path))
        refused = s.next("refused")
        assert refused.task_id == "b" and "GPU 0 is in use by attempt a/1" in refused.reason
        s.assign("c", 1, gpu_ids=(1,), shell=GATED.format(d=tmp_path))  # the other GPU is free
        s.next("output", lambda o: o.task_id == "c")
        for t in ("a", "c"):
            (tmp_path / f"go-{t}").touch()
        assert {s.next("finished").task_id, s.next("finished").task_id} == {"a", "c"}
    finally:
        r.stop()


def test_an_assignment_beyond_the_slots_waits_in_the_queue_and_starts_when_the_slot_frees(
    home: Path, tmp_path: Path, fake: FakeController
) -> None:
    r = _runner(home, fake, "--slots", "1", "--gpus", "none", prefetch=1)
    try:
        s = fake.session()
        assert s.hello.capacity.prefetch == 1
        s.assign("a", 1, shell=GATED.format(d=tmp_path))
        s.next("output", lambda o: o.task_id == "a")
        s.assign("b", 1, shell=GATED.format(d=tmp_path))  # queued: the one slot is busy
        s.assign("c", 1, shell=GATED.format(d=tmp_path))  # beyond slot and queue: refused
        refused = s.next("refused")
        assert (refused.task_id, refused.attempt) == ("c", 1)
        assert "all 1 slot busy (running a/1, 1 queued)" in refused.reason
        assert not any("attempt b/1 started" in line for line in r.lines)
        (tmp_path / "go-b").touch()  # b may end at once, but only once it starts
        (tmp_path / "go-a").touch()
        done = [s.next("finished"), s.next("finished")]
        assert [(f.task_id, f.attempt, f.state) for f in done] == [("a", 1, 3), ("b", 1, 3)]
        assert done[1].started_at.ToNanoseconds() >= done[0].finished_at.ToNanoseconds()
    finally:
        r.stop()


def test_a_queued_assignment_cancelled_ends_cancelled_without_running(
    home: Path, tmp_path: Path, fake: FakeController
) -> None:
    r = _runner(home, fake, "--slots", "1", "--gpus", "none", prefetch=1)
    try:
        s = fake.session()
        s.assign("a", 1, shell=GATED.format(d=tmp_path))
        s.next("output", lambda o: o.task_id == "a")
        s.assign("b", 1, shell=f"touch {tmp_path}/b-ran")
        s.cancel("b", 1, "not wanted")
        fin = s.next("finished")
        assert (fin.task_id, fin.attempt, fin.state) == ("b", 1, 5)  # CANCELLED
        assert "stopped before it started: not wanted" in fin.error
        (tmp_path / "go-a").touch()
        assert s.next("finished").task_id == "a"
        assert not (tmp_path / "b-ran").exists()
    finally:
        r.stop()


def test_a_runner_that_stops_hands_its_queued_assignments_back(
    home: Path, tmp_path: Path, fake: FakeController
) -> None:
    r = _runner(home, fake, "--slots", "1", "--gpus", "none", prefetch=1)
    s = fake.session()
    s.assign("a", 1, shell=GATED.format(d=tmp_path))
    s.next("output", lambda o: o.task_id == "a")
    s.assign("b", 1, shell=f"touch {tmp_path}/b-ran")
    s.assign("c", 1, shell=f"touch {tmp_path}/c-ran")
    assert s.next("refused").task_id == "c"  # so b, sent before it, is in the queue
    r.stop()
    refused = s.next("refused")
    assert (refused.task_id, refused.attempt) == ("b", 1)
    assert "stopped before the attempt started" in refused.reason
    assert not (tmp_path / "b-ran").exists()
