"""The metric scanner as it was before its fast path (every line split and looked at): the reference the fast one
must agree with."""

from __future__ import annotations

import re

from dtask_common.metrics import (
    _BLOCK_LINE,
    _HEADER,
    _MARKER_B,
    MAX_LINE,
    Values,
    parse_marker,
    parse_number,
    parse_postfix,
)


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
        if not self._in_block and b"=" not in text and b"***" not in text and _MARKER_B not in text:
            return []
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
