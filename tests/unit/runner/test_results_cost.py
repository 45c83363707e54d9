"""The result scanner's cost follows the output's size, not the length of its words."""

from __future__ import annotations

import time

from dtask_runner.results import ResultCapture

MB = 1 << 20


def _scan_seconds(line: bytes, total: int = 4 * MB) -> float:
    """The best of five scans of `total` bytes of `line` repeated, fed in 1 MiB reads as the runner does."""
    blob = line * (total // len(line))
    best = float("inf")
    for _ in range(5):
        cap = ResultCapture("DTASK_RESULT:")
        t0 = time.perf_counter()
        for i in range(0, len(blob), MB):
            cap.feed(blob[i : i + MB])
        best = min(best, time.perf_counter() - t0)
    return best


def test_a_line_of_one_long_word_costs_about_what_short_words_cost() -> None:
    # One 1,023-byte word per line (hashes, base64, a progress bar of one character) once made the scanner try
    # every prefix of the word as an identifier ending in Error: six times the cost of the same bytes in words.
    long_word = _scan_seconds(b"x" * 1023 + b"\n")
    short_words = _scan_seconds(b"ab " * 341 + b"\n")
    assert long_word < 3 * short_words + 0.01, (long_word, short_words)
