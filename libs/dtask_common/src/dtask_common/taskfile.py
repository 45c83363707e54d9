"""Task files: TOML `[[task]]` tables with `[task.matrix]` sweeps, parsed into validated TaskSpecs."""

from __future__ import annotations

import itertools
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtask_common.depgraph import find_cycle
from dtask_common.models import MAX_SUBMIT, FieldError, Resources, TaskSpec, validate_batch
from dtask_common.numbers import is_finite
from dtask_common.suggest import closest, did_you_mean

#: Keys a `[[task]]` table (and, except name/matrix/depends_on, `[defaults]`) may hold.
TASK_KEYS = (
    "name", "command", "cwd", "env", "resources", "labels", "priority", "max_retries", "retries",
    "timeout_s", "lost_after_s", "depends_on", "tags", "progress", "progress_pattern", "result_marker",
    "matrix",
)
DEFAULT_KEYS = tuple(k for k in TASK_KEYS if k not in ("name", "matrix", "depends_on"))
RESOURCE_KEYS = ("cpus", "memory_mb", "gpus")
TOP_KEYS = ("task", "defaults")
#: Placeholder replaced by the absolute directory of the task file.
TASKFILE_DIR = "taskfile_dir"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class TaskFileError(ValueError):
    """A task file that cannot be queued; the message lists every problem, one per line."""

    def __init__(self, source: str, problems: Iterable[str]):
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass
class _Entry:
    """One expanded task before conversion: where it came from and its raw values."""

    index: int  # 1-based position of the [[task]] table in the file
    base: str  # name before matrix expansion
    name: str
    values: dict[str, Any]


def load(path: str | Path) -> list[TaskSpec]:
    """Read and parse a task file; raise TaskFileError naming the file, task and field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TaskFileError(str(p), [f"{p}: no such task file"]) from None
    except IsADirectoryError:
        raise TaskFileError(str(p), [f"{p}: is a directory; give a .toml task file"]) from None
    except UnicodeDecodeError as exc:
        raw = p.read_bytes()
        line = raw.count(b"\n", 0, exc.start) + 1
        raise TaskFileError(str(p), [f"{p}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8; "
                                     "save the file as UTF-8"]) from None
    except OSError as exc:
        raise TaskFileError(str(p), [f"{p}: cannot read: {exc.strerror or exc}"]) from None
    return parse(text, str(p), base_dir=p.absolute().parent)


def parse(text: str, source: str = "<tasks>", *, base_dir: str | Path | None = None) -> list[TaskSpec]:
    """Parse task-file text into specs (matrix expanded, dependencies resolved, all validated)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TaskFileError(source, [f"{source}: not valid TOML: {exc}"]) from None
    problems: list[str] = []
    stray = [key for key in data if key not in TOP_KEYS and key in TASK_KEYS]
    if stray:
        problems.append(f"{source}: {', '.join(stray)} outside a task: put a [[task]] line above "
                        f"{stray[0]} = ...")
    for key in data:
        if key not in TOP_KEYS and key not in TASK_KEYS:
            problems.append(f"{source}: unknown top-level key {key!r}{did_you_mean(key, TOP_KEYS)}; "
                            "use [[task]] tables and an optional [defaults]")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append(f"{source}: defaults: must be a table ([defaults])")
        defaults = {}
    for key in list(defaults):
        if key not in DEFAULT_KEYS:
            problems.append(f"{source}: defaults: {_unknown_key(key, DEFAULT_KEYS)}")
            defaults = {k: v for k, v in defaults.items() if k != key}  # reported once, not for every task
    tables = data.get("task", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problems.append(f"{source}: task: write each task as a [[task]] table")
        tables = []
    if not tables and not problems:
        problems.append(f"{source}: no tasks; add at least one [[task]] table with a command")
    _check_size(source, tables, problems)
    extra = {TASKFILE_DIR: str(Path(base_dir).absolute())} if base_dir is not None else {}
    entries: list[_Entry] = []
    defaults = _alias(defaults, f"{source}: defaults: ", problems)
    for i, table in enumerate(tables, start=1):
        name = table.get("name", "")
        table = _alias(table, _where(source, index=i, name=name if isinstance(name, str) else ""), problems)
        entries.extend(_expand(source, i, _merge(defaults, table), extra, problems))
    _resolve_depends(source, entries, problems)
    specs: list[TaskSpec] = []
    reported: list[set[str]] = []
    for entry in entries:
        spec, bad_fields = _to_spec(source, entry, problems)
        specs.append(spec)
        reported.append(bad_fields)
    for err in validate_batch(specs):
        if err.field.split("[")[0].split(".")[0] not in reported[err.index]:
            problems.append(_where(source, entries[err.index]) + f"{err.field}: {err.message}")
    if not problems:
        _check_cycles(source, entries, specs, problems)
    if problems:
        raise TaskFileError(source, problems)
    return specs


def _unknown_key(key: str, allowed: tuple[str, ...]) -> str:
    """`unknown key 'progrss' (did you mean 'progress'?)`, or the allowed keys when nothing is close."""
    hint = did_you_mean(key, allowed)
    resource = closest(key, RESOURCE_KEYS)
    if not hint and resource is not None:
        return f"unknown key {key!r} (did you mean resources.{resource}? e.g. resources = {{ {resource} = 1 }})"
    return f"unknown key {key!r}{hint}" if hint else f"unknown key {key!r}; allowed: {', '.join(allowed)}"


def _where(source: str, entry: _Entry | None = None, *, index: int = 0, name: str = "") -> str:
    if entry is not None:
        index, name = entry.index, entry.name
    return f"{source}: task {name!r} (#{index}): " if name else f"{source}: task #{index}: "


def _alias(table: Mapping[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """Accept `retries` as another spelling of `max_retries`."""
    out = dict(table)
    if "retries" in out:
        if "max_retries" in out:
            problems.append(where + "retries: is another spelling of max_retries; give only one")
        out["max_retries"] = out.pop("retries")
    return out


def _merge(defaults: Mapping[str, Any], table: Mapping[str, Any]) -> dict[str, Any]:
    """Task values over [defaults]; env, labels and resources merge key by key."""
    out = dict(defaults)
    for key, value in table.items():
        if key in ("env", "labels", "resources") and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def _check_size(source: str, tables: list[dict[str, Any]], problems: list[str]) -> None:
    """Count the tasks the file expands to before expanding any matrix; raise at once when too many."""
    counts = [_matrix_size(t.get("matrix")) for t in tables]
    total = sum(counts)
    if total <= MAX_SUBMIT:
        return
    i = max(range(len(counts)), key=counts.__getitem__)
    name = tables[i].get("name", "")
    where = _where(source, index=i + 1, name=name if isinstance(name, str) else "")
    limit = (f"a task file may hold at most {MAX_SUBMIT} tasks (one submission): sweep fewer values, "
             "or split the file (a task in a later file can depend on tasks of an earlier one by id)")
    if counts[i] > MAX_SUBMIT:
        sizes = " x ".join(f"{k}: {len(v)}" for k, v in tables[i]["matrix"].items() if isinstance(v, list))
        message = where + f"matrix: expands to {counts[i]} tasks ({sizes}); {limit}"
    else:
        entry = where.removeprefix(f"{source}: ").removesuffix(": ")
        message = f"{source}: expands to {total} tasks (the largest entry, {entry}, gives {counts[i]}); {limit}"
    raise TaskFileError(source, [*problems, message])


def _matrix_size(matrix: Any) -> int:
    """Tasks one [[task]] table gives: the product of its matrix list lengths (1 without a matrix)."""
    if not isinstance(matrix, dict):
        return 1
    return math.prod(len(v) if isinstance(v, list) and v else 1 for v in matrix.values())


def _expand(source: str, index: int, table: dict[str, Any], extra: dict[str, str],
            problems: list[str]) -> list[_Entry]:
    """One [[task]] table into one entry, or one per matrix combination."""
    base = table.get("name", "")
    if not isinstance(base, str):
        problems.append(_where(source, index=index) + f"name: must be a string, got {type(base).__name__}")
        return []
    where = _where(source, index=index, name=base)
    for key in table:
        if key not in TASK_KEYS:
            problems.append(where + _unknown_key(key, tuple(k for k in TASK_KEYS if k != "retries")))
    matrix = table.pop("matrix", None)
    if matrix is None:
        return [_Entry(index, base, _substitute(base, extra), _substitute_all(table, extra))]
    if not isinstance(matrix, dict) or not matrix:
        problems.append(where + "matrix: must be a table of lists, e.g. [task.matrix] lr = [0.1, 0.01]")
        return []
    if not base:
        problems.append(where + "name: is required with a matrix (expanded tasks are named NAME[k=v,...])")
        return []
    axes: list[tuple[str, list[Any]]] = []
    for key, values in matrix.items():
        if not isinstance(values, list):
            problems.append(where + f"matrix.{key}: must be a list of values, got {values!r}; "
                            f"write {key} = [{_toml(values)}] (or more values) to sweep it")
        elif not values:
            problems.append(where + f"matrix.{key}: is empty; give at least one value, e.g. {key} = [1, 2]")
        elif not all(isinstance(v, (str, int, float, bool)) for v in values):
            problems.append(where + f"matrix.{key}: values must be strings, numbers or booleans")
        elif key == TASKFILE_DIR:
            problems.append(where + f"matrix.{key}: {{{TASKFILE_DIR}}} is reserved for the task file's directory")
        else:
            axes.append((key, values))
    if len(axes) != len(matrix):
        return []
    out = []
    for combo in itertools.product(*(values for _, values in axes)):
        params = {key: _fmt(v) for (key, _), v in zip(axes, combo, strict=True)}
        name = f"{_substitute(base, params)}[{','.join(f'{k}={v}' for k, v in params.items())}]"
        out.append(_Entry(index, base, name, _substitute_all(table, {**extra, **params})))
    return out


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value) if isinstance(value, (int, float)) else "..."


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _substitute(text: str, params: Mapping[str, str]) -> str:
    """Replace {key} for known keys only; other braces (shell ${VAR}, JSON) stay as written."""
    if not params:
        return text
    return _PLACEHOLDER.sub(lambda m: params.get(m.group(1), m.group(0)), text)


def _substitute_all(table: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    """Substitute placeholders in command (string or argv items), cwd, env values and depends_on."""
    out = dict(table)
    out.pop("name", None)
    cmd = out.get("command")
    if isinstance(cmd, str):
        out["command"] = _substitute(cmd, params)
    elif isinstance(cmd, list):
        out["command"] = [_substitute(a, params) if isinstance(a, str) else a for a in cmd]
    if isinstance(out.get("cwd"), str):
        out["cwd"] = _substitute(out["cwd"], params)
    if isinstance(out.get("env"), dict):
        out["env"] = {k: _substitute(v, params) if isinstance(v, str) else v for k, v in out["env"].items()}
    deps = out.get("depends_on")
    if isinstance(deps, list):
        out["depends_on"] = [_substitute(d, params) if isinstance(d, str) else d for d in deps]
    elif isinstance(deps, str):
        out["depends_on"] = _substitute(deps, params)
    return out


def _resolve_depends(source: str, entries: list[_Entry], problems: list[str]) -> None:
    """Map dependency names to expanded names: a matrix base name means all its expansions."""
    names = {e.name for e in entries}
    by_base: dict[str, list[str]] = {}
    for e in entries:
        if e.base and e.base != e.name:
            by_base.setdefault(e.base, []).append(e.name)
    for e in entries:
        deps = e.values.get("depends_on")
        if deps is None:
            continue
        if isinstance(deps, str):
            deps = [deps]
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            problems.append(_where(source, e) + "depends_on: must be a list of task names or ids")
            e.values["depends_on"] = []
            continue
        resolved: list[str] = []
        for dep in deps:
            if dep in names:
                resolved.append(dep)
            elif dep in by_base:
                resolved.extend(by_base[dep])
            elif dep.isdigit():
                resolved.append(dep)  # id of a task queued earlier
            else:
                hint = did_you_mean(dep, sorted(names | set(by_base))) or (
                    " (give a task name from this file or the id of a queued task)")
                problems.append(_where(source, e) + f"depends_on: no task named {dep!r} in this file{hint}")
        e.values["depends_on"] = list(dict.fromkeys(resolved))


def _to_spec(source: str, entry: _Entry, problems: list[str]) -> tuple[TaskSpec, set[str]]:
    """Type-check the raw values of one entry and build its TaskSpec (bad fields get defaults).

    Returns the spec and the top-level fields already reported, so validation does not repeat them.
    """
    v = entry.values
    where = _where(source, entry)
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
            bad(key, "must be a table, e.g. {key} = {{ NAME = \"value\" }}".replace("{key}", key))
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
            unit = (" of seconds, e.g. timeout_s = 7200 for 2 hours" if key == "timeout_s" else
                    " of seconds, e.g. lost_after_s = 600" if key == "lost_after_s" else "")
            bad(key, f"must be a number{unit}, got {value!r}")
            return 0.0
        if not is_finite(value):
            bad(key, f"must be a finite number, got {value!r}" if isinstance(value, float) else
                f"must be a finite number, got an integer of {len(str(value))} digits")
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
                bad(f"resources.{k}", f"unknown resource{did_you_mean(k, RESOURCE_KEYS)}; use {', '.join(RESOURCE_KEYS)}")
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
    )
    return spec, bad_fields


def _check_cycles(source: str, entries: list[_Entry], specs: list[TaskSpec], problems: list[str]) -> None:
    """Report a dependency cycle among the tasks of the file (it could never run)."""
    graph = {s.name: [d for d in s.depends_on if d != s.name] for s in specs if s.name}
    found = find_cycle(graph)
    if found is not None:
        node, cycle = found
        by_name = {e.name: e for e in entries}
        if len(cycle) > 12:  # a long cycle by its ends: the message stays one readable line
            cycle = [*cycle[:5], f"({len(cycle) - 10} more)", *cycle[-5:]]
        problems.append(_where(source, by_name[node]) + "depends_on: dependency cycle " + " -> ".join(cycle))


def describe(errors: Iterable[FieldError], source: str = "") -> list[str]:
    """Field errors (e.g. from the controller) as task-file style lines."""
    prefix = f"{source}: " if source else ""
    return [prefix + (f"task {e.task_name!r} (#{e.index + 1}): " if e.task_name else f"task #{e.index + 1}: ")
            + f"{e.field}: {e.message}" for e in errors]
