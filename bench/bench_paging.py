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
import statistics
import subprocess
import sys
import tempfile
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = 100
JUMP = 10_000  # the system UDFs' maximumRowsRead
REPEATS = 15


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


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
        times, count = [], 0
        for _ in range(REPEATS):
            started = time.perf_counter()
            count = len(self.page(cursor, PAGE)["page"])
            times.append(time.perf_counter() - started)
        return min(times), count  # the best of REPEATS: stable on a shared, loaded machine

    def advance(self, cursor, documents: int):
        """The cursor `documents` further on, moving in big pages."""
        while documents > 0:
            result = self.page(cursor, min(JUMP, documents))
            documents -= len(result["page"])
            cursor = result["continueCursor"]
            if result["isDone"]:
                break
        return cursor

    def walk(self) -> list[tuple[object, int, int]]:
        """(cursor, documents before it, documents in the big page from it) over the whole range."""
        marks, cursor, seen = [], None, 0
        while True:
            result = self.page(cursor, JUMP)
            marks.append((cursor, seen, len(result["page"])))
            seen += len(result["page"])
            cursor = result["continueCursor"]
            if result["isDone"]:
                return marks


def measure(pager: Pager) -> tuple[dict, int]:
    marks = pager.walk()
    total = marks[-1][1] + marks[-1][2]
    first, n_first = pager.timed_page(None)
    middle_mark = min(marks, key=lambda mark: abs(mark[1] - total // 2))
    middle, n_middle = pager.timed_page(middle_mark[0])
    last_start, _, last_len = marks[-1] if marks[-1][2] >= PAGE or len(marks) == 1 else marks[-2]
    last_cursor = pager.advance(last_start, last_len - PAGE) if last_len > PAGE else last_start
    last, n_last = pager.timed_page(last_cursor)
    assert n_first == n_middle == n_last == PAGE, (n_first, n_middle, n_last)
    return {"first": first, "middle": middle, "last": last}, total


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
        before = rss_mb(process.pid)
        client = httpx.Client(base_url=url, headers={"Authorization": f"Convex {key}"}, timeout=600)
        size = client.post("/api/query", json={"path": "_system/cli/tableSize", "args": {"tableName": "posts"}, "format": "json"}).json()["value"]
        total = int(size)
        print(f"{total:,} posts in {data_dir} (start-up incl. any seeding: {startup:.1f} s), emulator RSS {before:.0f} MB")
        table_data = Pager(client, "_system/cli/tableData", {"table": "posts", "order": "asc"})
        times, walked = measure(table_data)
        report(f"_system/cli/tableData ({walked:,} docs)", times)
        index_filter = {"clauses": [], "order": "asc", "index": {"name": "by_published", "clauses": [{"type": "indexEq", "enabled": True, "value": True}]}}
        by_index = Pager(client, "_system/frontend/paginatedTableDocuments", {"table": "posts", "filters": encode_filters(index_filter)})
        times, walked = measure(by_index)
        report(f"by_published index ({walked:,} docs)", times)
        after = rss_mb(process.pid)
        print(f"emulator RSS before {before:.0f} MB, after {after:.0f} MB ({after - before:+.0f} MB)")
    finally:
        process.terminate()
        process.wait(timeout=30)


if __name__ == "__main__":
    main()
