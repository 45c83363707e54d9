"""Human-readable durations, clock times and percentages, shared by the CLI and the TUI."""

from __future__ import annotations

import math
import time


def duration(seconds: float | None) -> str:
    """A duration as '4.2s', '45s', '12:03', '3:04:05' or '2d03h' ('-' when unknown, '∞' when infinite)."""
    if seconds is None or math.isnan(seconds) or seconds < 0:
        return "-"
    if math.isinf(seconds):
        return "∞"
    if seconds >= 100 * 365 * 86400:
        return ">100y"
    if seconds < 10:
        return f"{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    if s < 86400:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def clock(at: float | None, now: float | None = None, *, year: bool = False) -> str:
    """Local time: HH:MM:SS today, else 'MM-DD HH:MM' (with the year when asked); '-' when unknown."""
    if at is None:
        return "-"
    now = time.time() if now is None else now
    try:
        lt, ln = time.localtime(at), time.localtime(now)
    except (OverflowError, ValueError, OSError):  # inf, nan, or beyond the calendar
        return "?"
    if lt[:3] == ln[:3]:
        return time.strftime("%H:%M:%S", lt)
    return time.strftime("%Y-%m-%d %H:%M" if year else "%m-%d %H:%M", lt)


def percent(value: float | None) -> str:
    """A percentage like '45%' ('-' when unknown)."""
    return "-" if value is None else f"{value:.0f}%"


def size(nbytes: float | None) -> str:
    """Bytes in binary units: '512B', '1.5K', '3.2G' ('-' when unknown)."""
    if nbytes is None:
        return "-"
    value = float(nbytes)
    for unit in ("B", "K", "M", "G", "T"):
        if abs(value) < 1024 or unit == "T":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    return "-"


def attempt_usage(cpu_percent: float, rss_bytes: int, gpu_memory_bytes: int | None, cpu_time_s: float) -> str:
    """A running attempt's usage: 'CPU 95%  memory 1.2G  GPU memory 3.0G  CPU time 12s'."""
    parts = [f"CPU {percent(cpu_percent)}", f"memory {size(rss_bytes)}"]
    if gpu_memory_bytes is not None:
        parts.append(f"GPU memory {size(gpu_memory_bytes)}")
    parts.append(f"CPU time {duration(cpu_time_s)}")
    return "  ".join(parts)
