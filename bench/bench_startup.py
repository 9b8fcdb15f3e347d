"""Start-up: time from process start to the data screen showing rows, against a bare Textual
app showing a static 100-row table. Goal: ratio <= 3x.

    .venv/bin/python bench/bench_startup.py [--runs 7] [--emulator] [--no-bytecode-cache]

The driver starts an emulator (demo app, 1,000 posts) in its own process so that its start-up
is not counted, then runs, in turn, child processes:
  bare      a bare Textual App with a DataTable of 100 static rows; exits when they are painted
  console   screens.app.ConsoleApp on the emulator (no command line); exits when the grid has rows
  command   `convex-console --url URL --admin-key KEY` (console.startup.main: arguments, settings,
            verification of the typed URL and key, the UI); exits when the grid has rows
With --emulator, also (fewer runs; not compared pair by pair):
  emulator-first     `convex-console --emulator` on an empty data dir (the first run: it seeds 3,000 posts)
  emulator-existing  `convex-console --emulator` on an existing data dir
Each child runs headless, notes the wall-clock time of the first frame with rows in a file and
exits; the figure is that time minus the time the driver spawned it (so the emulator's shutdown
is not counted). Medians and the ratios to the bare app are printed.

Bytecode: an installed package has compiled `.pyc` files; a checkout run with
PYTHONDONTWRITEBYTECODE=1 compiles every project module on every start (~0.1 s here). By default
the children cache bytecode in a temporary PYTHONPYCACHEPREFIX (as an install would);
--no-bytecode-cache leaves the environment as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SIZE = (160, 45)
MARK_ENV = "BENCH_STARTUP_MARK"  # the file a child writes the time of its first frame with rows to


def mark_rows_painted() -> None:
    Path(os.environ[MARK_ENV]).write_text(repr(time.time()))


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
            self.call_after_refresh(self._painted)

        def _painted(self) -> None:
            mark_rows_painted()
            self.exit()

    Bare().run(headless=True, size=SIZE)


def run_timed_ui(connection, origin: str, settings) -> int:
    """The console's UI, exiting right after the first frame that shows rows."""
    from screens.app import ConsoleApp
    from screens.widgets.document_grid import DocumentGrid

    class Timed(ConsoleApp):
        def on_mount(self) -> None:
            super().on_mount()
            self._rows_timer = self.set_interval(0.005, self._rows_shown)

        def _rows_shown(self) -> None:
            grids = self.screen.query(DocumentGrid)
            if grids and grids.first().row_count:
                self._rows_timer.stop()
                self.call_after_refresh(self._painted)

        def _painted(self) -> None:
            mark_rows_painted()
            self.exit()

    Timed(connection, origin, settings).run(headless=True, size=SIZE)
    return 0


def child_console(url: str, admin_key: str) -> None:
    from console.connection import Connection

    run_timed_ui(Connection.create(url, admin_key=admin_key, kind="emulator"), "benchmark", None)


def child_command(argv: list[str]) -> None:
    from console.startup import main

    raise SystemExit(main(argv, run_ui=run_timed_ui, preload_ui=True))


def serve_emulator(ready_file: str) -> None:
    from console.emulator.server import start_emulator

    emulator = start_emulator(seed=1000)
    Path(ready_file).write_text(json.dumps({"url": emulator.url, "admin_key": emulator.admin_key}))
    try:
        sys.stdin.read()  # until the driver closes our stdin
    finally:
        emulator.stop()


def timed(command: list[str], env: dict[str, str]) -> float:
    mark = Path(env[MARK_ENV])
    mark.unlink(missing_ok=True)
    started = time.time()
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
    return float(mark.read_text()) - started


def child_env(work: Path, bytecode_cache: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["CONVEX_CONSOLE_CONFIG_DIR"] = str(work / "config")  # never the developer's own profiles
    env[MARK_ENV] = str(work / "painted")
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def describe(name: str, times: list[float], bare: float) -> str:
    median = statistics.median(times)
    return (f"{name:<44} median {median:.3f} s (min {min(times):.3f}, max {max(times):.3f})"
            f"  = {median / bare:.2f}x the bare median")


def driver(runs: int, with_emulator: bool, bytecode_cache: bool) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = child_env(work, bytecode_cache)
    ready = work / "ready.json"
    server = subprocess.Popen([PYTHON, __file__, "--serve", str(ready)], stdin=subprocess.PIPE, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists():
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the emulator did not start")
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        me = [PYTHON, __file__, "--child"]
        commands = {
            "bare": me + ["bare"],
            "console": me + ["console", info["url"], info["admin_key"]],
            "command": me + ["command", "--url", info["url"], "--admin-key", info["admin_key"]],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for command in commands.values():
            timed(command, env)  # warm-up: file caches, bytecode
        for _ in range(runs):
            for name, command in commands.items():
                times[name].append(timed(command, env))
        if with_emulator:
            times.update(emulator_times(me + ["command", "--emulator"], env, work, max(3, runs // 2)))
    finally:
        server.stdin.close()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    bare = statistics.median(times["bare"])
    print(f"runs: {runs} of each, in turn, after one warm-up each; bytecode "
          f"{'cached (as installed)' if bytecode_cache else 'as the environment says'}")
    print(f"{'bare Textual app, static 100-row table':<44} median {bare:.3f} s "
          f"(min {min(times['bare']):.3f}, max {max(times['bare']):.3f})")
    labels = {
        "console": "ConsoleApp on a running deployment",
        "command": "convex-console --url (verify + UI)",
        "emulator-first": "convex-console --emulator, first run (seeds)",
        "emulator-existing": "convex-console --emulator, existing data",
    }
    for name, label in labels.items():
        if name in times:
            print(describe(label, times[name], bare))
    for name in ("console", "command"):
        ratios = [c / b for c, b in zip(times[name], times["bare"])]
        print(f"ratio {name}/bare pair by pair: median {statistics.median(ratios):.2f}x "
              f"(min {min(ratios):.2f}, max {max(ratios):.2f}); goal <= 3x")


def emulator_times(command: list[str], env: dict[str, str], work: Path, runs: int) -> dict[str, list[float]]:
    first, existing = [], []
    kept = work / "data-kept"
    timed(command, dict(env, CONVEX_CONSOLE_DATA_DIR=str(kept)))  # creates and seeds it; warms caches
    for number in range(runs):
        fresh = work / f"data-{number}"
        first.append(timed(command, dict(env, CONVEX_CONSOLE_DATA_DIR=str(fresh))))
        existing.append(timed(command, dict(env, CONVEX_CONSOLE_DATA_DIR=str(kept))))
    return {"emulator-first": first, "emulator-existing": existing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--emulator", action="store_true", help="also time `convex-console --emulator`")
    parser.add_argument("--no-bytecode-cache", action="store_true")
    parser.add_argument("--child", nargs=argparse.REMAINDER)
    parser.add_argument("--serve")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.serve:
        serve_emulator(args.serve)
    elif args.child:
        kind, rest = args.child[0], args.child[1:]
        if kind == "bare":
            child_bare()
        elif kind == "console":
            child_console(*rest)
        else:
            child_command(rest)
    else:
        driver(args.runs, args.emulator, not args.no_bytecode_cache)


if __name__ == "__main__":
    main()
