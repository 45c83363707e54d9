"""Task ids: canonical decimal numbers from 1 to 2**63-1, and the one parser every entry point uses."""

from __future__ import annotations

import re

MAX_TASK_ID = 2**63 - 1
_CANONICAL = re.compile(r"[1-9][0-9]{0,18}")
_SHOWN = 40  # characters of a bad id quoted back in a message


class BadTaskId(ValueError):
    """A text that is not a task id; the message names the field and says how to write one."""

    def __init__(self, text: str, field: str = "task_id"):
        self.text = text
        self.field = field
        super().__init__(f"{field} {shown(text)} is not a task id: {_why(text)}")


def is_task_id(text: object) -> bool:
    """Whether text is a task id exactly as the controller writes them ('12', never '012' or '+12')."""
    return isinstance(text, str) and _CANONICAL.fullmatch(text) is not None and int(text) <= MAX_TASK_ID


def task_id(text: object, field: str = "task_id") -> str:
    """text when it is a task id, else BadTaskId naming field."""
    if not isinstance(text, str):
        raise BadTaskId(repr(text), field)
    if not is_task_id(text):
        raise BadTaskId(text, field)
    return text


def shown(text: str) -> str:
    """text quoted for a message, cut to a few dozen characters."""
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + f"... ({len(text)} characters)"


def _why(text: str) -> str:
    if not text:
        return "it is empty; give the number `dtask submit` printed, e.g. 12 (`dtask tasks` lists them)"
    if text != text.strip():
        return f"remove the spaces around it ({text.strip()!r})"
    if text[0] in "+-":
        return "task ids are positive numbers written without a sign, e.g. 12"
    if text.isascii() and text.isdigit():
        if not text.strip("0"):
            return "task ids start at 1"
        if text[0] == "0":
            return f"write it without leading zeros ({text.lstrip('0')})"
        return f"it is larger than the largest task id ({MAX_TASK_ID})"
    return "task ids are decimal numbers such as 12 (`dtask tasks` lists them)"


def unknown_dependency(text: str) -> str:
    """The message for a dependency that is neither a task of the submission nor an existing task."""
    base = f"{shown(text)} is neither the name of a task in this submission nor the id of an existing task"
    if is_task_id(text):
        return base
    looks_like_id = text.strip().lstrip("+-").isdigit() or not text.strip()
    return f"{base} ({_why(text)})" if looks_like_id else base
