"""console/sync.py against the emulator over real sockets: subscriptions, requests, auth,
reconnection and refusal."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent / "peers"))

from console.emulator.auth import auth_for  # noqa: E402
from console.emulator.server import bind_socket, start_emulator  # noqa: E402
from console.emulator.sync_server import get_hub  # noqa: E402
from console.sync import (  # noqa: E402
    AdminAuth,
    FunctionError,
    SyncClient,
    SyncRefused,
    SyncState,
    UserAuth,
    diff_rows,
    http_to_ws,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(app="sync_app") as running:
        yield running


def channel() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_console_sync_never_imports_the_emulator_or_textual():
    code = "import sys, console.sync; print([m for m in sys.modules if m.startswith(('console.emulator', 'textual'))])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_http_to_ws():
    assert http_to_ws("http://127.0.0.1:3210") == "ws://127.0.0.1:3210/api/sync"
    assert http_to_ws("https://happy-otter-123.convex.cloud/") == "wss://happy-otter-123.convex.cloud/api/sync"


async def test_subscription_follows_another_clients_mutation(emulator):
    name = channel()
    seen = []
    async with SyncClient(emulator.url) as watcher, SyncClient(emulator.url) as writer:
        sub = watcher.subscribe("messages:list", {"channel": name}, callback=lambda r: seen.append(r.value))
        assert (await sub.next(5)).value == []
        await writer.mutation("messages:send", {"channel": name, "body": "one"})
        assert (await sub.next(5)).value == ["one"]
        assert seen == [[], ["one"]]


async def test_mutation_resolves_after_its_transition(emulator):
    name = channel()
    async with SyncClient(emulator.url) as client:
        sub = client.subscribe("messages:list", {"channel": name})
        await sub.next(5)
        await client.mutation("messages:send", {"channel": name, "body": "mine"})
        # JS client rule: by the time the mutation resolves, subscriptions show its effect.
        assert sub.result.value == ["mine"]


async def test_async_iteration_and_shared_queries(emulator):
    name = channel()
    async with SyncClient(emulator.url) as client:
        first = client.subscribe("messages:list", {"channel": name})
        second = client.subscribe("messages:list", {"channel": name})
        assert client.subscription_count == 1
        results = []
        async for result in first:
            results.append(result.value)
            if len(results) == 1:
                await client.mutation("messages:send", {"channel": name, "body": "a"})
            if result.value == ["a"]:
                break
        assert results[-1] == ["a"]
        assert (await second.next(5)).value in ([], ["a"])
        first.unsubscribe()
        assert client.subscription_count == 1
        second.unsubscribe()
        assert client.subscription_count == 0
        await wait_until(lambda: get_hub(emulator.deployment).stats()["subscriptions"] == 0
                         or all(len(c.query_set) == 0 for c in get_hub(emulator.deployment).connections))


async def test_query_action_and_errors(emulator):
    async with SyncClient(emulator.url) as client:
        assert await client.action("messages:double", {"x": 21.0}) == 42.0
        assert await client.query("counters:get", {"name": channel()}) == 0.0
        with pytest.raises(FunctionError) as failed_query:
            await client.query("messages:fails")
        assert failed_query.value.data == {"code": 7}
        with pytest.raises(FunctionError) as failed_mutation:
            await client.mutation("messages:fails_mutation")
        assert failed_mutation.value.data == "nope" and "nope" in failed_mutation.value.message


async def test_admin_acting_as_and_user_auth(emulator):
    token = await asyncio.to_thread(auth_for(emulator.deployment).mint, "user_9")
    async with SyncClient(emulator.url, AdminAuth(emulator.admin_key)) as admin:
        mapping = await admin.query("_system/frontend/getTableMapping")
        assert "messages" in mapping.values()
        assert admin.auth_confirmed
        admin.set_auth(AdminAuth(emulator.admin_key, {"subject": "s1", "issuer": "https://i.test"}))
        assert await admin.query("messages:whoami") == "https://i.test|s1"
        assert "AdminAuth(" in repr(admin.auth) and emulator.admin_key not in repr(admin.auth)
    async with SyncClient(emulator.url, UserAuth(token)) as user:
        who = user.subscribe("messages:whoami")
        assert (await who.next(20)).value.endswith("|user_9")
        user.set_auth(None)
        assert (await who.next(10)).value is None


async def test_rejected_token_reports_and_goes_on_anonymous(emulator):
    errors = []
    client = SyncClient(emulator.url, AdminAuth("convex-console|0000"), initial_backoff=0.01)
    client.on_auth_error(errors.append)
    try:
        await client.connect()
        await wait_until(lambda: errors, timeout=10)
        assert client.auth is None
        assert await client.query("messages:whoami") is None
    finally:
        await client.close()
    assert client.state is SyncState.CLOSED


async def test_reconnects_and_resubscribes_after_the_server_drops_it(emulator):
    name = channel()
    hub = get_hub(emulator.deployment)
    states = []
    async with SyncClient(emulator.url, initial_backoff=0.01) as client, SyncClient(emulator.url) as writer:
        client.on_state_change(lambda state, error: states.append(state))
        sub = client.subscribe("messages:list", {"channel": name})
        assert (await sub.next(5)).value == []
        session = client.session_id
        for connection in list(hub.connections):
            if connection.session and connection.session.session_id == session:
                asyncio.run_coroutine_threadsafe(connection.ws.close(1011), emulator._loop).result(5)
        await wait_until(lambda: SyncState.RECONNECTING in states, timeout=10)
        await client.wait_for_state(SyncState.CONNECTED, timeout=10)
        assert client.connection_count == 2
        await writer.mutation("messages:send", {"channel": name, "body": "after"})
        deadline = time.monotonic() + 10
        while (sub.result.value if sub.result else None) != ["after"]:
            await sub.next(max(0.01, deadline - time.monotonic()))
        assert states[-1] is SyncState.CONNECTED


async def test_pending_mutation_survives_a_restart_of_the_server(tmp_path):
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    data_dir = tmp_path / "data"
    first = start_emulator(app="sync_app", data_dir=data_dir, port=port)
    name = channel()
    client = SyncClient(first.url, initial_backoff=0.02, max_backoff=0.2)
    try:
        await client.connect()
        sub = client.subscribe("messages:list", {"channel": name})
        await sub.next(5)
        await client.mutation("messages:send", {"channel": name, "body": "before"})
        old_ts = client.max_observed_ts
        await asyncio.to_thread(first.stop)
        await client.wait_for_state(SyncState.RECONNECTING, timeout=10)
        pending = asyncio.ensure_future(client.mutation("messages:send", {"channel": name, "body": "queued"}))
        second = await asyncio.to_thread(start_emulator, app="sync_app", data_dir=data_dir, port=port)
        try:
            await client.wait_for_state(SyncState.CONNECTED, timeout=15)
            await asyncio.wait_for(pending, 10)
            assert sub.result.value == ["before", "queued"]
            assert client.max_observed_ts > old_ts  # timestamps keep increasing across restarts
        finally:
            await client.close()
            await asyncio.to_thread(second.stop)
    finally:
        await client.close()
        first.stop()


async def test_refused_socket_raises_sync_refused(emulator):
    client = SyncClient(emulator.site_url)  # the site port has no sync endpoint
    with pytest.raises(SyncRefused) as refused:
        await client.connect(timeout=10)
    assert refused.value.status is not None and 400 <= refused.value.status < 500
    assert client.state is SyncState.FAILED and isinstance(client.error, SyncRefused)
    with pytest.raises(SyncRefused):
        await client.mutation("messages:send", {"channel": "x", "body": "y"})
    await client.close()


async def test_unreachable_deployment_keeps_reconnecting():
    sock = bind_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    states = []
    client = SyncClient(f"http://127.0.0.1:{port}", initial_backoff=0.01, max_backoff=0.05)
    client.on_state_change(lambda state, error: states.append(state))
    client.start()
    await client.wait_for_state(SyncState.RECONNECTING, timeout=5)
    with pytest.raises(asyncio.TimeoutError):
        await client.wait_for_state(SyncState.CONNECTED, timeout=0.3)
    await client.close()
    assert states[:2] == [SyncState.CONNECTING, SyncState.RECONNECTING] and states[-1] is SyncState.CLOSED
    assert SyncState.CONNECTED not in states


async def test_thousand_subscriptions_through_the_client(emulator):
    prefix = channel()
    async with SyncClient(emulator.url) as client:
        subs = [client.subscribe("messages:list", {"channel": f"{prefix}-{i}"}) for i in range(1000)]
        await wait_until(lambda: all(s.result is not None for s in subs), timeout=30)
        await client.mutation("messages:send", {"channel": f"{prefix}-7", "body": "x"})
        assert subs[7].result.value == ["x"] and subs[8].result.value == []


async def test_live_data_page_through_the_system_query(emulator):
    """What the Data screen does: watch the visible page of a table as admin."""
    name = channel()
    args = {"paginationOpts": {"numItems": 5.0, "cursor": None}, "table": "messages", "filters": None}
    async with SyncClient(emulator.url, AdminAuth(emulator.admin_key)) as client:
        page = client.subscribe("_system/frontend/paginatedTableDocuments", args)
        before = (await page.next(10)).unwrap()
        assert set(before) >= {"page", "isDone", "continueCursor"}
        await client.mutation("messages:send", {"channel": name, "body": "fresh"})
        after = page.result.unwrap()
        assert after["page"][0]["body"] == "fresh" and after["page"][0]["channel"] == name
        assert isinstance(after["page"][0]["_creationTime"], float)


OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("subscribe"), st.integers(0, 2)),
        st.tuples(st.just("unsubscribe"), st.integers(0, 5)),
        st.tuples(st.just("send"), st.integers(0, 2)),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_resolved_mutations_are_visible_in_every_subscription(emulator, operations):
    """Property: once a mutation resolves, every live subscription shows the database state
    that includes it (checked against a model of the channels)."""

    async def scenario() -> None:
        prefix = channel()
        model: dict[int, list[str]] = {0: [], 1: [], 2: []}
        async with SyncClient(emulator.url) as client:
            live: list[tuple[int, object]] = []
            for number, (operation, argument) in enumerate(operations):
                if operation == "subscribe":
                    sub = client.subscribe("messages:list", {"channel": f"{prefix}-{argument}"})
                    assert (await sub.next(10)).value == model[argument]
                    live.append((argument, sub))
                elif operation == "unsubscribe" and live:
                    live.pop(argument % len(live))[1].unsubscribe()
                elif operation == "send":
                    body = f"m{number}"
                    await client.mutation("messages:send", {"channel": f"{prefix}-{argument}", "body": body})
                    model[argument].append(body)
                    for index, sub in live:
                        assert sub.result.value == model[index]

    asyncio.run(scenario())


def test_diff_rows():
    a, b, c, d = ({"_id": i, "v": 1} for i in "abcd")
    diff = diff_rows([a, b, c], [{"_id": "d", "v": 1}, {"_id": "a", "v": 2}, c])
    assert [r["_id"] for r in diff.added] == ["d"]
    assert diff.removed == ("b",)
    assert [r["_id"] for r in diff.changed] == ["a"] and diff.touches("a") and diff.touches("b")
    assert diff.order == ("d", "a", "c") and not diff.moved and not diff.empty
    assert diff_rows([a, c], [c, a]).moved
    assert diff_rows([a, b], [a, b]).empty and not d.get("x")


@given(st.lists(st.sampled_from("abcdef"), unique=True), st.lists(st.sampled_from("abcdef"), unique=True),
       st.sets(st.sampled_from("abcdef")))
def test_diff_rows_rebuilds_the_new_page(before_ids, after_ids, edited):
    before = [{"_id": i, "v": 0} for i in before_ids]
    after = [{"_id": i, "v": int(i in edited)} for i in after_ids]
    diff = diff_rows(before, after)
    rows = {r["_id"]: r for r in before if r["_id"] not in diff.removed}
    rows.update({r["_id"]: r for r in (*diff.added, *diff.changed)})
    assert [rows[i] for i in diff.order] == after


async def test_server_pings_keep_an_idle_client_connected(emulator):
    hub = get_hub(emulator.deployment)
    saved = hub.ping_interval
    hub.ping_interval = 0.1
    try:
        states = []
        async with SyncClient(emulator.url, server_inactivity_timeout=0.5) as client:
            client.on_state_change(lambda state, error: states.append(state))
            # Pings only, over more than two inactivity windows.
            await wait_until(lambda: client.messages_received >= 12, timeout=10)
            assert states == [] and client.connection_count == 1
            hub.ping_interval = 30.0
            await client.wait_for_state(SyncState.RECONNECTING, timeout=5)
            assert client._last_close_reason == "InactiveServer"
    finally:
        hub.ping_interval = saved
