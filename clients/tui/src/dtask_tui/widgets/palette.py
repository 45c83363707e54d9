"""Colours: the urwid palette, with a highlighted variant of every entry for the focused row."""

from __future__ import annotations

from dtask_common.models import ExecutorState, TaskState

FOCUS_BG = "dark blue"

# name, foreground, background
_BASE: list[tuple[str, str, str]] = [
    ("row", "default", "default"),
    ("dim", "dark gray", "default"),
    ("header", "white,bold", "dark gray"),
    ("title", "white,bold", "default"),
    ("label", "light gray", "default"),
    ("value", "white", "default"),
    ("pending", "default", "default"),
    ("running", "dark cyan", "default"),
    ("succeeded", "light green", "default"),
    ("failed", "light red", "default"),
    ("cancelled", "yellow", "default"),
    ("lost", "light magenta", "default"),
    ("idle", "default", "default"),
    ("busy", "dark cyan", "default"),
    ("draining", "yellow", "default"),
    ("dead", "light red", "default"),
    ("gone", "dark gray", "default"),
    ("low", "light green", "default"),
    ("mid", "yellow", "default"),
    ("high", "light red", "default"),
    ("bar_done", "black", "dark cyan"),
    ("bar_todo", "white", "dark gray"),
    ("error", "light red", "default"),
    ("ok", "light green", "default"),
    ("best", "light green,bold", "default"),
    ("topbar", "white", "dark gray"),
    ("conn_ok", "black", "dark green"),
    ("conn_warn", "black", "yellow"),
    ("conn_bad", "white,bold", "dark red"),
    ("paused", "black,bold", "yellow"),
    ("banner", "white,bold", "dark red"),
    ("banner_warn", "black", "yellow"),
    ("footer", "light gray", "dark gray"),
    ("key", "yellow,bold", "dark gray"),
    ("unavailable", "black", "dark gray"),
    ("tab", "light gray", "dark gray"),
    ("tab_active", "black,bold", "light gray"),
    ("msg_info", "light green", "dark gray"),
    ("msg_error", "white,bold", "dark red"),
    ("dialog", "black", "light gray"),
    ("dialog_title", "black,bold", "light gray"),
    ("edit", "white", "dark blue"),
    ("button", "black", "light gray"),
    ("button_f", "white,bold", "dark red"),
    # the lines of a chart, in turn
    ("chart0", "light cyan", "default"),
    ("chart1", "yellow", "default"),
    ("chart2", "light magenta", "default"),
    ("chart3", "light green", "default"),
    ("chart4", "light blue", "default"),
    ("chart5", "light red", "default"),
]

_FOCUS_KEEP = {"bar_done", "bar_todo"}

STATE_ATTR = {s: s.value for s in TaskState}
EXECUTOR_ATTR = {s: s.value for s in ExecutorState}


def focus(attr: str) -> str:
    """The attribute name used for attr on the focused row."""
    return attr + "/f"


def palette() -> list[tuple[str, str, str]]:
    """The palette: every base entry plus its focused-row variant."""
    out = list(_BASE)
    for name, fg, bg in _BASE:
        if name in _FOCUS_KEEP:
            out.append((focus(name), fg, "light blue" if name == "bar_todo" else bg))
        else:
            out.append((focus(name), fg.replace("dark gray", "light gray"), FOCUS_BG))
    return out


def level_attr(value: float | None) -> str:
    """Colour for a usage percentage."""
    if value is None:
        return "dim"
    if value >= 90:
        return "high"
    if value >= 60:
        return "mid"
    return "low"
