"""Start-up: time from process start to the data screen showing rows, against a bare Textual
app showing a static 100-row table. Goal: ratio <= 3x.

    .venv/bin/python bench/bench_startup.py [--runs 7]

The driver starts an emulator (demo app, 1,000 posts) in its own process so that its start-up
is not counted, then runs, alternately, two child processes:
  bare     a bare Textual App with a DataTable of 100 static rows; exits when they are painted
  console  the console (screens.app.ConsoleApp) on the emulator; exits when the grid has rows
Each child runs headless and exits right after the first frame with rows; the driver measures
the wall time from spawning it to its exit. Medians and the console/bare ratio are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def child_bare() -> None:
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable, Footer, Header

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield Header()
            yield DataTable()
            yield Footer()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("_id", "_creationTime", "title", "author", "published")
            for number in range(100):
                table.add_row(f"id{number:05d}", "2026-01-01 00:00:00", f"Post {number}", "user", "true")
            self.call_after_refresh(self.exit)

    Bare().run(headless=True, size=(160, 45))


def child_console(url: str, admin_key: str) -> None:
    sys.path.insert(0, str(ROOT))
    from console.connection import Connection
    from screens.app import ConsoleApp
    from screens.widgets.document_grid import DocumentGrid

    class Timed(ConsoleApp):
        def on_mount(self) -> None:
            super().on_mount()
            self.set_interval(0.005, self._rows_shown)

        def _rows_shown(self) -> None:
            grids = self.screen.query(DocumentGrid)
            if grids and grids.first().row_count:
                self.call_after_refresh(self.exit)

    connection = Connection.create(url, admin_key=admin_key, kind="emulator")
    Timed(connection, "benchmark", None).run(headless=True, size=(160, 45))


def serve_emulator(ready_file: str) -> None:
    sys.path.insert(0, str(ROOT))
    from console.emulator.server import start_emulator

    emulator = start_emulator(seed=1000)
    Path(ready_file).write_text(json.dumps({"url": emulator.url, "admin_key": emulator.admin_key}))
    try:
        sys.stdin.read()  # until the driver closes our stdin
    finally:
        emulator.stop()


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - started


def driver(runs: int) -> None:
    ready = Path(f"/tmp/bench-startup-{os.getpid()}.json")
    server = subprocess.Popen([PYTHON, __file__, "--serve", str(ready)], stdin=subprocess.PIPE, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the emulator did not start")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        bare = [PYTHON, __file__, "--child", "bare"]
        console = [PYTHON, __file__, "--child", "console", info["url"], info["admin_key"]]
        timed(bare), timed(console)  # warm-up: file caches, .pyc
        bare_times, console_times = [], []
        for _ in range(runs):
            bare_times.append(timed(bare))
            console_times.append(timed(console))
    finally:
        server.stdin.close()
        server.wait(timeout=10)
        ready.unlink(missing_ok=True)
    ratios = [c / b for c, b in zip(console_times, bare_times)]
    print(f"runs: {runs} (alternating, after one warm-up each)")
    print(f"bare Textual app, static 100-row table: median {statistics.median(bare_times):.3f} s "
          f"(min {min(bare_times):.3f}, max {max(bare_times):.3f})")
    print(f"console, data screen with rows:         median {statistics.median(console_times):.3f} s "
          f"(min {min(console_times):.3f}, max {max(console_times):.3f})")
    print(f"ratio console/bare: median {statistics.median(ratios):.2f}x "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f}); goal <= 3x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--serve")
    args = parser.parse_args()
    if args.serve:
        serve_emulator(args.serve)
    elif args.child:
        if args.child[0] == "bare":
            child_bare()
        else:
            child_console(args.child[1], args.child[2])
    else:
        driver(args.runs)


if __name__ == "__main__":
    main()
