"""Progress parsers for task output (tqdm bars, `label: N / M`, user regexes); pure, no I/O."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from dtask_common.models import PROGRESS_GROUPS, Progress, TaskSpec

# How much of the newest output one feed() looks at: progress is "latest wins".
SCAN_BYTES = 16 * 1024
MAX_SEGMENTS = 64
MAX_CARRY = 8 * 1024
MAX_LINE = 2048
# The newest complete bytes one feed() keeps at hand: every segment it may parse lies in it whole.
_WINDOW = 2 * SCAN_BYTES + 4 * MAX_LINE + 2

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\x1b[=>78]")
_SI = {"": 1.0, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18, "Z": 1e21, "Y": 1e24}
_NUM = r"\d+(?:\.\d+)?[kMGTPEZY]?"

# `desc: 45%|████▌     | 45/100 [00:12<00:15,  3.60it/s, loss=0.5]`
_TQDM_BAR = re.compile(
    r"^(?:(?P<label>.*?):\s*)?(?P<pct>\d{1,3})%\|.*\|\s*(?P<n>" + _NUM + r")/(?P<total>" + _NUM + r"|\?)"
    r"\s*\[(?P<elapsed>[^<\],]*)(?:<(?P<eta>[^,\]]*))?(?:,\s*(?P<rate>[^,\]]*))?[^\]]*\]$"
)
# `desc: 45it [00:12, 3.60it/s]` (unknown total)
_TQDM_COUNT = re.compile(
    r"^(?:(?P<label>.*?):\s*)?(?P<n>" + _NUM + r")(?P<unit>[^\s\[\d][^\s\[]*)?\s*"
    r"\[(?P<elapsed>(?:\d+d )?\d+(?::\d\d){1,2})(?:,\s*(?P<rate>[^,\]]*))?[^\]]*\]$"
)
# `label: N / M`
_FRACTION = re.compile(r"^(?P<label>.*?):\s*(?P<step>\d+)\s*/\s*(?P<total>\d+)$")
# `Epoch 3/10` (a line of its own, or in a bar's description): epoch 3 of 10.
_EPOCH_OF = re.compile(r"\bepoch\s*[:#]?\s*(?P<k>\d{1,9})\s*/\s*(?P<n>\d{1,9})", re.IGNORECASE)
# A bar that counts the epochs themselves (an outer tqdm bar `epoch: 30%|###  | 3/10 [...]`).
_EPOCH_BAR = re.compile(r"epochs?", re.IGNORECASE)
_RATE = re.compile(r"^(?P<v>\d+(?:\.\d+)?)(?P<si>[kMGTPEZY]?)(?P<unit>.*)$")


def newest(old: Progress | None, new: Progress) -> Progress:
    """The later of two progress reports of one attempt (by when the runner saw them): shown progress never
    moves backwards when an older report arrives after a newer one."""
    if (
        old is not None
        and old.updated_at is not None
        and new.updated_at is not None
        and new.updated_at < old.updated_at
    ):
        return old
    return new


def _si_number(text: str) -> float:
    if text and text[-1] in _SI:
        return float(text[:-1]) * _SI[text[-1]]
    return float(text)


def parse_interval(text: str | None) -> float | None:
    """Seconds from tqdm's `MM:SS`, `H:MM:SS` or `Nd H:MM:SS`; None for `?` or junk."""
    if not text:
        return None
    text = text.strip()
    days = 0
    if "d " in text:
        d, _, text = text.partition("d ")
        if not d.isdigit():
            return None
        days = int(d)
    parts = text.split(":")
    if not parts or not all(p.isdigit() for p in parts) or len(parts) > 3:
        return None
    seconds = 0
    for p in parts:
        seconds = seconds * 60 + int(p)
    return float(days * 86400 + seconds)


def parse_rate(text: str | None) -> float | None:
    """Steps per second from `3.60it/s`, `7.42MB/s` or `1.23s/it`; None for `?it/s`."""
    if not text:
        return None
    text = text.strip()
    m = _RATE.match(text)
    if not m:
        return None
    value = float(m.group("v")) * _SI[m.group("si")]
    unit = m.group("unit")
    if unit.startswith("s/"):
        return 1.0 / value if value > 0 else None
    if unit.endswith("/s"):
        return value
    return None


def _percent(step: float, total: float | None) -> float | None:
    if total is None or total <= 0:
        return None
    return max(0.0, min(100.0, 100.0 * step / total))


def parse_tqdm(line: str) -> Progress | None:
    """A tqdm bar as tqdm writes it (with or without description, known or unknown total)."""
    m = _TQDM_BAR.match(line)
    if m:
        try:
            n = _si_number(m.group("n"))
            total = None if m.group("total") == "?" else _si_number(m.group("total"))
        except ValueError:
            return None
        pct = _percent(n, total)
        rate = parse_rate(m.group("rate"))
        eta = parse_interval(m.group("eta"))
        if eta == 0 and rate and total is not None and total > n:
            eta = (total - n) / rate  # tqdm rounds the last second down to 00:00
        return Progress(
            label=(m.group("label") or "").strip(),
            step=int(n),
            total=int(total) if total is not None else None,
            percent=pct if pct is not None else float(m.group("pct")),
            rate=rate,
            elapsed_s=parse_interval(m.group("elapsed")),
            eta_s=eta,
        )
    m = _TQDM_COUNT.match(line)
    if m:
        try:
            n = _si_number(m.group("n"))
        except ValueError:
            return None
        return Progress(
            label=(m.group("label") or "").strip(),
            step=int(n),
            rate=parse_rate(m.group("rate")),
            elapsed_s=parse_interval(m.group("elapsed")),
        )
    return None


def parse_fraction(line: str) -> Progress | None:
    """`label: N / M` as the original printed it."""
    m = _FRACTION.match(line)
    if not m:
        return None
    step, total = int(m.group("step")), int(m.group("total"))
    return Progress(label=m.group("label").strip(), step=step, total=total, percent=_percent(step, total))


def regex_matcher(pattern: str) -> Callable[[str], Progress | None]:
    """A matcher for a user pattern with named groups label, step, total, percent."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"progress_pattern is not a valid regular expression: {exc}") from None
    groups = set(rx.groupindex) & set(PROGRESS_GROUPS)

    def match(line: str) -> Progress | None:
        m = rx.search(line)
        if not m:
            return None
        values = {g: m.group(g) for g in groups if m.group(g) is not None}
        try:
            step = float(values["step"]) if "step" in values else None
            total = float(values["total"]) if "total" in values else None
            pct = float(values["percent"]) if "percent" in values else None
        except ValueError:
            return None
        if step is None and pct is None:
            return None
        if pct is None and step is not None:
            pct = _percent(step, total)
        return Progress(
            label=values.get("label", "").strip(),
            step=int(step) if step is not None else 0,
            total=int(total) if total is not None else None,
            percent=max(0.0, min(100.0, pct)) if pct is not None else None,
        )

    return match


@dataclass(frozen=True, slots=True)
class _Matcher:
    parse: Callable[[str], Progress | None]
    # May an unterminated last line be parsed (tqdm redraws without a newline)?
    partial_ok: bool
    # A cheap test on the raw segment: False means parse() cannot match it.
    hint: Callable[[bytes], bool] | None = None


def _tqdm_hint(seg: bytes) -> bool:
    # A bar holds `%|`, `/`, `[` and `]`; a count `[`, `:` (its elapsed time) and `]`. Removing ANSI escapes
    # only takes characters away, so the raw segment holds them too.
    return b"]" in seg and b"[" in seg and (b":" in seg or (b"%" in seg and b"|" in seg and b"/" in seg))


def _fraction_hint(seg: bytes) -> bool:
    return b"/" in seg and b":" in seg


def _epoch_hint(seg: bytes) -> bool:
    return b"poch" in seg or b"POCH" in seg


def epoch_of(p: Progress | None, line: str = "") -> tuple[int, int] | None:
    """(epoch, epochs) a bar or a line says: an outer bar counting epochs (its done count + 1, for the one that
    runs), `Epoch 3/10` in a bar's description or on a line of its own; None when it says nothing of epochs."""
    if p is not None and p.total and p.total > 0 and _EPOCH_BAR.fullmatch(p.label.strip()):
        done = p.step if p.elapsed_s is not None else max(0, p.step - 1)  # tqdm counts done, a line the current
        return min(done + 1, p.total), p.total
    m = _EPOCH_OF.search(p.label if p is not None else line)
    if m is None:
        return None
    k, n = int(m.group("k")), int(m.group("n"))
    return (k, n) if 0 < n and 0 <= k <= n else None


class ProgressParser:
    """Feed raw output bytes; get the newest progress they carry (or None)."""

    def __init__(self, matchers: list[_Matcher]):
        self._matchers = matchers
        self._carry = b""
        self._carry_start = 0  # absolute offset of _carry[0] in the output
        self._reported = -1  # absolute start of the newest segment already returned
        self._epoch: tuple[int, int] | None = None  # the epoch the output told last: (k, n)
        self._inner: Progress | None = None  # the newest bar that is not an epoch counter

    @property
    def enabled(self) -> bool:
        return bool(self._matchers)

    def parse_line(self, line: str, *, partial: bool = False) -> Progress | None:
        """Parse one line (ANSI escapes and surrounding blanks ignored)."""
        line = _ANSI.sub("", line).strip()
        if not line or len(line) > MAX_LINE:
            return None
        for matcher in self._matchers:
            if partial and not matcher.partial_ok:
                continue
            try:
                p = matcher.parse(line)
            except (ValueError, OverflowError, ZeroDivisionError):
                p = None
            if p is not None:
                return p
        return None

    def _may_match(self, seg: bytes) -> bool:
        return any(m.hint is None or m.hint(seg) for m in self._matchers)

    def feed(self, data: bytes) -> Progress | None:
        """The newest progress that data brought; None when it brought none. When the output tells the epoch
        (an outer bar counting epochs, `Epoch 3/10`), the progress carries it: epoch k of n, beside the bar.

        Only the newest bytes are looked at (the unterminated tail, then complete segments newest first within
        SCAN_BYTES): the rest of a large chunk is neither copied nor read.
        """
        if not self._matchers:
            return None
        start, carry = self._carry_start, self._carry
        n_carry = len(carry)
        # The last \r or \n of carry + data, as an offset into carry + data (-1: none).
        cut = max(data.rfind(b"\r"), data.rfind(b"\n"))
        if cut >= 0:
            cut += n_carry
            tail = data[cut - n_carry + 1 :]
        else:
            cut = max(carry.rfind(b"\r"), carry.rfind(b"\n"))
            tail = data if len(data) >= MAX_CARRY else carry[cut + 1 :] + data  # only its end is read
        size = n_carry + len(data)
        tail_start = start + cut + 1
        self._carry = tail[-MAX_CARRY:]
        self._carry_start = start + size - len(self._carry)
        found = _Found()
        if tail and tail_start > self._reported and self._may_match(tail[-MAX_LINE:]):
            p = self.parse_line(tail[-MAX_LINE:].decode("utf-8", "replace"), partial=True)
            if p is not None:
                found.take(p, tail_start)
        # The newest _WINDOW bytes of the complete segments (carry + data before cut); window_off: its offset.
        if cut - _WINDOW >= n_carry:
            window_off = cut - _WINDOW
            window = data[window_off - n_carry : cut - n_carry]
        else:
            head = carry[: max(cut, 0)] + data[: max(0, cut - n_carry)]
            window = head[-_WINDOW:]
            window_off = len(head) - len(window)
        self._newest_segments(window, start + window_off, found)
        return self._result(found)

    def _newest_segments(self, window: bytes, window_start: int, found: _Found) -> None:
        """Complete segments at the end of window, newest first, each identified by its absolute start offset.

        A segment cut by the window's start is longer than any that is parsed (the window is long enough), so
        it ends the search as it would have with every byte at hand.
        """
        pos, scanned = len(window), 0
        hinted = self._may_match(window[-SCAN_BYTES:]) or _epoch_hint(window[-SCAN_BYTES:])
        for _ in range(MAX_SEGMENTS if hinted else 0):
            if found.done or (pos <= 0 and not window):
                break
            prev = max(window.rfind(b"\r", 0, pos), window.rfind(b"\n", 0, pos))
            seg_start = window_start + prev + 1
            if seg_start <= self._reported or scanned > SCAN_BYTES:
                break
            seg = window[prev + 1 : pos]
            scanned += len(seg) + 1
            if seg and len(seg) <= MAX_LINE * 4 and (found.inner is None or _epoch_hint(seg)):
                p = self.parse_line(seg.decode("utf-8", "replace")) if self._may_match(seg) else None
                if p is not None:
                    found.take(p, seg_start, inner_wanted=found.inner is None)
                elif found.epoch is None and _epoch_hint(seg):
                    found.epoch_line(_ANSI.sub("", seg.decode("utf-8", "replace")), seg_start)
            if prev < 0:
                break
            pos = prev

    def _result(self, found: _Found) -> Progress | None:
        epoch_changed = found.epoch is not None and found.epoch != self._epoch
        if found.epoch is not None:
            self._epoch = found.epoch
        p = found.inner
        if p is None and epoch_changed:
            p = self._inner if self._inner is not None else found.epoch_bar
        if p is None:
            if found.newest > self._reported and found.epoch is not None:
                self._reported = found.newest
            return None
        if found.inner is not None:
            self._inner = found.inner
        self._reported = max(self._reported, found.newest)
        if self._epoch is not None:
            p = replace(p, epoch=self._epoch[0], epochs=self._epoch[1])
        return p


@dataclass(slots=True)
class _Found:
    """What one feed found: the newest bar that is not an epoch counter, the newest epoch (and its bar)."""

    inner: Progress | None = None
    epoch: tuple[int, int] | None = None
    epoch_bar: Progress | None = None
    newest: int = -1  # the start of the newest segment that told something

    @property
    def done(self) -> bool:
        return self.inner is not None and self.epoch is not None

    def take(self, p: Progress, at: int, *, inner_wanted: bool = True) -> None:
        e = epoch_of(p)
        outer = e is not None and _EPOCH_BAR.fullmatch(p.label.strip()) is not None
        if e is not None and self.epoch is None:
            self.epoch = e
            self.newest = max(self.newest, at)
            if outer:
                self.epoch_bar = p
        if not outer and inner_wanted and self.inner is None:
            self.inner = p
            self.newest = max(self.newest, at)

    def epoch_line(self, line: str, at: int) -> None:
        e = epoch_of(None, line)
        if e is not None:
            self.epoch = e
            self.newest = max(self.newest, at)


BUILTIN = {
    "tqdm": [_Matcher(parse_tqdm, True, _tqdm_hint)],
    "fraction": [_Matcher(parse_fraction, False, _fraction_hint)],
    "auto": [_Matcher(parse_tqdm, True, _tqdm_hint), _Matcher(parse_fraction, False, _fraction_hint)],
    "none": [],
}


def parser_for(kind: str | TaskSpec = "auto", pattern: str = "") -> ProgressParser:
    """The parser a task spec asks for: auto (default), tqdm, fraction, regex (with pattern) or none.

    `kind` may also be the TaskSpec itself (its progress and progress_pattern are used).
    """
    if isinstance(kind, TaskSpec):
        name, pattern = kind.progress, kind.progress_pattern
    else:
        name = kind
    kind = name or "auto"
    if kind == "regex":
        if not pattern:
            raise ValueError("progress = 'regex' needs a progress_pattern with named groups")
        return ProgressParser([_Matcher(regex_matcher(pattern), False)])
    if kind not in BUILTIN:
        raise ValueError(f"unknown progress parser {kind!r}; use auto, tqdm, fraction, regex or none")
    return ProgressParser(list(BUILTIN[kind]))
