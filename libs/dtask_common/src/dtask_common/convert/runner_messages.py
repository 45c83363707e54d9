"""Conversion of a runner session's messages: the Hello, the controller's commands, the runner's reports, batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

from dtask.v1 import controller_pb2 as pb

from dtask_common import models as m
from dtask_common.convert.certificates import revoked_from_pb, revoked_to_pb
from dtask_common.convert.executors import capacity_from_pb, capacity_to_pb, usage_from_pb, usage_to_pb
from dtask_common.convert.metrics import metrics_from_pb, metrics_to_pb
from dtask_common.convert.tasks import (
    attempt_result_from_pb,
    attempt_result_to_pb,
    output_from_pb,
    output_into_pb,
    progress_from_pb,
    progress_to_pb,
    running_from_pb,
    running_to_pb,
    spec_from_pb,
    spec_to_pb,
)


class UnknownMessage(ValueError):
    """A session message with no body, or one this version does not know."""

    def __init__(self, kind: str | None, what: str):
        self.kind = kind
        super().__init__(f"unknown {what} {kind!r}" if kind else f"{what} without a body")


class BadBatch(ValueError):
    """A batch holding what no batch may hold: another batch, a Hello or a Welcome."""


def identity_from_pb(i: pb.Identity) -> m.Identity:
    return m.Identity(role=i.role, name=i.name, controller_name=i.controller_name, version=i.version)


# ---- the Hello ----


def hello_to_pb(h: m.Hello) -> pb.Hello:
    return pb.Hello(
        name=h.name,
        runner_address=h.address,
        capacity=capacity_to_pb(h.capacity),
        labels=dict(h.labels),
        running=[running_to_pb(r) for r in h.running],
        unreported_results=[attempt_result_to_pb(r) for r in h.unreported],
        version=h.version,
        protocol_version=h.protocol_version,
        draining=h.draining,
        instance_id=h.instance_id,
        containment=h.containment,
        path_names=list(h.path_names),
    )


def hello_from_pb(h: pb.Hello, *, name: str | None = None) -> m.Hello:
    """The Hello, under name when given (the controller knows a runner by its certificate's name)."""
    return m.Hello(
        name=h.name if name is None else name,
        address=h.runner_address,
        capacity=capacity_from_pb(h.capacity),
        labels=dict(h.labels),
        running=tuple(running_from_pb(r) for r in h.running),
        unreported=tuple(attempt_result_from_pb(r) for r in h.unreported_results),
        version=h.version,
        protocol_version=h.protocol_version,
        draining=h.draining,
        instance_id=h.instance_id,
        containment=h.containment,
        path_names=tuple(h.path_names),
    )


# ---- controller -> runner ----


def command_to_pb(cmd: m.Command) -> pb.ControllerMessage:
    match cmd:
        case m.WelcomeCmd():
            return pb.ControllerMessage(
                welcome=pb.Welcome(
                    controller_name=cmd.controller_name,
                    version=cmd.version,
                    protocol_version=cmd.protocol_version,
                    executor_name=cmd.executor_name,
                    usage_interval_s=cmd.usage_interval_s,
                    output_offsets=[pb.OutputOffset(task_id=t, attempt=a, offset=o) for t, a, o in cmd.output_offsets],
                    output_tail_bytes=cmd.output_tail_bytes,
                    revoked=[revoked_to_pb(r) for r in cmd.revoked],
                )
            )
        case m.AssignCmd():
            return pb.ControllerMessage(
                assign=pb.Assign(
                    task_id=cmd.task_id, attempt=cmd.attempt, spec=spec_to_pb(cmd.spec), gpu_ids=list(cmd.gpu_ids)
                )
            )
        case m.CancelCmd():
            return pb.ControllerMessage(cancel=pb.Cancel(task_id=cmd.task_id, attempt=cmd.attempt, reason=cmd.reason))
        case m.AckCmd():
            return pb.ControllerMessage(ack=pb.Ack(task_id=cmd.task_id, attempt=cmd.attempt))
        case m.ReadOutputCmd():
            return pb.ControllerMessage(
                read_output=pb.ReadOutput(
                    request_id=cmd.request_id,
                    task_id=cmd.task_id,
                    attempt=cmd.attempt,
                    offset=cmd.offset,
                    max_bytes=cmd.max_bytes,
                )
            )
        case m.RevokedCmd():
            return pb.ControllerMessage(
                revoked=pb.RevokedList(certificates=[revoked_to_pb(r) for r in cmd.certificates])
            )
        case _:
            assert_never(cmd)


def command_from_pb(msg: pb.ControllerMessage) -> m.Command:
    """The command; raises UnknownMessage for one this version does not know, ValueError for a bad spec."""
    which = msg.WhichOneof("msg")
    match which:
        case "welcome":
            w = msg.welcome
            return m.WelcomeCmd(
                controller_name=w.controller_name,
                executor_name=w.executor_name,
                usage_interval_s=w.usage_interval_s,
                output_offsets=tuple((o.task_id, o.attempt, o.offset) for o in w.output_offsets),
                version=w.version,
                protocol_version=w.protocol_version,
                output_tail_bytes=w.output_tail_bytes,
                revoked=tuple(revoked_from_pb(r) for r in w.revoked),
            )
        case "assign":
            a = msg.assign
            return m.AssignCmd(a.task_id, a.attempt, spec_from_pb(a.spec), tuple(a.gpu_ids))
        case "cancel":
            return m.CancelCmd(msg.cancel.task_id, msg.cancel.attempt, msg.cancel.reason)
        case "ack":
            return m.AckCmd(msg.ack.task_id, msg.ack.attempt)
        case "read_output":
            r = msg.read_output
            return m.ReadOutputCmd(r.request_id, r.task_id, r.attempt, r.offset, r.max_bytes)
        case "revoked":
            return m.RevokedCmd(tuple(revoked_from_pb(r) for r in msg.revoked.certificates))
        case _:
            raise UnknownMessage(which, "controller message")


# ---- runner -> controller ----


def report_to_pb(r: m.Report) -> pb.RunnerMessage:
    match r:
        case m.Hello():
            return pb.RunnerMessage(hello=hello_to_pb(r))
        case m.UsageSample():
            return pb.RunnerMessage(usage=pb.UsageReport(sample=usage_to_pb(r)))
        case m.ProgressReport():
            return pb.RunnerMessage(
                progress=pb.ProgressUpdate(
                    task_id=r.task_id,
                    attempt=r.attempt,
                    progress=progress_to_pb(r.progress) if r.progress is not None else None,
                    metrics=metrics_to_pb(r.metrics),
                )
            )
        case m.OutputChunk():
            msg = pb.RunnerMessage()
            output_into_pb(r, msg.output)
            return msg
        case m.AttemptResult():
            return pb.RunnerMessage(finished=attempt_result_to_pb(r))
        case m.DrainReport():
            return pb.RunnerMessage(drain=pb.DrainState(draining=r.draining))
        case m.RefusalReport():
            return pb.RunnerMessage(refused=pb.AssignmentRefused(task_id=r.task_id, attempt=r.attempt, reason=r.reason))
        case m.OutputReadReport():
            # A dict, not an OutputRead built apart: its data (up to a MiB) is then set in place (output_into_pb).
            read = {"request_id": r.request_id, "offset": r.offset, "data": r.data, "eof": r.eof, "error": r.error}
            return pb.RunnerMessage(output_read=read)
        case _:
            assert_never(r)


def report_from_pb(msg: pb.RunnerMessage) -> m.Report:
    """The report; raises UnknownMessage for one this version does not know, ValueError for a bad value."""
    which = msg.WhichOneof("msg")
    match which:
        case "hello":
            return hello_from_pb(msg.hello)
        case "usage":
            return usage_from_pb(msg.usage.sample)
        case "progress":
            p = msg.progress
            return m.ProgressReport(
                p.task_id,
                p.attempt,
                progress_from_pb(p.progress) if p.HasField("progress") else None,
                metrics_from_pb(p.metrics),
            )
        case "output":
            return output_from_pb(msg.output)
        case "finished":
            return attempt_result_from_pb(msg.finished)
        case "drain":
            return m.DrainReport(msg.drain.draining)
        case "refused":
            r = msg.refused
            return m.RefusalReport(r.task_id, r.attempt, r.reason)
        case "output_read":
            o = msg.output_read
            return m.OutputReadReport(o.request_id, o.offset, o.data, o.eof, o.error)
        case _:
            raise UnknownMessage(which, "runner message")


# ---- batches (protocol 2): several messages in one, handled in order ----


def reports_batch_pb(msgs: Sequence[pb.RunnerMessage]) -> pb.RunnerMessage:
    """One message as itself, several as one RunnerBatch (in order)."""
    if len(msgs) == 1:
        return msgs[0]
    batch = pb.RunnerMessage()
    batch.batch.messages.extend(msgs)  # a copy each; the constructor's merge costs far more for output (upb)
    return batch


def report_parts(msg: pb.RunnerMessage) -> Sequence[pb.RunnerMessage]:
    """The messages a runner message carries, in order: itself, or a batch's (BadBatch when a batch holds a
    batch or a Hello)."""
    if msg.WhichOneof("msg") != "batch":
        return (msg,)
    parts = msg.batch.messages
    for i, part in enumerate(parts):
        kind = part.WhichOneof("msg")
        if kind in ("batch", "hello"):
            raise BadBatch(
                f"message {i + 1} of a RunnerBatch of {len(parts)} is a {kind}; a batch never holds a batch or a "
                "Hello (the runner speaks another protocol or is broken)"
            )
    return parts


def commands_batch_pb(msgs: Sequence[pb.ControllerMessage]) -> pb.ControllerMessage:
    """One message as itself, several as one ControllerBatch (in order; a Welcome is always sent alone)."""
    if len(msgs) == 1:
        return msgs[0]
    batch = pb.ControllerMessage()
    batch.batch.messages.extend(msgs)  # as reports_batch_pb
    return batch


def command_parts(msg: pb.ControllerMessage) -> Sequence[pb.ControllerMessage]:
    """The messages a controller message carries, in order: itself, or a batch's (BadBatch when a batch holds
    a batch or a Welcome)."""
    if msg.WhichOneof("msg") != "batch":
        return (msg,)
    parts = msg.batch.messages
    for i, part in enumerate(parts):
        kind = part.WhichOneof("msg")
        if kind in ("batch", "welcome"):
            raise BadBatch(
                f"message {i + 1} of a ControllerBatch of {len(parts)} is a {kind}; a batch never holds a batch "
                "or a Welcome"
            )
    return parts
