"""The peer benchmark's three workloads on Ray (run by the bench-only environment's Python, never dtask's).

Usage: .bench-venv/bin/python bench/peers_ray.py '{"tasks": 2000, "latency": 300, "printer": [...], "mb": 50}'
Prints one JSON line: {"tasks_s": ..., "latency_ms": [...], "mb_s": ..., "fetched": bytes}. Imports only the
standard library and ray, so it runs where dtask is not installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any


def main() -> None:
    import ray

    job: dict[str, Any] = json.loads(sys.argv[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")

    @ray.remote(num_cpus=1)
    def true() -> int:
        return subprocess.run(["/bin/true"]).returncode

    @ray.remote(num_cpus=1)
    def printer(argv: list[str]) -> bytes:
        return subprocess.run(argv, stdout=subprocess.PIPE, check=True).stdout

    ray.get([true.remote() for _ in range(20)])  # workers started
    t0 = time.perf_counter()
    codes = ray.get([true.remote() for _ in range(job["tasks"])])
    took = time.perf_counter() - t0
    assert not any(codes), "a /bin/true task failed"
    lat = []
    for _ in range(job["latency"]):
        t = time.perf_counter()
        assert ray.get(true.remote()) == 0
        lat.append((time.perf_counter() - t) * 1000)
    t0 = time.perf_counter()
    out = ray.get(printer.remote(job["printer"]))
    big = time.perf_counter() - t0
    ray.shutdown()
    print(json.dumps({"tasks_s": job["tasks"] / took, "latency_ms": lat, "mb_s": job["mb"] / big, "fetched": len(out)}))


if __name__ == "__main__":
    main()
