"""What a viewer may see: tasks and Watch events with every env value replaced by a fixed marker."""

from __future__ import annotations

import dataclasses

from dtask_common import events as ev
from dtask_common.models import Task

HIDDEN = "***"  # every env value a viewer is shown (the keys stay)


def hide_env(task: Task) -> Task:
    """task with its env values masked; the same object when it has no env (nothing to hide)."""
    env = task.spec.env
    if not env:
        return task
    spec = dataclasses.replace(task.spec, env=dict.fromkeys(env, HIDDEN))
    return dataclasses.replace(task, spec=spec)


def hide_event(event: ev.WatchEvent) -> ev.WatchEvent:
    """event as a viewer may see it; the same object when it carries no env value."""
    body = event.body
    match body:
        case ev.Snapshot():
            tasks = [hide_env(t) for t in body.tasks]
            if all(a is b for a, b in zip(tasks, body.tasks, strict=True)):
                return event
            hidden: ev.EventBody = dataclasses.replace(body, tasks=tasks)
        case ev.TaskEvent():
            task = hide_env(body.task)
            if task is body.task:
                return event
            hidden = ev.TaskEvent(body.kind, task)
        case ev.ProgressEvent() | ev.ExecutorEvent() | ev.UsageEvent() | ev.QueueEvent():
            return event
    return dataclasses.replace(event, body=hidden)
