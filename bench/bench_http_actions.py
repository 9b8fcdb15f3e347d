"""HTTP action round trip vs a bare endpoint on the same server stack (goal: ratio >= 0.5).

Subject: the demo app's `GET /health` HTTP action on the emulator's site port (router lookup,
a worker thread, the action ctx, execution logging, `Response.json`). Baseline: a bare
starlette GET endpoint returning the same small JSON, served by the same uvicorn setup.
Each server runs in its own process; the load is a few keep-alive connections with a raw
HTTP/1.1 client (cheap, so the servers are what is measured).

Run: `.venv/bin/python bench/bench_http_actions.py [--seconds 6] [--connections 4]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
BODY = {"status": "ok"}
ROUNDS = 3


# --- servers (child processes) ----------------------------------------------------------------


def serve_bare() -> None:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from bench_http import _serve_app

    async def health(request):
        return JSONResponse(BODY)

    _serve_app(Starlette(routes=[Route("/health", health, methods=["GET"])]))


def serve_emulator() -> None:
    from console.emulator.server import start_emulator

    data_dir = tempfile.mkdtemp(prefix="bench-http-actions-")
    emulator = start_emulator(data_dir=data_dir)
    print(f"READY {emulator.site_url}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


class Child:
    def __init__(self, kind: str):
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", kind], stdout=subprocess.PIPE,
                                        text=True, cwd=ROOT)
        line = self.process.stdout.readline().split()
        if not line or line[0] != "READY":
            raise RuntimeError(f"{kind} server failed to start")
        self.url = line[1]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# --- load ----------------------------------------------------------------------------------------


async def _get(reader, writer, host: str, path: str) -> bytes:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.decode(errors="replace"))
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    return await reader.readexactly(length)


async def load(url: str, path: str, seconds: float, connections: int) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    host_port = url.split("://", 1)[1]
    host, port = host_port.rsplit(":", 1)

    async def worker() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection(host, int(port))
        counter = 0
        try:
            while time.perf_counter() < deadline:
                reply = await _get(reader, writer, host_port, path)
                if counter % 50 == 0:
                    assert json.loads(reply) == BODY, reply[:200]
                counter += 1
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return done / (time.perf_counter() - started)


def measure(seconds: float, connections: int) -> tuple[float, float]:
    emulator, bare = Child("emulator"), Child("bare")
    try:
        def subject(s: float) -> float:
            return asyncio.run(load(emulator.url, "/health", s, connections))

        def baseline(s: float) -> float:
            return asyncio.run(load(bare.url, "/health", s, connections))

        subject(0.5)
        baseline(0.5)
        subjects, baselines = [], []
        for _ in range(ROUNDS):  # interleaved: the machine is shared
            subjects.append(subject(seconds / ROUNDS))
            baselines.append(baseline(seconds / ROUNDS))
        return max(subjects), max(baselines)
    finally:
        emulator.stop()
        bare.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--serve", choices=("bare", "emulator"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "bare":
        serve_bare()
        return 0
    if args.serve == "emulator":
        serve_emulator()
        return 0
    subject, baseline = measure(args.seconds, args.connections)
    ratio = subject / baseline if baseline else 0.0
    print(f"HTTP action GET /health: {subject:,.0f} req/s")
    print(f"bare starlette endpoint: {baseline:,.0f} req/s")
    print(f"ratio: {ratio:.2f} (goal >= 0.5) {'OK' if ratio >= 0.5 else 'BELOW GOAL'}")
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
