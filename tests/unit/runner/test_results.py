"""Result capture: metric blocks as the original printed them, result files, markers, error lines."""

from __future__ import annotations

import json

from dtask_runner.results import ResultCapture, convert_value
from hypothesis import given, settings
from hypothesis import strategies as st

HF_OUTPUT = b"""Some log line
***** train metrics *****
  epoch                    =        3.0
  train_loss               =     0.6432
  train_runtime            = 0:01:23.45
  train_samples_per_second =     12.345
  total_flos               =  1234567GF
[INFO] saving model
***** eval metrics *****
  eval_accuracy = 0.91
  eval_samples  = 500
done
"""


def capture(data: bytes, marker: str = "", size: int = 0) -> ResultCapture:
    cap = ResultCapture(marker)
    if size:
        for i in range(0, len(data), size):
            cap.feed(data[i : i + size])
    else:
        cap.feed(data)
    cap.close()
    return cap


def test_metric_blocks_become_a_flat_map() -> None:
    expected = {
        "epoch": 3.0,
        "train_loss": 0.6432,
        "train_runtime": "0:01:23.45",
        "train_samples_per_second": 12.345,
        "total_flos": "1234567GF",
        "eval_accuracy": 0.91,
        "eval_samples": 500,
    }
    for size in (0, 1, 5, 64):
        cap = capture(HF_OUTPUT, size=size)
        assert cap.result() == (expected, ""), size
    assert capture(b"loss = 3\nno header above\n").result() == (None, "")


def test_result_file_wins_over_metrics_and_bad_file_falls_back() -> None:
    cap = capture(HF_OUTPUT)
    assert cap.result(json.dumps({"acc": 1}).encode()) == ({"acc": 1}, "")
    result, problem = cap.result(b"[1, 2]")
    assert result and result["eval_samples"] == 500 and "JSON object" in problem
    assert cap.result(b"")[0] == cap.result()[0]
    result, problem = cap.result(b'{"x": "' + b"y" * (2 * 1024 * 1024) + b'"}')
    assert result == cap.result()[0] and "larger than" in problem


def test_marker_lines_carry_json() -> None:
    out = b'x\nRESULT {"f1": 0.5}\nRESULT not json\nRESULT {"f1": 0.7, "n": 3}\n'
    assert capture(out, marker="RESULT ").result() == ({"f1": 0.7, "n": 3}, "")
    assert capture(out).result() == (None, "")


def test_last_error_line_and_runtime_error() -> None:
    out = (
        b'Traceback (most recent call last):\n  File "train.py", line 3, in <module>\n'
        b"    raise RuntimeError('CUDA error: device-side assert')\n"
        b"RuntimeError: CUDA error: device-side assert\n"
    )
    cap = capture(out)
    assert cap.last_error_line == "RuntimeError: CUDA error: device-side assert"
    assert cap.runtime_error
    cap = capture(b"ok\nValueError: bad shape\r\nmore\n")
    assert cap.last_error_line == "ValueError: bad shape" and not cap.runtime_error
    cap = capture(b"torch.cuda.OutOfMemoryError: CUDA out of memory. Tried to allocate")
    assert cap.last_error_line.startswith("torch.cuda.OutOfMemoryError")
    assert capture(b"all is well\nerrors = 0 seen\n").last_error_line == ""


def test_last_line_stands_in_when_no_line_looks_like_an_error() -> None:
    out = b"python3: can't open file '/w/train.py': [Errno 2] No such file or directory\n\n"
    for size in (0, 7):
        cap = capture(out, size=size)
        assert cap.last_error_line == ""
        assert cap.error_line == "python3: can't open file '/w/train.py': [Errno 2] No such file or directory"
    cap = capture(b"ValueError: bad shape\nshutting down\n")
    assert cap.error_line == "ValueError: bad shape" and cap.last_line == "shutting down"
    assert capture(b"partial line without newline", size=5).error_line == "partial line without newline"
    assert capture(b"").error_line == ""


def test_values() -> None:
    assert convert_value("12") == 12 and convert_value("-1.5e3") == -1500.0
    assert convert_value("nan") == "nan" and convert_value("True") is True
    assert convert_value(" 0:01:02 ") == "0:01:02"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=10), st.sampled_from(["", "R:"]))
def test_no_output_crashes_the_capture(chunks: list[bytes], marker: str) -> None:
    cap = ResultCapture(marker)
    for c in chunks:
        cap.feed(c)
    cap.close()
    result, _ = cap.result(b"".join(chunks)[:50])
    assert result is None or isinstance(result, dict)
    json.dumps(result)
