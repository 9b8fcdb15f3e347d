"""The subscription manager: query read sets, invalidation on commit, shared re-runs.

One `SubscriptionManager` per deployment listens to the engine's commits and tells every
connection's `QuerySet` which subscriptions a commit touched (their read set intersects the
commit's writes). A connection re-runs only those, through `SubscriptionManager.run`, which
runs an identical query (same path, args and identity) once per timestamp however many
connections want it, and encodes its result once.

Consistency: a result is valid at the manager's `observed_ts`, the newest commit whose
invalidations were already delivered. A query run after reading `observed_ts` sees a snapshot
at least that new, and every commit up to it has already marked what it touched dirty, so a
Transition built from such runs may claim that timestamp.
"""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from console import values

# (path, canonical encoded args, identity key)
QueryKey = tuple[str, str, str]


@dataclass(frozen=True)
class QueryResult:
    """One run of a query, encoded once for every subscriber."""

    ok: bool
    value_json: str  # encoded JSON text of the value (ok) or of errorData ("null" if none)
    error_message: str
    log_lines_json: str
    read_set: Any  # None means "unknown": any commit invalidates it
    has_error_data: bool = False

    def same_result(self, other: "QueryResult | None") -> bool:
        return (
            other is not None
            and other.ok == self.ok
            and other.value_json == self.value_json
            and other.error_message == self.error_message
        )

    def modification_json(self, query_id: int) -> str:
        """The QueryUpdated / QueryFailed entry of a Transition, as JSON text."""
        if self.ok:
            return (
                f'{{"type":"QueryUpdated","queryId":{query_id},"value":{self.value_json},'
                f'"logLines":{self.log_lines_json},"journal":null}}'
            )
        error_data = f',"errorData":{self.value_json}' if self.has_error_data else ""
        return (
            f'{{"type":"QueryFailed","queryId":{query_id},'
            f'"errorMessage":{json.dumps(self.error_message)},'
            f'"logLines":{self.log_lines_json},"journal":null{error_data}}}'
        )


def removed_json(query_id: int) -> str:
    return f'{{"type":"QueryRemoved","queryId":{query_id}}}'


def identity_key(identity: Any) -> str:
    kind = getattr(identity, "kind", repr(identity))
    attributes = getattr(identity, "attributes", None)
    if attributes is None:
        return kind
    return kind + ":" + json.dumps(attributes, sort_keys=True, default=str)


def log_line_text(line: Any) -> str:
    pretty = getattr(line, "pretty", None)
    return pretty() if callable(pretty) else str(line)


def result_from_outcome(outcome: Any) -> QueryResult:
    log_lines = json.dumps([log_line_text(line) for line in (getattr(outcome, "log_lines", None) or [])])
    read_set = getattr(outcome, "read_set", None)
    if getattr(outcome, "status", "error") == "success":
        return QueryResult(True, _encoded_text(outcome.value), "", log_lines, read_set)
    error_data = getattr(outcome, "error_data", None)
    return QueryResult(
        False,
        _encoded_text(error_data),
        str(getattr(outcome, "error_message", None) or "Query failed"),
        log_lines,
        read_set,
        has_error_data=bool(getattr(outcome, "is_convex_error", False)) or error_data is not None,
    )


def error_result(message: str) -> QueryResult:
    return QueryResult(False, "null", message, "[]", None)


def _encoded_text(value: Any) -> str:
    return json.dumps(values.encode(value), separators=(",", ":"), ensure_ascii=False)


@dataclass
class Subscription:
    query_id: int
    path: str
    args: dict | None  # None: the args were malformed (`args_error` says why)
    args_key: str
    args_error: str = ""
    last: QueryResult | None = None

    @property
    def read_set(self) -> Any:
        return None if self.last is None else self.last.read_set


def _intersects(read_set: Any, commit: Any) -> bool:
    if read_set is None:
        return True
    try:
        return bool(read_set.intersects(commit))
    except Exception:  # an unknown read set shape: stay correct, re-run
        return True


class QuerySet:
    """One connection's subscriptions and which of them need a re-run."""

    def __init__(self, on_dirty: Callable[[], None], owner: Any = None):
        self.owner = owner
        self.subscriptions: dict[int, Subscription] = {}
        self.dirty: set[int] = set()
        self._on_dirty = on_dirty
        self._running = False
        self._commits_while_running: list[Any] = []

    def __len__(self) -> int:
        return len(self.subscriptions)

    def add(self, subscription: Subscription) -> None:
        self.subscriptions[subscription.query_id] = subscription
        self._mark(subscription.query_id)

    def remove(self, query_id: int) -> bool:
        self.dirty.discard(query_id)
        return self.subscriptions.pop(query_id, None) is not None

    def invalidate_all(self) -> None:
        if self.subscriptions:
            self.dirty.update(self.subscriptions)
            self._on_dirty()

    def on_commit(self, commit: Any) -> bool:
        """Mark what `commit` touched; True when something became dirty (the caller wakes
        the owner, or re-runs it itself)."""
        if self._running:
            self._commits_while_running.append(commit)
        touched = False
        for query_id, subscription in self.subscriptions.items():
            if query_id not in self.dirty and _intersects(subscription.read_set, commit):
                self.dirty.add(query_id)
                touched = True
        return touched

    def wake(self) -> None:
        self._on_dirty()

    def begin_cycle(self) -> list[Subscription]:
        """The dirty subscriptions to re-run now; commits from here on are remembered."""
        batch = [self.subscriptions[q] for q in self.dirty if q in self.subscriptions]
        self.dirty.clear()
        self._running = True
        self._commits_while_running = []
        return batch

    def end_cycle(self, ts: int, rerun: list[Subscription]) -> None:
        """Re-check the fresh read sets against commits newer than `ts` seen meanwhile."""
        self._running = False
        late = [c for c in self._commits_while_running if getattr(c, "ts", ts + 1) > ts]
        self._commits_while_running = []
        for subscription in rerun:
            if subscription.query_id in self.dirty or self.subscriptions.get(subscription.query_id) is not subscription:
                continue
            if any(_intersects(subscription.read_set, commit) for commit in late):
                self.dirty.add(subscription.query_id)
        if self.dirty:
            self._on_dirty()

    def clear(self) -> None:
        self.subscriptions.clear()
        self.dirty.clear()
        self._commits_while_running = []

    def _mark(self, query_id: int) -> None:
        self.dirty.add(query_id)
        self._on_dirty()


RunQuery = Callable[[str, dict, Any], Awaitable[Any]]  # (path, args, identity) -> Outcome


class SubscriptionManager:
    """Per deployment: the commit listener, the live query sets, shared query runs."""

    def __init__(self, db: Any, run_query: RunQuery):
        self._db = db
        self._run_query = run_query
        self.observed_ts: int = int(getattr(db, "last_commit_ts", 0) or 0)
        self._query_sets: "weakref.WeakSet[QuerySet]" = weakref.WeakSet()
        self._inflight: dict[tuple[QueryKey, int], asyncio.Future] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._ts_waiters: list[tuple[int, asyncio.Future]] = []
        self._listening = False
        self.commits_seen = 0
        # Called with the query sets a commit touched (after `observed_ts` moved); the sync
        # hub re-runs them all at once. Without it each query set's owner is woken.
        self.after_dispatch: Callable[[list[QuerySet]], None] | None = None

    # -- wiring ------------------------------------------------------------------------

    def bind_loop(self) -> None:
        """Deliver commits to the running event loop (called by each new connection)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._loop_thread = threading.get_ident()
            self.observed_ts = max(self.observed_ts, int(getattr(self._db, "last_commit_ts", 0) or 0))
        if not self._listening:
            self._db.add_commit_listener(self._on_commit_any_thread)
            self._listening = True

    def register(self, query_set: QuerySet) -> None:
        self._query_sets.add(query_set)

    def unregister(self, query_set: QuerySet) -> None:
        self._query_sets.discard(query_set)

    @property
    def connection_count(self) -> int:
        return len(self._query_sets)

    # -- commits -----------------------------------------------------------------------

    def _on_commit_any_thread(self, commit: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            self._dispatch(commit)
        else:
            loop.call_soon_threadsafe(self._dispatch, commit)

    def _dispatch(self, commit: Any) -> None:
        self.commits_seen += 1
        touched = [query_set for query_set in list(self._query_sets) if query_set.on_commit(commit)]
        ts = int(getattr(commit, "ts", 0) or 0)
        if ts > self.observed_ts:
            self.observed_ts = ts
        self._release_waiters()
        if self.after_dispatch is not None:
            self.after_dispatch(touched)
        else:
            for query_set in touched:
                query_set.wake()

    def _release_waiters(self) -> None:
        still = []
        for ts, future in self._ts_waiters:
            if ts <= self.observed_ts:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((ts, future))
        self._ts_waiters = still

    async def wait_observed(self, ts: int, timeout: float = 5.0) -> None:
        """Wait until the commit at `ts` has been delivered (normally it already has)."""
        if ts <= self.observed_ts:
            return
        future = asyncio.get_running_loop().create_future()
        self._ts_waiters.append((ts, future))
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            # The listener never told us (e.g. a commit made without listeners): trust the db.
            self.observed_ts = max(self.observed_ts, int(getattr(self._db, "last_commit_ts", ts) or ts))

    # -- shared runs -------------------------------------------------------------------

    async def run(self, path: str, args: dict, args_key: str, identity: Any, ts: int) -> QueryResult:
        """Run a query (or join an identical run for the same timestamp)."""
        return await asyncio.shield(self.run_shared(path, args, args_key, identity, ts))

    def run_shared(self, path: str, args: dict, args_key: str, identity: Any, ts: int) -> asyncio.Future:
        """The future of the shared run (started if needed); await it through shield."""
        key = ((path, args_key, identity_key(identity)), ts)
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._run_once(path, args, identity))
            self._inflight[key] = future
            future.add_done_callback(lambda _f, key=key: self._inflight.pop(key, None))
        return future

    async def _run_once(self, path: str, args: dict, identity: Any) -> QueryResult:
        try:
            outcome = await self._run_query(path, args, identity)
            return result_from_outcome(outcome)
        except Exception as error:  # the runner should not raise; never take the socket down
            return error_result(f"Server error while running {path}: {error}")
