"""dtask's programs keep freed output buffers for the next one: a few MiB allocated and freed in turn cost no
page faults (glibc hands them back and faults them in again by default, at several times the copy's cost)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

FAULTS = """
import resource, sys
{setup}
def rounds(n=10, live=8):
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        bufs = [b"x" * (1 << 20) for _ in range(live)]  # as output chunks and log reads in flight
        del bufs
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / n
rounds(2)
print(rounds())
"""

glibc = pytest.mark.skipif(
    not (hasattr(os, "confstr") and (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")),
    reason="the thresholds are glibc's",
)


def faults_per_round(setup: str, env: dict[str, str] | None = None) -> float:
    """Page faults per round of 8 MiB allocated and freed, in a fresh Python process after setup."""
    out = subprocess.run(
        [sys.executable, "-c", FAULTS.format(setup=setup)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
    )
    return float(out.stdout.split()[-1])


@glibc
def test_the_dtask_program_reuses_freed_mib_buffers() -> None:
    # `dtask` is the controller, the runner and the CLI: importing its entry module sets the thresholds.
    assert faults_per_round("") > 1000  # 2,048 pages per round by glibc's defaults
    assert faults_per_round("import dtask_cli") < 100


@glibc
def test_the_users_own_malloc_variables_win() -> None:
    setup = "from dtask_common.allocator import reuse_freed_memory; assert not reuse_freed_memory()"
    env = dict(os.environ, MALLOC_TRIM_THRESHOLD_=str(128 * 1024))
    assert faults_per_round(setup, env) > 1000
