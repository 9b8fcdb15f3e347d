"""The emulator's sync endpoint, spoken to frame by frame over real sockets (PROTOCOL §5)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent / "peers"))

from console import values  # noqa: E402
from console.emulator.auth import auth_for  # noqa: E402
from console.emulator.server import start_emulator  # noqa: E402
from console.emulator.sync_server import get_hub  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(app="sync_app") as running:
        yield running
        assert get_hub(running.deployment).internal_errors == 0, "a sync connection task failed"


@pytest.fixture
def hub(emulator):
    hub = get_hub(emulator.deployment)
    saved = (hub.ping_interval, hub.send_timeout)
    yield hub
    hub.ping_interval, hub.send_timeout = saved


def channel() -> str:
    return f"c-{uuid.uuid4().hex[:8]}"


class Raw:
    """A bare protocol client: send dicts, receive dicts, check version chaining."""

    def __init__(self, ws):
        self.ws = ws
        self.version = {"querySet": 0, "identity": 0, "ts": values.ts_to_wire(0)}

    @classmethod
    async def open(cls, emulator, *, path="/api/sync", session_id=None, connect=True) -> "Raw":
        ws = await websockets.connect(emulator.url.replace("http", "ws", 1) + path, max_size=None)
        raw = cls(ws)
        if connect:
            await raw.send({"type": "Connect", "sessionId": session_id or str(uuid.uuid4()),
                            "connectionCount": 0, "lastCloseReason": None, "clientTs": 0})
        return raw

    async def send(self, message) -> None:
        await self.ws.send(message if isinstance(message, (str, bytes)) else json.dumps(message))

    async def recv(self, timeout: float = 10.0) -> dict:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if message["type"] == "Transition":
            assert message["startVersion"] == self.version, "Transition does not chain"
            self.version = message["endVersion"]
        return message

    async def expect(self, kind: str, timeout: float = 10.0) -> dict:
        """The next message of `kind`, skipping Pings (and Transitions when not asked for)."""
        deadline = time.monotonic() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - time.monotonic()))
            if message["type"] == kind:
                return message
            assert message["type"] in ("Ping", "Transition", "MutationResponse", "ActionResponse"), message

    async def transition_with(self, query_id: int, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = await self.expect("Transition", max(0.01, deadline - time.monotonic()))
            if any(m.get("queryId") == query_id for m in message["modifications"]):
                return message

    async def add(self, base: int, *queries: tuple[int, str, dict]) -> None:
        await self.send({"type": "ModifyQuerySet", "baseVersion": base, "newVersion": base + 1, "modifications": [
            {"type": "Add", "queryId": qid, "udfPath": path, "args": [values.encode(args)]} for qid, path, args in queries]})

    async def closed(self, timeout: float = 5.0) -> bool:
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except websockets.ConnectionClosed:
            return True

    async def close(self) -> None:
        await self.ws.close()


def mods_by_id(transition: dict) -> dict:
    return {m["queryId"]: m for m in transition["modifications"]}


def ts_of(version: dict) -> int:
    return values.ts_from_wire(version["ts"])


async def wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


# --- the happy path ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/sync", "/api/1.45.0/sync"])
async def test_subscribe_mutate_transition_chain(emulator, path):
    name = channel()
    raw = await Raw.open(emulator, path=path)
    await raw.add(0, (0, "messages:list", {"channel": name}))
    first = await raw.expect("Transition")
    assert first["startVersion"] == {"querySet": 0, "identity": 0, "ts": values.ts_to_wire(0)}
    assert first["endVersion"]["querySet"] == 1 and first["endVersion"]["identity"] == 0
    assert mods_by_id(first)[0] == {"type": "QueryUpdated", "queryId": 0, "value": [], "logLines": [], "journal": None}

    await raw.send({"type": "Mutation", "requestId": 0, "udfPath": "messages:send",
                    "args": [{"channel": name, "body": "hi"}]})
    response = await raw.expect("MutationResponse")
    assert response["success"] is True and response["requestId"] == 0
    commit_ts = values.ts_from_wire(response["ts"])
    assert commit_ts >= ts_of(first["endVersion"])
    # After the response, a Transition at or past the commit carries the new result.
    while True:
        transition = await raw.expect("Transition")
        if ts_of(transition["endVersion"]) >= commit_ts:
            break
    assert raw.version["querySet"] == 1
    values_seen = [m["value"] for m in transition["modifications"]]
    assert values_seen in ([["hi"]], []) and (values_seen or first) is not None
    await raw.close()


async def test_only_affected_queries_are_sent(emulator):
    a, b = channel(), channel()
    raw = await Raw.open(emulator)
    await raw.add(0, (0, "messages:list", {"channel": a}), (1, "messages:list", {"channel": b}))
    first = await raw.expect("Transition")
    assert set(mods_by_id(first)) == {0, 1}
    await raw.send({"type": "Mutation", "requestId": 0, "udfPath": "messages:send", "args": [{"channel": a, "body": "x"}]})
    transition = await raw.transition_with(0)
    assert set(mods_by_id(transition)) == {0}
    assert mods_by_id(transition)[0]["value"] == ["x"]
    await raw.close()


async def test_remove_query_and_failed_query(emulator):
    raw = await Raw.open(emulator)
    await raw.add(0, (0, "messages:fails", {}), (1, "messages:list", {"channel": channel()}))
    first = await raw.expect("Transition")
    failed = mods_by_id(first)[0]
    assert failed["type"] == "QueryFailed"
    assert "ConvexError" in failed["errorMessage"]
    assert values.decode(failed["errorData"]) == {"code": 7}
    await raw.send({"type": "ModifyQuerySet", "baseVersion": 1, "newVersion": 2,
                    "modifications": [{"type": "Remove", "queryId": 1}]})
    removed = await raw.expect("Transition")
    assert removed["endVersion"]["querySet"] == 2
    assert removed["modifications"] == [{"type": "QueryRemoved", "queryId": 1}]
    await raw.close()


async def test_action_and_failed_mutation(emulator):
    raw = await Raw.open(emulator)
    await raw.send({"type": "Action", "requestId": 3, "udfPath": "messages:double", "args": [{"x": 2.5}]})
    action = await raw.expect("ActionResponse")
    assert action["success"] is True and action["result"] == 5.0 and "ts" not in action
    await raw.send({"type": "Mutation", "requestId": 4, "udfPath": "messages:fails_mutation", "args": [{}]})
    failed = await raw.expect("MutationResponse")
    assert failed["success"] is False and failed["ts"] is None
    assert "nope" in failed["result"] and failed["errorData"] == "nope"
    await raw.send({"type": "Mutation", "requestId": 5, "udfPath": "messages:send", "args": [{"channel": 1}]})
    invalid = await raw.expect("MutationResponse")
    assert invalid["success"] is False and "channel" in invalid["result"]
    await raw.close()


# --- identity ------------------------------------------------------------------------------------


async def test_authenticate_bumps_identity_and_reruns_queries(emulator):
    raw = await Raw.open(emulator)
    await raw.add(0, (0, "messages:whoami", {}))
    assert mods_by_id(await raw.expect("Transition"))[0]["value"] is None
    await raw.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin", "value": emulator.admin_key,
                    "impersonating": {"subject": "u1", "issuer": "https://issuer.test"}})
    bumped = await raw.expect("Transition")
    assert bumped["startVersion"]["identity"] == 0 and bumped["endVersion"]["identity"] == 1
    assert mods_by_id(bumped)[0]["value"] == "https://issuer.test|u1"

    token = auth_for(emulator.deployment).mint("user_7")
    await raw.send({"type": "Authenticate", "baseVersion": 1, "tokenType": "User", "value": token})
    user = await raw.expect("Transition", timeout=20)
    assert user["endVersion"]["identity"] == 2
    assert mods_by_id(user)[0]["value"].endswith("|user_7")

    await raw.send({"type": "Authenticate", "baseVersion": 2, "tokenType": "None"})
    anonymous = await raw.expect("Transition")
    assert anonymous["endVersion"]["identity"] == 3 and mods_by_id(anonymous)[0]["value"] is None
    await raw.close()


async def test_identity_bump_without_queries(emulator):
    raw = await Raw.open(emulator)
    await raw.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin", "value": emulator.admin_key})
    bumped = await raw.expect("Transition")
    assert bumped["endVersion"]["identity"] == 1 and bumped["modifications"] == []
    await raw.close()


@pytest.mark.parametrize("message", [
    {"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin", "value": "convex-console|00"},
    {"type": "Authenticate", "baseVersion": 0, "tokenType": "User", "value": "not-a-jwt"},
])
async def test_bad_token_gives_auth_error_then_close(emulator, message):
    raw = await Raw.open(emulator)
    await raw.send(message)
    error = await raw.expect("AuthError", timeout=20)
    assert error["baseVersion"] == 0 and error["authUpdateAttempted"] is True
    assert error["error"]
    assert await raw.closed()


async def test_system_query_needs_admin(emulator):
    raw = await Raw.open(emulator)
    await raw.add(0, (0, "_system/frontend/getTableMapping", {}))
    assert mods_by_id(await raw.expect("Transition"))[0]["type"] == "QueryFailed"
    await raw.send({"type": "Authenticate", "baseVersion": 0, "tokenType": "Admin", "value": emulator.admin_key})
    mapping = mods_by_id(await raw.expect("Transition"))[0]
    assert mapping["type"] == "QueryUpdated" and "messages" in mapping["value"].values()
    await raw.close()


# --- bad input -----------------------------------------------------------------------------------

BAD_FRAMES = {
    "not json": "{nope",
    "not an object": "[1, 2]",
    "no type": {"hello": 1},
    "unknown type": {"type": "Teleport"},
    "binary frame": b"\x00\x01",
    "base version ahead": {"type": "ModifyQuerySet", "baseVersion": 3, "newVersion": 4, "modifications": []},
    "version not increasing": {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 0, "modifications": []},
    "remove unknown": {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                       "modifications": [{"type": "Remove", "queryId": 9}]},
    "bad query id": {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                     "modifications": [{"type": "Add", "queryId": -1, "udfPath": "messages:list", "args": [{}]}]},
    "auth base mismatch": {"type": "Authenticate", "baseVersion": 5, "tokenType": "None"},
    "second connect": {"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 1},
    "mutation without id": {"type": "Mutation", "udfPath": "messages:send", "args": [{}]},
}


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_bad_frames_give_fatal_error_and_close(emulator, frame):
    raw = await Raw.open(emulator)
    await raw.send(frame)
    fatal = await raw.expect("FatalError")
    assert isinstance(fatal["error"], str) and fatal["error"]
    assert await raw.closed()
    # The server keeps serving.
    again = await Raw.open(emulator)
    await again.add(0, (0, "messages:list", {"channel": channel()}))
    assert (await again.expect("Transition"))["endVersion"]["querySet"] == 1
    await again.close()


async def test_out_of_order_query_set_versions(emulator):
    raw = await Raw.open(emulator)
    await raw.add(0, (0, "messages:list", {"channel": channel()}))
    await raw.expect("Transition")
    await raw.add(0, (1, "messages:list", {"channel": channel()}))  # stale base version
    fatal = await raw.expect("FatalError")
    assert "Base version 0" in fatal["error"]
    assert await raw.closed()


async def test_duplicate_query_id(emulator):
    raw = await Raw.open(emulator)
    await raw.add(0, (0, "messages:list", {"channel": "x"}))
    await raw.add(1, (0, "messages:list", {"channel": "y"}))
    assert "duplicate" in (await raw.expect("FatalError"))["error"]


@pytest.mark.parametrize("connect", [
    {"sessionId": "not-a-uuid"},
    {"sessionId": str(uuid.uuid4()), "maxObservedTimestamp": values.ts_to_wire((1 << 64) - 1)},
])
async def test_bad_connect(emulator, connect):
    raw = await Raw.open(emulator, connect=False)
    await raw.send({"type": "Connect", "connectionCount": 0, **connect})
    fatal = await raw.expect("FatalError")
    assert "UUID" in fatal["error"] or "ahead of the backend" in fatal["error"]
    assert await raw.closed()


async def test_ping_on_silence(emulator, hub):
    hub.ping_interval = 0.2
    raw = await Raw.open(emulator)
    started = time.monotonic()
    assert (await raw.recv(timeout=3))["type"] == "Ping"
    assert (await raw.recv(timeout=3))["type"] == "Ping"
    assert time.monotonic() - started < 2.0
    await raw.close()


def test_default_ping_interval_is_well_inside_the_client_timeout(emulator):
    assert get_hub(emulator.deployment).ping_interval <= 20


# --- requests are never applied twice ------------------------------------------------------------


async def _messages(emulator, name: str) -> list:
    raw = await Raw.open(emulator)
    await raw.add(0, (0, "messages:list", {"channel": name}))
    value = mods_by_id(await raw.expect("Transition"))[0]["value"]
    await raw.close()
    return value


async def test_resent_mutation_after_reconnect_returns_recorded_response(emulator, hub):
    name, session = channel(), str(uuid.uuid4())
    mutation = {"type": "Mutation", "requestId": 0, "udfPath": "messages:send_slowly",
                "args": [{"channel": name, "body": "once", "delay": 0.3}]}
    runs_before = hub.runs_started
    first = await Raw.open(emulator, session_id=session)
    await first.send(mutation)
    await wait_until(lambda: hub.runs_started == runs_before + 1)
    await first.close()  # disconnect mid-mutation

    second = await Raw.open(emulator, session_id=session)
    await second.send(mutation)  # the JS client re-sends unanswered mutations on reconnect
    response = await second.expect("MutationResponse")
    assert response["success"] is True and response["requestId"] == 0
    await second.send(mutation)  # and again, after it completed
    replay = await second.expect("MutationResponse")
    assert replay["result"] == response["result"] and replay["ts"] == response["ts"]
    await second.close()
    assert hub.runs_started == runs_before + 1
    assert await _messages(emulator, name) == ["once"]


async def test_disconnect_mid_mutation_commits_once(emulator, hub):
    name = channel()
    raw = await Raw.open(emulator)
    runs_before = hub.runs_started
    await raw.send({"type": "Mutation", "requestId": 0, "udfPath": "messages:send_slowly",
                    "args": [{"channel": name, "body": "m", "delay": 0.2}]})
    await wait_until(lambda: hub.runs_started == runs_before + 1)
    raw.ws.transport.abort()  # vanish without a close handshake
    deadline = time.monotonic() + 5
    while await _messages(emulator, name) != ["m"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert await _messages(emulator, name) == ["m"]


# --- scale and slow clients ----------------------------------------------------------------------


async def test_thousand_subscriptions_on_one_socket(emulator, hub):
    prefix = channel()
    raw = await Raw.open(emulator)
    await raw.add(0, *[(i, "messages:list", {"channel": f"{prefix}-{i}"}) for i in range(1000)])
    first = await raw.expect("Transition", timeout=30)
    assert len(first["modifications"]) == 1000
    await raw.send({"type": "Mutation", "requestId": 0, "udfPath": "messages:send",
                    "args": [{"channel": f"{prefix}-500", "body": "hit"}]})
    transition = await raw.transition_with(500)
    assert mods_by_id(transition) == {500: {"type": "QueryUpdated", "queryId": 500, "value": ["hit"],
                                           "logLines": [], "journal": None}}
    await raw.close()
    await wait_until(lambda: hub.stats()["subscriptions"] == 0)


def _raw_socket_that_never_reads(url: str, path: str = "/api/sync") -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(uuid.uuid4().bytes).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert b" 101 " in response
    return sock


def _masked_text_frame(text: str) -> bytes:
    payload = text.encode()
    mask = b"\x01\x02\x03\x04"
    header = bytes([0x81])
    length = len(payload)
    if length < 126:
        header += bytes([0x80 | length])
    elif length < 1 << 16:
        header += bytes([0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header += bytes([0x80 | 127]) + length.to_bytes(8, "big")
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_client_that_never_reads_is_dropped_without_blocking_others(emulator, hub):
    hub.send_timeout = 0.5
    blob = channel()
    big = "x" * 300_000
    healthy = await Raw.open(emulator)
    await healthy.send({"type": "Mutation", "requestId": 0, "udfPath": "counters:put_blob",
                        "args": [{"name": blob, "data": big}]})
    await healthy.expect("MutationResponse")

    stalled = await asyncio.to_thread(_raw_socket_that_never_reads, emulator.url)
    connect = {"type": "Connect", "sessionId": str(uuid.uuid4()), "connectionCount": 0}
    subscribe = {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": [
        {"type": "Add", "queryId": 0, "udfPath": "counters:get_blob", "args": [{"name": blob}]}]}
    for message in (connect, subscribe):
        stalled.sendall(_masked_text_frame(json.dumps(message)))
    connections_with_stalled = len(hub.connections)

    await healthy.add(0, (0, "counters:get", {"name": blob}))
    await healthy.expect("Transition")
    for i in range(30):  # each write makes ~300 KB for the stalled reader
        started = time.monotonic()
        await healthy.send({"type": "Mutation", "requestId": i + 1, "udfPath": "counters:put_blob",
                            "args": [{"name": blob, "data": str(i % 10) * 300_000}]})
        await healthy.expect("MutationResponse")
        assert time.monotonic() - started < 2.0, "a stalled reader slowed down another client"
        for connection in hub.connections:  # memory stays bounded: results are coalesced
            assert len(connection.pending) <= max(1, len(connection.query_set))
            assert len(connection.control) <= 3
    await wait_until(lambda: len(hub.connections) < connections_with_stalled, timeout=10)
    stalled.close()
    await healthy.close()


async def test_everything_freed_on_disconnect(emulator, hub):
    clients = [await Raw.open(emulator) for _ in range(5)]
    for raw in clients:
        await raw.add(0, (0, "messages:list", {"channel": channel()}), (1, "counters:get", {"name": "n"}))
        await raw.expect("Transition")
    assert hub.stats()["subscriptions"] >= 10
    for raw in clients:
        await raw.close()
    await wait_until(lambda: hub.stats()["connections"] == 0 and hub.stats()["subscriptions"] == 0)
    await wait_until(lambda: hub.manager.connection_count == 0)


JSON_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=5), st.floats(allow_nan=False))
JSON_VALUES = st.recursive(JSON_LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
CLIENT_MESSAGES = st.fixed_dictionaries(
    {"type": st.sampled_from(["Connect", "ModifyQuerySet", "Mutation", "Action", "Authenticate", "Event", "Nope"])},
    optional={key: JSON_VALUES for key in ("baseVersion", "newVersion", "modifications", "requestId", "udfPath",
                                           "args", "tokenType", "value", "sessionId", "maxObservedTimestamp")},
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(CLIENT_MESSAGES, min_size=1, max_size=4))
def test_random_client_messages_never_break_the_server(emulator, messages):
    """Whatever arrives, the server answers per protocol (or closes) and keeps serving."""

    hub = get_hub(emulator.deployment)
    errors_before = hub.internal_errors

    async def scenario() -> None:
        raw = await Raw.open(emulator)
        try:
            for message in messages:
                await raw.send(message)
            with contextlib.suppress(asyncio.TimeoutError, websockets.ConnectionClosed):
                while True:
                    reply = json.loads(await asyncio.wait_for(raw.ws.recv(), 0.2))
                    assert reply["type"] in ("Transition", "MutationResponse", "ActionResponse", "AuthError",
                                             "FatalError", "Ping"), reply
        finally:
            await raw.close()
        healthy = await Raw.open(emulator)
        await healthy.add(0, (0, "counters:get", {"name": "fuzz"}))
        assert (await healthy.expect("Transition"))["endVersion"]["querySet"] == 1
        await healthy.close()

    asyncio.run(scenario())
    assert hub.internal_errors == errors_before
