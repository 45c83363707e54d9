"""Live metrics from task output: tqdm's postfix, `key = value` blocks and marker lines, and JSON lines (the
`$DTASK_METRICS_FILE`); pure, no I/O: callers feed bytes and stamp the values with the time they saw them."""

from __future__ import annotations

import json
import re
from typing import Any

from dtask_common.models.metrics import metric_name, metric_value
from dtask_common.progress import parse_tqdm

# A line `DTASK_METRIC {"loss": 0.2, "acc": 0.9}` reports metrics (a JSON object, numbers only).
MARKER = "DTASK_METRIC"
METRICS_FILE_ENV = "DTASK_METRICS_FILE"
MAX_LINE = 4096
MAX_DEPTH = 4
MAX_PER_LINE = 64

Values = list[tuple[str, int | float]]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>78]")
_INT = re.compile(r"[+-]?\d+")
# A number, optionally followed by a unit (`3.2GB`, `12%`, `1.5e-4`, `0.9s`).
_NUMBER_UNIT = re.compile(r"(?P<n>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*(?P<unit>[A-Za-z%/]{0,8})")
# `***** train metrics *****`
_HEADER = re.compile(r"^\s*\*{3,}\s*.*?\s*\*{3,}\s*$")
# `  train_loss               =     0.6432`
_BLOCK_LINE = re.compile(r"^\s*(?P<key>[A-Za-z_][\w./@-]*)\s*=\s*(?P<value>.*?)\s*$")
_MARKER_B = MARKER.encode()
# Where a block header may start: sre's literal search finds `***` in half the time bytes.find takes (which
# skips through data by three bytes at most, for a needle this short).
_STARS = re.compile(rb"\*\*\*")


def parse_number(text: str) -> int | float | None:
    """The number a value shows (`0.213`, `42`, `1e-4`, `3.2GB` -> 3.2: a unit is dropped); ints stay ints."""
    m = _NUMBER_UNIT.fullmatch(text.strip())
    if m is None:
        return None
    n = m.group("n")
    try:
        value: int | float = int(n) if _INT.fullmatch(n) else float(n)
    except (ValueError, OverflowError):
        return None
    return metric_value(value)


def parse_postfix(line: str) -> Values:
    """The `key=value` pairs tqdm's set_postfix adds to a bar (`[00:01<00:02, 30.1it/s, loss=0.213, acc=0.91]`),
    numbers only, in the order shown; [] when the line is not a tqdm bar."""
    line = _ANSI.sub("", line).strip()
    if not line.endswith("]") or "=" not in line or len(line) > MAX_LINE or parse_tqdm(line) is None:
        return []
    inside = line[line.rfind("[") + 1 : -1]
    out: Values = []
    for part in inside.split(", ")[1:]:
        key, eq, value = part.partition("=")
        name = metric_name(key.strip())
        number = parse_number(value) if eq else None
        if name is not None and number is not None and len(out) < MAX_PER_LINE:
            out.append((name, number))
    return out


def _flatten(obj: dict[str, Any], prefix: str, depth: int, out: Values) -> None:
    for key, value in obj.items():
        if len(out) >= MAX_PER_LINE:
            return
        name = f"{prefix}{key}"
        if isinstance(value, dict) and depth < MAX_DEPTH:
            _flatten(value, f"{name}/", depth + 1, out)
            continue
        number = metric_value(value)
        if number is not None and metric_name(name) is not None:
            out.append((name, number))


def parse_json_object(text: str) -> Values:
    """The numbers of a JSON object (`{"loss": 0.2, "val": {"acc": 0.9}}` -> loss, val/acc); [] for anything
    else. Strings, booleans and lists are not metrics."""
    if len(text) > MAX_LINE:
        return []
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return []
    out: Values = []
    if isinstance(obj, dict):
        _flatten(obj, "", 0, out)
    return out


def parse_marker(line: str) -> Values:
    """`DTASK_METRIC {"loss": 0.2}` -> [("loss", 0.2)]; [] for any other line."""
    line = _ANSI.sub("", line).strip()
    if not line.startswith(MARKER):
        return []
    return parse_json_object(line[len(MARKER) :])


class MetricScanner:
    """Feed raw output bytes; get the metrics the completed lines carry: the newest tqdm postfix of each feed,
    every line of a `***** title *****` block of `key = value` lines, every marker line.

    A chunk is neither copied nor split: only lines holding `***` or the marker can change anything outside a
    block, and between them only the newest line holding `=` and `]` (the bar) counts, found from the end."""

    def __init__(self) -> None:
        self._carry = b""
        self._in_block = False

    def feed(self, data: bytes) -> Values:
        cut = max(data.rfind(b"\r"), data.rfind(b"\n"))
        carry = self._carry
        if cut < 0:
            self._carry = data[-MAX_LINE:] if len(data) >= MAX_LINE else (carry + data)[-MAX_LINE:]
            return []
        first = _eol(data, 0, cut + 1)
        self._carry = data[max(cut + 1, len(data) - MAX_LINE) :]
        # The line the carry starts, completed by data (one longer than MAX_LINE counts for nothing).
        head = carry + data[:first] if len(carry) + first <= MAX_LINE else b""
        out: Values = []
        bar = self._line(head, out, None)
        bar = self._lines(data, first + 1, cut, out, bar)
        if bar is not None:
            out.extend(parse_postfix(bar.decode("utf-8", "replace")))
        return out

    def close(self) -> Values:
        """End of output: the unterminated last line counts too."""
        carry, self._carry = self._carry, b""
        out: Values = []
        bar = self._line(carry, out, None)
        if bar is not None:
            out.extend(parse_postfix(bar.decode("utf-8", "replace")))
        self._in_block = False
        return out

    def _lines(self, text: bytes, pos: int, end: int, out: Values, bar: bytes | None) -> bytes | None:
        """Take the lines of text[pos:end] in order (into out); returns the newest bar line (or bar)."""
        star = mark = -2  # where the next `***` and marker are (-1: none before end; -2: not looked for yet)
        while pos < end:
            if self._in_block:  # every line counts: a metric, a blank, or the end of the block
                nl = _eol(text, pos, end)
                bar = self._line(text[pos:nl] if nl - pos <= MAX_LINE else b"", out, bar)
                pos = nl + 1
                continue
            if -1 != star < pos:
                found = _STARS.search(text, pos, end)
                star = -1 if found is None else found.start()
            if -1 != mark < pos:
                mark = text.find(_MARKER_B, pos, end)
            hit = min(star, mark) if star >= 0 and mark >= 0 else max(star, mark)
            if hit < 0:
                newest = _last_bar(text, pos, end)
                return bar if newest is None else newest
            start = max(text.rfind(b"\n", pos, hit), text.rfind(b"\r", pos, hit), pos - 1) + 1
            if start > pos:
                newest = _last_bar(text, pos, start - 1)
                bar = bar if newest is None else newest
            nl = _eol(text, hit, end)
            bar = self._line(text[start:nl] if nl - start <= MAX_LINE else b"", out, bar)
            pos = nl + 1
        return bar

    def _line(self, raw: bytes, out: Values, bar: bytes | None) -> bytes | None:
        """Take one line (without its end; empty or too long: nothing); returns the newest bar line (or bar)."""
        if not raw or len(raw) > MAX_LINE:
            return bar
        line = raw.decode("utf-8", "replace")
        if self._in_block:
            m = _BLOCK_LINE.match(line)
            if m:
                number = parse_number(m.group("value"))
                if number is not None:
                    out.append((m.group("key"), number))
                return bar
            if not line.strip():
                return bar
            self._in_block = False
        if _MARKER_B in raw:
            out.extend(parse_marker(line))
        elif b"***" in raw and _HEADER.match(line):
            self._in_block = True
        elif b"=" in raw and b"]" in raw:
            return raw
        return bar


def _eol(text: bytes, pos: int, end: int) -> int:
    """Where the line at pos ends: its \\n or \\r, or end."""
    nl = text.find(b"\n", pos, end)
    cr = text.find(b"\r", pos, end if nl < 0 else nl)
    return cr if cr >= 0 else end if nl < 0 else nl


def _last_bar(text: bytes, lo: int, hi: int) -> bytes | None:
    """The last line of text[lo:hi] (split at \\r and \\n) holding both `=` and `]`, of at most MAX_LINE
    bytes; found from the end, one `]` at a time."""
    end = hi
    while (close := text.rfind(b"]", lo, end)) >= 0:
        start = max(text.rfind(b"\n", lo, close), text.rfind(b"\r", lo, close), lo - 1) + 1
        stop = _eol(text, close, end)
        if stop - start <= MAX_LINE and text.find(b"=", start, stop) >= 0:
            return text[start:stop]
        end = start
    return None
