"""The pure scheduler: priorities, fit, labels, GPUs, dependencies, pause, drain, retries, LOST, fencing."""

from __future__ import annotations

import pytest
from dtask_common.models import Capacity, Resources, TaskSpec, TaskState
from dtask_controller.effects import CancelAttempt, Dispatch, Finished, Requeued, SchedulerError, Stale
from dtask_controller.scheduler import Scheduler


def spec(name: str = "", **kw: object) -> TaskSpec:
    return TaskSpec(name=name, shell="true", **kw)  # type: ignore[arg-type]


def sched_with(*executors: tuple[str, Capacity], labels: dict[str, dict[str, str]] | None = None) -> Scheduler:
    s = Scheduler()
    for name, cap in executors:
        s.executor_up(name, cap, (labels or {}).get(name, {}))
    return s


def placed(ds: list[Dispatch]) -> list[tuple[str, str]]:
    return [(d.task_id, d.executor) for d in ds]


def test_priority_then_submission_order() -> None:
    s = sched_with(("a", Capacity(slots=1)))
    s.add("1", spec(priority=0))
    s.add("2", spec(priority=5))
    s.add("3", spec(priority=5))
    assert placed(s.assign()) == [("2", "a")]
    s.attempt_finished("2", 1, TaskState.SUCCEEDED)
    assert placed(s.assign()) == [("3", "a")]
    s.attempt_finished("3", 1, TaskState.SUCCEEDED)
    assert placed(s.assign()) == [("1", "a")]
    assert s.assign() == []


def test_slots_cpus_memory_fit() -> None:
    s = sched_with(
        ("small", Capacity(slots=4, cpus=2, memory_mb=1000)), ("big", Capacity(slots=4, cpus=16, memory_mb=64000))
    )
    s.add("1", spec(resources=Resources(cpus=8)))
    s.add("2", spec(resources=Resources(memory_mb=2000)))
    s.add("3", spec(resources=Resources(cpus=1, memory_mb=500)))
    s.add("4", spec(resources=Resources(cpus=1, memory_mb=600)))
    got = dict(placed(s.assign()))
    assert got["1"] == "big" and got["2"] == "big"
    assert got["3"] == "small"
    assert got["4"] == "big"  # small has only 500 MiB left
    s.add("5", spec(resources=Resources(cpus=100)))
    assert s.assign() == []
    assert s.state("5") is TaskState.PENDING


def test_one_slot_by_default_and_release_on_finish() -> None:
    s = sched_with(("a", Capacity()))
    for i in (1, 2):
        s.add(str(i), spec())
    assert placed(s.assign()) == [("1", "a")]
    assert s.assign() == []
    assert len(s.running_on("a")) == 1
    s.attempt_finished("1", 1, TaskState.FAILED, "boom")
    assert placed(s.assign()) == [("2", "a")]


def test_labels_must_match() -> None:
    s = sched_with(("cpu", Capacity(slots=2)), ("gpu", Capacity(slots=2)), labels={"gpu": {"kind": "a100"}})
    s.add("1", spec(labels={"kind": "a100"}))
    s.add("2", spec(labels={"kind": "h100"}))
    s.add("3", spec())
    assert sorted(placed(s.assign())) == [("1", "gpu"), ("3", "cpu")]
    assert s.state("2") is TaskState.PENDING


def test_gpu_indexes_are_assigned_and_returned() -> None:
    s = sched_with(("g", Capacity(slots=4, gpus=(0, 1, 2, 3))))
    s.add("1", spec(resources=Resources(gpus=2)))
    s.add("2", spec(resources=Resources(gpus=2)))
    s.add("3", spec(resources=Resources(gpus=1)))
    ds = {d.task_id: d.gpu_ids for d in s.assign()}
    assert ds == {"1": (0, 1), "2": (2, 3)}
    s.attempt_finished("1", 1, TaskState.SUCCEEDED)
    assert [(d.task_id, d.gpu_ids) for d in s.assign()] == [("3", (0,))]


def test_lower_priority_task_that_fits_is_not_blocked_by_one_that_does_not() -> None:
    s = sched_with(("a", Capacity(slots=2, cpus=2)))
    s.add("1", spec(priority=9, resources=Resources(cpus=4)))
    s.add("2", spec(priority=1))
    assert placed(s.assign()) == [("2", "a")]


def test_dispatch_cost_does_not_grow_with_unrunnable_tasks() -> None:
    s = sched_with(("a", Capacity(slots=1)))
    for i in range(1, 20_001):
        s.add(str(i), spec(resources=Resources(gpus=1)))  # no GPU anywhere: none can run
    s.add("20001", spec())
    heap_pops = 0
    original = s._ready._clean

    def counting(heap):  # type: ignore[no-untyped-def]
        nonlocal heap_pops
        heap_pops += 1
        original(heap)

    s._ready._clean = counting  # type: ignore[method-assign]
    assert placed(s.assign()) == [("20001", "a")]
    assert heap_pops < 10


def test_dependencies_wait_then_run() -> None:
    s = sched_with(("a", Capacity(slots=4)))
    s.add("1", spec("prep"))
    s.add("2", spec("train"), deps=["1"])
    assert placed(s.assign()) == [("1", "a")]
    assert s.assign() == []
    s.attempt_finished("1", 1, TaskState.SUCCEEDED)
    assert placed(s.assign()) == [("2", "a")]


def test_failed_dependency_fails_dependants_transitively() -> None:
    s = sched_with(("a", Capacity(slots=4)))
    s.add("1", spec())
    s.add("2", spec(), deps=["1"])
    s.add("3", spec(), deps=["2"])
    s.assign()
    effects = s.attempt_finished("1", 1, TaskState.FAILED, "exit 1")
    finished = {e.task_id: e for e in effects if isinstance(e, Finished)}
    assert finished["1"].state is TaskState.FAILED
    assert finished["2"].state is TaskState.FAILED and "dependency failed: task 1" in finished["2"].error
    assert finished["3"].state is TaskState.FAILED and "task 2" in finished["3"].error
    assert len(s) == 0


def test_dependency_on_finished_task() -> None:
    s = sched_with(("a", Capacity()))
    assert s.add("5", spec(), deps=["1"], finished_deps={"1": TaskState.SUCCEEDED}) == []
    fx = s.add("6", spec(), deps=["2"], finished_deps={"2": TaskState.CANCELLED})
    assert fx == [Finished("6", TaskState.FAILED, "dependency failed: task 2 is cancelled")]
    assert placed(s.assign()) == [("5", "a")]


def test_dependency_retried_does_not_fail_dependant() -> None:
    s = sched_with(("a", Capacity()))
    s.add("1", spec(max_retries=1))
    s.add("2", spec(), deps=["1"])
    s.assign()
    assert s.attempt_finished("1", 1, TaskState.FAILED) == [Requeued("1", 1, TaskState.FAILED, "")]
    assert s.state("2") is TaskState.PENDING
    assert [(d.task_id, d.attempt) for d in s.assign()] == [("1", 2)]


def test_pause_and_resume() -> None:
    s = sched_with(("a", Capacity()))
    s.add("1", spec())
    s.paused = True
    assert s.assign() == []
    s.paused = False
    assert placed(s.assign()) == [("1", "a")]


def test_drain_stops_new_work_on_one_executor() -> None:
    s = sched_with(("a", Capacity()), ("b", Capacity()))
    s.set_draining("a", True)
    s.add("1", spec())
    s.add("2", spec())
    assert placed(s.assign()) == [("1", "b")]
    s.set_draining("a", False)
    assert placed(s.assign()) == [("2", "a")]
    with pytest.raises(SchedulerError):
        s.set_draining("nope", True)


def test_retries_then_final_failure() -> None:
    s = sched_with(("a", Capacity()))
    s.add("1", spec(max_retries=2))
    for attempt in (1, 2):
        assert [(d.task_id, d.attempt) for d in s.assign()] == [("1", attempt)]
        assert isinstance(s.attempt_finished("1", attempt, TaskState.FAILED, "x")[0], Requeued)
    assert [d.attempt for d in s.assign()] == [3]
    fx = s.attempt_finished("1", 3, TaskState.FAILED, "still bad")
    assert fx == [Finished("1", TaskState.FAILED, "still bad", 3, TaskState.FAILED)]


def test_executor_gone_makes_attempts_lost_and_requeues() -> None:
    s = sched_with(("a", Capacity(slots=2)), ("b", Capacity()))
    s.add("1", spec(max_retries=1))
    s.add("2", spec())
    s.set_draining("b", True)
    s.assign()
    assert s.running_on("a") == [("1", 1), ("2", 1)]
    fx = s.executor_gone("a", "executor a is gone")
    assert Requeued("1", 1, TaskState.LOST, "executor a is gone") in fx
    assert Finished("2", TaskState.LOST, "executor a is gone", 1, TaskState.LOST) in fx
    s.set_draining("b", False)
    assert [(d.task_id, d.attempt, d.executor) for d in s.assign()] == [("1", 2, "b")]


def test_an_assignment_that_never_arrived_costs_no_retry() -> None:
    s = sched_with(("a", Capacity()))
    s.add("1", spec(max_retries=0))
    s.assign()
    fx = s.attempt_lost("1", 1, "executor a never got attempt 1", never_started=True)
    assert fx == [Requeued("1", 1, TaskState.LOST, "executor a never got attempt 1")]
    assert [(d.task_id, d.attempt) for d in s.assign()] == [("1", 2)]
    # A real loss of the new attempt still counts: with no retries left the task ends LOST.
    fx = s.attempt_lost("1", 2, "executor a is gone")
    assert fx[0] == Finished("1", TaskState.LOST, "executor a is gone", 2, TaskState.LOST)


def test_superseded_attempt_is_fenced() -> None:
    s = sched_with(("a", Capacity()), ("b", Capacity()))
    s.add("1", spec(max_retries=1))
    s.assign()
    s.attempt_lost("1", 1, "runner did not report it")
    s.assign()
    fx = s.attempt_finished("1", 1, TaskState.SUCCEEDED)
    assert len(fx) == 1 and isinstance(fx[0], Stale)
    assert s.state("1") is TaskState.RUNNING and s.current_attempt("1") == 2
    assert s.attempt_finished("1", 2, TaskState.SUCCEEDED)[0] == Finished(
        "1", TaskState.SUCCEEDED, "", 2, TaskState.SUCCEEDED
    )
    assert isinstance(s.attempt_finished("1", 2, TaskState.SUCCEEDED)[0], Stale)


def test_cancel_pending_and_running() -> None:
    s = sched_with(("a", Capacity()))
    s.add("1", spec())
    s.add("2", spec())
    s.add("3", spec(), deps=["2"])
    s.assign()
    fx = s.cancel("2")
    assert fx[0] == Finished("2", TaskState.CANCELLED, "cancelled by an operator")
    assert fx[1].task_id == "3" and fx[1].state is TaskState.FAILED  # type: ignore[union-attr]
    assert s.cancel("1") == [CancelAttempt("1", 1, "a")]
    assert s.state("1") is TaskState.RUNNING
    fx = s.attempt_finished("1", 1, TaskState.FAILED, "terminated")
    assert fx[0].state is TaskState.CANCELLED  # type: ignore[union-attr]


def test_cancel_running_on_gone_executor() -> None:
    s = sched_with(("a", Capacity()))
    s.add("1", spec(max_retries=3))
    s.assign()
    s.set_online("a", False)
    assert s.cancel("1") == []
    fx = s.executor_gone("a", "gone")
    assert fx[0].state is TaskState.CANCELLED  # type: ignore[union-attr]


def test_retry_finished_task_and_not_running_one() -> None:
    s = sched_with(("a", Capacity()))
    s.add("1", spec())
    s.assign()
    with pytest.raises(SchedulerError, match="still running"):
        s.retry("1", spec(), 1)
    s.attempt_finished("1", 1, TaskState.FAILED)
    s.retry("1", spec(), 1)
    assert [(d.task_id, d.attempt) for d in s.assign()] == [("1", 2)]


def test_restore_running_then_executor_returns() -> None:
    s = Scheduler()
    s.restore_running("7", spec(), 2, "a", ())
    s.add("8", spec())
    assert s.assign() == []  # executor a is not connected
    s.executor_up("a", Capacity(slots=1), {})
    assert s.assign() == []  # its one slot is taken by the restored attempt
    s.attempt_finished("7", 2, TaskState.SUCCEEDED)
    assert placed(s.assign()) == [("8", "a")]


def test_executor_down_takes_no_work() -> None:
    s = sched_with(("a", Capacity()))
    s.set_online("a", False)
    s.add("1", spec())
    assert s.assign() == []
    s.executor_up("a", Capacity(), {})
    assert placed(s.assign()) == [("1", "a")]


def test_work_spreads_over_executors() -> None:
    s = sched_with(("a", Capacity(slots=4)), ("b", Capacity(slots=4)))
    for i in range(1, 5):
        s.add(str(i), spec())
    got = placed(s.assign())
    assert sorted(e for _, e in got) == ["a", "a", "b", "b"]


def test_a_restored_loss_can_be_taken_back_and_gives_its_retry_back() -> None:
    s = sched_with(("a", Capacity(slots=3, gpus=(0, 1))))
    s.add("1", spec(max_retries=1, resources=Resources(gpus=1)), attempts=1, retries_used=1)
    s.add("2", spec(max_retries=1), attempts=1)
    s.restore_lost("1", 1, "a", (1,), True)
    s.restore_lost("2", 2, "a", (), False)  # not its latest attempt: nothing to take back
    assert s.lost_used_retry("1") is True and s.lost_used_retry("2") is None
    assert not s.adoptable("2", 1, "a") and not s.adoptable("1", 1, "b")
    assert s.adopt("1", 1, "a")
    assert (s.state("1"), s.retries_used("1"), s.running_on("a")) == (TaskState.RUNNING, 0, [("1", 1)])
    assert s.lost_used_retry("1") is None
    s.add("3", spec(resources=Resources(gpus=1)))
    assert [(d.task_id, d.attempt, d.gpu_ids) for d in s.assign()] == [("2", 2, ()), ("3", 1, (0,))]


def test_a_prefetching_executor_takes_work_beyond_its_slots_only_when_no_slot_is_free_elsewhere() -> None:
    s = sched_with(("q", Capacity(slots=1, prefetch=1)), ("p", Capacity(slots=1)))
    for i in range(1, 5):
        s.add(str(i), spec())
    # a free slot anywhere first (q joined first), then q's queue; p holds nothing beyond its slot
    assert placed(s.assign()) == [("1", "q"), ("2", "p"), ("3", "q")]
    assert s.running_on("q") == [("1", 1), ("3", 1)]
    s.attempt_finished("2", 1, TaskState.SUCCEEDED)
    assert placed(s.assign()) == [("4", "p")]
    s.attempt_finished("1", 1, TaskState.SUCCEEDED)
    s.add("5", spec())
    assert placed(s.assign()) == [("5", "q")]  # q runs 3 now, so 5 waits in its queue
    assert s.assign() == []


def test_a_queued_task_without_dependencies_costs_under_300_bytes() -> None:
    """A million queued tasks stay within the controller's memory budget: before, each entry held an empty set of
    unmet dependencies (216 bytes) and its own shape tuple, 473 bytes a task; now 257."""
    import tracemalloc

    s = Scheduler()
    spec = TaskSpec(name="t", shell="true")
    ids = [str(i) for i in range(1, 20_001)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for t in ids:
            s.add(t, spec)
        per_task = (tracemalloc.get_traced_memory()[0] - before) / len(ids)
    finally:
        tracemalloc.stop()
    assert per_task < 300, per_task
