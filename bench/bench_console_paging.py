"""Paging a 1,000,000-document table in the console, from the first page to the 100th:
time per page and the console's resident memory before and after (goal: flat within 20 MB).

    .venv/bin/python bench/bench_console_paging.py [--pages 100] [--data-dir DIR]

The emulator (demo app seeded with 1,000,000 posts) runs in its own process, from a data
directory that is seeded once and reused (the first run seeds it: a few minutes). The console
runs here, headless (App.run_test), so the RSS measured is the console's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_DIR = Path(os.environ.get("CONVEX_CONSOLE_BENCH_DIR", "/tmp/convex-console-bench-1m"))
POSTS = 1_000_000


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve(data_dir: str, posts: str, ready_file: str) -> None:
    from console.emulator.server import start_emulator

    if data_dir == "-":  # a fresh in-memory deployment (quick checks of this script)
        emulator = start_emulator(seed=int(posts))
    else:
        emulator = start_emulator(data_dir=data_dir, seed=int(posts))  # seeds only when empty
    Path(ready_file).write_text(json.dumps({"url": emulator.url, "admin_key": emulator.admin_key}))
    try:
        sys.stdin.read()
    finally:
        emulator.stop()


async def until(pilot, condition, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for the console")
        await pilot.pause(0.001)


async def page_through(url: str, admin_key: str, pages: int) -> None:
    from console.connection import Connection
    from screens.app import ConsoleApp

    from screens.data import PageLoaded

    app = ConsoleApp(Connection.create(url, admin_key=admin_key, kind="emulator"), "benchmark", None)
    arrived: list[float] = []

    def hook(message) -> None:  # when a page arrives from the deployment, before it is shown
        if isinstance(message, PageLoaded):
            arrived.append(time.perf_counter())

    async with app.run_test(size=(160, 45), message_hook=hook) as pilot:
        await until(pilot, lambda: getattr(app.screen, "tables", None))
        screen = app.screen
        screen.open_table("posts")
        await until(pilot, lambda: screen.table == "posts" and not screen.page_loading and screen.pager.docs
                    and screen.total is not None)
        gc.collect()
        before = rss_mb()
        times, fetch = [], []
        for number in range(1, pages):
            started = time.perf_counter()
            screen.action_next_page()
            await until(pilot, lambda: screen.pager.position == number and not screen.page_loading)
            await pilot.pause()  # the frame with the new rows
            times.append(time.perf_counter() - started)
            fetch.append(arrived[-1] - started)
        gc.collect()
        after = rss_mb()
        shown = str(screen.query_one("#page-bar").render()).split("   ")[0]
    print(f"table posts: {screen.total:,} documents; last page: {shown}")
    print(f"pages 2..{pages}: median {statistics.median(times) * 1000:.0f} ms/page, "
          f"p95 {sorted(times)[int(len(times) * 0.95) - 1] * 1000:.0f} ms, max {max(times) * 1000:.0f} ms, "
          f"total {sum(times):.1f} s")
    print(f"  of which waiting for the deployment (request to message): median "
          f"{statistics.median(fetch) * 1000:.0f} ms; rendering and the rest: median "
          f"{statistics.median([t - f for t, f in zip(times, fetch)]) * 1000:.0f} ms")
    print(f"console RSS: {before:.1f} MB after page 1, {after:.1f} MB after page {pages} "
          f"(delta {after - before:+.1f} MB; goal within 20 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100)
    parser.add_argument("--data-dir", default=str(DEFAULT_DIR), help="'-' for a fresh in-memory deployment")
    parser.add_argument("--posts", type=int, default=POSTS)
    parser.add_argument("--serve", nargs=3)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return
    ready = Path(f"/tmp/bench-paging-{os.getpid()}.json")
    server = subprocess.Popen([sys.executable, __file__, "--serve", args.data_dir, str(args.posts), str(ready)],
                              stdin=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 900
        while not ready.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the emulator did not start")
            time.sleep(0.1)
        info = json.loads(ready.read_text())
        asyncio.run(page_through(info["url"], info["admin_key"], args.pages))
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        ready.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
