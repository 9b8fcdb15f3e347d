"""Keep large buffers on the heap (glibc), so a process is in its fast state from the start.

glibc gives every allocation of 128 KiB or more its own mapping until a larger block has been
freed: only then does its "dynamic threshold" rise. Until it rises, each 256 KiB read from a
socket or a file costs 64 page faults and the zeroing of fresh pages. A fresh emulator took a
1 GiB upload to a bare endpoint with 655,000 page faults and 1.8 s of CPU, against 34 faults
and 0.5 s once any 2 MiB buffer had come and gone (bench/README.md, issue 7). Fixing both
thresholds at start gives every process the fast state at once, whatever it did before.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 8 << 20  # blocks from this size get their own mapping (glibc's own cap is 32 MiB)
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # what glibc's dynamic rule sets alongside


def keep_large_buffers_on_the_heap() -> bool:
    """Set glibc's thresholds; False where there is nothing to set (not Linux, not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    # musl's mallopt does nothing and returns 0; glibc's returns 1 on success.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
