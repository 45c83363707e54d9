"""Conversion of the scalars every message shares: states, timestamps, optional fields, JSON results."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from dtask.v1 import common_pb2 as cpb
from google.protobuf import struct_pb2, timestamp_pb2

from dtask_common import models as m

_STATE_TO_PB: dict[m.TaskState, Any] = {
    m.TaskState.PENDING: cpb.TASK_STATE_PENDING,
    m.TaskState.RUNNING: cpb.TASK_STATE_RUNNING,
    m.TaskState.SUCCEEDED: cpb.TASK_STATE_SUCCEEDED,
    m.TaskState.FAILED: cpb.TASK_STATE_FAILED,
    m.TaskState.CANCELLED: cpb.TASK_STATE_CANCELLED,
    m.TaskState.LOST: cpb.TASK_STATE_LOST,
}
_STATE_FROM_PB: dict[Any, m.TaskState] = {v: k for k, v in _STATE_TO_PB.items()}
_EXEC_TO_PB: dict[m.ExecutorState, Any] = {
    m.ExecutorState.IDLE: cpb.EXECUTOR_STATE_IDLE,
    m.ExecutorState.BUSY: cpb.EXECUTOR_STATE_BUSY,
    m.ExecutorState.DRAINING: cpb.EXECUTOR_STATE_DRAINING,
    m.ExecutorState.DEAD: cpb.EXECUTOR_STATE_DEAD,
    m.ExecutorState.GONE: cpb.EXECUTOR_STATE_GONE,
}
_EXEC_FROM_PB: dict[Any, m.ExecutorState] = {v: k for k, v in _EXEC_TO_PB.items()}


def state_to_pb(state: m.TaskState) -> Any:
    return _STATE_TO_PB[state]


def state_from_pb(value: int) -> m.TaskState:
    try:
        return _STATE_FROM_PB[value]
    except KeyError:
        raise ValueError(f"unknown task state {value}") from None


def executor_state_to_pb(state: m.ExecutorState) -> Any:
    return _EXEC_TO_PB[state]


def executor_state_from_pb(value: int) -> m.ExecutorState:
    """An executor's state; one this version does not know counts as GONE."""
    return _EXEC_FROM_PB.get(value, m.ExecutorState.GONE)


def ts_to_pb(t: float | None) -> timestamp_pb2.Timestamp | None:
    if t is None:
        return None
    out = timestamp_pb2.Timestamp()
    seconds = int(t // 1)
    out.seconds = seconds
    out.nanos = int(round((t - seconds) * 1e9)) % 1_000_000_000
    return out


def ts_into_pb(out: timestamp_pb2.Timestamp, t: float) -> None:
    """ts_to_pb(t), written into a message's own (set) Timestamp field instead of a new message to copy in."""
    seconds = int(t // 1)
    out.SetInParent()
    out.seconds = seconds
    out.nanos = int(round((t - seconds) * 1e9)) % 1_000_000_000


def ts_from_pb(msg: Any, name: str) -> float | None:
    if not msg.HasField(name):
        return None
    ts = getattr(msg, name)
    return ts.seconds + ts.nanos / 1e9


def opt(msg: Any, name: str) -> Any:
    """The value of an optional field, or None when it is not set."""
    return getattr(msg, name) if msg.HasField(name) else None


def _plain(x: Any) -> bool:
    """Whether x is made of JSON's own types only (what a JSON round trip gives back unchanged)."""
    t = type(x)
    if t is str or t is float or t is int or t is bool or x is None:
        return True
    if t is dict:
        return all(type(k) is str and _plain(v) for k, v in x.items())
    if t is list:
        return all(_plain(v) for v in x)
    return False


def result_to_pb(result: dict[str, Any] | None) -> struct_pb2.Struct | None:
    if result is None:
        return None
    out = struct_pb2.Struct()
    # Round-trip through JSON so that only JSON-representable values travel (plain JSON data is
    # already what that round trip would give).
    try:
        plain = _plain(result)
    except RecursionError:  # nested too deep, or a cycle: JSON says which
        plain = False
    out.update(result if plain else json.loads(json.dumps(result, default=str)))
    return out


#: Whole numbers up to this size are exact in a double: a Struct number that is one reads back as an int.
_EXACT_INT = 2**53


def _value_from_pb(v: Any) -> Any:
    """A google.protobuf.Value as JSON data. A Struct carries every number as a double, so a whole number
    (|x| <= 2**53) reads back as an int: `epoch = 2` stays 2, not 2.0 (a float that is whole, 1.0, reads as 1,
    as JSON itself would write it)."""
    kind = v.WhichOneof("kind")
    match kind:
        case "number_value":
            x = v.number_value
            if math.isinf(x) or math.isnan(x):
                raise ValueError(
                    f"Fail to serialize {'Infinity' if math.isinf(x) else 'NaN'} for "
                    "Value.number_value, which would parse as string_value"
                )
            if x.is_integer() and -_EXACT_INT <= x <= _EXACT_INT:
                return int(x)
            return x
        case "string_value":
            return v.string_value
        case "bool_value":
            return v.bool_value
        case "struct_value":
            return _struct_from_pb(v.struct_value)
        case "list_value":
            return [_value_from_pb(x) for x in v.list_value.values]
        case "null_value" | None:
            return None
        case _:
            raise ValueError(f"unknown kind of JSON value {kind!r}")


def _struct_from_pb(s: struct_pb2.Struct) -> dict[str, Any]:
    fields = s.fields
    return {k: _value_from_pb(fields[k]) for k in fields}


def result_from_pb(msg: Any, name: str) -> dict[str, Any] | None:
    if not msg.HasField(name):
        return None
    return _struct_from_pb(getattr(msg, name))


def set_fields_from_pb(msg: Any, fields: Mapping[str, Callable[[Any], Any] | None]) -> dict[str, Any]:
    """The fields msg sets, by name, each through its conversion in fields (None: as it is). ListFields gives only
    those: reading an unset repeated or map field would build an empty container each time."""
    kw: dict[str, Any] = {}
    for fd, value in msg.ListFields():
        name = fd.name
        convert = fields[name]
        kw[name] = value if convert is None else convert(value)
    return kw
