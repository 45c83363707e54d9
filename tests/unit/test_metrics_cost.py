"""The metric scanner's cost follows the output's size: a chunk holding `***` or the marker is not split into
every one of its lines (only the lines that can change something are read)."""

from __future__ import annotations

import random
import time

from dtask_common.metrics import MetricScanner

MB = 1 << 20


def _feed_seconds(chunk: bytes) -> float:
    """The best of five feeds of chunk (after a first line break, so that each feed completes lines)."""
    best = float("inf")
    for _ in range(5):
        scanner = MetricScanner()
        scanner.feed(b"\n")
        t0 = time.perf_counter()
        scanner.feed(chunk)
        best = min(best, time.perf_counter() - t0)
    return best


def _log(seed: int) -> bytes:
    """A MiB of log lines, without `***`, the marker or a bar."""
    r = random.Random(seed)
    lines = [f"step {i} loss {r.random():.4f} lr 1e-4 {'x' * r.randrange(80)}".encode() for i in range(20_000)]
    return b"\n".join(lines)[:MB] + b"\n"


def test_a_chunk_with_a_header_or_a_marker_costs_about_what_a_plain_one_costs() -> None:
    plain = _log(1)
    middle = plain.index(b"\n", len(plain) // 2) + 1
    header = plain[:middle] + b"***** eval metrics *****\n  eval_loss = 0.25\n" + plain[middle:]
    marker = plain[:middle] + b'DTASK_METRIC {"loss": 0.5}\n' + plain[middle:]
    # Each of them once cost 20-40 times a plain chunk: every line was decoded and matched.
    base = _feed_seconds(plain)
    assert _feed_seconds(header) < 4 * base + 0.002, (base, _feed_seconds(header))
    assert _feed_seconds(marker) < 4 * base + 0.002, (base, _feed_seconds(marker))


def test_what_such_chunks_carry_is_found() -> None:
    plain = _log(2)
    middle = plain.index(b"\n", len(plain) // 2) + 1
    bar = b" 40%|####      | 4/10 [00:01<00:02, 3.1it/s, loss=0.213]\n"
    chunk = plain[:middle] + b"***** eval metrics *****\n  eval_loss = 0.25\nend\n" + bar + plain[middle:]
    assert MetricScanner().feed(chunk) == [("eval_loss", 0.25), ("loss", 0.213)]
