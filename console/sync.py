"""The console's WebSocket sync client (PROTOCOL §5): live queries, mutations, actions.

Works against any Convex deployment; it never imports the emulator.

    client = SyncClient("http://127.0.0.1:3210", AdminAuth(key))
    await client.connect()                 # raises SyncRefused: poll over HTTP instead
    sub = client.subscribe("posts:list", {}, callback=on_result)
    async for result in sub: ...           # QueryResult; latest wins, intermediate ones skipped
    value = await client.mutation("posts:publish", {"id": post_id})
    client.on_state_change(lambda state, error: ...)   # connected / reconnecting / failed
    diff = diff_rows(old_page, new_page)   # which rows of a live page to update
    await client.close()

Auth is per connection (as in the protocol): use one client per identity.

Rules from the JS client: a mutation resolves once a Transition with `ts` at least its commit
ts has arrived (so subscriptions already show its effect); after a reconnect the client sends
Connect, Authenticate, the whole query set, then the unanswered mutations with their original
request ids (the server answers those from its record); an action already sent when the
connection dropped fails with `ConnectionLost` rather than running twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import websockets
from websockets.exceptions import InvalidStatus, InvalidHandshake, WebSocketException

from console import values

log = logging.getLogger(__name__)

CLIENT_NAME = "convex-console-0.1.0"
SERVER_INACTIVITY_TIMEOUT = 60.0  # as the JS client: no message for this long -> reconnect


# --- errors ------------------------------------------------------------------------------------


class SyncError(Exception):
    """Base class of the sync client's errors."""


class SyncRefused(SyncError):
    """The deployment refused the WebSocket upgrade: use HTTP polling instead."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class SyncFatalError(SyncError):
    """The server sent FatalError: the session cannot go on."""


class SyncClosed(SyncError):
    """The client was closed."""


class ConnectionLost(SyncError):
    """An action was in flight when the connection dropped; it may or may not have run."""


class FunctionError(SyncError):
    """A function failed: `message` as the server wrote it, `data` the ConvexError data."""

    def __init__(self, message: str, data: Any = None, log_lines: list[str] | None = None, *, has_data: bool = False):
        super().__init__(message)
        self.message = message
        self.data = data
        self.has_data = has_data or data is not None
        self.log_lines = log_lines or []


# --- auth --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AdminAuth:
    """An admin (deploy) key, optionally acting as a user (UserIdentity attributes)."""

    key: str
    acting_as: dict | None = None

    def __repr__(self) -> str:  # never show the key
        return f"AdminAuth(acting_as={self.acting_as is not None})"

    def message(self, base_version: int) -> dict:
        message = {"type": "Authenticate", "baseVersion": base_version, "tokenType": "Admin", "value": self.key}
        if self.acting_as is not None:
            message["impersonating"] = self.acting_as
        return message


@dataclass(frozen=True)
class UserAuth:
    """A user's JWT (from the app's auth provider)."""

    token: str

    def __repr__(self) -> str:
        return "UserAuth(<jwt>)"

    def message(self, base_version: int) -> dict:
        return {"type": "Authenticate", "baseVersion": base_version, "tokenType": "User", "value": self.token}


Auth = AdminAuth | UserAuth | None


# --- results and state -------------------------------------------------------------------------


class SyncState(str, enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True)
class QueryResult:
    ok: bool
    value: Any = None
    error_message: str = ""
    error_data: Any = None
    log_lines: tuple[str, ...] = ()
    ts: int = 0  # the Transition's timestamp (ns)

    def unwrap(self) -> Any:
        if self.ok:
            return self.value
        raise FunctionError(self.error_message, self.error_data, list(self.log_lines))


def http_to_ws(url: str) -> str:
    """A deployment URL (http(s)://host) -> its sync endpoint ws(s)://host/api/sync."""
    url = url.rstrip("/")
    if url.startswith("https://"):
        url = "wss://" + url[len("https://") :]
    elif url.startswith("http://"):
        url = "ws://" + url[len("http://") :]
    if url.endswith("/sync"):
        return url
    return url + "/api/sync"


def _canonical_args(args: dict | None) -> tuple[list, str]:
    encoded = [values.encode(dict(args or {}))]
    return encoded, json.dumps(encoded, sort_keys=True, separators=(",", ":"))


def _dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


# --- subscriptions -----------------------------------------------------------------------------


class _Query:
    """One query in the set, shared by every Subscription with the same path and args."""

    def __init__(self, query_id: int, path: str, encoded_args: list, key: str):
        self.key = key
        self.query_id = query_id
        self.path = path
        self.encoded_args = encoded_args
        self.result: QueryResult | None = None
        self.handles: list[Subscription] = []

    def add_message(self) -> dict:
        return {"type": "Add", "queryId": self.query_id, "udfPath": self.path, "args": self.encoded_args}


class Subscription:
    """A live query. Iterate it (`async for result in sub`) or pass a callback."""

    def __init__(self, client: "SyncClient", query: _Query, callback: Callable | None):
        self._client = client
        self._query = query
        self._callback = callback
        self._latest: QueryResult | None = None
        self._fresh = asyncio.Event()
        self._closed = False
        self.path = query.path

    @property
    def result(self) -> QueryResult | None:
        """The latest result, or None while loading."""
        return self._latest

    @property
    def active(self) -> bool:
        return not self._closed

    def unsubscribe(self) -> None:
        if not self._closed:
            self._closed = True
            self._fresh.set()
            self._client._release(self)

    def _deliver(self, result: QueryResult) -> None:
        if self._closed:
            return
        self._latest = result
        self._fresh.set()
        if self._callback is not None:
            try:
                outcome = self._callback(result)
                if inspect.isawaitable(outcome):
                    asyncio.ensure_future(outcome)
            except Exception:  # a broken callback must not break the connection
                log.exception("subscription callback failed")

    def _end(self) -> None:
        self._closed = True
        self._fresh.set()

    async def next(self, timeout: float | None = None) -> QueryResult:
        """Wait for a result newer than the last one returned (the current one at first)."""
        if not self._fresh.is_set():
            await asyncio.wait_for(self._fresh.wait(), timeout)
        if self._closed:
            raise StopAsyncIteration
        self._fresh.clear()
        return self._latest

    def __aiter__(self) -> AsyncIterator[QueryResult]:
        return self

    async def __anext__(self) -> QueryResult:
        return await self.next()


@dataclass
class _Request:
    request_id: int
    kind: str  # "Mutation" | "Action"
    message: dict
    future: asyncio.Future
    sent_on: int = -1  # connection number it was sent on, -1 = not sent
    completed_ts: int | None = None  # mutation answered, waiting for a Transition this new
    result: Any = None


# --- the client --------------------------------------------------------------------------------


class SyncClient:
    def __init__(
        self,
        url: str,
        auth: Auth = None,
        *,
        client_name: str = CLIENT_NAME,
        server_inactivity_timeout: float = SERVER_INACTIVITY_TIMEOUT,
        initial_backoff: float = 0.1,
        max_backoff: float = 16.0,
        open_timeout: float = 10.0,
    ):
        self.url = url
        self.ws_url = http_to_ws(url)
        self._auth = auth
        self.client_name = client_name
        self.server_inactivity_timeout = server_inactivity_timeout
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.open_timeout = open_timeout
        self.session_id = str(uuid.uuid4())
        self.state = SyncState.IDLE
        self.error: BaseException | None = None
        self.last_auth_error: str | None = None
        self.auth_confirmed = False  # the server acknowledged the current auth (identity bump)
        self.connection_count = 0
        self.messages_received = 0  # server messages, Pings included (for diagnostics)
        self.last_message_at: float | None = None  # time.monotonic() of the last one
        self.max_observed_ts: int | None = None
        self._state_callbacks: list[Callable] = []
        self._auth_error_callbacks: list[Callable] = []
        self._state_changed = asyncio.Event()
        self._queries: dict[str, _Query] = {}  # canonical key -> query
        self._queries_by_id: dict[int, _Query] = {}
        self._next_query_id = 0
        self._next_request_id = 0
        self._requests: dict[int, _Request] = {}
        self._task: asyncio.Task | None = None
        self._ws = None
        self._outbox: asyncio.Queue | None = None
        self._query_set_version = 0
        self._identity_version = 0  # Authenticates sent on this connection
        self._version = (0, 0, 0)  # the last Transition's endVersion
        self._last_close_reason: str | None = "InitialConnect"

    # -- lifecycle --

    async def __aenter__(self) -> "SyncClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def start(self) -> None:
        """Start connecting in the background (returns at once)."""
        if self._task is None:
            self._set_state(SyncState.CONNECTING)
            self._task = asyncio.create_task(self._run(), name="convex-sync")

    async def connect(self, timeout: float = 10.0) -> None:
        """Start and wait until connected. Raises SyncRefused / SyncFatalError when the
        deployment refuses, or asyncio.TimeoutError when it cannot be reached in time (the
        client keeps retrying in the background)."""
        self.start()
        await self.wait_for_state(SyncState.CONNECTED, timeout=timeout)

    async def wait_for_state(self, *states: SyncState, timeout: float | None = None) -> SyncState:
        async def wait() -> SyncState:
            while True:
                if self.state in states:
                    return self.state
                if self.state is SyncState.FAILED and self.error is not None:
                    raise self.error
                if self.state is SyncState.CLOSED:
                    raise SyncClosed("The sync client is closed")
                self._state_changed.clear()
                await self._state_changed.wait()

        async with asyncio.timeout(timeout):
            return await wait()

    async def close(self) -> None:
        if self.state is SyncState.CLOSED:
            return
        task, self._task = self._task, None
        self._set_state(SyncState.CLOSED)
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
        self._fail_all(SyncClosed("The sync client was closed"))
        for query in list(self._queries.values()):
            for handle in query.handles:
                handle._end()
        self._queries.clear()
        self._queries_by_id.clear()

    def on_state_change(self, callback: Callable[[SyncState, BaseException | None], Any]) -> Callable[[], None]:
        """`callback(state, error)` on every change; returns a function that removes it."""
        self._state_callbacks.append(callback)
        return lambda: self._state_callbacks.remove(callback) if callback in self._state_callbacks else None

    def on_auth_error(self, callback: Callable[[str], Any]) -> None:
        """`callback(message)` when the server rejects the token (the client then goes on
        without auth, as the JS client does)."""
        self._auth_error_callbacks.append(callback)

    def _set_state(self, state: SyncState, error: BaseException | None = None) -> None:
        if self.state is SyncState.CLOSED and state is not SyncState.CLOSED:
            return
        if error is not None:
            self.error = error
        elif state is SyncState.CONNECTED:
            self.error = None
        changed = state is not self.state
        self.state = state
        self._state_changed.set()
        if changed:
            for callback in list(self._state_callbacks):
                try:
                    callback(state, self.error)
                except Exception:
                    log.exception("state callback failed")

    # -- public API --

    @property
    def auth(self) -> Auth:
        return self._auth

    def set_auth(self, auth: Auth) -> None:
        """Change the identity; every subscription is re-run by the server."""
        self._auth = auth
        self.auth_confirmed = auth is None
        if self._outbox is not None:
            message = auth.message(self._identity_version) if auth else {
                "type": "Authenticate", "baseVersion": self._identity_version, "tokenType": "None"}
            self._identity_version += 1
            self._send(message)

    def subscribe(self, path: str, args: dict | None = None, callback: Callable | None = None) -> Subscription:
        """Subscribe to a query; `callback(QueryResult)` (sync or async) on every new result."""
        if self.state is SyncState.CLOSED:
            raise SyncClosed("The sync client is closed")
        encoded, key = _canonical_args(args)
        key = path + "\x00" + key
        query = self._queries.get(key)
        new = query is None
        if new:
            query = _Query(self._next_query_id, path, encoded, key)
            self._next_query_id += 1
            self._queries[key] = query
            self._queries_by_id[query.query_id] = query
        handle = Subscription(self, query, callback)
        query.handles.append(handle)
        if new:
            self._modify_query_set([query.add_message()])
        elif query.result is not None:
            asyncio.get_running_loop().call_soon(handle._deliver, query.result)
        return handle

    async def query(self, path: str, args: dict | None = None, timeout: float | None = 30.0) -> Any:
        """A one-shot query over the socket (subscribe, first result, unsubscribe)."""
        handle = self.subscribe(path, args)
        try:
            return (await handle.next(timeout)).unwrap()
        finally:
            handle.unsubscribe()

    async def mutation(self, path: str, args: dict | None = None) -> Any:
        return await self._request("Mutation", path, args)

    async def action(self, path: str, args: dict | None = None) -> Any:
        return await self._request("Action", path, args)

    @property
    def subscription_count(self) -> int:
        return len(self._queries)

    # -- internals: outgoing --

    def _release(self, handle: Subscription) -> None:
        query = handle._query
        if handle in query.handles:
            query.handles.remove(handle)
        if query.handles:
            return
        self._queries.pop(query.key, None)
        self._queries_by_id.pop(query.query_id, None)
        self._modify_query_set([{"type": "Remove", "queryId": query.query_id}])

    def _modify_query_set(self, modifications: list[dict]) -> None:
        if self._outbox is None:
            return  # sent with the whole set on (re)connect
        base = self._query_set_version
        self._query_set_version += 1
        self._send({"type": "ModifyQuerySet", "baseVersion": base, "newVersion": base + 1, "modifications": modifications})

    async def _request(self, kind: str, path: str, args: dict | None) -> Any:
        if self.state is SyncState.CLOSED:
            raise SyncClosed("The sync client is closed")
        if self.state is SyncState.FAILED:
            raise self.error or SyncError("The sync connection failed")
        request_id = self._next_request_id
        self._next_request_id += 1
        message = {"type": kind, "requestId": request_id, "udfPath": path, "args": [values.encode(dict(args or {}))]}
        request = _Request(request_id, kind, message, asyncio.get_running_loop().create_future())
        self._requests[request_id] = request
        if self._outbox is not None:
            request.sent_on = self.connection_count
            self._send(message)
        return await request.future

    def _send(self, message: dict) -> None:
        if self._outbox is not None:
            self._outbox.put_nowait(_dumps(message))

    # -- internals: the connection loop --

    async def _run(self) -> None:
        attempt = 0
        while self.state is not SyncState.CLOSED:
            try:
                ws = await websockets.connect(
                    self.ws_url,
                    additional_headers={"Convex-Client": self.client_name},
                    open_timeout=self.open_timeout,
                    max_size=None,
                    ping_interval=None,
                    compression=None,
                )
            except InvalidStatus as error:
                status = error.response.status_code
                if status < 500:
                    self._give_up(SyncRefused(f"The deployment refused the sync socket (HTTP {status})", status))
                    return
                self._last_close_reason = f"HTTP {status}"
            except (OSError, asyncio.TimeoutError, InvalidHandshake, WebSocketException) as error:
                self._last_close_reason = type(error).__name__
            else:
                if await self._session(ws):  # a healthy connection resets the backoff
                    attempt = 0
                if self.state in (SyncState.FAILED, SyncState.CLOSED):
                    return
            self._set_state(SyncState.RECONNECTING, self.error)
            delay = min(self.max_backoff, self.initial_backoff * (2**attempt)) * random.uniform(0.5, 1.0)
            attempt = min(attempt + 1, 30)
            await asyncio.sleep(delay)

    def _give_up(self, error: SyncError) -> None:
        self._set_state(SyncState.FAILED, error)
        self._fail_all(error)

    def _fail_all(self, error: BaseException) -> None:
        for request in list(self._requests.values()):
            if not request.future.done():
                request.future.set_exception(error)
        self._requests.clear()

    def _opening_messages(self) -> list[str]:
        connect = {
            "type": "Connect",
            "sessionId": self.session_id,
            "connectionCount": self.connection_count,
            "lastCloseReason": self._last_close_reason,
            "clientTs": int(time.time() * 1000),
        }
        if self.max_observed_ts is not None:
            connect["maxObservedTimestamp"] = values.ts_to_wire(self.max_observed_ts)
        messages = [connect]
        self._identity_version = 0
        self._query_set_version = 0
        self._version = (0, 0, 0)
        if self._auth is not None:
            messages.append(self._auth.message(0))
            self._identity_version = 1
        if self._queries:
            for query in self._queries.values():
                query.result = None
            messages.append(
                {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                 "modifications": [q.add_message() for q in self._queries.values()]}
            )
            self._query_set_version = 1
        for request in sorted(self._requests.values(), key=lambda r: r.request_id):
            if request.kind == "Action" and request.sent_on >= 0:
                self._requests.pop(request.request_id)
                if not request.future.done():
                    request.future.set_exception(ConnectionLost("Connection lost while action was in flight"))
                continue
            request.sent_on = self.connection_count
            messages.append(request.message)
        return [_dumps(m) for m in messages]

    async def _session(self, ws) -> bool:
        """Serve one socket until it ends; True when the server answered anything."""
        outbox: asyncio.Queue = asyncio.Queue()
        for text in self._opening_messages():  # built and queued with no await in between
            outbox.put_nowait(text)
        self._ws, self._outbox = ws, outbox
        self.connection_count += 1
        self._set_state(SyncState.CONNECTED)
        sender = asyncio.create_task(self._sender(ws, outbox))
        try:
            return await self._receive_loop(ws)
        finally:
            self._ws = self._outbox = None
            sender.cancel()
            with contextlib.suppress(BaseException):
                await sender
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(ws.close(), 2.0)

    async def _sender(self, ws, outbox: asyncio.Queue) -> None:
        with contextlib.suppress(WebSocketException, OSError):
            while True:
                await ws.send(await outbox.get())

    async def _receive_loop(self, ws) -> bool:
        heard = False
        while True:
            if self.state is SyncState.CLOSED:
                return heard
            try:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
                async with asyncio.timeout(self.server_inactivity_timeout):
                    text = await ws.recv()
            except TimeoutError:
                self._last_close_reason = "InactiveServer"
                return heard
            except WebSocketException as error:
                received = getattr(error, "rcvd", None)
                self._last_close_reason = f"closed: {received.code if received else type(error).__name__}"
                return heard
            try:
                message = json.loads(text)
                stop = self._handle(message)
            except (ValueError, KeyError, TypeError) as error:
                log.warning("bad server message (%s); reconnecting", error)
                self._last_close_reason = f"bad server message: {error}"
                return heard
            heard = True
            self.messages_received += 1
            self.last_message_at = time.monotonic()
            if stop:
                return heard

    # -- internals: incoming --

    def _handle(self, message: dict) -> bool:
        """Apply one server message; True ends this connection."""
        kind = message.get("type")
        if kind == "Transition":
            self._on_transition(message)
        elif kind in ("MutationResponse", "ActionResponse"):
            self._on_response(message)
        elif kind == "AuthError":
            return self._on_auth_error(message)
        elif kind == "FatalError":
            self._give_up(SyncFatalError(message.get("error") or "Fatal error"))
            return True
        return False

    def _on_transition(self, message: dict) -> None:
        start, end = message["startVersion"], message["endVersion"]
        start_version = (start["querySet"], start["identity"], values.ts_from_wire(start["ts"]))
        if start_version != self._version:
            raise ValueError(f"Invalid start version {start_version}, expected {self._version}")
        end_version = (end["querySet"], end["identity"], values.ts_from_wire(end["ts"]))
        ts = end_version[2]
        touched: list[_Query] = []
        for modification in message.get("modifications") or []:
            query = self._queries_by_id.get(modification.get("queryId"))
            if query is None:
                continue
            kind = modification.get("type")
            if kind == "QueryUpdated":
                query.result = QueryResult(True, values.decode(modification["value"]),
                                           log_lines=tuple(modification.get("logLines") or ()), ts=ts)
            elif kind == "QueryFailed":
                data = modification.get("errorData")
                query.result = QueryResult(False, None, modification.get("errorMessage", ""),
                                           values.decode(data) if data is not None else None,
                                           tuple(modification.get("logLines") or ()), ts)
            else:
                continue
            touched.append(query)
        if end_version[1] > start_version[1]:
            self.auth_confirmed = True
        self._version = end_version
        self.max_observed_ts = max(self.max_observed_ts or 0, ts)
        for query in touched:  # after the whole transition: callbacks see a consistent set
            for handle in list(query.handles):
                handle._deliver(query.result)
        self._resolve_completed(ts)

    def _resolve_completed(self, ts: int) -> None:
        for request_id, request in list(self._requests.items()):
            if request.completed_ts is not None and request.completed_ts <= ts:
                del self._requests[request_id]
                if not request.future.done():
                    request.future.set_result(request.result)

    def _on_response(self, message: dict) -> None:
        request = self._requests.get(message.get("requestId"))
        if request is None:
            return
        lines = list(message.get("logLines") or [])
        if not message.get("success"):
            del self._requests[request.request_id]
            data = message.get("errorData")
            error = FunctionError(str(message.get("result")), values.decode(data) if data is not None else None,
                                  lines, has_data="errorData" in message)
            if not request.future.done():
                request.future.set_exception(error)
            return
        request.result = values.decode(message.get("result"))
        if message["type"] == "ActionResponse" or message.get("ts") is None:
            del self._requests[request.request_id]
            if not request.future.done():
                request.future.set_result(request.result)
            return
        request.completed_ts = values.ts_from_wire(message["ts"])
        self._resolve_completed(self._version[2])

    def _on_auth_error(self, message: dict) -> bool:
        self.last_auth_error = str(message.get("error") or "Authentication failed")
        self._auth = None  # go on unauthenticated, as the JS client does after a failed refresh
        self.auth_confirmed = False
        self._last_close_reason = "AuthError"
        for callback in list(self._auth_error_callbacks):
            try:
                callback(self.last_auth_error)
            except Exception:
                log.exception("auth error callback failed")
        return True


# --- live pages: row diffs for a view that updates in place ------------------------------------


@dataclass(frozen=True)
class RowDiff:
    """How a page of documents changed, keyed by `_id` (see `diff_rows`)."""

    added: tuple[dict, ...]  # documents new to the page
    removed: tuple[str, ...]  # ids no longer on the page
    changed: tuple[dict, ...]  # documents still on the page whose content changed
    order: tuple[str, ...]  # the new page's ids, in order
    moved: bool  # the surviving rows changed relative order

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.moved)

    def touches(self, document_id: str) -> bool:
        return document_id in self.removed or any(d.get("_id") == document_id for d in self.changed)


def diff_rows(before: list[dict], after: list[dict], key: str = "_id") -> RowDiff:
    """Compare two pages of documents so a table can update only the rows that changed."""
    old = {row.get(key): row for row in before}
    new = {row.get(key): row for row in after}
    added = tuple(row for row in after if row.get(key) not in old)
    removed = tuple(row_id for row_id in old if row_id not in new)
    changed = tuple(row for row in after if row.get(key) in old and old[row.get(key)] != row)
    kept_old = [row_id for row_id in old if row_id in new]
    kept_new = [row.get(key) for row in after if row.get(key) in old]
    return RowDiff(added, removed, changed, tuple(row.get(key) for row in after), kept_old != kept_new)
