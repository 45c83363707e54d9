"""Live metrics parsers on real tqdm output written to a pipe, metric blocks, marker lines, JSON lines; the bounded
series; and properties: no input crashes a parser, the series stays within its bound and keeps first and last."""

from __future__ import annotations

import subprocess
import sys

from dtask_common.metric_series import MetricSeries
from dtask_common.metrics import MetricScanner, parse_json_object, parse_marker, parse_number, parse_postfix
from dtask_common.models import MetricPoint
from hypothesis import given, settings
from hypothesis import strategies as st

TQDM_POSTFIX = r"""
import sys
from tqdm import tqdm
bar = tqdm(total=5, desc="train", mininterval=0)
for i in range(5):
    bar.set_postfix(loss=1.0 / (i + 1), acc=0.5 + i / 10, lr=1e-4, step=i, mem="3.2GB", note="warm up")
    bar.update(1)
bar.close()
for e in tqdm(range(2), desc="epoch", position=0, mininterval=0):
    inner = tqdm(range(3), desc="batch", position=1, leave=False, mininterval=0)
    for i in inner:
        inner.set_postfix(loss=10 * e + i)
"""


def tqdm_output(script: str) -> bytes:
    """What tqdm writes into a pipe (its stderr), as a task's output holds it."""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=True)
    return out.stderr


def test_tqdm_postfix_as_written_into_a_pipe() -> None:
    scanner = MetricScanner()
    data = tqdm_output(TQDM_POSTFIX)
    first_bar = data[: data.index(b"epoch")]
    values = scanner.feed(first_bar) + scanner.close()
    got = dict(values)
    assert got["loss"] == 0.2 and got["acc"] == 0.9
    assert got["lr"] == 0.0001
    assert got["step"] == 4 and isinstance(got["step"], int)  # ints stay ints
    assert got["mem"] == 3.2  # a number with a unit: the number
    assert "note" not in got  # text is not a metric


def test_nested_bars_report_the_inner_postfix() -> None:
    scanner = MetricScanner()
    data = tqdm_output(TQDM_POSTFIX)
    nested = data[data.index(b"epoch") :]
    seen: list[tuple[str, int | float]] = []
    for i in range(0, len(nested), 37):  # in arbitrary pieces, as a pipe delivers it
        seen += scanner.feed(nested[i : i + 37])
    seen += scanner.close()
    assert ("loss", 12) in seen and all(name == "loss" for name, _ in seen)


def test_one_postfix_line() -> None:
    line = "train: 42%|####      | 42/100 [00:01<00:02, 30.1it/s, loss=0.213, acc=0.91]"
    assert parse_postfix(line) == [("loss", 0.213), ("acc", 0.91)]
    assert parse_postfix("loss=0.2]") == []  # not a bar
    assert parse_postfix("train: 42%|####      | 42/100 [00:01<00:02, 30.1it/s]") == []


def test_numbers() -> None:
    assert parse_number("42") == 42 and isinstance(parse_number("42"), int)
    assert parse_number("1.5e-4") == 1.5e-4
    assert parse_number("12%") == 12
    assert parse_number("nan") is None and parse_number("inf") is None and parse_number("abc") is None


def test_metric_blocks() -> None:
    scanner = MetricScanner()
    text = (
        b"Epoch 1 done\n***** train metrics *****\n  epoch                    =        3.0\n"
        b"  train_loss               =     0.6432\n  train_runtime            = 0:01:02.34\n"
        b"  train_samples            =       1000\n\nafter = 1\n"
    )
    assert scanner.feed(text) == [("epoch", 3.0), ("train_loss", 0.6432), ("train_samples", 1000), ("after", 1)]


def test_marker_lines() -> None:
    assert parse_marker('DTASK_METRIC {"loss": 0.2, "n": 3, "val": {"acc": 0.9}, "ok": true, "s": "x"}') == [
        ("loss", 0.2),
        ("n", 3),
        ("val/acc", 0.9),
    ]
    assert parse_marker("DTASK_METRIC not json") == []
    scanner = MetricScanner()
    assert scanner.feed(b'log line\nDTASK_METRIC {"loss": 0.5}\n') == [("loss", 0.5)]
    assert scanner.feed(b'DTASK_METRIC {"loss": 0.4}') == []  # not complete yet
    assert scanner.close() == [("loss", 0.4)]


def test_json_lines() -> None:
    assert parse_json_object('{"loss": 0.25, "step": 7}') == [("loss", 0.25), ("step", 7)]
    assert parse_json_object("[1, 2]") == [] and parse_json_object("{") == []
    assert parse_json_object('{"x": 1e999}') == []  # inf is not a metric


def test_series_downsamples_and_keeps_first_and_last() -> None:
    s = MetricSeries(bound=10)
    s.add(MetricPoint("loss", float(i), i) for i in range(1000))
    kept = s.series("loss")
    assert 2 <= len(kept) <= 10
    assert kept[0].value == 0 and kept[-1].value == 999
    assert [p.at for p in kept] == sorted(p.at for p in kept)


def test_series_bounds_the_number_of_metrics() -> None:
    s = MetricSeries(bound=4, max_metrics=2)
    s.add([MetricPoint("a", 1, 1), MetricPoint("b", 1, 1), MetricPoint("c", 1, 1)])
    assert s.names() == ["a", "b"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_no_bytes_crash_the_scanner(chunks: list[bytes]) -> None:
    scanner = MetricScanner()
    for c in chunks:
        for name, value in scanner.feed(c):
            assert isinstance(name, str) and isinstance(value, (int, float)) and not isinstance(value, bool)
    scanner.close()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_no_text_crashes_a_line_parser(line: str) -> None:
    parse_postfix(line)
    parse_marker(line)
    parse_marker("DTASK_METRIC " + line)
    parse_json_object(line)
    parse_number(line)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=2, max_value=50),
    st.lists(st.tuples(st.sampled_from("abc"), st.integers() | st.floats(allow_nan=False)), min_size=1, max_size=400),
)
def test_the_series_stays_within_its_bound_and_keeps_first_and_last(
    bound: int, values: list[tuple[str, int | float]]
) -> None:
    s = MetricSeries(bound=bound)
    points = [MetricPoint(name, float(i), v) for i, (name, v) in enumerate(values)]
    for p in points:
        s.add([p])
    for name in {p.name for p in points}:
        mine = [p for p in points if p.name == name]
        kept = s.series(name)
        assert len(kept) <= bound
        assert kept[0] == mine[0] and kept[-1] == mine[-1]
