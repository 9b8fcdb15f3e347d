"""File upload/download throughput through the console's client vs raw httpx, and peak memory.

    .venv/bin/python bench/bench_storage.py [--size-mib 1024] [--rounds 1] [--data-dir DIR]

Starts the emulator in a subprocess (in memory unless --data-dir; the same starlette + uvicorn
stack as `convex-console emulator`) with two extra bare routes: `POST /bench/sink` reads and
drops the body, `GET /bench/source` streams N bytes from one buffer. Then, with a file of
--size-mib (random 16 MiB blocks), it times:

  upload    raw: httpx streaming POST of the file to /bench/sink (no hashing, nothing stored);
            for reference, the same with sha256 of every chunk on both sides (`?hash`)
            console: DeploymentClient.upload_path (admin generateUploadUrl, sha256 on both
            sides, the blob written to disk, `_storage` row, sha256 read back and compared)
  download  raw: httpx streaming GET of /bench/source, bytes dropped, and the same written to
            a file (both as received: `aiter_bytes()` without re-chunking)
            console: DeploymentClient.download_to_path of the stored file (written to disk via
            a .part file, sha256 checked against the Digest header)

and prints MiB/s, the ratio console/raw (goal >= 0.7), the CPU each side spent, sha256's speed
on this CPU (the console's upload hashes every byte twice), and the peak RSS above idle of both
processes during the console transfers (goal < 100 MB), read from /proc (VmHWM after
resetting it with clear_refs).

Fairness: both processes run with the allocator settings the console and the emulator use
(console/allocator.py), so no transfer speeds up those after it by freeing a large buffer
(which, left to glibc, cut the raw sink's CPU from 1.8 to 0.5 s per GiB mid-run); each
transfer starts after `sync`, so none pays for the writeback of the one before.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 1024 * 1024
BLOCK = 16 * MiB


# ---------------------------------------------------------------------------
# The server subprocess


def serve(data_dir: str | None) -> None:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    from console.emulator import server

    async def sink(request: Request):
        size, digest = 0, hashlib.sha256() if "hash" in request.query_params else None
        async for chunk in request.stream():
            size += len(chunk)
            if digest is not None:
                digest.update(chunk)
        return JSONResponse({"size": size, "sha256": digest.hexdigest() if digest else None})

    buffer = b"\0" * MiB

    async def source(request: Request):
        size = int(request.query_params["size"])

        async def body():
            remaining = size
            while remaining:
                piece = buffer[: min(remaining, MiB)]
                remaining -= len(piece)
                yield piece

        return StreamingResponse(body(), headers={"Content-Length": str(size)})

    original = server.build_cloud_app

    def build_cloud_app(deployment):
        app = original(deployment)
        app.routes.insert(0, Route("/bench/sink", sink, methods=["POST"]))
        app.routes.insert(0, Route("/bench/source", source, methods=["GET"]))
        return app

    server.build_cloud_app = build_cloud_app
    options = {"data_dir": data_dir} if data_dir else {"in_memory": True}
    deployment = server.Deployment.create(**options)

    def ready(dep) -> None:
        print(json.dumps({"url": dep.cloud_url, "admin_key": dep.admin_key, "pid": os.getpid()}), flush=True)

    server.serve(deployment, port=0, site_port=0, on_ready=ready)


# ---------------------------------------------------------------------------
# Memory


def _status(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak(pid: int | str) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as file:
            file.write("5")
        return True
    except OSError:
        return False


def cpu_seconds(pid: int | str) -> float:
    """user + system CPU time of a process (all its threads)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    def __init__(self, server_pid: int):
        self.server_pid = server_pid
        self.start = (cpu_seconds("self"), cpu_seconds(server_pid))

    def stop(self) -> tuple[float, float]:
        return cpu_seconds("self") - self.start[0], cpu_seconds(self.server_pid) - self.start[1]


class PeakTracker:
    """Peak RSS above the RSS at start, for one process (VmHWM after clear_refs)."""

    def __init__(self, pid: int | str):
        self.pid = pid
        self.resettable = reset_peak(pid)
        self.idle = _status(pid, "VmRSS")

    def above_idle(self) -> int:
        return _status(self.pid, "VmHWM") - self.idle


# ---------------------------------------------------------------------------
# Transfers


def make_file(path: Path, size: int) -> None:
    block = os.urandom(min(BLOCK, size) or 1)
    with open(path, "wb") as file:
        remaining = size
        while remaining:
            piece = block[: min(remaining, len(block))]
            file.write(piece)
            remaining -= len(piece)


async def raw_upload(url: str, path: Path, size: int, *, hashed: bool = False) -> float:
    """The bytes to the bare sink; `hashed`: both sides also sha256 them, the plain way (inline)."""
    digest = hashlib.sha256()

    async def chunks():
        with open(path, "rb") as file:
            while chunk := file.read(MiB):
                if hashed:
                    digest.update(chunk)
                yield chunk

    async with httpx.AsyncClient(timeout=300) as http:
        started = time.perf_counter()
        response = await http.post(url + "/bench/sink" + ("?hash" if hashed else ""), content=chunks(),
                                   headers={"Content-Length": str(size)})
        elapsed = time.perf_counter() - started
    assert response.json()["size"] == size, response.text
    assert not hashed or response.json()["sha256"] == digest.hexdigest()
    return elapsed


async def raw_download(url: str, size: int, target: Path | None = None) -> float:
    """Bytes dropped (target None) or written to `target`, the least a download to a path does."""
    async with httpx.AsyncClient(timeout=300) as http:
        started = time.perf_counter()
        received = 0
        with open(target or os.devnull, "wb") as file:
            async with http.stream("GET", url + "/bench/source", params={"size": size}) as response:
                async for chunk in response.aiter_bytes():  # as received (re-chunking costs ~40%)
                    received += len(chunk)
                    file.write(chunk)
        elapsed = time.perf_counter() - started
    assert received == size
    return elapsed


async def timed(cpu: dict, key: str, server_pid: int, awaitable):
    # Each transfer starts with no dirty pages from the one before (or from writing the source
    # file): the kernel's writeback of those would run on the same two cores.
    await asyncio.to_thread(os.sync)
    meter = CpuMeter(server_pid)
    started = time.perf_counter()
    result = await awaitable
    elapsed = time.perf_counter() - started
    client, server = meter.stop()
    cpu.setdefault(key, []).append((client, server))
    return result, elapsed


async def run(url: str, admin_key: str, server_pid: int, size: int, rounds: int, work: Path) -> dict:
    from console.client import DeploymentClient
    from console.connection import Connection

    source = work / "upload.bin"
    make_file(source, size)
    connection = Connection.create(url, admin_key=admin_key, kind="emulator")
    results: dict[str, list[float]] = {"raw_up": [], "raw_up_hashed": [], "console_up": [], "raw_down": [],
                                       "raw_down_file": [], "console_down": []}
    peaks = {"client": 0, "server": 0}
    cpu: dict[str, list] = {}
    async with DeploymentClient(connection, timeout=300) as client:
        await client.num_files()  # warm: connection, imports
        for _ in range(rounds):
            results["raw_up"].append((await timed(cpu, "raw_up", server_pid, raw_upload(url, source, size)))[0])
            results["raw_up_hashed"].append(
                (await timed(cpu, "raw_up_hashed", server_pid, raw_upload(url, source, size, hashed=True)))[0])
            client_peak, server_peak = PeakTracker("self"), PeakTracker(server_pid)
            result, elapsed = await timed(cpu, "console_up", server_pid, client.upload_path(source))
            results["console_up"].append(elapsed)
            assert result.verified and result.size == size
            peaks["client"] = max(peaks["client"], client_peak.above_idle())
            peaks["server"] = max(peaks["server"], server_peak.above_idle())
            results["raw_down"].append((await timed(cpu, "raw_down", server_pid, raw_download(url, size)))[0])
            raw_target = work / "raw-download.bin"
            results["raw_down_file"].append(
                (await timed(cpu, "raw_down_file", server_pid, raw_download(url, size, raw_target)))[0])
            raw_target.unlink()
            info = await client.get_file(result.storage_id)
            target = work / "download.bin"
            target.unlink(missing_ok=True)
            client_peak, server_peak = PeakTracker("self"), PeakTracker(server_pid)
            downloaded, elapsed = await timed(cpu, "console_down", server_pid,
                                              client.download_to_path(info["url"], target))
            results["console_down"].append(elapsed)
            assert downloaded.verified and downloaded.size == size
            peaks["client"] = max(peaks["client"], client_peak.above_idle())
            peaks["server"] = max(peaks["server"], server_peak.above_idle())
            target.unlink()
            await client.delete_file(result.storage_id)
    return {"times": results, "peaks": peaks, "cpu": cpu}


def sha256_rate(total: int = 256 * MiB) -> float:
    """MiB/s of hashlib's sha256 on one core, in 1 MiB updates as the transfers make."""
    block, digest = os.urandom(MiB), hashlib.sha256()
    started = time.perf_counter()
    for _ in range(total // MiB):
        digest.update(block)
    return total / MiB / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--data-dir", default=None, help="a persistent deployment (blobs fsynced)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.data_dir)
        return 0
    # Both processes in the allocator state the console and the emulator run in (console/allocator.py):
    # without it, whichever transfer first frees a large buffer would speed up all that follow.
    from console.allocator import keep_large_buffers_on_the_heap

    keep_large_buffers_on_the_heap()
    command = [sys.executable, __file__, "--serve"] + (["--data-dir", args.data_dir] if args.data_dir else [])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        info = json.loads(process.stdout.readline())
        size = args.size_mib * MiB
        with tempfile.TemporaryDirectory(prefix="bench-storage-") as work:
            report = asyncio.run(run(info["url"], info["admin_key"], info["pid"], size, args.rounds, Path(work)))
    finally:
        process.terminate()
        process.wait(15)
    times = report["times"]

    def rate(key: str) -> float:
        return size / MiB / min(times[key])

    print(f"file: {args.size_mib} MiB, rounds: {args.rounds}, deployment: {'data dir' if args.data_dir else 'in memory'}")
    comparisons = (("upload", "raw_up", "console_up"), ("download vs dropped", "raw_down", "console_down"),
                   ("download vs a file", "raw_down_file", "console_down"))
    for label, raw, console in comparisons:
        ratio = rate(console) / rate(raw)
        verdict = "ok" if ratio >= 0.7 else "BELOW GOAL"
        print(f"{label:19} raw {rate(raw):7.1f} MiB/s   console {rate(console):7.1f} MiB/s   ratio {ratio:.2f} "
              f"(goal >= 0.7: {verdict})")
    print(f"{'upload vs hashed':19} raw {rate('raw_up_hashed'):7.1f} MiB/s   console {rate('console_up'):7.1f} MiB/s   "
          f"ratio {rate('console_up') / rate('raw_up_hashed'):.2f} (for reference: a raw pair that also sha256es "
          "every byte on both sides, inline)")
    for key, samples in report["cpu"].items():
        client_cpu, server_cpu = min(samples)
        print(f"cpu {key:12} client {client_cpu:5.2f} s  server {server_cpu:5.2f} s")
    hash_rate = sha256_rate()
    print(f"sha256 on this CPU: {hash_rate:7.1f} MiB/s per core; the console hashes every byte twice (its own check "
          f"and the deployment's _storage.sha256): {2 * MiB * 1024 / (hash_rate * MiB):.2f} s of CPU per GiB before "
          "any network or disk work")
    for name, peak in report["peaks"].items():
        verdict = "ok" if peak < 100 * 1000 * 1000 else "ABOVE GOAL"
        print(f"peak RSS above idle, {name:6}: {peak / MiB:6.1f} MiB (goal < 100 MB: {verdict})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
