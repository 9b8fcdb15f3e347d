"""HTTP benchmarks of the emulator against baselines on the same server stack.

1. Point query `posts:get` by id vs a bare starlette endpoint returning a constant (goal >= 0.5).
2. Single-document insert mutation vs the same insert done with raw sqlite3, same
   durability (WAL, synchronous=FULL), behind the same starlette/uvicorn stack (goal >= 0.5).

Each server runs in its own process; the load comes from a few concurrent httpx connections
in this process. Run: `.venv/bin/python bench/bench_http.py [--seconds 8] [--connections 4]`.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import httpx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


# --- servers (run in a child process) ---------------------------------------------------


def _serve_app(app) -> None:
    """Serve `app` as the emulator's `serve()` does: same socket options, uvicorn settings, allocator."""
    from console.allocator import keep_large_buffers_on_the_heap
    from console.emulator.server import bind_socket, _uvicorn_server

    keep_large_buffers_on_the_heap()
    sock = bind_socket("127.0.0.1", 0)
    server = _uvicorn_server(app, "warning")
    print(f"READY http://127.0.0.1:{sock.getsockname()[1]} -", flush=True)
    asyncio.run(server.serve(sockets=[sock]))


def serve_bare() -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def constant(request):
        await request.body()
        return JSONResponse({"status": "success", "value": None})

    _serve_app(Starlette(routes=[Route("/api/query", constant, methods=["POST"])]))


def serve_sqlite() -> None:
    """The same insert as the engine's, with raw sqlite3: one JSON row per document."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    directory = tempfile.mkdtemp(prefix="bench-sqlite-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    path = os.path.join(directory, "raw.sqlite3")
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE docs (id INTEGER PRIMARY KEY, creation_time REAL, body TEXT)")
    conn.execute("CREATE INDEX docs_by_creation_time ON docs (creation_time, id)")
    lock = threading.Lock()

    def insert(document: dict) -> int:
        with lock:
            conn.execute("BEGIN IMMEDIATE")
            cursor = conn.execute(
                "INSERT INTO docs (creation_time, body) VALUES (?, ?)", (time.time() * 1000, json.dumps(document))
            )
            conn.execute("COMMIT")
            return cursor.lastrowid

    async def mutation(request):
        body = json.loads(await request.body())
        await run_in_threadpool(insert, body["args"]["documents"][0])
        return JSONResponse({"status": "success", "value": {"success": True}})

    _serve_app(Starlette(routes=[Route("/api/mutation", mutation, methods=["POST"])]))


def serve_emulator(seed: int) -> None:
    from console.emulator.server import start_emulator

    data_dir = tempfile.mkdtemp(prefix="bench-emulator-")
    emulator = start_emulator(data_dir=data_dir, seed=seed)
    print(f"READY {emulator.url} {emulator.admin_key}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


# --- load -----------------------------------------------------------------------------------


class Child:
    def __init__(self, kind: str, *extra: str):
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, *extra], stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        line = self.process.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError(f"{kind} server failed to start")
        self.url, self.key = line[1], line[2]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def _post(reader, writer, host: str, path: str, body: bytes, headers: dict) -> bytes:
    """One keep-alive HTTP/1.1 POST over raw streams (a client far cheaper than httpx, so the
    measurement is bound by the server, not the load generator)."""
    head = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    writer.write(head.encode() + b"\r\n" + body)
    status_and_headers = await reader.readuntil(b"\r\n\r\n")
    if not status_and_headers.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(status_and_headers.decode(errors="replace"))
    length = 0
    for line in status_and_headers.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return await reader.readexactly(length)


async def load(url: str, path: str, make_body, headers: dict, seconds: float, connections: int) -> float:
    """Requests/s over `seconds` with `connections` concurrent keep-alive connections."""
    done = 0
    deadline = time.perf_counter() + seconds
    host_port = url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)

    async def worker(index: int) -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, int(port))
        counter = 0
        try:
            while time.perf_counter() < deadline:
                body = json.dumps(make_body(index, counter)).encode()
                reply = await _post(reader, writer, host_port, path, body, headers)
                if counter % 50 == 0:  # spot-check the answers
                    assert json.loads(reply)["status"] == "success", reply[:300]
                counter += 1
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(connections)))
    return done / (time.perf_counter() - started)


ROUNDS = 3


def interleaved(measure_subject, measure_baseline, seconds: float) -> tuple[float, float]:
    """Alternate short runs of both (the machine is shared) and keep each one's best rate."""
    measure_subject(0.5)  # warm up
    measure_baseline(0.5)
    subject, baseline = [], []
    for _ in range(ROUNDS):
        subject.append(measure_subject(seconds / ROUNDS))
        baseline.append(measure_baseline(seconds / ROUNDS))
    return max(subject), max(baseline)


def first_post_ids(url: str, n: int) -> list[str]:
    body = {"path": "posts:list", "args": {"limit": float(n)}, "format": "json"}
    return [post["_id"] for post in httpx.post(f"{url}/api/query", json=body).json()["value"]]


def bench_point_query(seconds: float, connections: int) -> tuple[float, float]:
    emulator, bare = Child("emulator", "--seed", "1000"), Child("bare")
    try:
        ids = first_post_ids(emulator.url, 100)

        def query_body(worker: int, counter: int) -> dict:
            return {"path": "posts:get", "args": {"id": ids[(worker * 31 + counter) % len(ids)]}, "format": "json"}

        return interleaved(
            lambda s: asyncio.run(load(emulator.url, "/api/query", query_body, {}, s, connections)),
            lambda s: asyncio.run(load(bare.url, "/api/query", query_body, {}, s, connections)),
            seconds,
        )
    finally:
        emulator.stop()
        bare.stop()


def bench_insert(seconds: float, connections: int) -> tuple[float, float]:
    emulator, raw = Child("emulator", "--seed", "0"), Child("sqlite")
    try:
        headers = {"Authorization": f"Convex {emulator.key}"}

        def insert_body(worker: int, counter: int) -> dict:
            document = {"worker": float(worker), "n": float(counter), "title": f"Post {worker}-{counter}", "published": False}
            return {"path": "_system/frontend/addDocument", "args": {"table": "bench", "documents": [document]}, "format": "json"}

        return interleaved(
            lambda s: asyncio.run(load(emulator.url, "/api/mutation", insert_body, headers, s, connections)),
            lambda s: asyncio.run(load(raw.url, "/api/mutation", insert_body, {}, s, connections)),
            seconds,
        )
    finally:
        emulator.stop()
        raw.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--serve", choices=("bare", "sqlite", "emulator"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve == "bare":
        return serve_bare()
    if options.serve == "sqlite":
        return serve_sqlite()
    if options.serve == "emulator":
        return serve_emulator(options.seed)

    print(f"{options.connections} connections, {options.seconds:.0f} s per measurement")
    emulator_rate, bare_rate = bench_point_query(options.seconds, options.connections)
    print(f"1. posts:get by id      {emulator_rate:8.0f} req/s   bare constant endpoint {bare_rate:8.0f} req/s   ratio {emulator_rate / bare_rate:.2f} (goal >= 0.5)")
    emulator_rate, raw_rate = bench_insert(options.seconds, options.connections)
    print(f"2. insert mutation      {emulator_rate:8.0f} req/s   raw sqlite3 insert     {raw_rate:8.0f} req/s   ratio {emulator_rate / raw_rate:.2f} (goal >= 0.5)")


if __name__ == "__main__":
    main()
