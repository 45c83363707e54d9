"""How an attempt ended: its state, exit code, signal and error, from its wait status and what stopped it."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

from dtask_common.models import TaskState

from dtask_runner.results import ResultCapture


@dataclass(frozen=True, slots=True)
class Outcome:
    """An ended attempt's state, exit code or signal, and error."""

    state: TaskState
    exit_code: int | None = None
    signal: int | None = None
    error: str = ""


def outcome(
    status: int, capture: ResultCapture, *, stopped_for: str, stopped_as: TaskState, timed_out: bool, timeout_s: float
) -> Outcome:
    """The outcome of an attempt whose main process ended with wait status `status`: the runner stopped it
    for `stopped_for` (ending it as `stopped_as`), or it timed out, or it ended by itself."""
    code = os.waitstatus_to_exitcode(status)
    exit_code, sig = (code, None) if code >= 0 else (None, -code)
    if stopped_for:
        if stopped_as is TaskState.CANCELLED:
            return Outcome(TaskState.CANCELLED, exit_code, sig, f"cancelled: {stopped_for}")
        return Outcome(stopped_as, exit_code, sig, stopped_for)
    if timed_out:
        return Outcome(TaskState.FAILED, exit_code, sig, f"timed out after {timeout_s:g} s")
    if sig is not None:
        detail = f": {capture.error_line}" if capture.error_line else ""
        return Outcome(TaskState.FAILED, exit_code, sig, f"killed by {signame(sig)}{detail}")
    if exit_code:
        detail = f": {capture.error_line}" if capture.error_line else ""
        return Outcome(TaskState.FAILED, exit_code, sig, f"exit code {exit_code}{detail}")
    if capture.runtime_error:
        return Outcome(TaskState.FAILED, exit_code, sig, capture.last_error_line or "RuntimeError in the output")
    return Outcome(TaskState.SUCCEEDED, exit_code, sig, "")


def signame(sig: int) -> str:
    """SIGKILL for 9; `signal N` for a number with no name."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"
