"""The TUI application: owns the urwid main loop on asyncio, routes keys to commands, feeds the state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import urwid
from dtask_client import DtaskError
from dtask_common.export import export_tasks, to_json
from dtask_common.models import ExecutorState, TaskState

from dtask_tui import keys
from dtask_tui.client import ControllerClient
from dtask_tui.connection import Feed, is_connection_loss
from dtask_tui.dialogs import ConfirmDialog, Dialog, ExportDialog, suggested_export_name
from dtask_tui.keys import ACTIONS, FILTER_COMMANDS, Command, Context
from dtask_tui.state import Layout, OutputTail, Tab, TuiState
from dtask_tui.widgets.bars import Banner, BottomBar, HelpView, TopBar
from dtask_tui.widgets.details import DetailsView
from dtask_tui.widgets.executors import ClusterBar, ExecutorTable
from dtask_tui.widgets.output import OutputView
from dtask_tui.widgets.palette import palette
from dtask_tui.widgets.tasks import FilterBar, TaskTable

log = logging.getLogger(__name__)

HELP_SCROLL = {"up": -1, "down": 1, "page up": -10, "page down": 10}
MIN_REDRAW_INTERVAL = 0.1  # at most 10 redraws per second
TICK_SECONDS = 1.0
OUTPUT_DEBOUNCE_S = 0.15
OUTPUT_RETRY_S = 1.0


def layout_for_width(cols: int) -> Layout:
    """The layout to start with: side by side on wide terminals, stacked otherwise."""
    return Layout.VERTICAL if cols >= 150 else Layout.HORIZONTAL


class Root(urwid.WidgetWrap[urwid.Widget]):
    """The top widget: draws the composed tree, hands every key to the app."""

    def __init__(self, app: TuiApp):
        self.app = app
        super().__init__(urwid.SolidFill(" "))

    def selectable(self) -> bool:
        return True

    def set(self, widget: urwid.Widget) -> None:
        self._w = widget

    def keypress(self, size: tuple[int, int], key: str) -> str | None:  # type: ignore[override]
        self.app.size = size
        self.app.keypress(key)
        return None

    def mouse_event(self, size: tuple[int, int], event: str, button: int, col: int, row: int,  # type: ignore[override]
                    focus: bool) -> bool | None:
        if self.app.dialog is not None:
            return True  # the dialog is modal: keys only
        handled = self._w.mouse_event(size, event, button, col, row, focus)
        if handled:
            self.app.refresh()
        return handled

    def render(self, size: tuple[int, int], focus: bool = False) -> urwid.Canvas:  # type: ignore[override]
        if size != self.app.size:
            self.app.size = size
        return super().render(size, focus)


class TuiApp:
    """State + widgets + controller feed + actions; run() owns the terminal."""

    def __init__(self, client: ControllerClient, state: TuiState | None = None, *,
                 export_dir: Path | None = None, poll_interval: float = 1.0, mouse: bool = True):
        self.mouse = mouse
        self.client = client
        self.state = state or TuiState(client.address)
        self.export_dir = export_dir or Path.cwd()
        self.size: tuple[int, int] = (80, 24)
        self.feed = Feed(client, self.state, self.request_redraw, poll_interval=poll_interval)
        st = self.state
        self.topbar = TopBar(st)
        self.banner = Banner(st)
        self.filterbar = FilterBar(st)
        self.task_table = TaskTable(st)
        self.exec_table = ExecutorTable(st)
        self.cluster_bar = ClusterBar(st)
        for table in (self.task_table, self.exec_table):
            table.on_select = st.set_focus_index
            table.on_scroll = st.move_focus
        self.details = DetailsView(st)
        self.output_view = OutputView(st)
        self.help = HelpView(st)
        self.dialog: Dialog | None = None
        self.search_edit: urwid.Edit | None = None
        self.root = Root(self)
        self.loop: urwid.MainLoop | None = None
        self.quitting = False
        self.redraws = 0
        self._bg: set[asyncio.Task[Any]] = set()
        self._feed_task: asyncio.Task[None] | None = None
        self._output_task: asyncio.Task[None] | None = None
        self._output_key: tuple[str, int] | None = None
        self._redraw_pending = False
        self._last_draw = 0.0
        self.refresh()

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start feeding the state from the controller (call inside the running asyncio loop)."""
        self._feed_task = asyncio.get_running_loop().create_task(self.feed.run())

    async def stop(self) -> None:
        tasks = [t for t in (self._feed_task, self._output_task, *self._bg) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):
            await self.client.close()

    def run(self) -> None:
        """Take over the terminal until the user quits."""
        aloop = asyncio.new_event_loop()
        asyncio.set_event_loop(aloop)
        screen = urwid.display.raw.Screen()
        cols, _rows = screen.get_cols_rows()
        self.state.set_layout(layout_for_width(cols))
        self.loop = urwid.MainLoop(self.root, palette(), screen=screen, handle_mouse=self.mouse,
                                   event_loop=urwid.AsyncioEventLoop(loop=aloop))
        with contextlib.suppress(Exception):
            # Ctrl+Q and Ctrl+S reach the program instead of pausing the terminal
            screen.tty_signal_keys(stop="undefined", start="undefined")
        aloop.create_task(self.start())
        self.loop.set_alarm_in(TICK_SECONDS, self._tick)
        try:
            self.loop.run()
        finally:
            aloop.run_until_complete(self.stop())
            aloop.close()

    def _tick(self, loop: Any = None, data: Any = None) -> None:
        self.request_redraw()
        if self.loop is not None:
            self.loop.set_alarm_in(TICK_SECONDS, self._tick)

    # ---- redraws -------------------------------------------------------------------------
    def request_redraw(self) -> None:
        """Ask for a redraw; many requests within 100 ms make one redraw."""
        if self.loop is None or self._redraw_pending:
            return
        self._redraw_pending = True
        delay = max(0.0, self._last_draw + MIN_REDRAW_INTERVAL - time.monotonic())
        self.loop.set_alarm_in(delay, self._redraw_alarm)

    def _redraw_alarm(self, loop: Any = None, data: Any = None) -> None:
        self._redraw_pending = False
        self._last_draw = time.monotonic()
        self.refresh()  # the loop draws the screen when the alarm returns

    def refresh(self) -> None:
        """Recompose the widget tree for the current state (only visible rows are ever drawn)."""
        self.redraws += 1
        self._sync_output()
        self.root.set(self.compose())

    def context(self) -> Context:
        if self.state.output_open:
            return Context.OUTPUT
        return Context.TASKS if self.state.tab is Tab.TASKS else Context.EXECUTORS

    def compose(self) -> urwid.Widget:
        st = self.state
        cols, rows = self.size
        header: list[urwid.Widget] = [self.topbar]
        if Banner.needed(st):
            header.append(self.banner)
        body: urwid.Widget
        if st.output_open:
            body = self.output_view
        else:
            table: urwid.Widget
            if st.tab is Tab.TASKS:
                table = urwid.Pile([("pack", self.filterbar), self.task_table])
            else:
                table = urwid.Pile([("pack", self.cluster_bar), self.exec_table])
            if st.layout is Layout.TABLE:
                body = table
            elif st.layout is Layout.HORIZONTAL:
                body = urwid.Pile([("weight", 1, table), ("pack", urwid.AttrMap(urwid.Divider("─"), "dim")),
                                   ("weight", 1, self.details)])
            else:
                body = urwid.Columns([("weight", 3, table), (1, urwid.AttrMap(urwid.SolidFill("│"), "dim")),
                                      ("weight", 2, self.details)])
        if st.show_help:
            width = max(20, min(cols - 2, 140))
            height = max(5, min(rows - 4, HelpView.wanted_rows(width - 2) + 2))
            body = urwid.Overlay(urwid.AttrMap(urwid.LineBox(self.help, title="Help"), "row"), body,
                                 "center", width, "middle", height)
        if self.dialog is not None:
            width = min(cols - 2, self.dialog.width)
            body = urwid.Overlay(self.dialog, body, "center", width, "middle", min(rows, self.dialog.height(width)))
        footer: list[urwid.Widget] = []
        if self.search_edit is not None:
            footer.append(urwid.AttrMap(self.search_edit, "edit"))
        footer.append(BottomBar(st, self.context()))
        return urwid.Frame(body, header=urwid.Pile(header), footer=urwid.Pile(footer))

    def render_text(self, size: tuple[int, int] | None = None) -> list[str]:
        """The screen as text lines (for tests and the benchmark)."""
        size = size or self.size
        self.size = size
        self.refresh()
        return [line.decode("utf-8") for line in self.root.render(size, focus=True).text]

    # ---- keys ----------------------------------------------------------------------------
    def keypress(self, key: str) -> None:
        """Route one key: dialog, search field, help, then the bindings of the current context."""
        if self.dialog is not None:
            self.dialog.keypress((min(self.size[0] - 2, self.dialog.width),), key)
        elif self.search_edit is not None:
            self._search_key(key)
        elif self.state.show_help and key == "esc":
            self.state.show_help = False
        elif self.state.show_help and key in HELP_SCROLL:
            self.state.help_top = max(0, min(self.help.max_top, self.state.help_top + HELP_SCROLL[key]))
        else:
            command = keys.lookup(self.context(), key)
            if command is not None:
                self.run_command(command)
        self.refresh()

    def _search_key(self, key: str) -> None:
        edit = self.search_edit
        assert edit is not None
        if key == "enter":
            self.search_edit = None
        elif key == "esc":
            self.search_edit = None
            self.state.set_search("")
        else:
            edit.keypress((self.size[0],), key)
            self.state.set_search(edit.edit_text)

    def run_command(self, command: Command) -> None:
        """Do what a command means in the current context."""
        st = self.state
        if command in ACTIONS and not st.connection.can_act:
            verb = {Command.PAUSE: "pause/resume"}.get(command, command.value)
            st.say(f"{verb} is unavailable: this is a viewer certificate (read-only)", "error")
            return
        handler = self._handlers().get(command)
        if handler is not None:
            handler()
        elif command in FILTER_COMMANDS:
            st.set_filter(FILTER_COMMANDS[command])

    def _handlers(self) -> dict[Command, Callable[[], None]]:
        st = self.state
        return {
            Command.QUIT: self.quit,
            Command.HELP: self._toggle_help,
            Command.TAB_TASKS: lambda: self._tab(Tab.TASKS),
            Command.TAB_EXECUTORS: lambda: self._tab(Tab.EXECUTORS),
            Command.NEXT_TAB: lambda: self._tab(Tab.EXECUTORS if st.tab is Tab.TASKS else Tab.TASKS),
            Command.LAYOUT_HORIZONTAL: lambda: st.set_layout(Layout.HORIZONTAL),
            Command.LAYOUT_VERTICAL: lambda: st.set_layout(Layout.VERTICAL),
            Command.LAYOUT_TABLE: lambda: st.set_layout(Layout.TABLE),
            Command.UP: lambda: self._move(-1),
            Command.DOWN: lambda: self._move(1),
            Command.PAGE_UP: lambda: self._move(-self._page()),
            Command.PAGE_DOWN: lambda: self._move(self._page()),
            Command.HOME: self._home,
            Command.END: self._end,
            Command.OUTPUT: self._open_output,
            Command.BACK: lambda: setattr(st, "output_open", False),
            Command.FOLLOW: lambda: setattr(st, "output_top", None),
            Command.SEARCH: self._open_search,
            Command.CLEAR: lambda: st.set_search(""),
            Command.FILTER_NEXT: st.cycle_filter,
            Command.SORT: st.cycle_sort,
            Command.REVERSE: st.toggle_reverse,
            Command.OPEN: self._executor_tasks,
            Command.CANCEL: lambda: self._task_action("cancel"),
            Command.RETRY: lambda: self._task_action("retry"),
            Command.PAUSE: self._pause,
            Command.DRAIN: self._drain,
            Command.EXPORT: self._open_export,
        }

    def _toggle_help(self) -> None:
        self.state.show_help = not self.state.show_help
        self.state.help_top = 0

    def quit(self) -> None:
        self.quitting = True
        if self.loop is not None:
            raise urwid.ExitMainLoop()

    def _tab(self, tab: Tab) -> None:
        self.state.output_open = False
        self.state.switch_tab(tab)

    def _page(self) -> int:
        if self.state.output_open:
            return self.output_view.page
        return (self.task_table if self.state.tab is Tab.TASKS else self.exec_table).page

    def _move(self, delta: int) -> None:
        st = self.state
        if st.output_open:
            last = max(0, self.output_view.total - self.output_view.body_rows)
            top = st.output_top if st.output_top is not None else last
            top = max(0, min(last, top + delta))
            st.output_top = None if top >= last and delta > 0 else top  # scrolled to the end: follow again
        else:
            st.move_focus(delta)

    def _home(self) -> None:
        if self.state.output_open:
            self.state.output_top = 0
        else:
            self.state.set_focus_index(0)

    def _end(self) -> None:
        if self.state.output_open:
            self.state.output_top = None
        else:
            self.state.set_focus_index(len(self.state.rows()) - 1)

    def _open_output(self) -> None:
        task = self.state.focused_task()
        if task is None:
            return
        self.state.output_open = True
        self.state.output_top = None

    def _open_search(self) -> None:
        self.search_edit = urwid.Edit("Search (name, tag, id, @executor): ", self.state.search)
        self.search_edit.set_edit_pos(len(self.state.search))

    def _executor_tasks(self) -> None:
        ex = self.state.focused_executor()
        if ex is not None:
            self.state.set_search("@" + ex.name)
            self._tab(Tab.TASKS)

    # ---- actions -------------------------------------------------------------------------
    def confirm(self, title: str, question: str, action: Callable[[], Awaitable[str]]) -> None:
        """Ask yes/no; on yes run action in the background and show its result."""

        def yes() -> None:
            self.close_dialog()
            self.spawn(action())

        self.dialog = ConfirmDialog(title, question, yes, self.close_dialog)

    def close_dialog(self) -> None:
        self.dialog = None
        self.refresh()

    def spawn(self, work: Awaitable[str]) -> asyncio.Task[None]:
        """Run an action in the background; its message (or error) goes to the bottom bar."""

        async def run() -> None:
            try:
                text = await work
                self.state.say(text)
            except DtaskError as exc:
                self.state.say(f"failed: {exc.message}", "error")
            except OSError as exc:
                self.state.say(f"failed: {exc}", "error")
            self.request_redraw()

        task = asyncio.get_running_loop().create_task(run())
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)
        return task

    async def settle(self) -> None:
        """Wait for the background actions started so far (tests)."""
        while self._bg:
            await asyncio.gather(*list(self._bg), return_exceptions=True)

    def _task_action(self, verb: str) -> None:
        task = self.state.focused_task()
        if task is None:
            self.state.say("no task in focus", "error")
            return
        if verb == "cancel" and task.state.finished:
            self.state.say(f"{task.name} has already finished ({task.state.value})", "error")
            return
        if verb == "retry" and not task.state.finished:
            self.state.say(f"{task.name} is {task.state.value}; only finished tasks can be retried", "error")
            return
        client = self.client

        async def act() -> str:
            if verb == "cancel":
                done = await client.cancel(task.id)
            else:
                done = await client.retry(task.id)
            self.state.put_task(done)
            return f"{verb} {task.name} ({task.id}): now {done.state.value}"

        what = "Cancel" if verb == "cancel" else "Retry"
        self.confirm(f"{what} task", f"{what} task {task.name} ({task.id}, {task.state.value})?", act)

    def _pause(self) -> None:
        paused = self.state.queue.paused
        client = self.client

        async def act() -> str:
            q = await (client.resume() if paused else client.pause())
            self.state.queue = q
            return "queue resumed: dispatching" if not q.paused else "queue paused: no new task starts"

        question = ("Resume the queue (start dispatching again)?" if paused
                    else "Pause the queue? Running tasks go on; no new task starts.")
        self.confirm("Resume queue" if paused else "Pause queue", question, act)

    def _drain(self) -> None:
        ex = self.state.focused_executor()
        if ex is None:
            self.state.say("no executor in focus", "error")
            return
        undrain = ex.state is ExecutorState.DRAINING
        client = self.client

        async def act() -> str:
            info = await client.drain(ex.name, undrain=undrain)
            self.state.executors[info.name] = info
            return f"{info.name} is now {info.state.value}"

        question = (f"Undrain {ex.name}? It takes new tasks again." if undrain
                    else f"Drain {ex.name}? It finishes its running tasks and takes no new ones.")
        self.confirm("Undrain executor" if undrain else "Drain executor", question, act)

    def _open_export(self) -> None:
        default = str(self.export_dir / suggested_export_name(self.state.clock()))

        def ok(path: str) -> None:
            if not path:
                self.state.say("give a file name to export to", "error")
                return
            target = Path(path).expanduser()
            if not target.is_absolute():
                target = self.export_dir / target
            if target.exists():
                self.state.say(f"{target} exists; choose another name", "error")
                self.refresh()
                return
            if not target.parent.is_dir():
                self.state.say(f"folder {target.parent} does not exist", "error")
                self.refresh()
                return
            self.close_dialog()
            self.spawn(self.export_to(target))

        self.dialog = ExportDialog(default, ok, self.close_dialog)

    async def export_to(self, target: Path) -> str:
        """Write every task, fetched fresh from the controller, as `dtask export` does."""
        tasks = await self.client.tasks()
        text = to_json(export_tasks(tasks, self.client.address)) + "\n"
        await asyncio.to_thread(target.write_text, text, "utf-8")
        return f"exported {len(tasks)} tasks to {target}"

    # ---- output follower -----------------------------------------------------------------
    def _wants_output(self) -> tuple[str, int] | None:
        st = self.state
        if st.tab is not Tab.TASKS or (st.layout is Layout.TABLE and not st.output_open):
            return None
        task = st.focused_task()
        if task is None or task.state is TaskState.PENDING or not task.attempts:
            return None
        return task.id, task.attempts[-1].number

    def _sync_output(self) -> None:
        want = self._wants_output()
        if want == self._output_key:
            return
        if self._output_task is not None:
            self._output_task.cancel()
            self._output_task = None
        self._output_key = want
        if want is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._output_key = None
            return
        self._output_task = loop.create_task(self._follow(*want))

    async def _follow(self, task_id: str, attempt: int) -> None:
        await asyncio.sleep(OUTPUT_DEBOUNCE_S)  # focus moving row by row does not open a stream per row
        task = self.state.tasks.get(task_id)
        follow = task is not None and not task.state.finished
        fresh = OutputTail(task_id, attempt)  # the stream starts from the beginning of the kept tail
        try:
            async for chunk in self.client.logs(task_id, attempt=attempt, follow=follow):
                if self.state.output is not fresh:
                    self.state.output = fresh
                fresh.add(chunk)
                self.request_redraw()
            self.state.output = fresh
            fresh.done = True
        except DtaskError as exc:
            self.state.output = fresh
            fresh.error = exc.message
            fresh.done = True
            if is_connection_loss(exc):
                await asyncio.sleep(OUTPUT_RETRY_S)
                self._output_key = None  # the next redraw opens the stream again
        self.request_redraw()
