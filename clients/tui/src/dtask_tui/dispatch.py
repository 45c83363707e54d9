"""Keys to effects: a key goes to the open dialog, the search field, the help, or through the bindings to a command."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

import urwid

from dtask_tui import keys
from dtask_tui.keys import ACTIONS, FILTER_COMMANDS, Command
from dtask_tui.live_metrics import sweep_name
from dtask_tui.results import SweepResults
from dtask_tui.state import Chart, Layout, Tab
from dtask_tui.widgets.charts import metric_names

if TYPE_CHECKING:
    from dtask_tui.app import TuiApp

HELP_SCROLL = {"up": -1, "down": 1, "page up": -10, "page down": 10}


def handle_key(app: TuiApp, key: str) -> None:
    """Route one key: dialog, search field, help, then the bindings of the current context."""
    st = app.state
    if app.dialog is not None:
        app.dialog.keypress((min(app.size[0] - 2, app.dialog.width),), key)
    elif app.search_edit is not None:
        _search_key(app, app.search_edit, key)
    elif st.show_help and key == "esc":
        st.show_help = False
    elif st.show_help and key in HELP_SCROLL:
        st.help_top = max(0, min(app.panes.help.max_top, st.help_top + HELP_SCROLL[key]))
    else:
        command = keys.lookup(app.context(), key)
        if command is not None:
            run_command(app, command)


def _search_key(app: TuiApp, edit: urwid.Edit, key: str) -> None:
    if key == "enter":
        app.search_edit = None
    elif key == "esc":
        app.search_edit = None
        app.state.set_search("")
    else:
        edit.keypress((app.size[0],), key)
        app.state.set_search(edit.edit_text)


def run_command(app: TuiApp, command: Command) -> None:
    """Do what a command means in the current context."""
    st = app.state
    if command in ACTIONS and not st.connection.can_act:
        verb = {Command.PAUSE: "pause/resume"}.get(command, command.value)
        st.say(f"{verb} is unavailable: this is a viewer certificate (read-only)", "error")
        return
    if st.results is not None and command in RESULTS_COMMANDS:
        _results_command(app, st.results, command)
        return
    match command:
        case Command.QUIT:
            app.quit()
        case Command.HELP:
            st.show_help = not st.show_help
            st.help_top = 0
        case Command.TAB_TASKS:
            _tab(app, Tab.TASKS)
        case Command.TAB_EXECUTORS:
            _tab(app, Tab.EXECUTORS)
        case Command.NEXT_TAB:
            _tab(app, Tab.EXECUTORS if st.tab is Tab.TASKS else Tab.TASKS)
        case Command.LAYOUT_HORIZONTAL:
            st.set_layout(Layout.HORIZONTAL)
        case Command.LAYOUT_VERTICAL:
            st.set_layout(Layout.VERTICAL)
        case Command.LAYOUT_TABLE:
            st.set_layout(Layout.TABLE)
        case Command.UP:
            _move(app, -1)
        case Command.DOWN:
            _move(app, 1)
        case Command.PAGE_UP:
            _move(app, -app.panes.table_page())
        case Command.PAGE_DOWN:
            _move(app, app.panes.table_page())
        case Command.HOME:
            if st.output_open:
                st.output_top = 0
            else:
                st.set_focus_index(0)
        case Command.END:
            if st.output_open:
                st.output_top = None
            else:
                st.set_focus_index(len(st.rows()) - 1)
        case Command.OUTPUT:
            if st.focused_task() is not None:
                st.output_open = True
                st.output_top = None
        case Command.BACK:
            st.output_open = False
            st.chart = None
        case Command.CHART_TASK | Command.CHART_SWEEP:
            _open_chart(app, Chart.TASK if command is Command.CHART_TASK else Chart.SWEEP)
        case Command.NEXT_METRIC:
            st.chart_metric = min(st.chart_metric + 1, max(0, len(metric_names(st)) - 1))
        case Command.PREV_METRIC:
            st.chart_metric = max(0, st.chart_metric - 1)
        case Command.FOLLOW:
            st.output_top = None
        case Command.SEARCH:
            app.search_edit = urwid.Edit("Search (name, tag, id, @executor): ", st.search)
            app.search_edit.set_edit_pos(len(st.search))
        case Command.CLEAR:
            st.set_search("")
        case Command.FILTER_NEXT:
            st.cycle_filter()
        case (
            Command.FILTER_ALL
            | Command.FILTER_PENDING
            | Command.FILTER_RUNNING
            | Command.FILTER_SUCCEEDED
            | Command.FILTER_FAILED
            | Command.FILTER_CANCELLED
        ):
            st.set_filter(FILTER_COMMANDS[command])
        case Command.SORT | Command.REVERSE if st.paged:
            st.say(f"{st.view_total()} tasks are listed in pages, in submission order; filter to sort", "error")
        case Command.SORT:
            st.cycle_sort()
        case Command.REVERSE:
            st.toggle_reverse()
        case Command.OPEN:
            ex = st.focused_executor()
            if ex is not None:
                st.set_search("@" + ex.name)
                _tab(app, Tab.TASKS)
        case Command.CANCEL:
            app.actions.task_action("cancel")
        case Command.RETRY:
            app.actions.task_action("retry")
        case Command.PAUSE:
            app.actions.pause()
        case Command.DRAIN:
            app.actions.drain()
        case Command.EXPORT:
            app.actions.open_export()
        case Command.SHOW_ALL_EXECUTORS:
            st.show_all_executors = not st.show_all_executors
            hidden = f"executors out of touch longer than {st.lost_after_s:g}s"
            st.say(f"showing {hidden}" if st.show_all_executors else f"hiding {hidden} (a: show them)")
        case Command.RESULTS:
            task = st.focused_task()
            if task is None:
                st.say("no task selected: the Results view shows the sweep of the selected task", "error")
            else:
                st.output_open = False
                st.results = SweepResults.of(task)
        case Command.SWEEP_BY:
            pass  # only in the Results view (RESULTS_COMMANDS)
        case _:
            assert_never(command)


def _open_chart(app: TuiApp, chart: Chart) -> None:
    st = app.state
    t = st.focused_task()
    if t is None:
        return
    if chart is Chart.SWEEP and not sweep_name(t.name):
        st.say(f"{t.name} is not part of a sweep (a matrix task, named base[...]); m shows its own charts", "error")
        return
    st.chart, st.chart_task, st.chart_metric = chart, t.id, 0


#: What the Results view does itself while it is open.
RESULTS_COMMANDS = frozenset(
    {
        Command.BACK,
        Command.SORT,
        Command.REVERSE,
        Command.SWEEP_BY,
        Command.UP,
        Command.DOWN,
        Command.PAGE_UP,
        Command.PAGE_DOWN,
        Command.HOME,
        Command.END,
    }
)


def _results_command(app: TuiApp, view: SweepResults, command: Command) -> None:
    """A key of the Results view: close, sort, switch name and tag, scroll."""
    st = app.state
    page = app.panes.results_view.page
    rows = len(view.table(st.tasks.values()).rows)
    if command is Command.BACK:
        st.results = None
    elif command is Command.SORT:
        view.next_sort(view.table(st.tasks.values()))
    elif command is Command.REVERSE:
        view.reverse()
    elif command is Command.SWEEP_BY:
        if not view.toggle_by():
            st.say("this task has no tag; the Results view shows its sweep by name", "error")
    elif command in (Command.UP, Command.DOWN, Command.PAGE_UP, Command.PAGE_DOWN):
        step = {Command.UP: -1, Command.DOWN: 1, Command.PAGE_UP: -page, Command.PAGE_DOWN: page}[command]
        view.scroll(step, rows, page)
    elif command is Command.HOME:
        view.top = 0
    elif command is Command.END:
        view.scroll(rows, rows, page)


def _tab(app: TuiApp, tab: Tab) -> None:
    app.state.output_open = False
    app.state.chart = None
    app.state.results = None
    app.state.switch_tab(tab)


def _move(app: TuiApp, delta: int) -> None:
    """Move the focus, or scroll the output view (scrolling down to its end follows it again)."""
    st = app.state
    if st.output_open:
        view = app.panes.output_view
        last = max(0, view.total - view.body_rows)
        top = st.output_top if st.output_top is not None else last
        top = max(0, min(last, top + delta))
        st.output_top = None if top >= last and delta > 0 else top
    else:
        st.move_focus(delta)
