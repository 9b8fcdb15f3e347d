"""No lost updates over HTTP: 8 clients x 250 increments of one counter end at exactly 2,000."""

from __future__ import annotations

import asyncio

import httpx

CLIENTS = 8
CALLS_PER_CLIENT = 250


async def _increment_many(url: str, name: str) -> list[float]:
    results = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for _ in range(CALLS_PER_CLIENT):
            body = {"path": "counters:increment", "args": {"name": name}, "format": "json"}
            response = (await client.post("/api/mutation", json=body)).json()
            assert response["status"] == "success", response
            results.append(response["value"])
    return results


def test_eight_clients_250_increments_each(emulator_factory):
    emulator = emulator_factory()

    async def run_all():
        return await asyncio.gather(*[_increment_many(emulator.url, "hits") for _ in range(CLIENTS)])

    returned = [value for values in asyncio.run(run_all()) for value in values]
    total = CLIENTS * CALLS_PER_CLIENT
    # every increment saw a distinct committed value: serializable, no lost update
    assert sorted(returned) == [float(i) for i in range(1, total + 1)]
    final = httpx.post(f"{emulator.url}/api/query", json={"path": "counters:get", "args": {"name": "hits"}, "format": "json"})
    assert final.json()["value"] == float(total)
