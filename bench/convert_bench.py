"""Conversion benchmark: microseconds per Watch task event to and from protobuf, with and without a result.

Run from the repository root: .venv/bin/python -m bench.convert_bench [--n 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from dtask_common import convert
from dtask_common import events as ev
from dtask_common.models import Attempt, Task, TaskSpec, TaskState


def per_call(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return 1e6 * (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20000)
    args = ap.parse_args()
    result = {"loss": 0.25, "acc": 0.9, "step": 100, "name": "run-7", "nested": {"a": [1, "b", None, True]}}
    for label, res in (("no result", None), ("with result", result)):
        task = Task(
            "7",
            TaskSpec(name="t", argv=("/bin/true",)),
            TaskState.SUCCEEDED,
            submitted_at=1.5,
            attempts=[
                Attempt(
                    "7",
                    1,
                    "r1",
                    dispatched_at=2.0,
                    finished_at=3.0,
                    state=TaskState.SUCCEEDED,
                    exit_code=0,
                    result=res,
                    duration_s=1.0,
                )
            ],
            result=res,
        )
        event = ev.WatchEvent(9, 4.0, ev.TaskEvent(ev.TaskEventKind.FINISHED, task))
        msg = convert.event_to_pb(event)
        to = per_call(lambda event=event: convert.event_to_pb(event), args.n)
        back = per_call(lambda msg=msg: convert.event_from_pb(msg), args.n)
        print(f"task event, {label:11}: to protobuf {to:6.1f} us, from protobuf {back:6.1f} us")
    print(
        f"result_to_pb {per_call(lambda: convert.result_to_pb(result), args.n):6.1f} us, "
        f"result_from_pb {per_call(lambda: convert.result_from_pb(msg.task.task, 'result'), args.n):6.1f} us"
    )


if __name__ == "__main__":
    main()
