"""Reading a task file: TOML, [defaults], then expansion, dependencies, checks and cycles."""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dtask_common.depgraph import find_cycle
from dtask_common.models import TaskSpec, validate_batch
from dtask_common.suggest import did_you_mean
from dtask_common.taskfile.errors import (
    DEFAULT_KEYS,
    TASK_KEYS,
    TASKFILE_DIR,
    TOP_KEYS,
    Entry,
    TaskFileError,
    once_per_entry,
    task_prefix,
    unknown_key,
)
from dtask_common.taskfile.fields import to_spec
from dtask_common.taskfile.matrix import check_size, expand


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
        raise TaskFileError(
            str(p), [f"{p}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8; save the file as UTF-8"]
        ) from None
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
        problems.append(f"{source}: {', '.join(stray)} outside a task: put a [[task]] line above {stray[0]} = ...")
    for key in data:
        if key not in TOP_KEYS and key not in TASK_KEYS:
            problems.append(
                f"{source}: unknown top-level key {key!r}{did_you_mean(key, TOP_KEYS)}; "
                "use [[task]] tables and an optional [defaults]"
            )
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append(f"{source}: defaults: must be a table ([defaults])")
        defaults = {}
    for key in list(defaults):
        if key not in DEFAULT_KEYS:
            problems.append(f"{source}: defaults: {unknown_key(key, DEFAULT_KEYS)}")
            defaults = {k: v for k, v in defaults.items() if k != key}  # reported once, not for every task
    tables = data.get("task", [])
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        problems.append(f"{source}: task: write each task as a [[task]] table")
        tables = []
    if not tables and not problems:
        problems.append(f"{source}: no tasks; add at least one [[task]] table with a command")
    check_size(source, tables, problems)
    extra = {TASKFILE_DIR: str(Path(base_dir).absolute())} if base_dir is not None else {}
    entries: list[Entry] = []
    defaults = _alias(defaults, f"{source}: defaults: ", problems)
    for i, table in enumerate(tables, start=1):
        name = table.get("name", "")
        table = _alias(table, task_prefix(source, index=i, name=name if isinstance(name, str) else ""), problems)
        entries.extend(expand(source, i, _merge(defaults, table), extra, problems))
    found: list[tuple[Entry, str]] = []  # each expanded task's problems, said once per table below
    _resolve_depends(source, entries, found)
    specs: list[TaskSpec] = []
    reported: list[set[str]] = []
    for entry in entries:
        lines: list[str] = []
        spec, bad_fields = to_spec(source, entry, lines)
        found.extend((entry, line.removeprefix(task_prefix(source, entry))) for line in lines)
        specs.append(spec)
        reported.append(bad_fields)
    for err in validate_batch(specs):
        if err.field.split("[")[0].split(".")[0] not in reported[err.index]:
            found.append((entries[err.index], f"{err.field}: {err.message}"))
    problems.extend(once_per_entry(source, found, dict(Counter(e.index for e in entries))))
    if not problems:
        _check_cycles(source, entries, specs, problems)
    if problems:
        raise TaskFileError(source, problems)
    return specs


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


def _resolve_depends(source: str, entries: list[Entry], found: list[tuple[Entry, str]]) -> None:
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
            found.append((e, "depends_on: must be a list of task names or ids"))
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
                    " (give a task name from this file or the id of a queued task)"
                )
                found.append((e, f"depends_on: no task named {dep!r} in this file{hint}"))
        e.values["depends_on"] = list(dict.fromkeys(resolved))


def _check_cycles(source: str, entries: list[Entry], specs: list[TaskSpec], problems: list[str]) -> None:
    """Report a dependency cycle among the tasks of the file (it could never run)."""
    graph = {s.name: [d for d in s.depends_on if d != s.name] for s in specs if s.name}
    found = find_cycle(graph)
    if found is not None:
        node, cycle = found
        by_name = {e.name: e for e in entries}
        if len(cycle) > 12:  # a long cycle by its ends: the message stays one readable line
            cycle = [*cycle[:5], f"({len(cycle) - 10} more)", *cycle[-5:]]
        problems.append(task_prefix(source, by_name[node]) + "depends_on: dependency cycle " + " -> ".join(cycle))
