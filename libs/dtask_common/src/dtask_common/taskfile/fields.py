"""Type checks of one task-file entry's values, building its TaskSpec."""

from __future__ import annotations

from typing import Any

from dtask_common.models import Resources, TaskSpec
from dtask_common.numbers import is_finite
from dtask_common.suggest import did_you_mean
from dtask_common.taskfile.errors import RESOURCE_KEYS, Entry, task_prefix


def to_spec(source: str, entry: Entry, problems: list[str]) -> tuple[TaskSpec, set[str]]:
    """Type-check the raw values of one entry and build its TaskSpec (bad fields get defaults).

    Returns the spec and the top-level fields already reported, so validation does not repeat them.
    """
    v = entry.values
    where = task_prefix(source, entry)
    bad_fields: set[str] = set()

    def bad(fieldname: str, message: str) -> None:
        problems.append(where + f"{fieldname}: {message}")
        bad_fields.add(fieldname.split("[")[0].split(".")[0])

    def string(key: str) -> str:
        value = v.get(key, "")
        if not isinstance(value, str):
            bad(key, f"must be a string, got {type(value).__name__}")
            return ""
        return value

    def string_list(key: str) -> tuple[str, ...]:
        value = v.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            bad(key, "must be a list of strings")
            return ()
        return tuple(value)

    def table(key: str) -> dict[str, str]:
        value = v.get(key, {})
        if not isinstance(value, dict):
            bad(key, 'must be a table, e.g. {key} = {{ NAME = "value" }}'.replace("{key}", key))
            return {}
        out = {}
        for k, x in value.items():
            if isinstance(x, bool):
                x = "true" if x else "false"
            if not isinstance(x, (str, int, float)):
                bad(f"{key}.{k}", "must be a string or a number")
                continue
            out[k] = str(x)
        return out

    def integer(key: str) -> int:
        value = v.get(key, 0)
        if not isinstance(value, int) or isinstance(value, bool):
            bad(key, f"must be an integer, got {value!r}")
            return 0
        return value

    def number(key: str, value: Any) -> float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            unit = (
                " of seconds, e.g. timeout_s = 7200 for 2 hours"
                if key == "timeout_s"
                else " of seconds, e.g. lost_after_s = 600"
                if key == "lost_after_s"
                else ""
            )
            bad(key, f"must be a number{unit}, got {value!r}")
            return 0.0
        if not is_finite(value):
            bad(
                key,
                f"must be a finite number, got {value!r}"
                if isinstance(value, float)
                else f"must be a finite number, got an integer of {len(str(value))} digits",
            )
            return 0.0
        return float(value)

    command = v.get("command")
    argv: tuple[str, ...] = ()
    shell = ""
    if command is None:
        bad("command", "is missing; give a shell string or a list [program, arg, ...]")
    elif isinstance(command, str):
        shell = command
    elif isinstance(command, list) and all(isinstance(a, str) for a in command):
        argv = tuple(command)
    else:
        bad("command", "must be a shell string or a list of strings")
    res = v.get("resources", {})
    resources = Resources()
    if not isinstance(res, dict):
        bad("resources", "must be a table, e.g. resources = { cpus = 2, memory_mb = 4096, gpus = 1 }")
    else:
        for k in res:
            if k not in RESOURCE_KEYS:
                bad(
                    f"resources.{k}",
                    f"unknown resource{did_you_mean(k, RESOURCE_KEYS)}; use {', '.join(RESOURCE_KEYS)}",
                )
        cpus = number("resources.cpus", res.get("cpus", 0))
        mem = res.get("memory_mb", 0)
        gpus = res.get("gpus", 0)
        for k, x in (("memory_mb", mem), ("gpus", gpus)):
            if not isinstance(x, int) or isinstance(x, bool):
                bad(f"resources.{k}", f"must be an integer, got {x!r}")
        if "resources" not in bad_fields:
            resources = Resources(cpus=cpus, memory_mb=int(mem), gpus=int(gpus))
    spec = TaskSpec(
        name=entry.name,
        argv=argv,
        shell=shell,
        cwd=string("cwd"),
        env=table("env"),
        resources=resources,
        labels=table("labels"),
        priority=integer("priority"),
        max_retries=integer("max_retries"),
        timeout_s=number("timeout_s", v.get("timeout_s", 0.0)),
        lost_after_s=number("lost_after_s", v.get("lost_after_s", 0.0)),
        depends_on=string_list("depends_on"),
        tags=string_list("tags"),
        progress=string("progress") or "auto",
        progress_pattern=string("progress_pattern"),
        result_marker=string("result_marker"),
        params=entry.params,
        venv=string("venv"),
        conda=string("conda"),
    )
    return spec, bad_fields
