"""Scheduler benchmark (issue 6).

    .venv/bin/python bench/bench_scheduler.py [N]        # default 10,000

1. N scheduled mutations due at the same instant: time until all have run, and the lag between
   a job's scheduled time and the start of its (last) attempt, p50/p99; against a bare loop
   that calls the same mutation N times through the function runner: the ratio.
2. The same with N/20 scheduled actions (lag measured at the action's start).
3. The Schedules screen's job table with N jobs: the refresh time per update, end to end (diff +
   DataTable update + repaint): initial load, an update with nothing changed, 1% changed, 1% new, every job changed, the
   countdown tick; and the time to fetch N jobs over HTTP (what polling costs).
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


async def bench_table(n: int) -> dict:
    from textual.app import App

    from screens.widgets.job_table import JobTable

    class TableApp(App):
        def compose(self):
            yield JobTable(id="jobs")

    app = TableApp()
    results = {}
    async with app.run_test(size=(160, 45)) as pilot:
        table = app.query_one(JobTable)
        now = time.time() * 1000
        jobs = fake_jobs(n, now)

        async def timed(label: str, docs: list[dict]) -> None:
            """End to end: the diff and DataTable calls, the messages they post, then the repaint
            (what the app's refresh timer does), without Pilot.pause()'s idle-detection sleeps."""
            await pilot.pause()  # start from a settled screen
            started = time.perf_counter()
            stats = table.apply(docs)
            applied = time.perf_counter()
            await pilot._wait_for_screen()
            app.screen._on_timer_update()  # the compositor repaints the dirty regions now
            ended = time.perf_counter()
            results[label] = {"apply_ms": (applied - started) * 1000, "paint_ms": (ended - applied) * 1000,
                              "total_ms": (ended - started) * 1000,
                              "added": stats.added, "updated": stats.updated, "removed": stats.removed}

        await timed("initial load", jobs)
        await timed("no change", [dict(job) for job in jobs])
        changed = [dict(job) for job in jobs]
        for job in changed[: n // 100]:
            job["state"], job["completedTime"] = {"kind": "success"}, now + 50
        await timed("1% changed", changed)
        newer = [{**jobs[0], "_id": f"new{i:028d}", "_creationTime": now + n - i} for i in range(n // 100)]
        await timed("1% new", newer + changed)  # newest first, as tableData returns them
        everything = [{**job, "state": {"kind": "canceled"}, "completedTime": now + 99} for job in newer + changed]
        await timed("all changed", everything)
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


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
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
    table = asyncio.run(bench_table(n))
    print(f"\nSchedules screen job table with {n:,} jobs (goal <= 100 ms per update):")
    for label, figures in table.items():
        if "tick_ms" in figures:
            print(f"  {label:<15} {figures['tick_ms']:8.1f} ms ({figures['cells']} cells changed on the first tick)")
        else:
            print(f"  {label:<15} {figures['total_ms']:6.1f} ms end to end (diff + table {figures['apply_ms']:5.1f} ms, "
                  f"repaint {figures['paint_ms']:5.1f} ms; +{figures['added']} ~{figures['updated']} -{figures['removed']})")


if __name__ == "__main__":
    main()
