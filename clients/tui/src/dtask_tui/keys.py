"""Key bindings as data: key → command → help text, per context; help and docs come from here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Command(StrEnum):
    QUIT = "quit"
    HELP = "help"
    TAB_TASKS = "tab-tasks"
    TAB_EXECUTORS = "tab-executors"
    NEXT_TAB = "next-tab"
    LAYOUT_HORIZONTAL = "layout-horizontal"
    LAYOUT_VERTICAL = "layout-vertical"
    LAYOUT_TABLE = "layout-table"
    EXPORT = "export"
    PAUSE = "pause-resume"
    UP = "up"
    DOWN = "down"
    PAGE_UP = "page-up"
    PAGE_DOWN = "page-down"
    HOME = "home"
    END = "end"
    OPEN = "open"
    OUTPUT = "output"
    CANCEL = "cancel"
    RETRY = "retry"
    SEARCH = "search"
    CLEAR = "clear"
    FILTER_NEXT = "filter-next"
    FILTER_ALL = "filter-all"
    FILTER_PENDING = "filter-pending"
    FILTER_RUNNING = "filter-running"
    FILTER_SUCCEEDED = "filter-succeeded"
    FILTER_FAILED = "filter-failed"
    FILTER_CANCELLED = "filter-cancelled"
    SORT = "sort"
    REVERSE = "reverse"
    DRAIN = "drain"
    BACK = "back"
    FOLLOW = "follow"
    SHOW_ALL_EXECUTORS = "show-all-executors"
    # Live metrics charts
    CHART_TASK = "chart-task"
    CHART_SWEEP = "chart-sweep"
    NEXT_METRIC = "next-metric"
    PREV_METRIC = "prev-metric"
    RESULTS = "results"
    SWEEP_BY = "sweep-by"


class Context(StrEnum):
    GLOBAL = "global"
    TABLE = "table"
    TASKS = "tasks"
    EXECUTORS = "executors"
    OUTPUT = "output"
    CHART = "chart"
    RESULTS = "results"


#: Commands that change the controller's state (unavailable with a viewer certificate).
ACTIONS = frozenset({Command.CANCEL, Command.RETRY, Command.PAUSE, Command.DRAIN})


@dataclass(frozen=True, slots=True)
class Binding:
    """Keys (urwid key names) that run one command in one context."""

    keys: tuple[str, ...]
    command: Command
    help: str
    context: Context
    short: str = ""  # label in the bottom bar; empty = not shown there


BINDINGS: tuple[Binding, ...] = (
    Binding(("t",), Command.TAB_TASKS, "Tasks tab", Context.GLOBAL, "Tasks"),
    Binding(("e",), Command.TAB_EXECUTORS, "Executors tab", Context.GLOBAL, "Executors"),
    Binding(("tab",), Command.NEXT_TAB, "Switch tab", Context.GLOBAL),
    Binding(("h",), Command.LAYOUT_HORIZONTAL, "Layout: table above, details below", Context.GLOBAL),
    Binding(("v",), Command.LAYOUT_VERTICAL, "Layout: table left, details right", Context.GLOBAL),
    Binding(("w",), Command.LAYOUT_TABLE, "Layout: table only (whole screen)", Context.GLOBAL),
    Binding(("ctrl e",), Command.EXPORT, "Export all tasks to a JSON file", Context.GLOBAL, "export"),
    Binding(("p",), Command.PAUSE, "Pause or resume the queue (dispatch)", Context.GLOBAL, "pause"),
    Binding(("?", "f1"), Command.HELP, "Show or hide this help", Context.GLOBAL, "help"),
    Binding(("q", "ctrl q", "ctrl d"), Command.QUIT, "Quit", Context.GLOBAL, "quit"),
    Binding(("up", "k"), Command.UP, "Previous row", Context.TABLE),
    Binding(("down", "j"), Command.DOWN, "Next row", Context.TABLE),
    Binding(("page up",), Command.PAGE_UP, "Page up", Context.TABLE),
    Binding(("page down",), Command.PAGE_DOWN, "Page down", Context.TABLE),
    Binding(("home", "g"), Command.HOME, "First row", Context.TABLE),
    Binding(("end", "G"), Command.END, "Last row", Context.TABLE),
    Binding(("enter", "l"), Command.OUTPUT, "Full-screen output of the task (follows)", Context.TASKS, "output"),
    Binding(("c",), Command.CANCEL, "Cancel the task (asks first)", Context.TASKS, "cancel"),
    Binding(("r",), Command.RETRY, "Retry the task (asks first)", Context.TASKS, "retry"),
    Binding(("/",), Command.SEARCH, "Search by name, tag or id prefix", Context.TASKS, "search"),
    Binding(("esc",), Command.CLEAR, "Clear the search", Context.TASKS),
    Binding(("f",), Command.FILTER_NEXT, "Next state filter", Context.TASKS, "filter"),
    Binding(("1",), Command.FILTER_ALL, "Filter: all tasks", Context.TASKS),
    Binding(("2",), Command.FILTER_PENDING, "Filter: pending", Context.TASKS),
    Binding(("3",), Command.FILTER_RUNNING, "Filter: running", Context.TASKS),
    Binding(("4",), Command.FILTER_SUCCEEDED, "Filter: succeeded", Context.TASKS),
    Binding(("5",), Command.FILTER_FAILED, "Filter: failed (and lost)", Context.TASKS),
    Binding(("6",), Command.FILTER_CANCELLED, "Filter: cancelled", Context.TASKS),
    Binding(("s",), Command.SORT, "Sort by the next column", Context.TASKS, "sort"),
    Binding(("S",), Command.REVERSE, "Reverse the sort order", Context.TASKS),
    Binding(("d",), Command.DRAIN, "Drain or undrain the executor (asks first)", Context.EXECUTORS, "drain"),
    Binding(("enter",), Command.OPEN, "Show the executor's tasks in the Tasks tab", Context.EXECUTORS, "its tasks"),
    Binding(
        ("a",), Command.SHOW_ALL_EXECUTORS, "Show or hide executors gone longer than lost_after_s", Context.EXECUTORS
    ),
    Binding(("esc", "l", "enter"), Command.BACK, "Back to the table", Context.OUTPUT, "back"),
    Binding(("f", "end", "G"), Command.FOLLOW, "Follow the end of the output", Context.OUTPUT, "follow"),
    Binding(("up", "k"), Command.UP, "Scroll up", Context.OUTPUT),
    Binding(("down", "j"), Command.DOWN, "Scroll down", Context.OUTPUT),
    Binding(("page up",), Command.PAGE_UP, "Page up", Context.OUTPUT),
    Binding(("page down",), Command.PAGE_DOWN, "Page down", Context.OUTPUT),
    Binding(("home", "g"), Command.HOME, "Top of the output", Context.OUTPUT),
    # Live metrics charts
    Binding(("m",), Command.CHART_TASK, "Charts of the task's live metrics (full screen)", Context.TASKS, "charts"),
    Binding(("M",), Command.CHART_SWEEP, "One metric of every task of the task's sweep on one chart", Context.TASKS),
    Binding(("esc", "m", "M"), Command.BACK, "Back to the table", Context.CHART, "back"),
    Binding(("]", "n", "right"), Command.NEXT_METRIC, "Next metric", Context.CHART, "next metric"),
    Binding(("[", "N", "left"), Command.PREV_METRIC, "Previous metric", Context.CHART),
    Binding(
        ("R",),
        Command.RESULTS,
        "Results of the task's sweep: parameters and metrics, best marked",
        Context.TASKS,
        "results",
    ),
    Binding(("esc", "R"), Command.BACK, "Back to the tasks", Context.RESULTS, "back"),
    Binding(("s",), Command.SORT, "Sort by the next column", Context.RESULTS, "sort"),
    Binding(("S",), Command.REVERSE, "Reverse the sort order", Context.RESULTS, "reverse"),
    Binding(("T",), Command.SWEEP_BY, "The sweep by the task's tag, or back by its name", Context.RESULTS, "tag/name"),
    Binding(("up", "k"), Command.UP, "Scroll up", Context.RESULTS),
    Binding(("down", "j"), Command.DOWN, "Scroll down", Context.RESULTS),
    Binding(("page up",), Command.PAGE_UP, "Page up", Context.RESULTS),
    Binding(("page down",), Command.PAGE_DOWN, "Page down", Context.RESULTS),
    Binding(("home", "g"), Command.HOME, "First row", Context.RESULTS),
    Binding(("end", "G"), Command.END, "Last row", Context.RESULTS),
)

FILTER_COMMANDS = {
    Command.FILTER_ALL: "all",
    Command.FILTER_PENDING: "pending",
    Command.FILTER_RUNNING: "running",
    Command.FILTER_SUCCEEDED: "succeeded",
    Command.FILTER_FAILED: "failed",
    Command.FILTER_CANCELLED: "cancelled",
}

KEY_NAMES = {
    "up": "↑",
    "down": "↓",
    "page up": "PgUp",
    "page down": "PgDn",
    "home": "Home",
    "end": "End",
    "enter": "Enter",
    "esc": "Esc",
    "tab": "Tab",
    "f1": "F1",
}


def key_label(key: str) -> str:
    """A key as people write it: 'ctrl e' → 'Ctrl+E', 'page up' → 'PgUp'."""
    if key in KEY_NAMES:
        return KEY_NAMES[key]
    if key.startswith("ctrl "):
        return "Ctrl+" + key[5:].upper()
    return key


def contexts_for(context: Context) -> tuple[Context, ...]:
    """Contexts searched for a key, most specific first."""
    if context in (Context.OUTPUT, Context.CHART, Context.RESULTS):
        return (context, Context.GLOBAL)
    return (context, Context.TABLE, Context.GLOBAL)


def lookup(context: Context, key: str) -> Command | None:
    """The command a key runs in a context, or None."""
    for ctx in contexts_for(context):
        for b in BINDINGS:
            if b.context is ctx and key in b.keys:
                return b.command
    return None


def footer_keys(context: Context) -> list[tuple[str, Command, str]]:
    """(key label, command, short label) shown in the bottom bar for a context."""
    out: list[tuple[str, Command, str]] = []
    for ctx in (context, Context.GLOBAL):
        for b in BINDINGS:
            if b.context is ctx and b.short and b.command not in (Command.TAB_TASKS, Command.TAB_EXECUTORS):
                out.append((key_label(b.keys[0]), b.command, b.short))
    return out


def help_rows() -> list[tuple[str, str, str]]:
    """(context, keys, help) for every binding, in table order."""
    return [(b.context.value, " ".join(key_label(k) for k in b.keys), b.help) for b in BINDINGS]


def markdown_table() -> str:
    """The key table as Markdown (for the README)."""
    lines = ["| Where | Keys | What it does |", "|---|---|---|"]
    for b in BINDINGS:
        keys = ", ".join(f"`{key_label(k)}`" for k in b.keys)
        lines.append(f"| {b.context.value} | {keys} | {b.help} |")
    return "\n".join(lines)
