"""The TUI application: runs the urwid main loop on asyncio, feeds the state, redraws, and routes keys."""

from __future__ import annotations

import asyncio
import logging
import termios
import time
from pathlib import Path
from typing import Any

import urwid

from dtask_tui import dispatch
from dtask_tui.actions import Actions
from dtask_tui.client import ControllerClient
from dtask_tui.connection import Feed
from dtask_tui.dialogs import Dialog
from dtask_tui.keys import Context
from dtask_tui.output_follow import OutputFollower
from dtask_tui.pager import Pager
from dtask_tui.screen import Panes, Root, layout_for_width
from dtask_tui.state import Tab, TuiState
from dtask_tui.widgets.palette import palette

log = logging.getLogger(__name__)

MIN_REDRAW_INTERVAL = 0.1  # at most 10 redraws per second
TICK_SECONDS = 1.0


class TuiApp:
    """State + widgets + controller feed + actions; run() owns the terminal."""

    def __init__(
        self,
        client: ControllerClient,
        state: TuiState | None = None,
        *,
        export_dir: Path | None = None,
        poll_interval: float = 1.0,
        mouse: bool = True,
    ):
        self.mouse = mouse
        self.client = client
        self.state = state or TuiState(client.address)
        self.size: tuple[int, int] = (80, 24)
        self.feed = Feed(client, self.state, self.changed, poll_interval=poll_interval)
        self.pager = Pager(client, self.state, self.request_redraw)
        self.feed.ready = self.pager.idle
        self.panes = Panes(self.state)
        self.dialog: Dialog | None = None
        self.search_edit: urwid.Edit | None = None
        self.actions = Actions(self, client, self.state, export_dir or Path.cwd())
        self.follower = OutputFollower(client, self.state, self.request_redraw)
        self.root = Root(self)
        self.loop: urwid.MainLoop | None = None
        self.quitting = False
        self._feed_task: asyncio.Task[None] | None = None
        self._redraw_pending = False
        self._last_draw = 0.0
        self.refresh()

    # ---- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        """Start feeding the state from the controller (call inside the running asyncio loop)."""
        self._feed_task = asyncio.get_running_loop().create_task(self.feed.run())

    async def stop(self) -> None:
        """Cancel the feed, the output stream and the background actions; close the client."""
        tasks = [
            t
            for t in (self._feed_task, self.follower.task, *self.pager.running, *self.actions.background)
            if t is not None
        ]
        for t in tasks:
            t.cancel()
        for t, outcome in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(outcome, Exception):  # a cancelled task's CancelledError is no Exception
                log.error("%s failed while stopping", t.get_name(), exc_info=outcome)
        try:
            await self.client.close()
        except Exception:  # quitting goes on: the process ends and the connection with it
            log.warning("closing the controller connection failed", exc_info=True)

    def run(self) -> None:
        """Take over the terminal until the user quits."""
        aloop = asyncio.new_event_loop()
        asyncio.set_event_loop(aloop)
        screen = urwid.display.raw.Screen()
        cols, _rows = screen.get_cols_rows()
        self.state.set_layout(layout_for_width(cols))
        self.loop = urwid.MainLoop(
            self.root, palette(), screen=screen, handle_mouse=self.mouse, event_loop=urwid.AsyncioEventLoop(loop=aloop)
        )
        try:
            # Ctrl+Q and Ctrl+S reach the program instead of pausing the terminal
            screen.tty_signal_keys(stop="undefined", start="undefined")
        except (termios.error, OSError) as exc:
            log.warning("cannot unmap Ctrl+Q/Ctrl+S from the terminal: %s", exc)
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

    def quit(self) -> None:
        self.quitting = True
        if self.loop is not None:
            raise urwid.ExitMainLoop()

    # ---- redraws -------------------------------------------------------------------------
    def changed(self) -> None:
        """The state changed from the controller: fetch what it now needs, and redraw."""
        self.pager.sync()
        self.request_redraw()

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
        self.follower.sync()
        self.pager.sync()
        self.root.set(self.panes.compose(self.size, self.context(), self.dialog, self.search_edit))

    def context(self) -> Context:
        if self.state.results is not None:
            return Context.RESULTS
        if self.state.output_open:
            return Context.OUTPUT
        if self.state.chart is not None:
            return Context.CHART
        return Context.TASKS if self.state.tab is Tab.TASKS else Context.EXECUTORS

    def render_text(self, size: tuple[int, int] | None = None) -> list[str]:
        """The screen as text lines (for tests and the benchmark)."""
        size = size or self.size
        self.size = size
        self.refresh()
        return [line.decode("utf-8") for line in self.root.render(size, focus=True).text]

    # ---- keys ----------------------------------------------------------------------------
    def keypress(self, key: str) -> None:
        """Route one key (see dispatch.handle_key), then redraw."""
        dispatch.handle_key(self, key)
        self.refresh()
