"""The urwid widget tree: the panes over the state, how they are composed, and the root widget."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

import urwid

from dtask_tui.dialogs import Dialog
from dtask_tui.keys import Context
from dtask_tui.state import Layout, Tab, TuiState
from dtask_tui.widgets.bars import Banner, BottomBar, HelpView, TopBar
from dtask_tui.widgets.charts import ChartsView
from dtask_tui.widgets.details import DetailsView
from dtask_tui.widgets.executors import ClusterBar, ExecutorTable
from dtask_tui.widgets.output import OutputView
from dtask_tui.widgets.results import ResultsView
from dtask_tui.widgets.tasks import FilterBar, TaskTable

if TYPE_CHECKING:
    from dtask_tui.app import TuiApp


def layout_for_width(cols: int) -> Layout:
    """The layout to start with: side by side on wide terminals, stacked otherwise."""
    return Layout.VERTICAL if cols >= 150 else Layout.HORIZONTAL


class Panes:
    """The widgets the screen is made of, all drawing from one state."""

    def __init__(self, state: TuiState):
        self.state = state
        self.topbar = TopBar(state)
        self.banner = Banner(state)
        self.filterbar = FilterBar(state)
        self.task_table = TaskTable(state)
        self.exec_table = ExecutorTable(state)
        self.cluster_bar = ClusterBar(state)
        for table in (self.task_table, self.exec_table):
            table.on_select = state.set_focus_index
            table.on_scroll = state.move_focus
        self.details = DetailsView(state)
        self.output_view = OutputView(state)
        self.charts_view = ChartsView(state)
        self.results_view = ResultsView(state)
        self.help = HelpView(state)

    def table_page(self) -> int:
        """Rows a page key moves in the current view."""
        if self.state.results is not None:
            return self.results_view.page
        if self.state.output_open:
            return self.output_view.page
        return (self.task_table if self.state.tab is Tab.TASKS else self.exec_table).page

    def compose(
        self, size: tuple[int, int], context: Context, dialog: Dialog | None, search_edit: urwid.Edit | None
    ) -> urwid.Widget:
        """The widget tree for the current state (only visible rows are ever drawn)."""
        st = self.state
        cols, rows = size
        header: list[urwid.Widget] = [self.topbar]
        if Banner.needed(st):
            header.append(self.banner)
        body: urwid.Widget
        if st.results is not None:
            body = self.results_view
        elif st.output_open:
            body = self.output_view
        elif st.chart is not None:
            body = self.charts_view
        else:
            table: urwid.Widget
            if st.tab is Tab.TASKS:
                table = urwid.Pile([("pack", self.filterbar), self.task_table])
            else:
                table = urwid.Pile([("pack", self.cluster_bar), self.exec_table])
            match st.layout:
                case Layout.TABLE:
                    body = table
                case Layout.HORIZONTAL:
                    body = urwid.Pile(
                        [
                            ("weight", 1, table),
                            ("pack", urwid.AttrMap(urwid.Divider("─"), "dim")),
                            ("weight", 1, self.details),
                        ]
                    )
                case Layout.VERTICAL:
                    body = urwid.Columns(
                        [
                            ("weight", 3, table),
                            (1, urwid.AttrMap(urwid.SolidFill("│"), "dim")),
                            ("weight", 2, self.details),
                        ]
                    )
                case _:
                    assert_never(st.layout)
        if st.show_help:
            width = max(20, min(cols - 2, 140))
            height = max(5, min(rows - 4, HelpView.wanted_rows(width - 2) + 2))
            body = urwid.Overlay(
                urwid.AttrMap(urwid.LineBox(self.help, title="Help"), "row"), body, "center", width, "middle", height
            )
        if dialog is not None:
            width = min(cols - 2, dialog.width)
            body = urwid.Overlay(dialog, body, "center", width, "middle", min(rows, dialog.height(width)))
        footer: list[urwid.Widget] = []
        if search_edit is not None:
            footer.append(urwid.AttrMap(search_edit, "edit"))
        footer.append(BottomBar(st, context))
        return urwid.Frame(body, header=urwid.Pile(header), footer=urwid.Pile(footer))


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

    def mouse_event(  # type: ignore[override]
        self,
        size: tuple[int, int],
        event: str,
        button: int,
        col: int,
        row: int,
        focus: bool,
    ) -> bool | None:
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
