"""Progress parsers on real tqdm output written to a pipe, the original's formats, user regexes, fuzz."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from dtask_common.progress import parse_interval, parse_rate, parse_tqdm, parser_for
from hypothesis import given, settings
from hypothesis import strategies as st

TQDM_SCRIPT = r"""
import sys
from tqdm import tqdm
for _ in tqdm(range(50), desc="train", mininterval=0):
    pass
for _ in tqdm(range(7), mininterval=0):
    pass
def gen():
    yield from range(12)
for _ in tqdm(gen(), desc="stream", mininterval=0):
    pass
for _ in tqdm(range(3), desc="epoch", position=0, mininterval=0):
    for _ in tqdm(range(4), desc="batch", position=1, leave=False, mininterval=0):
        pass
for _ in tqdm(range(2500), desc="bytes", unit="B", unit_scale=True, mininterval=0):
    pass
with tqdm(total=10, desc="Epoch 1: loss", mininterval=0) as bar:
    bar.set_postfix(loss=0.25)
    bar.update(4)
"""


@pytest.fixture(scope="module")
def tqdm_output() -> bytes:
    """What tqdm really writes when its stderr is a pipe."""
    proc = subprocess.run([sys.executable, "-c", TQDM_SCRIPT], capture_output=True, timeout=60, check=True)
    assert b"\r" in proc.stderr  # carriage-return redraws even into a pipe
    return proc.stderr


def segments(data: bytes) -> list[str]:
    return [s.decode() for s in re.split(rb"[\r\n]", data) if s.strip()]


def test_every_real_tqdm_bar_parses(tqdm_output: bytes) -> None:
    parser = parser_for("tqdm")
    bars = [s for s in segments(tqdm_output) if "it/s" in s or "B/s" in s]
    assert len(bars) > 20
    for line in bars:
        assert parser.parse_line(line) is not None, line


def test_real_tqdm_values(tqdm_output: bytes) -> None:
    parsed = [p for s in segments(tqdm_output) if (p := parse_tqdm(s.replace("\x1b[A", "").strip()))]
    train = [p for p in parsed if p.label == "train"]
    assert train[0].step == 0 and train[0].total == 50 and train[0].percent == 0
    assert train[-1].step == 50 and train[-1].percent == 100 and train[-1].rate and train[-1].rate > 0
    assert train[-1].eta_s == 0 and train[-1].elapsed_s is not None
    no_desc = [p for p in parsed if p.label == "" and p.total == 7]
    assert no_desc[-1].step == 7
    stream = [p for p in parsed if p.label == "stream"]
    assert stream[-1].step == 12 and stream[-1].total is None and stream[-1].percent is None
    assert {p.label for p in parsed} >= {"epoch", "batch"}
    bytes_bar = [p for p in parsed if p.label == "bytes"]
    assert bytes_bar[-1].step == 2500 and bytes_bar[-1].total == 2500
    loss = [p for p in parsed if p.label == "Epoch 1: loss"]
    assert loss[-1].step == 4 and loss[-1].total == 10 and loss[-1].percent == pytest.approx(40)


def test_feed_returns_latest_in_any_chunking(tqdm_output: bytes) -> None:
    whole = parser_for("auto").feed(tqdm_output)
    assert whole is not None and whole.label == "Epoch 1: loss" and whole.step == 4
    for size in (1, 7, 100, 4096):
        parser, last = parser_for("auto"), None
        for i in range(0, len(tqdm_output), size):
            p = parser.feed(tqdm_output[i : i + size])
            last = p or last
        assert last is not None and (last.label, last.step, last.total) == ("Epoch 1: loss", 4, 10), size


def test_eta_under_a_second_comes_from_the_rate() -> None:
    p = parser_for("tqdm").feed(b"\rEpoch 3:  72%|#######2  | 36/50 [00:01<00:00, 20.00it/s]")
    assert p is not None and p.eta_s == pytest.approx(0.7)
    p = parser_for("tqdm").feed(b"\rEpoch 3: 100%|##########| 50/50 [00:02<00:00, 20.00it/s]")
    assert p is not None and p.eta_s == 0


def test_unterminated_redraw_is_seen_at_once() -> None:
    parser = parser_for("auto")
    p = parser.feed(b"\rtrain:  45%|####5     | 45/100 [00:12<00:15,  3.60it/s]")
    assert p is not None and (p.step, p.total, p.percent) == (45, 100, 45.0)
    assert p.elapsed_s == 12 and p.eta_s == 15 and p.rate == pytest.approx(3.6)
    # A half-written fraction line is not trusted until its newline arrives.
    assert parser.feed(b"\nval: 3 / 1") is None
    p = parser.feed(b"0\n")
    assert p is not None and (p.label, p.step, p.total) == ("val", 3, 10)


def test_original_formats() -> None:
    p = parser_for("auto").parse_line("train: 45%|███       | 45/100 [00:12<00:15, 3.60it/s]")
    assert p is not None and (p.label, p.step, p.total) == ("train", 45, 100)
    p = parser_for("fraction").parse_line("eval: 7 / 20")
    assert p is not None and (p.label, p.step, p.total, p.percent) == ("eval", 7, 20, 35.0)
    assert parser_for("tqdm").parse_line("eval: 7 / 20") is None
    assert parser_for("fraction").parse_line("train: 45%|███ | 45/100 [00:12<00:15, 3.60it/s]") is None


def test_rates_and_intervals() -> None:
    assert parse_rate("3.60it/s") == pytest.approx(3.6)
    assert parse_rate("2.00s/it") == pytest.approx(0.5)
    assert parse_rate("7.42MB/s") == pytest.approx(7.42e6)
    assert parse_rate("?it/s") is None
    assert parse_interval("01:02") == 62
    assert parse_interval("1:00:05") == 3605
    assert parse_interval("2d 01:00:00") == 2 * 86400 + 3600
    assert parse_interval("?") is None


def test_regex_parser_named_groups() -> None:
    parser = parser_for("regex", r"step (?P<step>\d+) of (?P<total>\d+) \((?P<label>\w+)\)")
    p = parser.feed(b"noise\nstep 30 of 120 (warmup)\nmore noise\n")
    assert p is not None and (p.label, p.step, p.total, p.percent) == ("warmup", 30, 120, 25.0)
    p = parser_for("regex", r"done (?P<percent>[\d.]+)%").feed(b"done 12.5%\n")
    assert p is not None and p.percent == 12.5 and p.total is None
    with pytest.raises(ValueError):
        parser_for("regex", "")
    with pytest.raises(ValueError):
        parser_for("bogus")
    with pytest.raises(ValueError, match="regular expression"):
        parser_for("regex", "(?P<step>")


def test_parser_for_a_spec() -> None:
    from dtask_common.models import TaskSpec

    spec = TaskSpec(shell="x", progress="regex", progress_pattern=r"it (?P<step>\d+)")
    p = parser_for(spec).feed(b"it 5\n")
    assert p is not None and p.step == 5
    assert parser_for(TaskSpec(shell="x", progress="none")).feed(b"a: 1 / 2\n") is None


def test_none_and_noise() -> None:
    assert parser_for("none").feed(b"train: 1 / 2\n") is None
    auto = parser_for("auto")
    assert auto.feed(b"loss = 0.3\nhello world\n12 [3]\n") is None
    assert auto.feed(b"a: b / c\n") is None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from(["auto", "tqdm", "fraction", "none"]))
def test_no_bytes_crash_a_parser(chunks: list[bytes], kind: str) -> None:
    parser = parser_for(kind)
    for c in chunks:
        parser.feed(c)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_no_text_crashes_a_parser(text: str) -> None:
    for kind in ("auto", "tqdm", "fraction"):
        parser_for(kind).parse_line(text)
    parser_for("regex", r"(?P<step>\d+)/(?P<total>\d+)").parse_line(text)
    parser_for("auto").feed(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 10**9),
    st.integers(1, 10**9),
    st.text(alphabet=st.characters(blacklist_characters="\r\n\x1b"), max_size=30),
)
def test_fraction_roundtrip(step: int, total: int, label: str) -> None:
    label = label.strip()
    p = parser_for("fraction").parse_line(f"{label}: {step} / {total}")
    assert p is not None and p.step == step and p.total == total


NESTED_EPOCHS = r"""
import sys, time
from tqdm import tqdm
for e in tqdm(range(4), desc="epoch", position=0, mininterval=0):
    for _ in tqdm(range(5), desc="train", position=1, leave=False, mininterval=0):
        pass
"""

EPOCH_LINES = r"""
import sys
from tqdm import tqdm
for e in range(1, 4):
    print(f"Epoch {e}/3", file=sys.stderr, flush=True)
    for _ in tqdm(range(5), desc="train", mininterval=0):
        pass
"""


def _feed_all(data: bytes, size: int) -> list[object]:
    parser, seen = parser_for("auto"), []
    for i in range(0, len(data), size):
        p = parser.feed(data[i : i + size])
        if p is not None:
            seen.append(p)
    return seen


@pytest.mark.parametrize("size", [1, 50, 4096, 1 << 20])
def test_an_outer_tqdm_bar_gives_the_epoch(size: int) -> None:
    data = subprocess.run([sys.executable, "-c", NESTED_EPOCHS], capture_output=True, timeout=60).stderr
    seen = [p for p in _feed_all(data, size) if p.label == "train"]  # type: ignore[attr-defined]
    assert seen, "the inner bar was never reported"
    epochs = [(p.epoch, p.epochs) for p in seen]  # type: ignore[attr-defined]
    assert epochs[-1] == (4, 4) and all(n == 4 for _, n in epochs)
    assert [k for k, _ in epochs] == sorted(k for k, _ in epochs)  # never backwards
    last = seen[-1]
    assert last.overall == pytest.approx((3 + last.fraction) / 4)  # type: ignore[attr-defined]


@pytest.mark.parametrize("size", [1, 64, 1 << 20])
def test_epoch_lines_give_the_epoch(size: int) -> None:
    data = subprocess.run([sys.executable, "-c", EPOCH_LINES], capture_output=True, timeout=60).stderr
    seen = _feed_all(data, size)
    assert seen and seen[-1].label == "train"  # type: ignore[attr-defined]
    assert (seen[-1].epoch, seen[-1].epochs) == (3, 3)  # type: ignore[attr-defined]
    assert seen[-1].overall == 1.0  # type: ignore[attr-defined]


def test_a_description_with_epoch_k_of_n() -> None:
    p = parser_for("auto").feed(b"\rEpoch 2/5:  40%|####      | 4/10 [00:01<00:01,  3.60it/s]")
    assert p is not None and (p.epoch, p.epochs, p.step) == (2, 5, 4)
    assert p.overall == pytest.approx((1 + 0.4) / 5)


def test_no_epoch_without_epochs_in_the_output() -> None:
    p = parser_for("auto").feed(b"\rEpoch 3:  72%|#######2  | 36/50 [00:01<00:00, 20.00it/s]")
    assert p is not None and p.epoch is None and p.overall is None
