"""When a failed call is sent again, and how long a lost controller is waited for (no I/O: times are passed in)."""

from __future__ import annotations

from dataclasses import dataclass, field

from dtask_client._calls import Rpc
from dtask_client.errors import ControllerUnavailable, DtaskError

#: Codes of a call the controller did not answer because it went away (stopping, restarting, unreachable).
LOST_CODES = frozenset({"UNAVAILABLE", "CANCELLED"})
PROBE_PAUSE_S = 0.5


@dataclass(frozen=True)
class Resend:
    """Send the call again after delay seconds; it may wait up to timeout for the channel to be ready."""

    delay: float
    timeout: float


@dataclass(frozen=True)
class GiveUp:
    """Stop and raise error."""

    error: DtaskError


def lost(error: DtaskError) -> bool:
    """True when the error says the controller went away, not that it refused the call."""
    return isinstance(error, ControllerUnavailable) and error.code in LOST_CODES


@dataclass(frozen=True)
class RetryPolicy:
    """Which unary calls are sent again: safe ones, to a controller this client reached before, in budget.

    A client that never reached the controller fails at once (a wrong address, nothing running); one that
    did rides out a restart. Calls that are not safe to repeat (submit, cancel, retry) are sent once, so a
    submission the controller stored before its answer was lost is never queued twice.
    """

    first_delay: float = 0.1
    max_delay: float = 1.0

    def start(self, rpc: Rpc, connected: bool, now: float, budget: float) -> CallRetries:
        return CallRetries(self, rpc.safe_to_retry and connected, now + budget, self.first_delay)


@dataclass
class CallRetries:
    """The sends of one unary call within its time budget (the call's timeout)."""

    policy: RetryPolicy
    allowed: bool
    deadline: float
    delay: float
    first_loss: DtaskError | None = field(default=None)

    def failed(self, error: DtaskError, now: float) -> Resend | GiveUp:
        """What to do after a send failed with error at time now."""
        if not (self.allowed and lost(error)):
            if self.first_loss is not None and isinstance(error, ControllerUnavailable):
                return GiveUp(self.first_loss)  # still away when the budget ran out: the first loss says why
            return GiveUp(error)
        self.first_loss = self.first_loss or error
        remaining = self.deadline - now
        if remaining <= self.delay:
            return GiveUp(self.first_loss)
        resend = Resend(self.delay, remaining - self.delay)
        self.delay = min(self.policy.max_delay, self.delay * 2)
        return resend


@dataclass(frozen=True)
class Probe:
    """Wait up to ready_timeout (None: without end) for the channel, then ask the controller with call_timeout."""

    ready_timeout: float | None
    call_timeout: float


@dataclass(frozen=True)
class Reconnect:
    """Waiting for a lost controller to answer again, until deadline (None: for as long as it takes).

    A restart loses nothing, so a wait or a follow carries on once the controller answers; a probe that
    reaches a controller still starting is repeated after pause seconds.
    """

    lost: DtaskError
    deadline: float | None
    call_timeout: float
    pause: float = PROBE_PAUSE_S

    def step(self, now: float) -> Probe | GiveUp:
        remaining = None if self.deadline is None else self.deadline - now
        if remaining is not None and remaining <= 0:
            return GiveUp(self.lost)
        return Probe(remaining, min(self.call_timeout, remaining or self.call_timeout))


def reconnect_deadline(now: float, deadline: float | None, give_up_after: float | None) -> float | None:
    """The earlier of a call's own deadline and now + give_up_after (None for either: no limit from it)."""
    window = None if give_up_after is None else now + give_up_after
    if deadline is None or window is None:
        return deadline if window is None else window
    return min(deadline, window)
