"""Modal dialogs: yes/no confirmation and the export dialog with an editable path."""

from __future__ import annotations

import time
from collections.abc import Callable

import urwid
from dtask_common.safetext import shown


def suggested_export_name(now: float | None = None) -> str:
    """tasks_YYYY-MM-DD_HH-MM-SS.json for now (local time)."""
    t = time.localtime(time.time() if now is None else now)
    return time.strftime("tasks_%Y-%m-%d_%H-%M-%S.json", t)


def _caller(fn: Callable[[], None]) -> Callable[[urwid.Button], None]:
    return lambda _button: fn()


class Dialog(urwid.WidgetWrap[urwid.Widget]):
    """A framed box with a body and buttons; Esc cancels."""

    def __init__(
        self,
        title: str,
        body: list[urwid.Widget],
        buttons: list[tuple[str, Callable[[], None]]],
        on_cancel: Callable[[], None],
        width: int = 60,
    ):
        self.on_cancel = on_cancel
        self.width = width
        self.buttons = [
            urwid.AttrMap(urwid.Button(label, on_press=_caller(fn)), "button", "button_f") for label, fn in buttons
        ]
        row = urwid.Columns([("pack", b) for b in self.buttons], dividechars=2)
        row_width = sum(len(label) + 4 for label, _ in buttons) + 2 * (len(buttons) - 1)
        pile = urwid.Pile([*body, urwid.Divider(), urwid.Padding(row, "center", row_width)])
        box = urwid.LineBox(urwid.Padding(pile, left=1, right=1), title=shown(title))
        super().__init__(urwid.AttrMap(box, "dialog"))
        self.pile = pile
        self.button_row = row

    def height(self, width: int | None = None) -> int:
        return int(self._w.rows((width or self.width,)))  # type: ignore[attr-defined]

    def keypress(self, size: tuple[int], key: str) -> str | None:  # type: ignore[override]
        if key == "esc":
            self.on_cancel()
            return None
        return super().keypress(size, key)


class ConfirmDialog(Dialog):
    """Yes/No question; y / n keys answer directly."""

    def __init__(self, title: str, question: str, on_yes: Callable[[], None], on_no: Callable[[], None]):
        self.on_yes, self.on_no = on_yes, on_no
        super().__init__(title, [urwid.Text(shown(question))], [("Yes", on_yes), ("No", on_no)], on_no)
        # focus "No" by default: Enter alone never destroys anything
        self.pile.focus_position = len(self.pile.contents) - 1
        self.button_row.focus_position = 1

    def keypress(self, size: tuple[int], key: str) -> str | None:  # type: ignore[override]
        if key in ("y", "Y"):
            self.on_yes()
            return None
        if key in ("n", "N"):
            self.on_no()
            return None
        return super().keypress(size, key)


class ExportDialog(Dialog):
    """Asks where to write the JSON export; Enter in the path field exports."""

    def __init__(self, default_path: str, on_ok: Callable[[str], None], on_cancel: Callable[[], None]):
        self.edit = urwid.Edit("Path: ", default_path)
        self.edit.set_edit_pos(len(default_path))
        self.on_ok = on_ok
        body: list[urwid.Widget] = [
            urwid.Text("Export all tasks to a JSON file (same format as `dtask export`)."),
            urwid.Divider(),
            urwid.AttrMap(self.edit, "edit"),
        ]
        super().__init__(
            "Export tasks",
            body,
            [("Export", self._ok), ("Cancel", on_cancel)],
            on_cancel,
            width=max(70, len(default_path) + 14),
        )
        self.pile.focus_position = 2

    @property
    def path(self) -> str:
        return self.edit.edit_text

    def _ok(self) -> None:
        self.on_ok(self.path.strip())

    def keypress(self, size: tuple[int], key: str) -> str | None:  # type: ignore[override]
        if key == "enter" and self.pile.focus_position == 2:
            self._ok()
            return None
        return super().keypress(size, key)
