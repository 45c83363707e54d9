"""The ownership rule with an in-memory table of attempts: decide, log once, count, end a session."""

from __future__ import annotations

import logging

import pytest
from dtask_common.models import AttemptResult, RunningAttempt, TaskState
from dtask_controller.ownership import ReportGuard, Verdict, decide
from dtask_controller.runner_messages import AckCmd, CancelCmd, Hello


class Table:
    """Attempts as recorded: (task, attempt) -> executor; running holds the running ones."""

    def __init__(self) -> None:
        self.recorded = {("1", 1): "r1", ("1", 2): "r2", ("2", 1): "r1"}
        self.running = {("1", 2): "r2", ("2", 1): "r1"}
        self.store_reads = 0

    def running_executor(self, task_id: str, attempt: int) -> str:
        return self.running.get((task_id, attempt), "")

    def recorded_executor(self, task_id: str, attempt: int) -> str | None:
        self.store_reads += 1
        return self.recorded.get((task_id, attempt))

    def task_known(self, task_id: str) -> bool:
        return task_id in ("1", "2", "3")


def test_decide() -> None:
    assert decide("r1", "r1", None, True) is Verdict.OWN
    assert decide("r1", "", "r1", True) is Verdict.OWN  # superseded or lost, still its own
    assert decide("r1", "r2", "r2", True) is Verdict.FOREIGN
    assert decide("r1", "", None, True) is Verdict.FOREIGN  # a known task, an attempt never given
    assert decide("r1", "", None, False) is Verdict.UNKNOWN


def test_verdicts_and_the_cached_store_lookup() -> None:
    t = Table()
    g = ReportGuard("r1", t)
    assert g.verdict("2", 1) is Verdict.OWN and t.store_reads == 0  # the running attempt: no store read
    assert g.verdict("1", 1) is Verdict.OWN  # superseded by attempt 2 on r2, still r1's to report
    assert g.verdict("1", 2) is Verdict.FOREIGN
    assert g.verdict("3", 1) is Verdict.FOREIGN
    assert g.verdict("9", 1) is Verdict.UNKNOWN
    reads = t.store_reads
    for _ in range(5):
        g.verdict("1", 1)
    assert t.store_reads == reads


def test_foreign_reports_are_counted_logged_once_and_end_the_session(caplog: pytest.LogCaptureFixture) -> None:
    rejected: list[int] = []
    g = ReportGuard("r1", Table(), lambda reason: rejected.append(1), limit=3)
    with caplog.at_level(logging.WARNING, "dtask_controller"):
        assert g.allows("output", "2", 1) and g.allows("a result", "9", 1)
        for _ in range(3):
            assert not g.allows("output", "1", 2)
        assert not g.refusal
        assert not g.allows("progress", "1", 2)
    assert g.rejected == 4 and len(rejected) == 4
    assert "4 reports on attempts that were not dispatched to it" in g.refusal
    logged = [r.getMessage() for r in caplog.records if "not applied" in r.getMessage()]
    assert logged == [
        "runner certificate r1 (executor r1) reported output for task 1 attempt 2, which was "
        "dispatched to r2; not applied"
    ]


def test_hello_claims_on_other_executors_attempts_are_dropped() -> None:
    g = ReportGuard("r1", Table())
    res = {
        k: AttemptResult(task_id=k[0], attempt=k[1], state=TaskState.SUCCEEDED) for k in (("1", 1), ("1", 2), ("9", 1))
    }
    hello = Hello("r1", running=(RunningAttempt("2", 1), RunningAttempt("1", 2)), unreported=tuple(res.values()))
    kept, tell = g.filter_hello(hello)
    assert [(r.task_id, r.attempt) for r in kept.running] == [("2", 1)]
    assert [(r.task_id, r.attempt) for r in kept.unreported] == [("1", 1), ("9", 1)]
    assert tell == [CancelCmd("1", 2, "this attempt was not dispatched to r1"), AckCmd("1", 2)]
    assert g.rejected == 2
    # What it was told to stop reports its end: not applied, but no strike against the session.
    for _ in range(5):
        assert not g.allows("a result", "1", 2)
    assert not g.refusal
    untouched = Hello("r1", running=(RunningAttempt("2", 1),))
    assert g.filter_hello(untouched) == (untouched, [])
