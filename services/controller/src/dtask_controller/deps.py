"""A submission's dependencies: names within the batch or ids of stored tasks, in topological order (no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from dtask_common.ids import is_task_id, unknown_dependency
from dtask_common.models import FieldError, TaskSpec, TaskState


def resolve_deps(specs: Sequence[TaskSpec], states: Callable[[Iterable[str]], Mapping[str, TaskState]],
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
    order: list[int] = []
    state = [0] * len(specs)  # 0 new, 1 visiting, 2 done
    for root in range(len(specs)):
        stack = [(root, iter(deps[root]))]
        if state[root]:
            continue
        state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next((d for d in it if d.startswith("#")), None)
            if nxt is None:
                state[node] = 2
                order.append(node)
                stack.pop()
                continue
            k = int(nxt[1:])
            if state[k] == 1:
                errors.append(FieldError("depends_on", f"dependency cycle through task {specs[k].name!r}",
                                         node, specs[node].name))
            elif state[k] == 0:
                state[k] = 1
                stack.append((k, iter(deps[k])))
    return deps, order, errors

