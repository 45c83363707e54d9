"""Matrix expansion of task-file tables: one task per combination, {placeholders} substituted."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping
from typing import Any

from dtask_common.models import MAX_PARAMS, MAX_SUBMIT
from dtask_common.models.params import key_problem, value_problem
from dtask_common.taskfile.errors import TASK_KEYS, TASKFILE_DIR, Entry, TaskFileError, task_prefix, unknown_key

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def check_size(source: str, tables: list[dict[str, Any]], problems: list[str]) -> None:
    """Count the tasks the file expands to before expanding any matrix; raise at once when too many."""
    counts = [_matrix_size(t.get("matrix")) for t in tables]
    total = sum(counts)
    if total <= MAX_SUBMIT:
        return
    i = max(range(len(counts)), key=counts.__getitem__)
    name = tables[i].get("name", "")
    where = task_prefix(source, index=i + 1, name=name if isinstance(name, str) else "")
    limit = (
        f"a task file may hold at most {MAX_SUBMIT} tasks (one submission): sweep fewer values, "
        "or split the file (a task in a later file can depend on tasks of an earlier one by id)"
    )
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


def expand(source: str, index: int, table: dict[str, Any], extra: dict[str, str], problems: list[str]) -> list[Entry]:
    """One [[task]] table into one entry, or one per matrix combination."""
    base = table.get("name", "")
    if not isinstance(base, str):
        problems.append(task_prefix(source, index=index) + f"name: must be a string, got {type(base).__name__}")
        return []
    where = task_prefix(source, index=index, name=base)
    for key in table:
        if key not in TASK_KEYS:
            problems.append(where + unknown_key(key, tuple(k for k in TASK_KEYS if k != "retries")))
    matrix = table.pop("matrix", None)
    if matrix is None:
        return [Entry(index, base, _substitute(base, extra), _substitute_all(table, extra))]
    if not isinstance(matrix, dict) or not matrix:
        problems.append(where + "matrix: must be a table of lists, e.g. [task.matrix] lr = [0.1, 0.01]")
        return []
    if not base:
        problems.append(where + "name: is required with a matrix (expanded tasks are named NAME[k=v,...])")
        return []
    axes: list[tuple[str, list[Any]]] = []
    for key, values in matrix.items():
        if not isinstance(values, list):
            problems.append(
                where + f"matrix.{key}: must be a list of values, got {values!r}; "
                f"write {key} = [{_toml(values)}] (or more values) to sweep it"
            )
        elif not values:
            problems.append(where + f"matrix.{key}: is empty; give at least one value, e.g. {key} = [1, 2]")
        elif not all(isinstance(v, (str, int, float, bool)) for v in values):
            problems.append(where + f"matrix.{key}: values must be strings, numbers or booleans")
        elif key == TASKFILE_DIR:
            problems.append(where + f"matrix.{key}: {{{TASKFILE_DIR}}} is reserved for the task file's directory")
        elif (problem := key_problem(key) or next(filter(None, map(value_problem, values)), None)) is not None:
            problems.append(where + f"matrix.{key}: {problem}")
        else:
            axes.append((key, values))
    if len(axes) != len(matrix):
        return []
    if len(axes) > MAX_PARAMS:
        problems.append(where + f"matrix: has {len(axes)} keys; at most {MAX_PARAMS} parameters are kept per task")
        return []
    out = []
    for combo in itertools.product(*(values for _, values in axes)):
        typed = {key: v for (key, _), v in zip(axes, combo, strict=True)}
        params = {key: _fmt(v) for key, v in typed.items()}
        name = f"{_substitute(base, params)}[{','.join(f'{k}={v}' for k, v in params.items())}]"
        out.append(Entry(index, base, name, _substitute_all(table, {**extra, **params}), typed))
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
    """Substitute placeholders in command (string or argv items), cwd, venv, conda, env values and depends_on."""
    out = dict(table)
    out.pop("name", None)
    cmd = out.get("command")
    if isinstance(cmd, str):
        out["command"] = _substitute(cmd, params)
    elif isinstance(cmd, list):
        out["command"] = [_substitute(a, params) if isinstance(a, str) else a for a in cmd]
    for key in ("cwd", "venv", "conda"):
        if isinstance(out.get(key), str):
            out[key] = _substitute(out[key], params)
    if isinstance(out.get("env"), dict):
        out["env"] = {k: _substitute(v, params) if isinstance(v, str) else v for k, v in out["env"].items()}
    deps = out.get("depends_on")
    if isinstance(deps, list):
        out["depends_on"] = [_substitute(d, params) if isinstance(d, str) else d for d in deps]
    elif isinstance(deps, str):
        out["depends_on"] = _substitute(deps, params)
    return out
