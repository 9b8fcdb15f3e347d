"""Paging a large table 100 documents at a time: first, middle and last page times, and the
emulator's memory before and after.

Two paths: `_system/cli/tableData` (the creation-time order, as `npx convex data`) and the
dashboard's `_system/frontend/paginatedTableDocuments` through the `by_published` index.
The middle and last pages are reached with the same query's cursor, advanced in big pages
(a cursor does not depend on the page size), then the 100-document page is timed there.
Goal: the three times within 1.5x of each other; memory flat.

The emulator runs as `convex-console emulator` in its own process on a data dir that is
seeded once and reused (`--data-dir`, default under /tmp).
Run: `.venv/bin/python bench/bench_paging.py [--posts 1000000]`.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = 100
JUMP = 10_000  # the system UDFs' maximumRowsRead
REPEATS = 20  # rounds; each position keeps its best time (the machine is shared)


def start_emulator(data_dir: str, posts: int) -> tuple[subprocess.Popen, str, str, float]:
    started = time.perf_counter()
    command = [sys.executable, "-c", "import sys; from console.cli import main; sys.exit(main())",
               "emulator", "--data-dir", data_dir, "--seed", str(posts), "--port", "0", "--site-port", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    info = {}
    while "Admin key" not in info:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator did not start")
        key, _, value = line.strip().partition(": ")
        if value:
            info[key.strip()] = value.strip()
    return process, info["URL"], info["Admin key"], time.perf_counter() - started


class Pager:
    def __init__(self, client: httpx.Client, path: str, args: dict):
        self.client, self.path, self.args = client, path, args

    def page(self, cursor, n: int) -> dict:
        args = dict(self.args, paginationOpts={"numItems": float(n), "cursor": cursor})
        body = self.client.post("/api/query", json={"path": self.path, "args": args, "format": "json"}).json()
        if body.get("status") != "success":
            raise RuntimeError(body)
        return body["value"]

    def timed_page(self, cursor) -> tuple[float, int]:
        started = time.perf_counter()
        count = len(self.page(cursor, PAGE)["page"])
        return time.perf_counter() - started, count

    def advance(self, cursor, documents: int):
        """The cursor `documents` further on, moving in big pages."""
        while documents > 0:
            result = self.page(cursor, min(JUMP, documents))
            documents -= len(result["page"])
            cursor = result["continueCursor"]
            if result["isDone"]:
                break
        return cursor



def measure(forward: Pager, backward: Pager, total: int) -> dict:
    """First page, a page from the middle (cursor advanced over half the range), and the
    last page (read as the first page of the same query in the opposite order). The three are
    timed in interleaved rounds, so a busy moment on the shared machine hits them alike."""
    positions = {"first": (forward, None), "middle": (forward, forward.advance(None, total // 2)), "last": (backward, None)}
    best = {name: float("inf") for name in positions}
    for _ in range(REPEATS):
        for name, (pager, cursor) in positions.items():
            elapsed, count = pager.timed_page(cursor)
            assert count == PAGE, (name, count)
            best[name] = min(best[name], elapsed)
    return best


def memory_mb(pid: int) -> dict:
    """RssAnon (the heap: what a leak grows) and RssFile (SQLite's memory-mapped file pages)."""
    found = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                found[key] = int(value.split()[0]) / 1024
    return found


def report(name: str, times: dict) -> None:
    spread = max(times.values()) / min(times.values())
    cells = "  ".join(f"{key} {value * 1000:7.1f} ms" for key, value in times.items())
    print(f"{name:<44} {cells}   max/min {spread:.2f} (goal <= 1.5)")


def encode_filters(expression: dict) -> str:
    text = json.dumps(expression, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--data-dir", default=None)
    options = parser.parse_args()
    data_dir = options.data_dir or os.path.join(tempfile.gettempdir(), f"convex-console-bench-{options.posts}")
    process, url, key, startup = start_emulator(data_dir, options.posts)
    try:
        before = memory_mb(process.pid)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Convex {key}"}, timeout=600)
        size = client.post("/api/query", json={"path": "_system/cli/tableSize", "args": {"tableName": "posts"}, "format": "json"}).json()["value"]
        total = int(size)
        print(f"{total:,} posts in {data_dir} (start-up incl. any seeding: {startup:.1f} s)")
        print("memory at start:  " + "  ".join(f"{k} {v:.0f} MB" for k, v in before.items()))
        forward = Pager(client, "_system/cli/tableData", {"table": "posts", "order": "asc"})
        backward = Pager(client, "_system/cli/tableData", {"table": "posts", "order": "desc"})
        report(f"_system/cli/tableData ({total:,} docs)", measure(forward, backward, total))

        def by_published(order: str) -> Pager:
            index = {"name": "by_published", "clauses": [{"type": "indexEq", "enabled": True, "value": True}]}
            filters = encode_filters({"clauses": [], "order": order, "index": index})
            return Pager(client, "_system/frontend/paginatedTableDocuments", {"table": "posts", "filters": filters})

        published = total // 2  # about half the seeded posts are published; the middle is approximate
        report("paginatedTableDocuments, index by_published", measure(by_published("asc"), by_published("desc"), published))
        after = memory_mb(process.pid)
        print("memory at end:    " + "  ".join(f"{k} {v:.0f} MB" for k, v in after.items()))
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
