"""Result capture from task output: metric blocks, marker JSON lines, the last error line; pure."""

from __future__ import annotations

import json
import re
from typing import Any

MAX_LINE = 16 * 1024
MAX_METRICS = 1000
MAX_RESULT_FILE = 1024 * 1024

# `***** train metrics *****`
_HEADER = re.compile(r"^\s*\*{3,}\s*(?P<title>.*?)\s*\*{3,}\s*$")
# `  train_loss               =     0.6432`
_METRIC = re.compile(r"^\s*(?P<key>[A-Za-z_][\w./@-]*)\s*=\s*(?P<value>.*?)\s*$")
# A Python exception line, a traceback, or an error/fatal message.
_ERROR = re.compile(
    r"^\s*(?:(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Interrupt)(?::.*)?"
    r"|Traceback \(most recent call last\):"
    r"|(?:error|ERROR|Error|fatal|FATAL|Fatal)\b.*"
    r"|Killed|Segmentation fault.*|CUDA out of memory.*)$"
)
# The original failed an attempt that printed a `RuntimeError:` line, whatever its exit code.
_RUNTIME_ERROR = re.compile(r"^\s*RuntimeError:")
# Lines worth a closer look (C-speed skip over everything else).
_LITERALS = (
    b"***",
    b"Error",
    b"Exception",
    b"Interrupt",
    b"Traceback",
    b"error",
    b"ERROR",
    b"fatal",
    b"FATAL",
    b"Fatal",
    b"Killed",
    b"Segmentation",
)
_INTERESTING = re.compile(b"|".join(re.escape(x) for x in _LITERALS))
# What may stand before a line's first word, as bytes: the ASCII blanks `\s` matches (\n excepted: it ends a
# line) and any byte of a UTF-8 sequence, since a decoded line may start with Unicode blanks.
_LEAD = rb"[\t\x0b\x0c \x1c-\x1f\x80-\xff]*+"
# How a line that may take effect (a header, a marker, an error line) starts, as bytes. Every branch holds one of
# _LITERALS, except `CUDA out of memory`, which counts only on a line holding one.
_STARTS = (
    rb"\*\*\*",
    rb"[A-Za-z_][0-9A-Za-z_.\x80-\xff]*+(?:(?<=Error)|(?<=Exception)|(?<=Interrupt))",
    rb"Traceback",
    rb"error|ERROR|Error|fatal|FATAL|Fatal",
    rb"Killed",
    rb"Segmentation",
    rb"(?P<cuda>CUDA out of memory)",
)


def convert_value(text: str) -> Any:
    """A metric value as int, float, bool or the text itself."""
    t = text.strip()
    if re.fullmatch(r"[+-]?\d+", t):
        try:
            return int(t)
        except ValueError:
            return t
    try:
        f = float(t)
    except ValueError:
        return {"true": True, "false": False}.get(t.lower(), t)
    if f != f or f in (float("inf"), float("-inf")):
        return t  # JSON (and protobuf Struct) cannot carry NaN/inf faithfully
    return f


class ResultCapture:
    """Feed output bytes; collects metric blocks, marker JSON objects and error lines."""

    def __init__(self, marker: str = ""):
        self._marker = marker.encode() if marker else b""
        self._interesting = (
            re.compile(_INTERESTING.pattern + b"|" + re.escape(self._marker)) if marker else _INTERESTING
        )
        # A line worth a closer look: one that starts (after blanks) like a header or an error line, or starts with
        # the marker. No part of it backtracks: the blanks and a word are taken whole (a long word costs its length).
        starts = _LEAD + b"(?:" + b"|".join(_STARTS) + b")" + (b"|" + re.escape(self._marker) if marker else b"")
        # The first line (at the search's start) and every later one (after its \n): one C-speed search finds
        # the next line worth a closer look; the lines between cannot take effect.
        self._first = re.compile(b"(?:" + starts + b")")
        self._next = re.compile(b"\n(?:" + starts + b")")
        self._carry = b""
        self._in_block = False
        self.metrics: dict[str, Any] = {}
        self.marker_result: dict[str, Any] | None = None
        self.last_error_line = ""
        self.last_line = ""
        self.runtime_error = False

    def feed(self, data: bytes) -> None:
        """Take data: the lines it completes (the carried start of a line, then its own lines, in place)."""
        data = data.replace(b"\r", b"\n")  # the same object when it holds no \r
        cut = data.rfind(b"\n")
        carry = self._carry
        if cut < 0:
            self._carry = (carry + data)[-MAX_LINE:] if len(data) < MAX_LINE else data[-MAX_LINE:]
            return
        first = data.find(b"\n") + 1
        self._carry = data[max(cut + 1, len(data) - MAX_LINE) :]
        if cut + 1 >= MAX_LINE:
            self._remember_last_line(data[cut + 1 - MAX_LINE : cut + 1])
        else:
            self._remember_last_line((carry + data[: cut + 1])[-MAX_LINE:])
        if carry:
            self._scan(carry + data[:first])
            self._scan(data, first, cut + 1)
        else:
            self._scan(data, 0, cut + 1)

    def close(self) -> None:
        """End of output: the unterminated last line counts too."""
        if self._carry:
            carry, self._carry = self._carry, b""
            self._remember_last_line(carry)
            self._scan(carry + b"\n")
        self._in_block = False

    def _remember_last_line(self, text: bytes) -> None:
        """Keep the last non-blank line: the error of a failure that printed no error-looking line."""
        tail = text[-MAX_LINE:].rstrip()
        if tail:
            self.last_line = tail[tail.rfind(b"\n") + 1 :].decode("utf-8", "replace").strip()

    @property
    def error_line(self) -> str:
        """The last error-looking line, else the last line of output."""
        return self.last_error_line or self.last_line

    def _scan(self, text: bytes, pos: int = 0, end: int = -1) -> None:
        """Take the lines of text[pos:end] (which ends with \\n) that can take effect, in order.

        The same lines count as for a scan of every line holding one of _LITERALS (the reference): outside a
        metric block only a line that starts as a header, a marker or an error line can, so only those are
        looked at; inside a block, every line.
        """
        end = len(text) if end < 0 else end
        while pos < end:
            if not self._in_block:
                m = self._first.match(text, pos, end)
                if m is None:
                    m = self._next.search(text, pos, end)
                    if m is None:
                        return
                    pos = m.start() + 1
                if m.lastgroup == "cuda" and not self._interesting.search(text, pos, text.find(b"\n", pos, end)):
                    pos = text.find(b"\n", pos, end) + 1
                    continue
            nl = text.find(b"\n", pos, end)
            nl = end if nl < 0 else nl
            self._line(text[pos:nl][:MAX_LINE].decode("utf-8", "replace"))
            pos = nl + 1

    def _line(self, line: str) -> None:
        if self._in_block:
            m = _METRIC.match(line)
            if m and len(self.metrics) < MAX_METRICS:
                self.metrics[m.group("key")] = convert_value(m.group("value"))
                return
            if not line.strip():
                return  # blank lines inside a block are tolerated
            self._in_block = False
        if _HEADER.match(line):
            self._in_block = True
            return
        if self._marker and line.startswith(self._marker.decode("utf-8", "replace")):
            obj = _json_object(line[len(self._marker.decode("utf-8", "replace")) :])
            if obj is not None:
                self.marker_result = obj
            return
        if _ERROR.match(line):
            self.last_error_line = line.strip()
            if _RUNTIME_ERROR.match(line):
                self.runtime_error = True

    def result(self, result_file: bytes | None = None) -> tuple[dict[str, Any] | None, str]:
        """(result, problem): the result file's object, else the marker's, else the metrics."""
        problem = ""
        if result_file is not None and len(result_file) > MAX_RESULT_FILE:
            problem = (
                f"DTASK_RESULT_FILE is larger than {MAX_RESULT_FILE // 1024} KiB; keep results small "
                "(store big artefacts in files); using the captured metrics instead"
            )
        elif result_file is not None and result_file.strip():
            obj = _json_object(result_file.decode("utf-8", "replace"))
            if obj is not None:
                return obj, ""
            problem = "DTASK_RESULT_FILE does not hold a JSON object; using the captured metrics instead"
        if self.marker_result is not None:
            return self.marker_result, problem
        return (dict(self.metrics) if self.metrics else None), problem


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None
