"""Bearer-authenticated point queries per second vs the same query with admin auth.

    .venv/bin/python bench/bench_auth.py [--seconds 4] [--rounds 3]

Starts an in-memory emulator (demo app, small seed) on real sockets, mints a token from the
built-in issuer, warms the JWKS and token caches, then alternates rounds of `posts:get`
(one document by id) over one keep-alive connection with `Authorization: Convex <admin key>`
and with `Authorization: Bearer <jwt>`. Prints both rates and the ratio (goal >= 0.8).
"""

from __future__ import annotations

import argparse
import socket
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.emulator import server  # noqa: E402
from console.emulator.server import start_emulator  # noqa: E402


def _with_nodelay(bind):
    """Accepted sockets inherit TCP_NODELAY from the listening socket. Without it asyncio
    leaves Nagle on (the socket's proto is 0, so `_set_nodelay` skips it) and every
    keep-alive response stalls ~40 ms on a delayed ACK, which would hide what we measure."""
    def bind_socket(host: str, port: int):
        sock = bind(host, port)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    return bind_socket


server.bind_socket = _with_nodelay(server.bind_socket)


def _query(client: httpx.Client, path: str, args: dict, authorization: str) -> dict:
    response = client.post("/api/query", json={"path": path, "args": args, "format": "json"},
                           headers={"Authorization": authorization})
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(body)
    return body["value"]


def _rate(client: httpx.Client, args: dict, authorization: str, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        _query(client, "posts:get", args, authorization)
        count += 1
    return count / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="per round and mode")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with start_emulator(seed=20) as emulator:
        admin = f"Convex {emulator.admin_key}"
        # TCP_NODELAY: otherwise Nagle + delayed ACKs add ~40 ms to each small POST.
        transport = httpx.HTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
        with httpx.Client(base_url=emulator.url, timeout=10, transport=transport) as client:
            minted = client.post("/api/emulator/mint_token", json={"sub": "bench_user"},
                                 headers={"Authorization": admin})
            minted.raise_for_status()
            bearer = f"Bearer {minted.json()['token']}"
            post_id = _query(client, "posts:list", {"limit": 1}, admin)[0]["_id"]
            point = {"id": post_id}
            for authorization in (admin, bearer):  # warm up: caches, connection, imports
                for _ in range(50):
                    _query(client, "posts:get", point, authorization)
            admin_rates, bearer_rates = [], []
            for _ in range(args.rounds):
                admin_rates.append(_rate(client, point, admin, args.seconds))
                bearer_rates.append(_rate(client, point, bearer, args.seconds))
    admin_qps = sum(admin_rates) / len(admin_rates)
    bearer_qps = sum(bearer_rates) / len(bearer_rates)
    ratio = bearer_qps / admin_qps
    print(f"admin  point queries/s: {admin_qps:8.1f}  (rounds: {', '.join(f'{r:.0f}' for r in admin_rates)})")
    print(f"bearer point queries/s: {bearer_qps:8.1f}  (rounds: {', '.join(f'{r:.0f}' for r in bearer_rates)})")
    print(f"ratio bearer/admin: {ratio:.2f}  (goal >= 0.80: {'met' if ratio >= 0.8 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
