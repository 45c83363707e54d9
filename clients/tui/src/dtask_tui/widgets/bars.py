"""Top bar (who ⇆ where, counts, paused), connection banner, bottom bar (tabs, keys, messages), help."""

from __future__ import annotations

from dtask_tui import keys
from dtask_tui.format import duration, fit
from dtask_tui.keys import ACTIONS, Command, Context
from dtask_tui.listing import Filter
from dtask_tui.state import Tab, TuiState
from dtask_tui.status import ConnState
from dtask_tui.widgets.base import LineBar, LinesBox, Markup, pad_line

CONN_ATTR = {
    ConnState.CONNECTED: "conn_ok",
    ConnState.POLLING: "conn_warn",
    ConnState.CONNECTING: "conn_warn",
    ConnState.RECONNECTING: "conn_bad",
}


class TopBar(LineBar):
    """Client identity ⇆ controller address coloured by connection state; counts; paused."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state

    def line(self, cols: int) -> Markup:
        for variant in range(3):
            out = self._line(variant)
            if sum(len(t) for _, t in out) <= cols or variant == 2:
                return pad_line(out, cols, "topbar")
        return []  # pragma: no cover

    def _line(self, variant: int) -> Markup:
        """variant 0: everything; 1: shorter; 2: shortest."""
        st = self.state
        c = st.connection
        ident = c.identity
        who = (f"{ident.name} ({ident.role})" if variant < 2 else ident.name) if ident else "dtask-tui"
        where = c.address
        if ident and ident.controller_name and variant == 0:
            where = f"{ident.controller_name} {where}"
        out: Markup = [(CONN_ATTR[c.state], f" {who} ⇆ {where} ")]
        if variant < 2 or c.state is not ConnState.CONNECTED:
            out.append(("topbar", f" {c.state.value} "))
        if st.queue.paused:
            out.append(("paused", " ‖ PAUSED " if variant < 2 else "‖PAUSED"))
        counts = st.filter_counts()
        out.append(("topbar", " "))
        short = {
            Filter.PENDING: "pend",
            Filter.RUNNING: "run",
            Filter.SUCCEEDED: "ok",
            Filter.FAILED: "fail",
            Filter.CANCELLED: "canc",
        }
        for f in (Filter.PENDING, Filter.RUNNING, Filter.SUCCEEDED, Filter.FAILED, Filter.CANCELLED):
            out.append(("topbar", f" {f.value if variant == 0 else short[f]} {counts[f]}"))
        live = sum(1 for e in st.executors.values() if not e.dead)
        out.append(
            (
                "topbar",
                f"   executors {live}/{len(st.executors)}" if variant == 0 else f"  exec {live}/{len(st.executors)}",
            )
        )
        return out


class Banner(LineBar):
    """Shown while the Watch stream is down: what happened and what the TUI is doing about it."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state

    @staticmethod
    def needed(state: TuiState) -> bool:
        return state.connection.state is not ConnState.CONNECTED

    def line(self, cols: int) -> Markup:
        c = self.state.connection
        since = ""
        if c.since is not None:
            since = f" for {duration(self.state.clock() - c.since)}"
        if c.state is ConnState.POLLING:
            text = f" Live updates unavailable ({c.error or 'Watch failed'}); polling every second"
            return [("banner_warn", fit(text, cols))]
        if c.state is ConnState.CONNECTING:
            return [("banner_warn", fit(f" Connecting to {c.address}…", cols))]
        text = f" Disconnected{since}: {c.error or 'no answer'} — reconnecting (attempt {c.attempts})"
        return [("banner", fit(text, cols))]


class BottomBar(LineBar):
    """Tabs, then the keys of the current context (actions dimmed for a viewer), or the last message."""

    def __init__(self, state: TuiState, context: Context):
        super().__init__()
        self.state = state
        self.context = context

    def line(self, cols: int) -> Markup:
        st = self.state
        out: Markup = []
        for tab, key, label in ((Tab.EXECUTORS, "e", "Executors"), (Tab.TASKS, "t", "Tasks")):
            attr = "tab_active" if st.tab is tab and self.context is not Context.OUTPUT else "tab"
            out.append((attr, f" {key} {label} "))
        out.append(("footer", " │"))
        msg = st.current_message()
        if msg is not None:
            attr = "msg_error" if msg.level == "error" else "msg_info"
            used = sum(len(t) for _, t in out)
            if len(msg.text) + 1 > cols - used:
                out = []  # a long message gets the whole bar
                used = 0
            out.append((attr, fit(f" {msg.text}", cols - used)))
            return pad_line(out, cols, "footer")
        can_act = st.connection.can_act
        items: list[tuple[str, str, Command]] = []
        for label, command, short in keys.footer_keys(self.context):
            unavailable = command in ACTIONS and not can_act
            items.append(("unavailable" if unavailable else "key", f" {label} {short}", command))
        note = "  (viewer: read-only)" if not can_act else ""
        used = sum(len(t) for _, t in out)

        def width() -> int:
            return used + sum(len(t) for _, t, _ in items) + len(note)

        while width() > cols and items:
            droppable = [i for i, it in enumerate(items) if it[2] not in (Command.HELP, Command.QUIT)]
            if not droppable:
                break
            items.pop(droppable[-1])
        for attr, text, _ in items:
            key_text, _, rest = text[1:].partition(" ")
            out.append((attr, " " + key_text))
            out.append(("unavailable" if attr == "unavailable" else "footer", " " + rest))
        if note:
            out.append(("footer", note))
        return pad_line(_clip(out, cols), cols, "footer")


def _clip(line: Markup, cols: int) -> Markup:
    out: Markup = []
    used = 0
    for attr, text in line:
        if used + len(text) > cols:
            out.append((attr, text[: cols - used]))
            break
        out.append((attr, text))
        used += len(text)
    return out


class HelpView(LinesBox):
    """Every key binding, from the bindings table; two columns when wide, scrolled with ↑↓ when tall."""

    def __init__(self, state: TuiState):
        super().__init__()
        self.state = state
        self.max_top = 0  # the last scroll position that still fills the panel (from the last render)

    @staticmethod
    def wanted_rows(cols: int) -> int:
        """Rows that show every binding at this width."""
        n = len(keys.help_rows()) + len({ctx for ctx, _, _ in keys.help_rows()})
        return 1 + -(-n // (2 if cols >= 100 else 1))

    def lines(self, cols: int, rows: int) -> list[Markup]:
        entries: list[Markup] = []
        last = ""
        for ctx, keys_text, text in keys.help_rows():
            if ctx != last:
                entries.append([("header", f" {ctx}")])
                last = ctx
            entries.append([("key", f"  {keys_text}"), ("row", text)])
        title: Markup = [("title", " Keys  (? F1 Esc close, ↑↓ scroll)")]
        body = max(1, rows - 1)
        ncols = 2 if cols >= 100 else 1
        width = (cols - (ncols - 1) * 2) // ncols
        per = -(-len(entries) // ncols)  # ceil
        columns = [entries[i * per : (i + 1) * per] for i in range(ncols)]
        height = max(len(c) for c in columns)
        top = max(0, min(self.state.help_top, height - body))
        self.max_top = max(0, height - body)
        out: list[Markup] = [title]
        for r in range(top, min(height, top + body)):
            line: Markup = []
            for c, column in enumerate(columns):
                cell = column[r] if r < len(column) else [("row", "")]
                line += _cell(cell, width) + ([("row", "  ")] if c < ncols - 1 else [])
            out.append(line)
        return out


def _cell(cell: Markup, width: int) -> Markup:
    """A help entry fitted to width: header rows span it, key rows align their text."""
    if len(cell) == 1:
        attr, text = cell[0]
        return [(attr, fit(text, width))]
    (kattr, ktext), (tattr, ttext) = cell
    return [(kattr, fit(ktext, 22)), (tattr, fit(ttext, max(0, width - 22)))]
