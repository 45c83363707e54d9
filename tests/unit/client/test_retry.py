"""The retry policy and the reconnect steps: pure decisions from errors and times."""

from __future__ import annotations

from dtask_client import Conflict, ControllerUnavailable, NotFound
from dtask_client._calls import CANCEL_TASK, LIST_TASKS, SUBMIT_TASKS
from dtask_client._retry import GiveUp, Probe, Reconnect, Resend, RetryPolicy, reconnect_deadline

DOWN = ControllerUnavailable("cannot reach the controller at h:1", "UNAVAILABLE")
STOPPING = ControllerUnavailable("the controller at h:1 cancelled ListTasks", "CANCELLED")
SLOW = ControllerUnavailable("the controller at h:1 did not answer ListTasks in time", "DEADLINE_EXCEEDED")


def test_a_safe_call_is_sent_again_with_growing_delays_within_its_budget() -> None:
    r = RetryPolicy(first_delay=0.25, max_delay=0.5).start(LIST_TASKS, connected=True, now=0.0, budget=2.0)
    assert r.failed(DOWN, 0.0) == Resend(0.25, 1.75)
    assert r.failed(STOPPING, 0.5) == Resend(0.5, 1.0)
    assert r.failed(DOWN, 1.0) == Resend(0.5, 0.5)
    assert r.failed(DOWN, 1.75) == GiveUp(DOWN)  # 0.25 s left, less than the next delay: the first loss


def test_the_budget_running_out_while_waiting_reports_the_first_loss() -> None:
    r = RetryPolicy().start(LIST_TASKS, connected=True, now=0.0, budget=10.0)
    assert isinstance(r.failed(DOWN, 0.0), Resend)
    assert r.failed(SLOW, 10.0) == GiveUp(DOWN)


def test_an_answer_after_a_resend_is_the_result() -> None:
    r = RetryPolicy().start(LIST_TASKS, connected=True, now=0.0, budget=10.0)
    assert isinstance(r.failed(DOWN, 0.0), Resend)
    missing = NotFound("no task", "NOT_FOUND")
    assert r.failed(missing, 1.0) == GiveUp(missing)


def test_no_resend_of_unsafe_calls_before_a_first_contact_or_of_refusals() -> None:
    for rpc in (SUBMIT_TASKS, CANCEL_TASK):  # the controller may have done it: never twice
        assert RetryPolicy().start(rpc, True, 0.0, 10.0).failed(DOWN, 0.0) == GiveUp(DOWN)
    assert RetryPolicy().start(LIST_TASKS, False, 0.0, 10.0).failed(DOWN, 0.0) == GiveUp(DOWN)  # fail fast
    refused = Conflict("finished", "FAILED_PRECONDITION")
    assert RetryPolicy().start(LIST_TASKS, True, 0.0, 10.0).failed(refused, 0.0) == GiveUp(refused)
    assert RetryPolicy().start(LIST_TASKS, True, 0.0, 10.0).failed(SLOW, 0.0) == GiveUp(SLOW)


def test_reconnect_probes_until_its_deadline() -> None:
    assert Reconnect(DOWN, None, 10.0).step(5.0) == Probe(None, 10.0)  # no deadline: waits for as long as it takes
    waiting = Reconnect(DOWN, 12.0, 10.0)
    assert waiting.step(10.0) == Probe(2.0, 2.0)
    assert waiting.step(12.0) == GiveUp(DOWN)


def test_reconnect_deadline_is_the_earlier_limit() -> None:
    assert reconnect_deadline(5.0, None, None) is None
    assert reconnect_deadline(5.0, 8.0, None) == 8.0
    assert reconnect_deadline(5.0, None, 10.0) == 15.0
    assert reconnect_deadline(5.0, 8.0, 10.0) == 8.0
