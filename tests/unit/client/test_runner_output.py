"""The whole-output read's decisions, with no I/O: which outputs go to their runner, the pieces' order, and
what the controller's relay adds after a direct read that stopped part way."""

from __future__ import annotations

import pytest
from dtask_client._runner_output import DIRECT_MIN_BYTES, RunnerUnreachable, WholeRead
from dtask_common.models import Attempt, OutputChunk, Task, TaskSpec, TaskState


def task() -> Task:
    attempts = [Attempt("7", 1, executor="r1", state=TaskState.FAILED), Attempt("7", 2, executor="r2")]
    return Task(id="7", spec=TaskSpec(shell="true"), state=TaskState.SUCCEEDED, attempts=attempts)


def test_only_a_large_output_is_read_from_the_runner_that_ran_that_attempt() -> None:
    read = WholeRead(task(), 0, None)
    assert read.executor([]) == ""  # nothing to say how large it is
    assert read.executor([OutputChunk("7", 2, 99, b"x", total_bytes=DIRECT_MIN_BYTES - 1)]) == ""
    assert read.number == 0 and read.relay().request.attempt == 0
    assert read.executor([OutputChunk("7", 1, 99, b"x", total_bytes=DIRECT_MIN_BYTES)]) == "r1"
    assert read.number == 1 and read.direct().request.attempt == 1 and read.relay().request.attempt == 1


def test_pieces_must_follow_one_another_and_the_relay_gives_only_the_rest() -> None:
    notices: list[str] = []
    read = WholeRead(task(), 0, notices.append)
    read.executor([OutputChunk("7", 2, 99, b"x", total_bytes=DIRECT_MIN_BYTES)])
    assert read.piece(OutputChunk("7", 2, 0, b"abc")) == b"abc"
    assert read.piece(OutputChunk("7", 2, 3, b"de")) == b"de" and read.sent == 5
    assert read.direct().request.offset == 5  # a retry asks for the rest
    with pytest.raises(RunnerUnreachable, match="from offset 9, not 5"):
        read.piece(OutputChunk("7", 2, 9, b"zz"))
    # The runner stopped after 5 bytes: the controller's relay (from 0) passes on only what follows them.
    assert read.relayed(OutputChunk("7", 2, 0, b"abc")) == b""
    assert read.relayed(OutputChunk("7", 2, 3, b"defg")) == b"fg"
    assert read.relayed(OutputChunk("7", 2, 7, b"hi", notice="bytes gone")) == b"hi" and notices == ["bytes gone"]
