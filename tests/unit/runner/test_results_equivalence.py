"""The fast result scanner finds exactly what the reference scanner finds, however the output is chunked."""

from __future__ import annotations

from dtask_runner.results import ResultCapture
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.runner.reference_results import ResultCapture as Reference

MARKER = "DTASK_RESULT:"
BLANK_MARKER = " \u00a0R:"  # a marker that starts with blanks (a space, then a UTF-8 one)
PIECES = [
    b"\n",
    b"\r",
    b" ",
    b"***** train metrics *****",
    b"  train_loss = 0.5",
    b"epoch=3",
    b"ValueError: bad",
    b"RuntimeError: boom",
    b"Traceback (most recent call last):",
    b"error: x",
    b"ERROR",
    b"eRRor",
    b"FATAL fatal Fatal fAtal",
    b"Killed",
    b"Segmentation fault",
    b"KeyboardInterrupt",
    b"MyException",
    MARKER.encode() + b'{"a": 1}',
    b"dtask_result:{}",
    b"\xff\xfe*",
    b"\t",
    b"\xc2\xa0",
    b"\xe3\x80\x80",
    b"\x1c",
    b"\xc3\xa9",
    b"torch.cuda.OutOfMemoryError: x",
    b"CUDA out of memory.",
    b"x" * 17000,
    b"x" * 300 + b"Error",
    b"a.b.cError: x",
    b"fooErrorbar: y",
    b"\xc3\xa9Exception",
    BLANK_MARKER.encode() + b'{"b": 2}',
]
outputs = st.lists(st.one_of(st.sampled_from(PIECES), st.binary(max_size=40)), max_size=40).map(b"".join)


def _state(cap: ResultCapture | Reference) -> tuple[object, ...]:
    return (cap.metrics, cap.marker_result, cap.last_error_line, cap.last_line, cap.runtime_error, cap.result())


@settings(max_examples=400, deadline=None)
@given(
    outputs, st.lists(st.integers(min_value=0, max_value=2000), max_size=8), st.sampled_from(["", MARKER, BLANK_MARKER])
)
def test_fast_scanner_agrees_with_reference(data: bytes, cuts: list[int], marker: str) -> None:
    fast, ref = ResultCapture(marker), Reference(marker)
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    for a, b in zip(bounds, bounds[1:], strict=False):
        fast.feed(data[a:b])
        ref.feed(data[a:b])
    fast.close()
    ref.close()
    assert _state(fast) == _state(ref)
