"""Watching a query live: a subscription through console.sync's SyncClient when the deployment
accepts a WebSocket, else an HTTP poll every `poll_seconds` (with a note saying so).

`watch(...)` is an async generator of RunOutcome; cancel the consuming worker to stop it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator

from console import values
from console.client import AdminAuth, BearerAuth, ClientError
from screens.widgets.result_view import RunOutcome

CONNECT_TIMEOUT = 5.0


def _sync_auth(client_auth: Any, sync: Any) -> Any:
    if isinstance(client_auth, AdminAuth):
        return sync.AdminAuth(client_auth.key, dict(client_auth.acting_as) if client_auth.acting_as else None)
    if isinstance(client_auth, BearerAuth):
        return sync.UserAuth(client_auth.token)
    return None


async def watch(connection, client, request, poll_seconds: float = 1.0) -> AsyncIterator[RunOutcome]:
    path, args, who = request.entry.path, request.args, request.who
    subscription_client = None
    reason = ""
    try:
        from console import sync

        subscription_client = sync.SyncClient(connection.url, _sync_auth(client.auth, sync))
        await subscription_client.connect(timeout=CONNECT_TIMEOUT)
    except Exception as error:  # no sync module, refused upgrade, timeout: fall back to polling
        reason = str(error) or type(error).__name__
        if subscription_client is not None:
            await subscription_client.close()
        subscription_client = None
    if subscription_client is not None:
        try:
            async for outcome in _subscribe(subscription_client, path, args, who):
                yield outcome
        finally:
            await subscription_client.close()
        return
    async for outcome in _poll(client, request, poll_seconds, reason):
        yield outcome


async def _subscribe(client, path: str, args: Any, who: str) -> AsyncIterator[RunOutcome]:
    subscription = client.subscribe(path, args)
    updates = 0
    started = time.perf_counter()
    async for result in subscription:
        updates += 1
        live = f"live · update {updates}"
        if result.ok:
            size = await asyncio.to_thread(values.value_size, result.value)
            yield RunOutcome(path, "success", value=result.value, log_lines=list(result.log_lines), who=who,
                             size=size, live=live, elapsed=time.perf_counter() - started if updates == 1 else None)
        else:
            yield RunOutcome(path, "error", error_message=result.error_message, error_data=result.error_data,
                             log_lines=list(result.log_lines), who=who, live=live)


async def _poll(client, request, seconds: float, reason: str) -> AsyncIterator[RunOutcome]:
    note = f"Polling every {seconds:g} s (live sync unavailable: {reason[:80]})"
    polls = 0
    while True:
        polls += 1
        live = f"poll {polls}"
        try:
            result = await client.run_function("query", request.entry.path, request.args)
        except ClientError as error:
            yield RunOutcome(request.entry.path, "transport", error_message=str(error), who=request.who, live=live, note=note)
        else:
            size = await asyncio.to_thread(values.value_size, result.value) if result.ok else None
            yield RunOutcome(request.entry.path, result.status, value=result.value, error_message=result.error_message or "",
                             error_data=result.error_data, log_lines=list(result.log_lines), elapsed=result.elapsed,
                             who=request.who, size=size, live=live, note=note)
        await asyncio.sleep(seconds)  # the poll interval itself
