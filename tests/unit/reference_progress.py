"""The progress parser's feed as it read every byte of carry + data, kept as the reference the fast one must agree with."""

from __future__ import annotations

from dtask_common.models import Progress
from dtask_common.progress import MAX_CARRY, MAX_LINE, MAX_SEGMENTS, SCAN_BYTES, ProgressParser


class ReferenceParser(ProgressParser):
    """ProgressParser with the feed that copies and scans the whole buffer."""

    def feed(self, data: bytes) -> Progress | None:
        if not self._matchers:
            return None
        start = self._carry_start
        buf = self._carry + data
        cut = max(buf.rfind(b"\r"), buf.rfind(b"\n"))
        complete, tail = (buf[:cut], buf[cut + 1 :]) if cut >= 0 else (b"", buf)
        tail_start = start + len(buf) - len(tail)
        self._carry = tail[-MAX_CARRY:]
        self._carry_start = start + len(buf) - len(self._carry)
        if tail and tail_start > self._reported and self._may_match(tail[-MAX_LINE:]):
            p = self.parse_line(tail[-MAX_LINE:].decode("utf-8", "replace"), partial=True)
            if p is not None:
                self._reported = tail_start
                return p
        if not self._may_match(complete[-SCAN_BYTES:]):
            return None
        pos, scanned = len(complete), 0
        for _ in range(MAX_SEGMENTS):
            if pos <= 0 and not complete:
                break
            prev = max(complete.rfind(b"\r", 0, pos), complete.rfind(b"\n", 0, pos))
            seg_start = start + prev + 1
            if seg_start <= self._reported or scanned > SCAN_BYTES:
                break
            seg = complete[prev + 1 : pos]
            scanned += len(seg) + 1
            if seg and len(seg) <= MAX_LINE * 4 and self._may_match(seg):
                p = self.parse_line(seg.decode("utf-8", "replace"))
                if p is not None:
                    self._reported = seg_start
                    return p
            if prev < 0:
                break
            pos = prev
        return None
