"""Scanner micro-benchmark: MB/s of ResultCapture, ProgressParser and MetricScanner.feed on seeded random bytes.

The floor is a single bytes.replace pass over the same data (one C-speed copy), measured in the same run.
Run from the repository root: .venv/bin/python -m bench.scan_bench [--mb 64] [--chunk 262144]
"""

from __future__ import annotations

import argparse
import random
import time

from dtask_common.metrics import MetricScanner
from dtask_common.progress import parser_for
from dtask_runner.results import ResultCapture

MB = 1 << 20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=64)
    ap.add_argument("--chunk", type=int, default=256 * 1024)
    args = ap.parse_args()
    data = random.Random(7).randbytes(args.mb * MB)
    chunks = [data[i : i + args.chunk] for i in range(0, len(data), args.chunk)]
    t0 = time.perf_counter()
    for c in chunks:
        c.replace(b"\r", b"\n")
    floor = args.mb / (time.perf_counter() - t0)
    cap = ResultCapture(marker="DTASK_RESULT:")
    t0 = time.perf_counter()
    for c in chunks:
        cap.feed(c)
    cap.close()
    results = args.mb / (time.perf_counter() - t0)
    parser = parser_for("auto")
    t0 = time.perf_counter()
    for c in chunks:
        parser.feed(c)
    progress = args.mb / (time.perf_counter() - t0)
    scanner = MetricScanner()
    t0 = time.perf_counter()
    for c in chunks:
        scanner.feed(c)
    scanner.close()
    metrics = args.mb / (time.perf_counter() - t0)
    print(f"floor (bytes.replace) {floor:8.1f} MB/s")
    print(f"results scanner       {results:8.1f} MB/s  ratio {results / floor:.3f}")
    print(f"progress parser       {progress:8.1f} MB/s  ratio {progress / floor:.3f}")
    print(f"metrics scanner       {metrics:8.1f} MB/s  ratio {metrics / floor:.3f}")


if __name__ == "__main__":
    main()
