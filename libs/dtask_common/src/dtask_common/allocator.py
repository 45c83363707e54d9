"""The C allocator's settings for dtask's programs: freed buffers of output are reused, not handed back to the
kernel and faulted in again for the next one (glibc's mallopt; elsewhere nothing changes)."""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3

# Allocations below this come from the heap, not from a mapping of their own: output chunks and log reads are
# 1 MiB, and each fresh mapping costs a page fault per 4 KiB touched (several times the copy itself).
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
# Free memory at the top of a heap is kept up to this much (glibc's default follows the mmap threshold: twice
# the largest freed mapping, so a few MiB in flight are given back and taken again at every turn).
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024
# Set by the user, glibc's own variables win (read by glibc at start; see mallopt(3)).
ENVIRONMENT = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def reuse_freed_memory() -> bool:
    """Set the thresholds for this process (not for the tasks it starts: they exec afresh); False when they are
    not set: not glibc, refused, or set by the user in the environment."""
    if not _glibc():
        return False
    if any(name in os.environ for name in ENVIRONMENT):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):  # no such name here (not glibc), or no confstr at all
        return False
