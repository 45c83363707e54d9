"""The metric scanner's fast path finds exactly what the line-by-line reference finds, however output is chunked."""

from __future__ import annotations

from dtask_common.metrics import MetricScanner
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.reference_metrics import MetricScanner as Reference

PIECES = [
    b"\n",
    b"\r",
    b" ",
    b"]",
    b"=",
    b"***** eval metrics *****",
    b"  eval_loss = 0.25",
    b"acc = 0.9",
    b'DTASK_METRIC {"loss": 0.5}',
    b"DTASK_METRIC nope",
    b" 40%|####      | 4/10 [00:01<00:02, 3.1it/s, loss=0.213, acc=0.91]",
    b"100%|##########| 10/10 [00:03<00:00, 3.0it/s, loss=0.1]",
    b"x=1 ]",
    b"\x1b[A",
    b"\xc3\xa9",
    b"y" * 5000 + b"=]",
]
outputs = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=30)), max_size=40).map(b"".join)


BAR = b" 40%|####      | 4/10 [00:01<00:02, 3.1it/s, loss=0.213, acc=0.91]"


@settings(max_examples=500, deadline=None)
@example(BAR + b"\r" + b"y" * 5000 + b"=]\n", [])  # a line too long to count does not hide the bar before it
@example(BAR + b"\nx=1 ]\n", [])  # the newest line holding = and ] counts, bar or not
@given(outputs, st.lists(st.integers(min_value=0, max_value=6000), max_size=8))
def test_fast_metric_scanner_agrees_with_reference(data: bytes, cuts: list[int]) -> None:
    fast, ref = MetricScanner(), Reference()
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        assert fast.feed(data[a:b]) == ref.feed(data[a:b])
    assert fast.close() == ref.close()
