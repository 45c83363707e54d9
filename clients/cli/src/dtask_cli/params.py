"""Command-line parameter types for numbers and task ids: refused before anything is sent."""

from __future__ import annotations

from typing import Any

import click
from dtask_common import ids, numbers
from dtask_common.models import ParamValue
from dtask_common.models.params import parse_pair


class FiniteFloat(click.ParamType):
    """A finite number >= minimum ('inf', 'nan' and negatives are refused)."""

    name = "number"

    def __init__(self, minimum: float = 0.0):
        self.minimum = minimum

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        problem = numbers.problem(number, minimum=self.minimum)
        if problem:
            self.fail(problem, param, ctx)
        return number


class TaskId(click.ParamType):
    """A task id as the controller writes them (12; never 012, +12 or 1e3)."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            return ids.task_id(value, "")
        except ids.BadTaskId as exc:
            self.fail(str(exc).strip(), param, ctx)


class TaskParam(click.ParamType):
    """KEY=VALUE, the value typed like TOML (0.1 a float, 3 an int, true a bool, cnn a string)."""

    name = "k=v"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[str, ParamValue]:
        if isinstance(value, tuple):
            return value
        try:
            return parse_pair(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def param_map(pairs: tuple[tuple[str, ParamValue], ...]) -> dict[str, ParamValue]:
    """Repeated --param values as one mapping; a name given twice is a usage error."""
    out: dict[str, ParamValue] = {}
    for key, value in pairs:
        if key in out:
            raise click.BadParameter(f"parameter {key!r} is given twice", param_hint="'--param'")
        out[key] = value
    return out


FINITE = FiniteFloat()
TASK_PARAM = TaskParam()
TASK_ID = TaskId()
COUNT = click.IntRange(0, numbers.INT32_MAX)
PRIORITY = click.IntRange(-numbers.INT32_MAX, numbers.INT32_MAX)
