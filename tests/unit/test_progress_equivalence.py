"""The progress parser that reads only the newest bytes reports what the one reading every byte reports."""

from __future__ import annotations

import random

from dtask_common.progress import parser_for
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.reference_progress import ReferenceParser

BAR = b"train:  45%|####5     | 45/100 [00:12<00:15,  3.60it/s]"
PIECES = [
    b"\r",
    b"\n",
    b" ",
    BAR,
    b"\x1b[A" + BAR.replace(b"45", b"46"),
    b"stream: 12it [00:03, 4.00it/s]",
    b"eval: 7 / 20",
    b"val: 3 / 1",
    b"[INFO] 12:00:01 a/b",
    b"x" * 3000,
    b"y" * 9000,
    b"z" * 20000,
    b"\xff\xfe]",
]
outputs = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=60)), max_size=30)


@settings(max_examples=300, deadline=None)
@given(outputs, st.sampled_from(["auto", "tqdm", "fraction"]), st.data())
def test_fast_feed_agrees_with_reference(pieces: list[bytes], kind: str, data: st.DataObject) -> None:
    fast, ref = parser_for(kind), ReferenceParser(parser_for(kind)._matchers)
    blob = b"".join(pieces)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(blob)), max_size=10))
    bounds = sorted({*cuts, 0, len(blob)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        assert fast.feed(blob[a:b]) == ref.feed(blob[a:b])
        assert (fast._carry, fast._carry_start, fast._reported) == (ref._carry, ref._carry_start, ref._reported)


def test_a_large_chunk_of_redraws_reports_its_last_bar() -> None:
    bars = b"".join(b"\rtrain: %3d%%|#   | %d/5000 [00:01<00:02, 9.00it/s]" % (i // 50, i) for i in range(5000))
    p = parser_for("auto").feed(bars + b"\n" + b"q" * 300_000)
    assert p is not None and (p.step, p.total) == (4999, 5000)


def test_long_outputs_agree_in_any_chunking() -> None:
    rng = random.Random(3)
    blob = b"".join(
        rng.choice(PIECES) if rng.random() < 0.7 else rng.randbytes(rng.randrange(300)) for _ in range(3000)
    )
    for size in (1000, 4096, 40_000, 65_536, 262_144):
        for kind in ("auto", "tqdm", "fraction"):
            fast, ref = parser_for(kind), ReferenceParser(parser_for(kind)._matchers)
            for i in range(0, len(blob), size):
                assert fast.feed(blob[i : i + size]) == ref.feed(blob[i : i + size]), (size, kind, i)
