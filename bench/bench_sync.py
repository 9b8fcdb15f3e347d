"""Sync latency: from a mutation's commit to each subscriber's Transition, on loopback.

For 1, 10 and 100 subscribers (one socket each) on the affected query, p50/p99 of
`Transition received - commit`. The emulator runs in its own process (as for a real client);
an engine commit listener there reports each commit's `time.perf_counter()` (CLOCK_MONOTONIC,
comparable across processes on Linux). The baseline is the same span on a bare WebSocket
fan-out served by the same stack (starlette + uvicorn, its own process): a publisher's frame
reaches the server, which stamps it and forwards it to N sockets. The ratio sync/bare is
printed per N.

    .venv/bin/python bench/bench_sync.py [--rounds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "peers"))

from console import values  # noqa: E402
from console.emulator.server import bind_socket, start_emulator  # noqa: E402

SUBSCRIBER_COUNTS = (1, 10, 100)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


# --- the emulator ------------------------------------------------------------------------------


async def open_subscriber(url: str, counter: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url, max_size=None, compression=None)
    await ws.send(json.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0}))
    await ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
        {"type": "Add", "queryId": 0, "udfPath": "counters:get", "args": [{"name": counter}]}]}))
    while json.loads(await ws.recv())["type"] != "Transition":
        pass
    return ws


async def await_value(ws, expected: float, stamps: list[tuple[int, float]]) -> None:
    while True:
        message = json.loads(await ws.recv())
        if message["type"] != "Transition":
            continue
        for modification in message["modifications"]:
            if modification.get("value") == expected:
                stamps.append((values.ts_from_wire(message["endVersion"]["ts"]), time.perf_counter()))
                return


async def bench_emulator(emulator: "Child", subscribers: int, rounds: int) -> list[float]:
    url = emulator.url.replace("http", "ws", 1) + "/api/sync"
    counter = f"bench-{uuid.uuid4().hex[:8]}"
    subs = await asyncio.gather(*(open_subscriber(url, counter) for _ in range(subscribers)))
    writer = await websockets.connect(url, compression=None)
    await writer.send(json.dumps({"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0}))
    latencies: list[float] = []
    for round_number in range(1, rounds + 1):
        stamps: list[tuple[int, float]] = []
        waits = [asyncio.ensure_future(await_value(ws, float(round_number), stamps)) for ws in subs]
        await writer.send(json.dumps({"type": "Mutation", "requestId": round_number, "udfPath": "counters:increment",
                                      "args": [{"name": counter}]}))
        commit_ts = None
        while commit_ts is None:
            message = json.loads(await writer.recv())
            if message["type"] == "MutationResponse":
                commit_ts = values.ts_from_wire(message["ts"])
        await asyncio.gather(*waits)
        committed_at = await emulator.stamp(commit_ts)
        latencies.extend(received - committed_at for _, received in stamps)
    for ws in [*subs, writer]:
        await ws.close()
    return latencies


# --- the bare fan-out on the same stack ----------------------------------------------------------


class FanOut:
    def __init__(self):
        self.subscribers: set = set()
        self.stamps: dict[int, float] = {}

    async def subscriber(self, websocket) -> None:
        await websocket.accept()
        self.subscribers.add(websocket)
        try:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass
        finally:
            self.subscribers.discard(websocket)

    async def publisher(self, websocket) -> None:
        await websocket.accept()
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message["text"]
            n = json.loads(text)["n"]
            if n is None:  # "how many subscribers?"
                await websocket.send_text(str(len(self.subscribers)))
                continue
            print(f"F {n} {time.perf_counter()!r}", flush=True)
            for target in list(self.subscribers):
                try:
                    await target.send_text(text)
                except Exception:  # a subscriber of a finished row, going away
                    self.subscribers.discard(target)


def serve_fan_out() -> None:
    """Child process: serve the bare fan-out until stdin closes."""
    fan_out = FanOut()
    app = Starlette(routes=[WebSocketRoute("/sub", fan_out.subscriber), WebSocketRoute("/pub", fan_out.publisher)])
    sock = bind_socket("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off", ws_ping_interval=None))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    print(f"URL ws://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    sys.stdin.read()
    server.should_exit = True
    thread.join(5)


def serve_emulator() -> None:
    """Child process: serve the emulator until stdin closes, printing each commit's time."""
    with start_emulator(app="sync_app") as emulator:
        emulator.deployment.db.add_commit_listener(lambda commit: print(f"C {commit.ts} {time.perf_counter()!r}", flush=True))
        print(f"URL {emulator.url}", flush=True)
        sys.stdin.read()


class Child:
    """A server in its own process; `stamps` fills from the lines it prints."""

    def __init__(self, mode: str):
        self.mode = mode
        self.stamps: dict[int, float] = {}
        self.url = ""

    async def __aenter__(self) -> "Child":
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--serve", self.mode, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        while not self.url:
            line = (await self.process.stdout.readline()).decode()
            if not line:
                raise RuntimeError(f"the {self.mode} server did not start")
            if line.startswith("URL "):
                self.url = line.split()[1]
        self.reader = asyncio.ensure_future(self._read())
        return self

    async def _read(self) -> None:
        while line := (await self.process.stdout.readline()).decode():
            kind, key, stamp = line.split()
            if kind in ("C", "F"):
                self.stamps[int(key)] = float(stamp)

    async def stamp(self, key: int) -> float:
        while key not in self.stamps:  # the line may trail the message by a moment
            await asyncio.sleep(0.001)
        return self.stamps[key]

    async def __aexit__(self, *exc) -> None:
        self.process.stdin.close()
        await asyncio.wait_for(self.process.wait(), 15)
        self.reader.cancel()


async def bench_fan_out(server: "Child", subscribers: int, rounds: int, first: int) -> list[float]:
    url = server.url
    subs = [await websockets.connect(url + "/sub", compression=None) for _ in range(subscribers)]
    publisher = await websockets.connect(url + "/pub", compression=None)
    while True:  # wait until the server registered every subscriber
        await publisher.send(json.dumps({"n": None}))
        if int(await publisher.recv()) == subscribers:
            break
        await asyncio.sleep(0.01)
    latencies: list[float] = []

    async def receive(ws, n: int) -> float:
        while json.loads(await ws.recv())["n"] != n:
            pass
        return time.perf_counter()

    for n in range(first, first + rounds):
        waits = [asyncio.ensure_future(receive(ws, n)) for ws in subs]
        await publisher.send(json.dumps({"n": n, "payload": "x" * 120}))
        received = await asyncio.gather(*waits)
        sent_at = await server.stamp(n)
        latencies.extend(r - sent_at for r in received)
    for ws in [*subs, publisher]:
        await ws.close()
    return latencies


# --- main ----------------------------------------------------------------------------------------


async def run(rounds: int) -> list[dict]:
    rows = []
    async with Child("emulator") as emulator, Child("fanout") as fan_out:
        await bench_emulator(emulator, 1, 5)  # warm up
        await bench_fan_out(fan_out, 1, 5, 0)
        for index, subscribers in enumerate(SUBSCRIBER_COUNTS):
            sync = await bench_emulator(emulator, subscribers, rounds)
            bare = await bench_fan_out(fan_out, subscribers, rounds, (index + 1) * 10_000)
            rows.append({"subscribers": subscribers, "sync": sync, "bare": bare})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--serve", choices=["emulator", "fanout"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_emulator() if args.serve == "emulator" else serve_fan_out()
    rows = asyncio.run(run(args.rounds))
    load = os.getloadavg()[0]
    print(f"machine: {os.cpu_count()} cores, load average {load:.2f} (other work on the machine skews p99)")
    print(f"commit -> Transition latency on loopback, {args.rounds} mutations per row (ms)")
    print(f"{'subs':>5} {'sync p50':>9} {'sync p99':>9} {'bare p50':>9} {'bare p99':>9} {'ratio p50':>10} {'ratio p99':>10}")
    for row in rows:
        sync_50, sync_99 = statistics.median(row["sync"]) * 1e3, percentile(row["sync"], 0.99) * 1e3
        bare_50, bare_99 = statistics.median(row["bare"]) * 1e3, percentile(row["bare"], 0.99) * 1e3
        print(f"{row['subscribers']:>5} {sync_50:>9.2f} {sync_99:>9.2f} {bare_50:>9.2f} {bare_99:>9.2f} "
              f"{sync_50 / bare_50:>10.2f} {sync_99 / bare_99:>10.2f}")
    at_100 = next(r for r in rows if r["subscribers"] == 100)
    p50 = statistics.median(at_100["sync"]) * 1e3
    print(f"goal p50 <= 10 ms at 100 subscribers: {'met' if p50 <= 10 else 'NOT met'} ({p50:.2f} ms)")


if __name__ == "__main__":
    main()
