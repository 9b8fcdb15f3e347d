"""Scheduler benchmark (issue 6).

    .venv/bin/python bench/bench_scheduler.py [N]           # default 10,000
    .venv/bin/python bench/bench_scheduler.py --screen [N]  # only the Schedules screen's refresh (3.)

1. N scheduled mutations due at the same instant: time until all have run, and the lag between
   a job's scheduled time and the start of its (last) attempt, p50/p99; against a bare loop
   that calls the same mutation N times through the function runner: the ratio.
2. The same with N/20 scheduled actions (lag measured at the action's start).
3. The Schedules screen's job table with N jobs: the refresh time per update, end to end (diff +
   DataTable update + repaint; median of 5, and the worst), with the table at its height in the
   screen and filling the terminal: initial load, an update with nothing changed, 1% changed,
   1% new, every job changed, the countdown tick; and the time to fetch N jobs over HTTP (what polling costs).
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from console.emulator import scheduler as sched  # noqa: E402
from console.emulator.identity import Identity  # noqa: E402
from console.emulator.server import start_emulator  # noqa: E402

BATCH = 1000
REPEATS = 5  # screen updates timed per case (the median is reported)
BARE_SAMPLE = 1000  # the bare loop is timed on this many calls and scaled to N (keeps the run < 60 s)


def percentile(data: list[float], fraction: float) -> float:
    ordered = sorted(data)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def schedule_all(em, n: int, kind: str) -> float:
    """Schedule n jobs due at one instant (a little after the scheduling is done)."""
    runner = em.deployment.runner
    at = time.time() * 1000 + 2000 + n * 0.8
    for first in range(0, n, BATCH):
        outcome = runner.run("work:scheduleBatch", {"first": float(first), "count": float(min(BATCH, n - first)),
                                                    "at": at, "kind": kind}, identity=Identity.admin())
        assert outcome.ok, outcome.error_message
    assert time.time() * 1000 < at, "scheduling took longer than the lead time"
    return at


def wait_idle(em, done) -> float:
    """Poll (20 ms) until `done()` and the executor has nothing in flight; returns the time."""
    executor = em.deployment.extras["scheduler_executor"]
    while not (done() and not executor._in_flight):
        time.sleep(0.02)
    return time.time() * 1000


def bare_loop(em, path: str, n: int) -> float:
    """Seconds for n direct calls through the runner (timed on at most BARE_SAMPLE calls, scaled)."""
    runner = em.deployment.runner
    calls = min(n, BARE_SAMPLE)
    started = time.perf_counter()
    for i in range(calls):
        outcome = runner.run(path, {"n": float(10**7 + i)}, identity=Identity.admin(), caller="test")
        assert outcome.ok, outcome.error_message
    return (time.perf_counter() - started) * n / calls


def bench_mutations(em, n: int) -> dict:
    db = em.deployment.db
    at = schedule_all(em, n, "mutation")
    finished = wait_idle(em, lambda: db.read(lambda tx: tx.count("done")) >= n)
    docs = db.read(lambda tx: tx.collect({"source": {"type": "FullTableScan", "tableName": "done", "order": "asc"},
                                          "operators": []}))
    lags = [doc["startedAt"] - at for doc in docs]
    total = (finished - at) / 1000
    bare = bare_loop(em, "work:record", n)
    return {"n": n, "total_s": total, "lag_p50_ms": percentile(lags, 0.5), "lag_p99_ms": percentile(lags, 0.99),
            "bare_s": bare, "ratio": total / bare, "per_job_ms": total / n * 1000}


def bench_actions(em, n: int) -> dict:
    from scheduler_bench_app import work

    work.STARTS.clear()
    at = schedule_all(em, n, "action")
    service = em.deployment.extras["scheduler"]
    finished = wait_idle(em, lambda: len(work.STARTS) >= n and not service.due_jobs(time.time() * 1000 + 10**9, 1, set())[0])
    lags = [start - at for _, start in work.STARTS]
    bare = bare_loop(em, "work:ping", n)
    total = (finished - at) / 1000
    return {"n": n, "total_s": total, "lag_p50_ms": percentile(lags, 0.5), "lag_p99_ms": percentile(lags, 0.99),
            "bare_s": bare, "ratio": total / bare, "per_job_ms": total / n * 1000}


def fake_jobs(n: int, now_ms: float) -> list[dict]:
    kinds = ("success", "success", "failed", "pending", "canceled")
    jobs = []
    for i in reversed(range(n)):  # newest first
        kind = kinds[i % len(kinds)]
        job = {"_id": f"job{i:028d}", "_creationTime": now_ms - (n - i) * 10.0, "name": f"mod{i % 7}.js:fn{i % 3}",
               "args": [{"n": float(i), "email": f"user{i}@example.com"}], "scheduledTime": now_ms - (n - i) * 10.0 + 5,
               "state": {"kind": kind}}
        if kind == "failed":
            job["state"]["error"] = f"Uncaught Error: job {i} broke\n    at fn (../mod.py:3)"
        if kind == "pending":
            job["scheduledTime"] = now_ms + i * 1000.0
        else:
            job["completedTime"] = job["scheduledTime"] + 12.0
        jobs.append(job)
    return jobs


# The rows the Schedules screen leaves around its table at 160x45: status bar, tabs, jobs bar (7),
# the job detail pane (13), the footer (1); the table shows 23 jobs.
SCREEN_CHROME = (7, 13, 1)


async def bench_table(n: int, *, full_height: bool = False) -> dict:
    """`full_height`: the table fills the whole 160x45 terminal (44 rows shown, the worst case);
    else it gets the height it has in the Schedules screen."""
    from textual.app import App
    from textual.widgets import Static

    from screens.widgets.job_table import JobTable

    class TableApp(App):
        def compose(self):
            above, below, footer = (0, 0, 0) if full_height else SCREEN_CHROME
            yield Static("", classes="chrome").set_styles(f"height: {above};")
            yield JobTable(id="jobs")
            yield Static("", classes="chrome").set_styles(f"height: {below + footer};")

    app = TableApp()
    results = {}
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(JobTable)
        now = time.time() * 1000
        jobs = fake_jobs(n, now)

        async def once(docs: list[dict]) -> dict:
            """End to end: the diff and DataTable calls, the messages they post, then the repaint
            (what the app's refresh timer does), without Pilot.pause()'s idle-detection sleeps."""
            await pilot.pause()  # start from a settled screen
            started = time.perf_counter()
            stats = table.apply(docs)
            applied = time.perf_counter()
            await pilot._wait_for_screen()
            app.screen._on_timer_update()  # the compositor repaints the dirty regions now
            ended = time.perf_counter()
            return {"apply_ms": (applied - started) * 1000, "paint_ms": (ended - applied) * 1000,
                    "total_ms": (ended - started) * 1000,
                    "added": stats.added, "updated": stats.updated, "removed": stats.removed}

        async def timed(label: str, make_docs, base: list[dict] | None) -> None:
            """The median of REPEATS updates from `base` to `make_docs(repeat)` (the machine is shared:
            one run is noise). Each repeat's changes show different text (times a second apart), so
            no repeat finds its cells already rendered by the one before."""
            runs = []
            for repeat in range(REPEATS if base is not None else 1):
                if base is not None:
                    table.apply(base)
                runs.append(await once(make_docs(repeat)))
            runs.sort(key=lambda run: run["total_ms"])
            results[label] = {**runs[len(runs) // 2], "max_ms": runs[-1]["total_ms"]}

        def changed(repeat: int, share: int) -> list[dict]:
            docs = [dict(job) for job in jobs]
            for job in docs[: n // share]:
                job["state"], job["completedTime"] = {"kind": "canceled"}, now + 1000.0 * (repeat + 1)
            return docs

        def newer(repeat: int) -> list[dict]:
            """n/100 distinct new jobs (names, times) on top, so every row pushed down looks different."""
            fresh = fake_jobs(n // 100, now - 60_000)
            return [{**job, "_id": f"new{repeat}_{i:026d}", "_creationTime": now + n - i,
                     "scheduledTime": now - 50_000 - i * 7_000.0 - repeat * 1000.0,
                     "completedTime": now - 40_000 - i * 3_000.0, "state": {"kind": "success"}}
                    for i, job in enumerate(fresh)] + jobs  # newest first, as tableData returns them

        await timed("initial load", lambda repeat: jobs, None)
        await timed("no change", lambda repeat: [dict(job) for job in jobs], jobs)
        await timed("1% changed", lambda repeat: changed(repeat, 100), jobs)
        await timed("1% new", newer, jobs)
        await timed("all changed", lambda repeat: changed(repeat, 1), jobs)
        table.apply(jobs)
        ticked = table.tick()
        results["countdown tick"] = {"apply_ms": 0.0, "tick_ms": 0.0, "cells": ticked}
        started = time.perf_counter()
        ticked = table.tick()
        results["countdown tick"]["tick_ms"] = (time.perf_counter() - started) * 1000
    return results


async def fetch_time(em, num_items: int) -> tuple[float, int]:
    from console.client import DeploymentClient
    from console.connection import Connection

    connection = Connection.create(em.url, admin_key=em.admin_key, kind="emulator")
    async with DeploymentClient(connection) as client:
        await client.scheduled_functions(num_items=10)
        started = time.perf_counter()
        page = await client.scheduled_functions(num_items=num_items)
        elapsed = time.perf_counter() - started
    return elapsed * 1000, len(page.items)


def print_table(n: int) -> None:
    for full_height in (False, True):
        print_table_case(n, full_height)


def print_table_case(n: int, full_height: bool) -> None:
    table = asyncio.run(bench_table(n, full_height=full_height))
    shown = "full-height table, 44 rows shown (worst case)" if full_height else "as in the Schedules screen at 160x45"
    print(f"\nSchedules screen job table with {n:,} jobs, {shown} (goal <= 100 ms per update):")
    for label, figures in table.items():
        if "tick_ms" in figures:
            print(f"  {label:<15} {figures['tick_ms']:6.1f} ms ({figures['cells']} cells changed on the first tick)")
        else:
            print(f"  {label:<15} {figures['total_ms']:6.1f} ms end to end (diff + table {figures['apply_ms']:5.1f} ms, "
                  f"repaint {figures['paint_ms']:5.1f} ms; worst {figures['max_ms']:6.1f} ms; "
                  f"+{figures['added']} ~{figures['updated']} -{figures['removed']})")


def main() -> None:
    arguments = [arg for arg in sys.argv[1:] if arg != "--screen"]
    n = int(arguments[0]) if arguments else 10_000
    if "--screen" in sys.argv:
        print_table(n)
        return
    print(f"Scheduler benchmark, N = {n:,} (parallelism {sched.PARALLELISM})")
    with start_emulator(app="scheduler_bench_app") as em:
        mutations = bench_mutations(em, n)
        print(f"\n{n:,} mutations due at once: all run in {mutations['total_s']:.2f} s "
              f"({mutations['per_job_ms']:.2f} ms/job); lag scheduled->start p50 {mutations['lag_p50_ms']:.0f} ms, "
              f"p99 {mutations['lag_p99_ms']:.0f} ms")
        print(f"  bare loop calling work:record directly (scaled to {n:,}): {mutations['bare_s']:.2f} s "
              f"-> ratio {mutations['ratio']:.2f}x")
        actions = bench_actions(em, max(1, n // 20))
        print(f"\n{actions['n']:,} actions due at once: all run in {actions['total_s']:.2f} s "
              f"({actions['per_job_ms']:.2f} ms/job); lag p50 {actions['lag_p50_ms']:.0f} ms, p99 {actions['lag_p99_ms']:.0f} ms")
        print(f"  bare loop: {actions['bare_s']:.2f} s -> ratio {actions['ratio']:.2f}x")
        for size in (1_000, 10_000):
            fetch_ms, fetched = asyncio.run(fetch_time(em, size))
            print(f"\nFetching the newest {fetched:,} jobs over HTTP (_system/cli/tableData): {fetch_ms:.0f} ms", end="")
        print()
    print_table(n)


if __name__ == "__main__":
    main()
