"""Functions and logs benchmarks (issue 4).

1. Round trip of a trivial query (`counters:get`) through the console's client
   (`DeploymentClient.run_function`: encode, POST, decode, FunctionResult) against a raw httpx
   POST of the same body on the same kind of keep-alive connection. Goal: ratio <= 1.3.
2. Log stream: a load process calls a trivial query at a target rate (default 1,000 calls/s,
   as `/api/query_batch` requests of 10 over 8 keep-alive connections: each query in a batch is
   its own execution and log entry) while the console's Logs screen (headless Textual app)
   tails `stream_function_logs`. Reports rows delivered to the LogView per second and the lag
   of every row (arrival in the view - the entry's timestamp): median, p95, max. Goal: keeps
   up, lag <= 1 s. Also a paced replay of the screen's own path and the LogView's ingest rate.

The emulator runs in its own process; the load generator in another. On the 2-core machine
the three compete for CPU, so the achieved call rate is printed next to the target.

    .venv/bin/python bench/bench_functions.py [--calls 2000] [--rate 1000] [--seconds 8] [--batch 10]
        [--concurrency 8] [--stream-only]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

QUERY = ("counters:get", {"name": "bench"})


# --- child processes ------------------------------------------------------------------------


def _serve(pipe) -> None:
    from console.emulator.server import start_emulator

    emulator = start_emulator(seed=10)
    pipe.send((emulator.url, emulator.admin_key))
    pipe.recv()  # until told to stop
    emulator.stop()


def _load(url: str, key: str, rate: float, seconds: float, concurrency: int, batch: int, result) -> None:
    """Calls `counters:get` at `rate` calls/s for `seconds`. With batch > 1 each request is a
    `/api/query_batch` of `batch` queries: every query in it is its own execution (one log
    entry each), so the client's per-request cost no longer caps the call rate."""

    async def main() -> None:
        query = {"path": QUERY[0], "args": QUERY[1], "format": "convex_encoded_json"}
        path, body = ("/api/query_batch", {"queries": [query] * batch}) if batch > 1 else ("/api/query", query)
        headers = {"Authorization": f"Convex {key}", "Convex-Client": "bench-load-0.0.0"}
        total_requests = int(rate * seconds / batch)
        request_rate = rate / batch
        done = 0
        next_slot = 0
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as http:
            start = time.perf_counter()

            async def worker() -> None:
                nonlocal done, next_slot
                while next_slot < total_requests and time.perf_counter() - start < seconds:  # time-bounded
                    slot = next_slot
                    next_slot += 1
                    delay = start + slot / request_rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)  # pacing to the target rate
                    response = await http.post(path, json=body)
                    response.raise_for_status()
                    data = response.json()
                    answers = data["results"] if batch > 1 else [data]
                    assert all(answer["status"] == "success" for answer in answers), answers[:1]
                    done += len(answers)

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            result.put((done, time.perf_counter() - start))

    asyncio.run(main())


# --- 1. round trip ------------------------------------------------------------------------------


async def round_trip(url: str, key: str, calls: int, rounds: int = 5) -> dict:
    from console.client import DeploymentClient, client_header
    from console.connection import Connection

    connection = Connection.create(url, admin_key=key, kind="emulator")
    body = {"path": QUERY[0], "args": QUERY[1], "format": "convex_encoded_json"}
    headers = {"Authorization": f"Convex {key}", "Convex-Client": client_header()}
    console_times: list[float] = []
    raw_times: list[float] = []
    async with DeploymentClient(connection) as client, httpx.AsyncClient(base_url=url, headers=headers) as raw:
        for _ in range(50):  # warm both connections and the server
            await client.run_function("query", *QUERY)
            (await raw.post("/api/query", json=body)).json()
        per_round = max(1, calls // rounds)
        for _ in range(rounds):  # alternate so drift in machine load hits both equally
            start = time.perf_counter()
            for _ in range(per_round):
                result = await client.run_function("query", *QUERY)
                assert result.ok
            console_times.append((time.perf_counter() - start) / per_round)
            start = time.perf_counter()
            for _ in range(per_round):
                data = (await raw.post("/api/query", json=body)).json()
                assert data["status"] == "success"
            raw_times.append((time.perf_counter() - start) / per_round)
    console_ms = statistics.median(console_times) * 1000
    raw_ms = statistics.median(raw_times) * 1000
    return {"console_ms": console_ms, "raw_ms": raw_ms, "ratio": console_ms / raw_ms}


# --- 2. log stream ------------------------------------------------------------------------------


async def log_stream(url: str, key: str, rate: float, seconds: float, concurrency: int, batch: int) -> dict:
    from console.connection import Connection
    from screens.app import ConsoleApp
    from screens.logs import LogsScreen
    from screens.widgets.log_view import LogView

    connection = Connection.create(url, admin_key=key, kind="emulator")
    app = ConsoleApp(connection, "bench", None)
    arrivals: list[tuple[float, int]] = []  # (time, rows) per batch that reached the view
    lags: list[float] = []  # per row: arrival in the view - the entry's timestamp
    async with app.run_test(size=(160, 45)) as pilot:
        app.switch_section("logs")
        while not (isinstance(app.screen, LogsScreen) and app.screen.query(LogView)):
            await pilot.pause(0.02)
        view = app.screen.view
        original = view.add_rows

        def timed_add(rows):
            original(rows)
            if rows:
                now = time.time()
                arrivals.append((now, len(rows)))
                lags.extend(now - row.ts for row in rows)

        view.add_rows = timed_add
        seen = -1
        while view.delivered != seen:  # drain what the log held before the load starts
            seen = view.delivered
            await pilot.pause(0.3)
        arrivals.clear()
        lags.clear()
        before = view.delivered
        result: mp.Queue = mp.Queue()
        loader = mp.Process(target=_load, args=(url, key, rate, seconds, concurrency, batch, result))
        started = time.time()
        loader.start()
        done, load_seconds = await asyncio.to_thread(result.get)
        loader.join()
        target = before + done
        deadline = time.time() + 10
        while view.delivered - before < done and time.time() < deadline:  # drain
            await pilot.pause(0.05)
        delivered = view.delivered - before
        elapsed = (arrivals[-1][0] if arrivals else time.time()) - started
    return {
        "calls": done, "call_rate": done / load_seconds, "delivered": delivered, "complete": delivered >= done,
        "delivered_rate": delivered / elapsed if elapsed > 0 else 0.0, "batches": len(arrivals),
        "lag_median": statistics.median(lags) if lags else None, "lag_p95": _p95(lags), "lag_max": max(lags, default=None),
        "target_rows": target,
    }


def _p95(samples: list[float]) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def paced_replay(rate: float = 1000.0, seconds: float = 5.0, tick: float = 0.05) -> dict:
    """The Logs screen's own path at a fixed rate, whatever the emulator manages: entries as
    the tail worker would post them (RowsArrived every `tick`), lag = time to reach the view."""
    from textual.app import App

    from screens.logs import LogsScreen, RowsArrived
    from screens.widgets.log_view import RowMaker

    class Bench(App):
        def on_mount(self) -> None:
            self.push_screen(LogsScreen())

    lags: list[float] = []
    app = Bench()
    app.client = _NoLogs()
    async with app.run_test(size=(160, 45)) as pilot:
        while not (isinstance(app.screen, LogsScreen) and app.screen.query("LogView")):
            await pilot.pause(0.02)
        screen = app.screen
        view = screen.view
        original = view.add_rows

        def timed_add(rows):
            original(rows)
            now = time.time()
            lags.extend(now - row.ts for row in rows)

        view.add_rows = timed_add
        maker = RowMaker()
        per_tick = int(rate * tick)
        start = time.perf_counter()
        sent = 0
        while time.perf_counter() - start < seconds:
            now = time.time()
            entries = [{"kind": "Completion", "udfType": "Query", "identifier": "counters:get", "requestId": f"r{sent + i}",
                        "timestamp": now, "logLines": [], "executionTime": 0.001} for i in range(per_tick)]
            screen.post_message(RowsArrived(maker.rows(entries), sent))
            sent += per_tick
            await pilot.pause(max(0.0, start + (sent / rate) - time.perf_counter()))  # pacing
        while view.delivered < sent:
            await pilot.pause(0.01)
        elapsed = time.perf_counter() - start
    return {"sent": sent, "rate": sent / elapsed, "lag_median": statistics.median(lags), "lag_p95": _p95(lags),
            "lag_max": max(lags)}


class _NoLogs:
    """A client whose log stream never answers (the replay feeds the screen itself)."""

    async def stream_function_logs(self, cursor=0, **_options):
        await asyncio.sleep(3600)


async def view_ingest(rows_total: int = 200_000, batch: int = 1000) -> dict:
    """The LogView alone: rows/s it appends (ring buffer full, filter on, headless app)."""
    from textual.app import App

    from screens.widgets.log_view import LogFilter, LogView, RowMaker

    entries = [{"kind": "Completion", "udfType": "Query", "identifier": f"mod:f{i % 7}", "requestId": f"r{i}",
                "timestamp": time.time(), "logLines": ["[INFO] hello"], "executionTime": 0.001} for i in range(batch // 2)]

    class Bench(App):
        def compose(self):
            yield LogView()

    app = Bench()
    async with app.run_test(size=(160, 45)) as pilot:
        view = app.query_one(LogView)
        view.set_filter(LogFilter(function="f3"))
        maker = RowMaker()
        start = time.perf_counter()
        added = 0
        while added < rows_total:
            rows = maker.rows(entries)
            view.add_rows(rows)
            added += len(rows)
            await pilot.pause(0)
        elapsed = time.perf_counter() - start
    return {"rows": added, "rows_per_s": added / elapsed, "ring": len(view.model.ring)}


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections of the load process")
    parser.add_argument("--batch", type=int, default=10, help="queries per /api/query_batch request (1: /api/query)")
    parser.add_argument("--stream-only", action="store_true", help="only the end-to-end log stream")
    options = parser.parse_args()
    here, there = mp.Pipe()
    server = mp.Process(target=_serve, args=(there,), daemon=True)
    server.start()
    url, key = here.recv()
    try:
        stream = asyncio.run(log_stream(url, key, options.rate, options.seconds, options.concurrency,
                                           options.batch))
        print(f"log stream  load {stream['calls']} calls at {stream['call_rate']:.0f}/s (target {options.rate:.0f}/s, batches of {options.batch})"
              f"  delivered {stream['delivered']} rows at {stream['delivered_rate']:.0f}/s in {stream['batches']} batches"
              f"  complete={stream['complete']}")
        lag = {k: stream[k] for k in ("lag_median", "lag_p95", "lag_max")}
        print("log stream lag  " + "  ".join(f"{k.split('_')[1]} {v:.3f} s" for k, v in lag.items() if v is not None)
              + "  (goal <= 1 s)")
        if options.stream_only:
            return
        trip = asyncio.run(round_trip(url, key, options.calls))
        print(f"round trip counters:get  console client {trip['console_ms']:.3f} ms  raw httpx {trip['raw_ms']:.3f} ms"
              f"  ratio {trip['ratio']:.2f} (goal <= 1.3)")
        replay = asyncio.run(paced_replay(options.rate))
        print(f"Logs screen paced replay  {replay['sent']} entries at {replay['rate']:.0f}/s  lag median "
              f"{replay['lag_median']:.3f} s  p95 {replay['lag_p95']:.3f} s  max {replay['lag_max']:.3f} s")
        ingest = asyncio.run(view_ingest())
        print(f"LogView ingest  {ingest['rows']} rows at {ingest['rows_per_s']:.0f} rows/s (ring {ingest['ring']})")
    finally:
        here.send("stop")
        server.join(timeout=20)


if __name__ == "__main__":
    main()
