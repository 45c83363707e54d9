"""Conversion of task parameters: typed values to ParamValue messages and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dtask.v1 import common_pb2 as cpb

from dtask_common.models import ParamValue


def value_to_pb(value: ParamValue) -> cpb.ParamValue:
    match value:
        case bool():
            return cpb.ParamValue(bool_value=value)
        case int():
            return cpb.ParamValue(int_value=value)
        case float():
            return cpb.ParamValue(float_value=value)
        case str():
            return cpb.ParamValue(string_value=value)
        case _:
            raise TypeError(f"a parameter value must be a string, integer, float or boolean, got {value!r}")


def value_from_pb(v: cpb.ParamValue) -> ParamValue:
    """The typed value; a ParamValue with no kind set (from a newer or careless peer) reads as ''."""
    kind = v.WhichOneof("kind")
    match kind:
        case "string_value":
            return v.string_value
        case "int_value":
            return v.int_value
        case "float_value":
            return v.float_value
        case "bool_value":
            return v.bool_value
        case None:
            return ""
        case _:
            raise ValueError(f"unknown kind of parameter value {kind!r}")


def params_to_pb(params: Mapping[str, ParamValue]) -> list[cpb.Param]:
    return [cpb.Param(key=k, value=value_to_pb(v)) for k, v in params.items()]


def params_from_pb(params: Any) -> dict[str, ParamValue]:
    """A repeated Param field as a dict in its order (empty fast); a key given twice keeps its last value."""
    return {p.key: value_from_pb(p.value) for p in params} if params else {}
