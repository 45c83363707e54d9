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
    every line of a `***** title *****` block of `key = value` lines, every marker line."""

    def __init__(self) -> None:
        self._carry = b""
        self._in_block = False

    def feed(self, data: bytes) -> Values:
        buf = self._carry + data
        cut = max(buf.rfind(b"\r"), buf.rfind(b"\n"))
        if cut < 0:
            self._carry = buf[-MAX_LINE:]
            return []
        complete, self._carry = buf[:cut], buf[cut + 1 :][-MAX_LINE:]
        return self._scan(complete)

    def close(self) -> Values:
        """End of output: the unterminated last line counts too."""
        carry, self._carry = self._carry, b""
        out = self._scan(carry) if carry else []
        self._in_block = False
        return out

    def _scan(self, text: bytes) -> Values:
        if not self._in_block and b"***" not in text and _MARKER_B not in text:
            # No block and no marker: only the newest bar can count (the last line holding = and ]).
            newest = _last_bar(text)
            return parse_postfix(newest.decode("utf-8", "replace")) if newest is not None else []
        out: Values = []
        bar: str | None = None
        for raw in re.split(rb"[\r\n]", text):
            if not raw or len(raw) > MAX_LINE:
                continue
            line = raw.decode("utf-8", "replace")
            if self._in_block:
                m = _BLOCK_LINE.match(line)
                if m:
                    number = parse_number(m.group("value"))
                    if number is not None:
                        out.append((m.group("key"), number))
                    continue
                if not line.strip():
                    continue
                self._in_block = False
            if _MARKER_B in raw:
                out.extend(parse_marker(line))
            elif b"***" in raw and _HEADER.match(line):
                self._in_block = True
            elif b"=" in raw and b"]" in raw:
                bar = line
        if bar is not None:
            out.extend(parse_postfix(bar))
        return out


def _last_bar(text: bytes) -> bytes | None:
    """The last line of text (split at \\r and \\n) holding both `=` and `]`, of at most MAX_LINE bytes; found
    from the end, one `]` at a time."""
    end = len(text)
    while (close := text.rfind(b"]", 0, end)) >= 0:
        start = max(text.rfind(b"\n", 0, close), text.rfind(b"\r", 0, close)) + 1
        stops = [i for i in (text.find(b"\n", close, end), text.find(b"\r", close, end)) if i >= 0]
        raw = text[start : min(stops) if stops else end]
        if len(raw) <= MAX_LINE and b"=" in raw:
            return raw
        end = start
    return None
