"""The Tasks table's columns: what each asks for from the rows in view (narrowest, ideal, priority), and the
usage cells of running tasks."""

from __future__ import annotations

from collections.abc import Callable

from dtask_common.models import Task, TaskState

from dtask_tui.format import cells, clock, duration, pct, progress_text, shown, size
from dtask_tui.widgets.table import Column
from dtask_tui.widths import Want

BAR_IDEAL = 26  # a progress bar with its summary ("45/100 45% ETA 12:03") and room to show the fill
BAR_MIN = 12
NAME_MIN = 10
STATE_MIN = 12
EXECUTOR_MAX = 16


def usage_cell(t: Task, key: str) -> str:
    """The CPU, memory or GPU memory of a running task's attempt ("-" when there is none)."""
    u = t.usage if t.state is TaskState.RUNNING else None
    if u is None:
        return "-"
    if key == "cpu":
        return pct(u.cpu_percent)
    if key == "mem":
        return size(u.rss_bytes)
    return "-" if u.gpu_memory_bytes is None else size(u.gpu_memory_bytes)


def _widest(texts: list[str], title: str, floor: int = 1) -> int:
    return max([floor, len(title), *(cells(shown(x)) for x in texts)])


def task_columns(
    tasks: list[Task], now: float, paused: bool, elapsed: Callable[[Task], float | None]
) -> tuple[list[Column], list[Want]]:
    """The columns for these rows and what each wants. Priorities: name, then id and state, executor,
    duration, CPU and memory, dispatched, GPU memory, finished, attempts (the last ones go first)."""
    from dtask_tui.widgets.tasks import state_note  # the same words as the cells

    ids = [t.id for t in tasks]
    names = [t.name for t in tasks]
    notes = [state_note(t, paused) for t in tasks if t.state is not TaskState.RUNNING]
    running = [t for t in tasks if t.state is TaskState.RUNNING]
    bars = [len(progress_text(t.progress)) + 2 for t in running]
    state_ideal = max([len("State / progress"), *(cells(shown(n)) for n in notes), *(max(b, BAR_IDEAL) for b in bars)])
    executors = [t.executor or "-" for t in tasks]
    dispatched = [clock(t.dispatched_at, now) for t in tasks]
    finished = [clock(t.finished_at, now) for t in tasks]
    durations = [duration(elapsed(t)) for t in tasks]
    id_w = _widest(ids, "#", 2)
    name_w = _widest(names, "Task")
    exec_w = min(EXECUTOR_MAX, _widest(executors, "Executor"))
    time_w = _widest(dispatched + finished, "", 8)
    dur_w = _widest(durations, "Dur", 4)
    columns = [
        Column("id", "#", id_w, "left", 9),
        Column("name", "Task", name_w, "left", 10),
        Column("state", "State / progress", state_ideal, "left", 9, short="State"),
        Column("executor", "Executor", exec_w, "left", 7, short="Exec"),
        Column("dispatched", "Dispatched", time_w, "left", 4, short="Started"),
        Column("finished", "Finished", time_w, "left", 2, short="Ended"),
        Column("duration", "Duration", dur_w, "right", 6, short="Dur"),
        Column("attempts", "Att", 3, "right", 1),
    ]
    wants = [
        Want("id", id_w, id_w, 9),
        Want("name", min(name_w, NAME_MIN), name_w, 10, grow=1),
        Want("state", min(state_ideal, BAR_MIN if running else STATE_MIN), state_ideal, 9, grow=2),
        Want("executor", min(exec_w, 6), exec_w, 7),
        Want("dispatched", time_w, max(time_w, len("Dispatched")), 4, optional=True),
        Want("finished", time_w, time_w, 2, optional=True),
        Want("duration", dur_w, max(dur_w, len("Duration")), 6),
        Want("attempts", 3, 3, 1, optional=True),
    ]
    usages = [t.usage for t in running if t.usage is not None]
    if usages:
        mem_w = _widest([size(u.rss_bytes) for u in usages], "Mem", 4)
        columns[3:3] = [
            Column("cpu", "CPU", _widest([pct(u.cpu_percent) for u in usages], "CPU", 4), "right", 5),
            Column("mem", "Mem", mem_w, "right", 5),
        ]
        wants[3:3] = [Want("cpu", columns[3].width, columns[3].width, 5), Want("mem", mem_w, mem_w, 5)]
        gpu = [size(u.gpu_memory_bytes) for u in usages if u.gpu_memory_bytes is not None]
        if gpu:
            gpu_w = _widest(gpu, "GMem", 4)
            columns.insert(5, Column("gpumem", "GPU mem", gpu_w, "right", 3, short="GMem"))
            wants.insert(5, Want("gpumem", gpu_w, max(gpu_w, len("GPU mem")), 3, optional=True))
    return columns, wants
