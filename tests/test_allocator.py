"""console/allocator.py: large buffers come from the heap from the start (no page faults)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PROBE = textwrap.dedent("""
    import resource, sys
    from console.allocator import keep_large_buffers_on_the_heap
    tuned = keep_large_buffers_on_the_heap() if sys.argv[1] == "tuned" else None
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    b"x" * (256 * 1024)  # the first one may fault in fresh heap
    before = faults()
    for i in range(200):  # buffers a little larger each time, as a growing receive buffer's
        block = b"x" * (256 * 1024 + i * 4096)  # written, as received bytes are
        del block
    print(tuned, faults() - before)
""")


def _faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    tuned, count = out.split()
    return tuned, int(count)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's thresholds")
def test_large_buffers_stop_faulting_once_tuned():
    tuned, tuned_faults = _faults("tuned")
    if tuned != "True":
        pytest.skip("not glibc: nothing to tune")
    _, default_faults = _faults("default")
    assert default_faults > 200 * 64, "glibc no longer maps each large block: re-check console/allocator.py"
    assert tuned_faults < default_faults / 10, f"{tuned_faults} page faults tuned, {default_faults} not"
