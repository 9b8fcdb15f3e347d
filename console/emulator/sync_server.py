"""The WebSocket sync protocol (`/api/sync`, `/api/{version}/sync`; PROTOCOL §5).

One `SyncConnection` per socket, with three tasks besides the reader:
- the updater re-runs dirty subscriptions (see `subscriptions.py`) and stages their results
  (after a commit, the hub does this for every idle connection at once: each distinct query
  runs once, and the results are staged without waking each connection's updater);
- the writer sends control messages (responses, pings, errors) in order, then one Transition
  built at send time from everything staged, so a slow reader gets coalesced results and the
  staged state stays bounded by the number of subscriptions;
- the request worker runs mutations one after another, in the order received.

Mutation and action runs are recorded per session id, so a request re-sent after a reconnect
(same sessionId, same requestId) gets the recorded response and never runs twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from console import values
from console.emulator.admin import AuthToken, parse_authorization
from console.emulator.errors import ApiError
from console.emulator.identity import Identity
from console.emulator.subscriptions import (
    QuerySet,
    Subscription,
    SubscriptionManager,
    error_result,
    identity_key,
    log_line_text,
    removed_json,
)

log = logging.getLogger(__name__)

PING_INTERVAL = 15.0  # application Ping after this much silence (the JS client gives up at 60 s)
SEND_TIMEOUT = 30.0  # one frame blocked this long: the client is hopelessly behind, drop it
MAX_CONTROL_QUEUE = 1024  # unsent responses/pings per connection before dropping it
MAX_QUEUED_REQUESTS = 1024  # mutations/actions received but not yet answered
MAX_SUBSCRIPTIONS = 20_000  # per connection
RUN_CHUNK = 64  # queries re-run concurrently per connection
SESSION_TTL = 600.0  # seconds a disconnected session's request records are kept
MAX_SESSIONS = 10_000
MAX_RECORDS_PER_SESSION = 1024

PING_TEXT = '{"type":"Ping"}'


class FatalProtocolError(Exception):
    """A client error answered with `FatalError` and a close."""


class AuthFailure(Exception):
    """A token that did not validate: `AuthError` and a close."""


def get_hub(deployment: Any) -> "SyncHub":
    """The deployment's sync hub (created on first use; tests tune its intervals here)."""
    extras = deployment.extras
    hub = extras.get("sync")
    if hub is None:
        hub = extras["sync"] = SyncHub(deployment)
    return hub


def routes(deployment: Any) -> list[WebSocketRoute]:
    hub = get_hub(deployment)
    return [
        WebSocketRoute("/api/sync", hub.endpoint),
        WebSocketRoute("/api/{version}/sync", hub.endpoint),
    ]


# --- sessions: request records that survive a reconnect ----------------------------------------


@dataclass
class SessionRecord:
    session_id: str
    requests: "collections.OrderedDict[int, asyncio.Future]" = field(default_factory=collections.OrderedDict)
    connections: int = 0
    last_seen: float = field(default_factory=time.monotonic)

    def remember(self, request_id: int, future: asyncio.Future) -> None:
        self.requests[request_id] = future
        while len(self.requests) > MAX_RECORDS_PER_SESSION:
            oldest_id, oldest = next(iter(self.requests.items()))
            if not oldest.done():
                break
            del self.requests[oldest_id]


@dataclass
class _Cycle:
    ts: int
    query_set: int
    identity_version: int
    identity: Identity
    removals: dict
    force: bool
    batch: list


@dataclass
class RequestReply:
    text: str  # the MutationResponse / ActionResponse JSON text
    commit_ts: int | None


# --- the hub: one per deployment ---------------------------------------------------------------


class SyncHub:
    def __init__(self, deployment: Any):
        self.deployment = deployment
        self.manager = SubscriptionManager(deployment.db, self._run_query)
        self.ping_interval = PING_INTERVAL
        self.send_timeout = SEND_TIMEOUT
        self.max_control_queue = MAX_CONTROL_QUEUE
        self.sessions: dict[str, SessionRecord] = {}
        self.connections: set[SyncConnection] = set()
        self.runs_started = 0  # mutation/action runs actually executed (tests check replays)
        self.internal_errors = 0  # unexpected exceptions in connection tasks
        self.manager.after_dispatch = self._fan_out_commit

    async def endpoint(self, websocket: WebSocket) -> None:
        self.manager.bind_loop()
        connection = SyncConnection(self, websocket)
        self.connections.add(connection)
        try:
            await connection.serve()
        except Exception:  # a bug: count it (tests assert none), never let it escape
            self.internal_errors += 1
            log.exception("sync connection failed")
        finally:
            self.connections.discard(connection)

    def invalidate_all(self, commit_ts: int | None = None) -> int:
        """Re-run every live subscription at or after `commit_ts`, for changes no read set can
        see (environment variables). Runs on the server's event loop; returns the connections told."""
        told = 0
        for connection in list(self.connections):
            if commit_ts is not None:
                connection.min_ts = max(connection.min_ts, commit_ts)
            connection.query_set.invalidate_all()
            told += 1
        return told

    def _fan_out_commit(self, touched: list[QuerySet]) -> None:
        """Re-run what a commit touched for every idle connection at once: one run per
        distinct query, then each connection's results are staged without a task hop."""
        ts = self.manager.observed_ts
        cycles = []
        for query_set in touched:
            connection = query_set.owner
            if connection is None or connection.cycling or connection.closing:
                query_set.wake()  # busy: its own updater picks the dirty queries up next
                continue
            cycles.append((connection, connection.begin_cycle(ts)))
        if cycles:
            asyncio.ensure_future(self._run_fan_out(cycles))

    async def _run_fan_out(self, cycles: list) -> None:
        futures: dict[tuple, asyncio.Future] = {}
        try:
            for connection, cycle in cycles:
                who = identity_key(cycle.identity)
                for subscription in cycle.batch:
                    if subscription.args is not None:
                        key = (subscription.path, subscription.args_key, who, cycle.ts)
                        if key not in futures:
                            futures[key] = self.manager.run_shared(
                                subscription.path, subscription.args, subscription.args_key, cycle.identity, cycle.ts)
            if futures:
                await asyncio.wait(list(futures.values()))
        finally:
            for connection, cycle in cycles:
                if connection.closing:
                    connection.cycling = False
                    continue
                results = []
                who = identity_key(cycle.identity)
                for subscription in cycle.batch:
                    if subscription.args is None:
                        results.append(error_result(subscription.args_error))
                        continue
                    future = futures.get((subscription.path, subscription.args_key, who, cycle.ts))
                    if future is None or not future.done() or future.cancelled():
                        results.append(error_result("The query run was interrupted"))
                    else:
                        results.append(future.result())
                try:
                    connection.finish_cycle(cycle, results)
                except Exception:  # one broken connection must not starve the others
                    log.exception("sync: staging results failed")
                    connection.cycling = False

    def stats(self) -> dict:
        return {
            "connections": len(self.connections),
            "subscriptions": sum(len(c.query_set) for c in self.connections),
            "sessions": len(self.sessions),
            "query_sets": self.manager.connection_count,
        }

    # -- sessions --

    def open_session(self, session_id: str) -> SessionRecord:
        self._prune_sessions()
        record = self.sessions.get(session_id)
        if record is None:
            record = self.sessions[session_id] = SessionRecord(session_id)
        record.connections += 1
        record.last_seen = time.monotonic()
        return record

    def close_session(self, record: SessionRecord) -> None:
        record.connections -= 1
        record.last_seen = time.monotonic()

    def _prune_sessions(self) -> None:
        now = time.monotonic()
        idle = [r for r in self.sessions.values() if r.connections <= 0]
        for record in idle:
            if now - record.last_seen > SESSION_TTL:
                del self.sessions[record.session_id]
        if len(self.sessions) >= MAX_SESSIONS:
            idle = sorted((r for r in self.sessions.values() if r.connections <= 0), key=lambda r: r.last_seen)
            for record in idle[: len(self.sessions) - MAX_SESSIONS + 1]:
                del self.sessions[record.session_id]

    # -- running functions --

    async def run_function(self, path: str, args: dict, identity: Identity, udf_type: str) -> Any:
        runner = self.deployment.runner
        run_async = getattr(runner, "run_async", None)
        if run_async is not None:
            return await run_async(path, args, identity=identity, expected_type=udf_type, caller="ws")
        return await asyncio.to_thread(
            runner.run, path, args, identity=identity, expected_type=udf_type, caller="ws"
        )

    async def _run_query(self, path: str, args: dict, identity: Identity) -> Any:
        return await self.run_function(path, args, identity, "query")

    async def run_request(self, kind: str, request_id: int, path: str, args: Any, identity: Identity) -> RequestReply:
        """Run a mutation or action once and build its response (never raises)."""
        response_type = "MutationResponse" if kind == "mutation" else "ActionResponse"
        if isinstance(args, str):  # the args did not decode
            return RequestReply(_failure_text(response_type, request_id, args, None, []), None)
        self.runs_started += 1
        try:
            outcome = await self.run_function(path, args, identity, kind)
        except Exception as error:
            return RequestReply(_failure_text(response_type, request_id, f"Server error: {error}", None, []), None)
        lines = [log_line_text(line) for line in (getattr(outcome, "log_lines", None) or [])]
        if outcome.status != "success":
            text = _failure_text(
                response_type, request_id, outcome.error_message, outcome.error_data, lines,
                has_error_data=bool(getattr(outcome, "is_convex_error", False)),
            )
            return RequestReply(text, None)
        message = {
            "type": response_type,
            "requestId": request_id,
            "success": True,
            "result": values.encode(outcome.value),
            "logLines": lines,
        }
        commit_ts = None
        if kind == "mutation":
            commit_ts = getattr(outcome, "commit_ts", None) or self.latest_ts()
            message["ts"] = values.ts_to_wire(commit_ts)
        return RequestReply(_dumps(message), commit_ts)

    def latest_ts(self) -> int:
        return max(self.manager.observed_ts, int(getattr(self.deployment.db, "last_commit_ts", 0) or 0))

    # -- auth --

    async def identity_for(self, message: dict) -> Identity:
        token_type = message.get("tokenType")
        if token_type == "None":
            return Identity.anonymous()
        value = message.get("value")
        if token_type not in ("Admin", "User"):
            raise FatalProtocolError(f"Unknown tokenType {token_type!r}")
        if not isinstance(value, str):
            raise FatalProtocolError("Authenticate needs a string `value`")
        impersonating = message.get("impersonating")
        if token_type == "Admin":
            if impersonating is not None and not isinstance(impersonating, dict):
                raise AuthFailure("`impersonating` must be an object of user identity attributes")
            try:  # also takes `<key>:<base64 identity>`, as the Authorization header does
                token = parse_authorization("Convex " + value, {})
            except ApiError as error:
                raise AuthFailure(error.message) from None
            if impersonating is not None:
                token = AuthToken("admin", token.secret, impersonating)
        else:
            token = AuthToken("user", value)
        auth = getattr(self.deployment, "admin_auth", None) or getattr(self.deployment, "auth", None)
        if not hasattr(auth, "identity_for"):
            raise AuthFailure("This deployment has no auth configured")
        try:
            return await asyncio.to_thread(auth.identity_for, token)
        except ApiError as error:
            raise AuthFailure(error.message) from None
        except ValueError as error:
            raise AuthFailure(str(error)) from None


def _dumps(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def _failure_text(
    response_type: str, request_id: int, message: Any, error_data: Any, lines: list, *, has_error_data: bool = False
) -> str:
    reply = {
        "type": response_type,
        "requestId": request_id,
        "success": False,
        "result": str(message or "Function failed"),
        "logLines": lines,
    }
    if response_type == "MutationResponse":
        reply["ts"] = None
    if has_error_data or error_data is not None:
        reply["errorData"] = values.encode(error_data)
    return _dumps(reply)


def _version_json(query_set: int, identity: int, ts: int) -> str:
    return f'{{"querySet":{query_set},"identity":{identity},"ts":"{values.ts_to_wire(ts)}"}}'


def _decode_args(raw: Any) -> dict | str:
    """`[ {encoded object} ]` (or a bare object) -> dict, or an error message."""
    if isinstance(raw, list):
        if len(raw) != 1:
            return f"Expected args to be an array with one object, got {len(raw)} elements"
        raw = raw[0]
    if not isinstance(raw, dict):
        return "Expected args to be an object"
    try:
        decoded = values.decode(raw)
    except ValueError as error:
        return f"Invalid args: {error}"
    if not isinstance(decoded, dict):
        return "Expected args to be an object"
    return decoded


def _non_negative_int(message: dict, key: str) -> int:
    value = message.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FatalProtocolError(f"{message.get('type')}: `{key}` must be a non-negative integer")
    return value


def _udf_path(message: dict) -> str:
    path = message.get("udfPath")
    if not isinstance(path, str) or not path:
        raise FatalProtocolError(f"{message.get('type')}: `udfPath` must be a non-empty string")
    return path


# --- one socket --------------------------------------------------------------------------------


class SyncConnection:
    def __init__(self, hub: SyncHub, websocket: WebSocket):
        self.hub = hub
        self.ws = websocket
        self.session: SessionRecord | None = None
        self._connected = False
        self.identity: Identity = Identity.anonymous()
        self.query_set = QuerySet(self._wake_updater, owner=self)
        # Versions received from the client.
        self.received_query_set = 0
        self.identity_version = 0
        # Versions: last sent (`sent`) and ready to send (`ready`) as (querySet, identity, ts).
        self.sent = (0, 0, 0)
        self.ready = (0, 0, 0)
        self.pending: dict[int, str] = {}  # query id -> staged modification JSON
        self.staged_removals: dict[int, str] = {}
        self.transition_due = False
        self.force_transition = False
        self.cycling = False  # a cycle (this connection's or the hub's fan-out) is running
        self.min_ts = 0
        self.control: collections.deque[str] = collections.deque()
        self.closing = False
        self._writer_wake = asyncio.Event()
        self._updater_wake = asyncio.Event()
        self._requests: asyncio.Queue = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._action_tasks: set[asyncio.Task] = set()
        self._drop_reason: str | None = None

    # -- lifecycle --

    async def serve(self) -> None:
        await self.ws.accept()
        self.hub.manager.register(self.query_set)
        self._tasks = [
            asyncio.create_task(self._writer()),
            asyncio.create_task(self._updater()),
            asyncio.create_task(self._request_worker()),
        ]
        reader = asyncio.create_task(self._read_loop())
        try:
            done, _ = await asyncio.wait([reader, self._tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                final = reader.result()
                if final is not None:
                    await self._flush_and_close(final)
            else:  # the writer gave up: the client is too slow or gone
                reader.cancel()
                await self._close(1011 if self._drop_reason else 1000)
        finally:
            reader.cancel()
            await self._cleanup()

    async def _read_loop(self) -> str | None:
        """Read until disconnect; returns a final message (FatalError/AuthError) to send."""
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return None
                text = message.get("text")
                if text is None:
                    raise FatalProtocolError("Binary frames are not supported: send JSON text frames")
                await self._handle_text(text)
        except FatalProtocolError as error:
            return _dumps({"type": "FatalError", "error": str(error)})
        except AuthFailure as error:
            return _dumps(
                {"type": "AuthError", "error": str(error), "baseVersion": self.identity_version, "authUpdateAttempted": True}
            )
        except (WebSocketDisconnect, RuntimeError):
            return None

    async def _flush_and_close(self, final_text: str) -> None:
        self.closing = True
        self.control.append(final_text)
        self._writer_wake.set()
        writer = self._tasks[0]
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(writer), self.hub.send_timeout)
        await self._close(1000)

    async def _close(self, code: int) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(code), 2.0)

    async def _cleanup(self) -> None:
        self.closing = True
        for task in [*self._tasks, *self._action_tasks]:
            task.cancel()
        outcomes = await asyncio.gather(*self._tasks, *self._action_tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, Exception):
                self.hub.internal_errors += 1
                log.error("sync task failed", exc_info=outcome)
        self.hub.manager.unregister(self.query_set)
        self.query_set.clear()
        self.pending.clear()
        self.staged_removals.clear()
        self.control.clear()
        while not self._requests.empty():
            self._requests.get_nowait()
        if self.session is not None:
            self.hub.close_session(self.session)

    # -- incoming messages --

    async def _handle_text(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError as error:
            raise FatalProtocolError(f"Invalid JSON in client message: {error}") from None
        if not isinstance(message, dict):
            raise FatalProtocolError("A client message must be a JSON object")
        kind = message.get("type")
        handler = self._HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            raise FatalProtocolError(f"Unknown client message type {kind!r}")
        await handler(self, message)

    async def _on_connect(self, message: dict) -> None:
        if self._connected:
            raise FatalProtocolError("Received a second Connect on the same socket")
        self._connected = True
        session_id = message.get("sessionId")
        try:
            session_id = str(uuid.UUID(str(session_id)))
        except ValueError:
            raise FatalProtocolError(f"Connect: sessionId {session_id!r} is not a UUID") from None
        observed = message.get("maxObservedTimestamp")
        if observed is not None:
            try:
                observed_ts = values.ts_from_wire(observed)
            except (ValueError, TypeError):
                raise FatalProtocolError("Connect: maxObservedTimestamp is not a timestamp") from None
            latest = self.hub.latest_ts()
            if observed_ts > latest:
                raise FatalProtocolError(
                    f"Client has observed a timestamp {observed_ts} ahead of the backend latest "
                    f"known timestamp {latest}. This can happen if the backend was restored "
                    "from an older state."
                )
        if self.session is not None:  # requests arrived before Connect
            self.hub.close_session(self.session)
        self.session = self.hub.open_session(session_id)

    async def _on_modify_query_set(self, message: dict) -> None:
        base = _non_negative_int(message, "baseVersion")
        new = _non_negative_int(message, "newVersion")
        if base != self.received_query_set:
            raise FatalProtocolError(
                f"Base version {base} passed up doesn't match the current version {self.received_query_set}"
            )
        if new <= base:
            raise FatalProtocolError(f"newVersion {new} must be greater than baseVersion {base}")
        modifications = message.get("modifications")
        if not isinstance(modifications, list):
            raise FatalProtocolError("ModifyQuerySet: `modifications` must be an array")
        adds, removes = self._check_modifications(modifications)
        self.received_query_set = new
        for query_id in removes:
            self.query_set.remove(query_id)
            self.pending.pop(query_id, None)
            self.staged_removals[query_id] = removed_json(query_id)
        for subscription in adds:
            self.staged_removals.pop(subscription.query_id, None)
            self.query_set.add(subscription)
        self.force_transition = True
        self._wake_updater()

    def _check_modifications(self, modifications: list) -> tuple[list[Subscription], list[int]]:
        """Validate the whole batch first, so a bad one changes nothing."""
        adds: list[Subscription] = []
        removes: list[int] = []
        present = set(self.query_set.subscriptions)
        for modification in modifications:
            if not isinstance(modification, dict):
                raise FatalProtocolError("ModifyQuerySet: each modification must be an object")
            kind = modification.get("type")
            query_id = _non_negative_int({**modification, "type": f"ModifyQuerySet {kind}"}, "queryId")
            if kind == "Add":
                if query_id in present:
                    raise FatalProtocolError(f"ModifyQuerySet: duplicate query id {query_id}")
                adds.append(self._new_subscription(query_id, modification))
                present.add(query_id)
            elif kind == "Remove":
                if query_id not in present:
                    raise FatalProtocolError(f"ModifyQuerySet: removing unknown query id {query_id}")
                removes.append(query_id)
                present.discard(query_id)
            else:
                raise FatalProtocolError(f"ModifyQuerySet: unknown modification type {kind!r}")
        if len(present) > MAX_SUBSCRIPTIONS:
            raise FatalProtocolError(f"Too many queries on one connection (limit {MAX_SUBSCRIPTIONS})")
        return adds, removes

    def _new_subscription(self, query_id: int, modification: dict) -> Subscription:
        path = _udf_path({**modification, "type": "ModifyQuerySet Add"})
        raw_args = modification.get("args")
        decoded = _decode_args(raw_args)
        args_key = json.dumps(raw_args, sort_keys=True, separators=(",", ":"))
        if isinstance(decoded, str):
            return Subscription(query_id, path, None, args_key, args_error=decoded)
        return Subscription(query_id, path, decoded, args_key)

    async def _on_request(self, message: dict) -> None:
        if self.session is None:  # no Connect yet: requests still get a (private) record
            self.session = self.hub.open_session(str(uuid.uuid4()))
        kind = "mutation" if message["type"] == "Mutation" else "action"
        request_id = _non_negative_int(message, "requestId")
        path = _udf_path(message)
        item = (kind, request_id, path, _decode_args(message.get("args")), self.identity)
        if self._requests.qsize() + len(self._action_tasks) >= MAX_QUEUED_REQUESTS:
            raise FatalProtocolError("Too many requests in flight on this connection")
        if kind == "mutation":
            self._requests.put_nowait(item)
        else:  # actions run concurrently, as on Convex
            task = asyncio.create_task(self._execute(*item))
            self._action_tasks.add(task)
            task.add_done_callback(self._action_tasks.discard)

    async def _on_authenticate(self, message: dict) -> None:
        base = _non_negative_int(message, "baseVersion")
        if base != self.identity_version:
            raise FatalProtocolError(
                f"Authenticate: base version {base} doesn't match the current identity version {self.identity_version}"
            )
        identity = await self.hub.identity_for(message)
        self.identity = identity
        self.identity_version += 1
        self.query_set.invalidate_all()
        self.force_transition = True
        self._wake_updater()

    async def _on_event(self, message: dict) -> None:
        return None

    _HANDLERS = {
        "Connect": _on_connect,
        "ModifyQuerySet": _on_modify_query_set,
        "Mutation": _on_request,
        "Action": _on_request,
        "Authenticate": _on_authenticate,
        "Event": _on_event,
    }

    # -- mutations and actions --

    async def _request_worker(self) -> None:
        while True:
            item = await self._requests.get()
            await self._execute(*item)

    async def _execute(self, kind: str, request_id: int, path: str, args: Any, identity: Identity) -> None:
        session = self.session
        future = session.requests.get(request_id)
        if future is None or future.get_loop() is not asyncio.get_running_loop():
            # Not tied to this socket: a disconnect mid-run still completes and records it.
            future = asyncio.ensure_future(self.hub.run_request(kind, request_id, path, args, identity))
            session.remember(request_id, future)
        reply: RequestReply = await asyncio.shield(future)
        self._send_control(reply.text)
        if reply.commit_ts is not None:
            self.min_ts = max(self.min_ts, reply.commit_ts)
        self.force_transition = True  # as Convex: a Transition at the latest ts after each request
        self._wake_updater()

    # -- outgoing --

    def _send_control(self, text: str) -> None:
        if len(self.control) >= self.hub.max_control_queue:
            self._drop("too many unsent messages")
            return
        self.control.append(text)
        self._writer_wake.set()

    def _drop(self, reason: str) -> None:
        if self._drop_reason is None:
            self._drop_reason = reason
            log.info("dropping sync connection: %s", reason)
            self._tasks[0].cancel()

    def _wake_updater(self) -> None:
        self._updater_wake.set()

    async def _updater(self) -> None:
        while True:
            await self._updater_wake.wait()
            self._updater_wake.clear()
            if self.closing:
                return
            if self.cycling:  # the hub's fan-out has this connection; it wakes us if needed
                continue
            await self._cycle()

    async def _cycle(self) -> None:
        manager = self.hub.manager
        if self.min_ts > manager.observed_ts:
            await manager.wait_observed(self.min_ts)
        if self.cycling:
            return
        cycle = self.begin_cycle(max(manager.observed_ts, self.min_ts))
        try:
            results = await self._run_batch(cycle.batch, cycle.identity, cycle.ts)
        except BaseException:
            self.query_set.end_cycle(cycle.ts, [])
            self.cycling = False
            raise
        self.finish_cycle(cycle, results)

    def begin_cycle(self, ts: int) -> "_Cycle":
        """Capture what a Transition at `ts` will cover; results come later (`finish_cycle`)."""
        self.cycling = True
        cycle = _Cycle(
            ts=max(ts, self.ready[2]),
            query_set=self.received_query_set,
            identity_version=self.identity_version,
            identity=self.identity,
            removals=self.staged_removals,
            force=self.force_transition,
            batch=self.query_set.begin_cycle(),
        )
        self.staged_removals, self.force_transition = {}, False
        return cycle

    def finish_cycle(self, cycle: "_Cycle", results: list) -> None:
        for subscription, result in zip(cycle.batch, results):
            if self.query_set.subscriptions.get(subscription.query_id) is not subscription:
                continue
            changed = not result.same_result(subscription.last)
            subscription.last = result
            if changed:
                self.pending[subscription.query_id] = result.modification_json(subscription.query_id)
        for query_id, text in cycle.removals.items():
            if query_id not in self.query_set.subscriptions:
                self.pending[query_id] = text
        self.query_set.end_cycle(cycle.ts, cycle.batch)
        self.ready = (max(self.ready[0], cycle.query_set), max(self.ready[1], cycle.identity_version), cycle.ts)
        self.cycling = False
        if cycle.force or self.pending:
            self.transition_due = True
            self._writer_wake.set()
        if self.query_set.dirty or self.force_transition or self.staged_removals:
            self._wake_updater()

    async def _run_batch(self, batch: list[Subscription], identity: Identity, ts: int) -> list:
        results = []
        for start in range(0, len(batch), RUN_CHUNK):
            chunk = batch[start : start + RUN_CHUNK]
            results.extend(await asyncio.gather(*(self._run_one(s, identity, ts) for s in chunk)))
        return results

    async def _run_one(self, subscription: Subscription, identity: Identity, ts: int):
        if subscription.args is None:
            return error_result(subscription.args_error)
        return await self.hub.manager.run(subscription.path, subscription.args, subscription.args_key, identity, ts)

    def _take_transition(self) -> str:
        start, end = self.sent, self.ready
        modifications = ",".join(self.pending.values())
        self.pending = {}
        self.transition_due = False
        self.sent = end
        return (
            f'{{"type":"Transition","startVersion":{_version_json(*start)},'
            f'"endVersion":{_version_json(*end)},"modifications":[{modifications}],'
            f'"clientClockSkew":null,"serverTs":{time.time_ns()}}}'
        )

    async def _writer(self) -> None:
        while True:
            self._writer_wake.clear()
            if self.control:
                text = self.control.popleft()
            elif self.transition_due and not self.closing:
                text = self._take_transition()
            elif self.closing:
                return
            else:
                try:
                    async with asyncio.timeout(self.hub.ping_interval):
                        await self._writer_wake.wait()
                except TimeoutError:
                    self.control.append(PING_TEXT)
                continue
            try:
                async with asyncio.timeout(self.hub.send_timeout):
                    await self.ws.send_text(text)
            except TimeoutError:
                self._drop_reason = self._drop_reason or "send timed out: the client is not reading"
                return
            except Exception:  # the socket is gone
                return
