"""A submission's dependencies: names within the batch or ids of stored tasks, in topological order (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from dtask_common.depgraph import topological_order
from dtask_common.ids import is_task_id, unknown_dependency
from dtask_common.models import FieldError, TaskSpec, TaskState


def resolve_deps(
    specs: Sequence[TaskSpec],
    states: Callable[[Iterable[str]], Mapping[str, TaskState]],
) -> tuple[list[list[str]], list[int], list[FieldError]]:
    """Dependencies as '#index' (same batch) or existing ids (states: their stored states); a topological
    order; the errors."""
    names = {s.name: i for i, s in enumerate(specs) if s.name}
    wanted = {d for s in specs for d in s.depends_on if d not in names and is_task_id(d)}
    existing = states(wanted) if wanted else {}
    deps: list[list[str]] = []
    errors: list[FieldError] = []
    for i, s in enumerate(specs):
        out = []
        for j, d in enumerate(s.depends_on):
            if d in names:
                if names[d] != i:
                    out.append(f"#{names[d]}")
            elif d in existing:
                out.append(d)
            else:
                errors.append(FieldError(f"depends_on[{j}]", unknown_dependency(d), i, s.name))
        deps.append(sorted(set(out)))
    graph = {i: [int(d[1:]) for d in ds if d.startswith("#")] for i, ds in enumerate(deps)}
    order, back = topological_order(graph)
    errors.extend(
        FieldError("depends_on", f"dependency cycle through task {specs[k].name!r}", node, specs[node].name)
        for node, k in back
    )
    return deps, order, errors
