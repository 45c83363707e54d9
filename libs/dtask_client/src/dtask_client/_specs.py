"""From what a caller hands the client to TaskSpecs and TaskStates: keyword fields, task files, state names."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from dtask_common import taskfile
from dtask_common.models import FINISHED_STATES, FieldError, ParamValue, Resources, TaskSpec, TaskState
from dtask_common.models import params as param_rules
from dtask_common.suggest import closest

from dtask_client.errors import InvalidTask


def states_of(states: Iterable[TaskState | str] | None) -> list[TaskState]:
    """TaskStates from models or names ("running", "FAILED"); "finished" means every finished state."""
    out: list[TaskState] = []
    for s in states or ():
        if isinstance(s, TaskState):
            out.append(s)
            continue
        name = str(s).strip().lower()
        if name == "finished":
            out.extend(sorted(FINISHED_STATES, key=list(TaskState).index))
            continue
        try:
            out.append(TaskState(name))
        except ValueError:
            known = ", ".join([*(t.value for t in TaskState), "finished"])
            raise ValueError(f"unknown task state {s!r}; use one of {known}") from None
    return list(dict.fromkeys(out))


def specs_of(specs: TaskSpec | Iterable[TaskSpec] | str | Path) -> list[TaskSpec]:
    """A spec, specs, or a task file path as a list of specs (a bad file raises InvalidTask)."""
    if isinstance(specs, (str, Path)):
        try:
            return taskfile.load(specs)
        except taskfile.TaskFileError as exc:
            raise InvalidTask(str(exc)) from None
    if isinstance(specs, TaskSpec):
        return [specs]
    out = list(specs)
    for s in out:
        if not isinstance(s, TaskSpec):
            raise TypeError(f"submit() takes TaskSpec objects or a task file path, got {type(s).__name__}")
    errors = [e for i, s in enumerate(out) for e in not_utf8(i, s)]
    if errors:
        raise InvalidTask(
            f"{len(errors)} task field{'s are' if len(errors) > 1 else ' is'} not UTF-8 text", errors=errors
        )
    return out


def param_filter(params: Mapping[str, ParamValue] | None) -> dict[str, ParamValue]:
    """A params filter checked like a spec's params (ValueError naming every problem)."""
    wanted = dict(params or {})
    problems = param_rules.errors(wanted)
    if problems:
        raise ValueError("params: " + "; ".join(f"{e.field}: {e.message}" for e in problems))
    return wanted


def with_params(specs: list[TaskSpec], params: Mapping[str, ParamValue] | None) -> list[TaskSpec]:
    """The specs with params set on each (merged over their own); a bad name or value raises InvalidTask."""
    if params is None:
        return specs
    problems = param_rules.errors(params)
    if problems:
        raise InvalidTask("invalid params: " + "; ".join(f"{e.field}: {e.message}" for e in problems), errors=problems)
    return [dataclasses.replace(s, params={**s.params, **params}) for s in specs]


def not_utf8(index: int, spec: TaskSpec) -> list[FieldError]:
    """A FieldError per string of the spec that cannot travel (e.g. undecodable bytes from a command line)."""
    values: list[tuple[str, str]] = [
        ("name", spec.name),
        ("shell", spec.shell),
        ("cwd", spec.cwd),
        ("progress_pattern", spec.progress_pattern),
        ("result_marker", spec.result_marker),
        ("venv", spec.venv),
        ("conda", spec.conda),
    ]
    values += [(f"argv[{i}]", a) for i, a in enumerate(spec.argv)]
    values += [(f"env.{k}", f"{k}={v}") for k, v in spec.env.items()]
    values += [(f"labels.{k}", f"{k}={v}") for k, v in spec.labels.items()]
    values += [(f"tags[{i}]", t) for i, t in enumerate(spec.tags)]
    values += [(f"depends_on[{i}]", d) for i, d in enumerate(spec.depends_on)]
    out = []
    for fieldname, text in values:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            code = ord(text[exc.start])
            shown = f" (byte 0x{code - 0xDC00:02x})" if 0xDC80 <= code <= 0xDCFF else ""
            out.append(
                FieldError(
                    fieldname,
                    f"is not valid UTF-8{shown}; dtask sends text: produce such bytes "
                    "inside the command (e.g. printf) or use a UTF-8 locale",
                    index,
                    spec.name.encode("utf-8", "replace").decode(),
                )
            )
    return out


_SPEC_FIELDS = set(TaskSpec.__dataclass_fields__)


def spec_from_fields(spec: TaskSpec | str | list[str] | None, fields: dict[str, Any]) -> TaskSpec:
    """A TaskSpec from keyword fields: command= (shell string or argv list), cpus/memory_mb/gpus, ...

    A positional string or list is the command, so add_task("python train.py") works.
    """
    if isinstance(spec, TaskSpec):
        return spec
    values = dict(fields)
    command = values.pop("command", spec)
    if isinstance(command, str):
        values.setdefault("shell", command)
    elif command is not None:
        values.setdefault("argv", tuple(command))
    res = values.pop("resources", None)
    res_fields = {k: values.pop(k) for k in ("cpus", "memory_mb", "gpus") if k in values}
    if isinstance(res, Resources):
        values["resources"] = res
    elif res is not None or res_fields:
        values["resources"] = Resources(**{**dict(res or {}), **res_fields})
    if "retries" in values:
        values["max_retries"] = values.pop("retries")
    unknown = set(values) - _SPEC_FIELDS
    if unknown:
        known = sorted(_SPEC_FIELDS | {"command", "cpus", "gpus", "memory_mb", "retries"})
        hints = [(u, closest(u, known)) for u in sorted(unknown)]
        hint = ", ".join(f"{h!r} for {u!r}" for u, h in hints if h is not None)
        raise TypeError(
            f"unknown task fields {', '.join(sorted(unknown))}"
            + (f" (did you mean {hint}?)" if hint else "")
            + f"; use {', '.join(known)}"
        )
    for k in ("argv", "depends_on", "tags"):
        if k in values and not isinstance(values[k], tuple):
            values[k] = (values[k],) if isinstance(values[k], str) else tuple(values[k])
    return TaskSpec(**values)
