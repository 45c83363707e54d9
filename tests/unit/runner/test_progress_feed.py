"""The progress parser run at most every 50 ms: what it finds is what one read of the waiting bytes would find."""

from __future__ import annotations

import random

from dtask_common.progress import parser_for
from dtask_runner.progress_feed import PARSE_EVERY_S, ThrottledParser
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.reference_progress import ReferenceParser
from tests.unit.test_progress_equivalence import PIECES

outputs = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=60)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(outputs, st.sampled_from(["auto", "tqdm", "fraction"]), st.data())
def test_waiting_reads_are_parsed_as_one_read(pieces: list[bytes], kind: str, data: st.DataObject) -> None:
    throttled = ThrottledParser(
        parser_for(kind), every_s=1.0, defer_max=data.draw(st.sampled_from([50, 10_000, 1 << 20]))
    )
    ref = ReferenceParser(parser_for(kind)._matchers)
    blob = b"".join(pieces)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(blob)), max_size=12))
    bounds = sorted({*cuts, 0, len(blob)})
    now, waiting = 0.0, b""
    for a, b in zip(bounds, bounds[1:], strict=False):
        now += data.draw(st.sampled_from([0.0, 0.3, 1.5]))
        before = throttled.parses
        got = throttled.feed(blob[a:b], now)
        if throttled.parses == before:  # it waits
            assert got is None and throttled.due is not None
            waiting += blob[a:b]
            continue
        assert got == ref.feed(waiting + blob[a:b]) and throttled.due is None
        waiting = b""
    assert throttled.flush(now) == (ref.feed(waiting) if waiting else None)
    p = throttled.parser
    assert (p._carry, p._carry_start, p._reported) == (ref._carry, ref._carry_start, ref._reported)


def test_a_flood_of_small_reads_is_parsed_a_bounded_number_of_times() -> None:
    # 64 MiB of random bytes read 4 KiB at a time over 2 s: the parser runs about 2 / 0.05 + 64 (one per MiB
    # waiting) times, not 16,384; the bar at the very end is found by the final flush.
    rng = random.Random(5)
    throttled = ThrottledParser(parser_for("auto"))
    reads = 16_384
    for i in range(reads):
        throttled.feed(rng.randbytes(4096).replace(b"[", b"(").replace(b"]", b")"), i * 2.0 / reads)
    throttled.feed(b"\rtrain:  50%|#####     | 5/10 [00:01<00:01,  4.00it/s]", 2.0)
    p = throttled.flush(2.0 + PARSE_EVERY_S)
    assert p is not None and (p.label, p.step, p.total) == ("train", 5, 10)
    assert throttled.parses <= 2.0 / PARSE_EVERY_S + 64 + 4, throttled.parses


def test_the_first_read_and_reads_after_a_quiet_spell_are_parsed_at_once() -> None:
    throttled = ThrottledParser(parser_for("auto"))
    bar = b"\rtrain:  %d0%%|#         | %d/10 [00:01<00:01,  4.00it/s]"
    assert throttled.feed(bar % (1, 1), 100.0) is not None
    assert throttled.feed(bar % (2, 2), 100.01) is None and throttled.due == 100.0 + PARSE_EVERY_S
    p = throttled.feed(bar % (3, 3), 100.2)
    assert p is not None and p.step == 3 and throttled.due is None and throttled.flush(100.3) is None
    assert not ThrottledParser(parser_for("none")).enabled
