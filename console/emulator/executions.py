"""The function execution log: one entry per run, served by `/api/stream_function_logs`.

Entries follow `FunctionExecutionJson` (PROTOCOL §3.6): kind "Completion" for a finished
run, "Progress" for the log lines an action prints while it runs. The log is a bounded ring
with a monotonically increasing cursor; `since(cursor)` reads, `wait_since` long-polls.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from dataclasses import dataclass, field
from typing import Any

LEVELS = ("LOG", "DEBUG", "INFO", "WARN", "ERROR")
MAX_LOG_LINES = 256  # per execution, the last one being the overflow notice
MAX_LOG_LINE_LENGTH = 32768
TRUNCATED_LINE_SUFFIX = " (truncated due to length)"
DEFAULT_CAPACITY = 10_000

# Runner caller names -> the `caller` Convex writes (`FunctionCaller` Display).
CALLERS = {
    "http": "HttpApi",
    "ws": "SyncWorker",
    "sync": "SyncWorker",
    "scheduler": "Scheduler",
    "action": "Action",
    "cron": "Cron",
    "http_action": "HttpEndpoint",
    "test": "Tester",
}

UDF_TYPES = {"query": "Query", "mutation": "Mutation", "action": "Action", "http_action": "HttpAction"}


@dataclass
class LogLine:
    """One structured log line (`LogLineStructured`)."""

    level: str
    messages: list[str]
    timestamp: int  # ms since the epoch
    is_truncated: bool = False

    @classmethod
    def new(cls, level: str, messages: list[str], timestamp_ms: int) -> "LogLine":
        """A developer log line, truncated to Convex's per-line length limit."""
        total = sum(len(m) + 1 for m in messages) - 1 if messages else 0
        if total <= MAX_LOG_LINE_LENGTH:
            return cls(level, list(messages), timestamp_ms)
        kept: list[str] = []
        used = 0
        for message in messages:
            room = MAX_LOG_LINE_LENGTH - used
            if len(message) <= room:
                kept.append(message)
                used += len(message) + 1
            else:
                kept.append(message[:room])
                break
        return cls(level, kept, timestamp_ms, is_truncated=True)

    def pretty(self) -> str:
        """`"[LEVEL] msg..."`, as in `logLines` of function responses."""
        suffix = TRUNCATED_LINE_SUFFIX if self.is_truncated else ""
        return f"[{self.level}] {' '.join(self.messages)}{suffix}"

    def to_json(self) -> dict:
        return {
            "messages": list(self.messages),
            "isTruncated": self.is_truncated,
            "timestamp": self.timestamp,
            "level": self.level,
            "systemMetadata": None,
        }


def overflow_line(timestamp_ms: int) -> LogLine:
    return LogLine(
        "ERROR",
        [f"Log overflow (maximum {MAX_LOG_LINES}). Remaining log lines omitted."],
        timestamp_ms,
    )


@dataclass
class ExecutionEntry:
    """One entry of the log; `kind` is "Completion" or "Progress"."""

    kind: str
    udf_type: str  # "query" | "mutation" | "action" | "http_action"
    identifier: str  # "posts:list" (stripped of .js)
    timestamp: float  # seconds
    request_id: str
    execution_id: str
    log_lines: list[LogLine] = field(default_factory=list)
    # Completion only:
    success: bool = True
    error: str | None = None
    execution_time: float = 0.0  # seconds
    caller: str = "HttpApi"
    parent_execution_id: str | None = None
    identity_type: str = "unknown"  # Convex's tag: instance_admin, user, member_acting_user, system, unknown
    identity_kind: str = "anonymous"  # admin | acting_as | user | system | anonymous
    cursor: int = 0  # set when appended

    def to_json(self, *, structured: bool, strip_action_lines: bool = False) -> dict:
        """`FunctionExecutionJson`; log lines structured only for npm-cli/dashboard clients."""
        lines = self.log_lines
        if strip_action_lines and self.kind == "Completion" and self.udf_type in ("action", "http_action"):
            lines = []  # already streamed as Progress entries (Convex strips them too)
        log_lines = [line.to_json() if structured else line.pretty() for line in lines]
        base = {
            "kind": self.kind,
            "udfType": UDF_TYPES.get(self.udf_type, self.udf_type),
            "componentPath": None,
            "identifier": self.identifier,
            "timestamp": self.timestamp,
            "logLines": log_lines,
            "requestId": self.request_id,
            "executionId": self.execution_id,
        }
        if self.kind == "Progress":
            return base
        base.update(
            {
                "cachedResult": False,
                "caller": self.caller,
                "parentExecutionId": self.parent_execution_id,
                "executionTime": self.execution_time,
                "userExecutionTime": self.execution_time,
                "success": None,
                "error": self.error,
                "usageStats": _zero_usage(),
                "returnBytes": None,
                "occInfo": None,
                "willRetry": False,
                "executionTimestamp": self.timestamp - self.execution_time,
                "identityType": self.identity_type,
                "environment": "isolate",
            }
        )
        return base


def _zero_usage() -> dict:
    names = (
        "databaseReadBytes databaseWriteBytes databaseIoReadBytes databaseIoWriteBytes "
        "databaseReadDocuments databaseWriteDocuments storageReadBytes storageWriteBytes "
        "vectorIndexReadBytes vectorIndexWriteBytes textIndexQueryBytes textIndexWriteQueryBytes "
        "vectorIndexReadQueryBytes vectorIndexWriteQueryBytes networkEgressBytes memoryUsedMb"
    ).split()
    return {name: 0 for name in names}


class ExecutionLog:
    """A bounded, thread-safe ring of ExecutionEntry with a monotonically increasing cursor."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY):
        self._entries: collections.deque[ExecutionEntry] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._cursor = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self._listeners: list = []

    @property
    def cursor(self) -> int:
        return self._cursor

    def append(self, entry: ExecutionEntry) -> int:
        with self._lock:
            self._cursor += 1
            entry.cursor = self._cursor
            self._entries.append(entry)
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the waiter's loop is closed
                pass
        for listener in list(self._listeners):
            listener(entry)
        return entry.cursor

    def add_listener(self, callback) -> None:
        """`callback(entry)` after each append (called on the appending thread)."""
        self._listeners.append(callback)

    def since(self, cursor: int) -> tuple[list[ExecutionEntry], int]:
        """Entries appended after `cursor`, and the cursor to pass next time."""
        with self._lock:
            entries = [entry for entry in self._entries if entry.cursor > cursor]
            new_cursor = entries[-1].cursor if entries else max(cursor, 0)
        return entries, new_cursor

    async def wait_since(self, cursor: int, timeout: float) -> tuple[list[ExecutionEntry], int]:
        """Like `since`, but waits up to `timeout` seconds for an entry when there is none."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = asyncio.Event()
            with self._lock:
                has_new = self._cursor > cursor
                if not has_new:
                    self._waiters.append((loop, event))
            if has_new:
                return self.since(cursor)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return [], max(cursor, 0)
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except asyncio.TimeoutError:
                with self._lock:
                    self._waiters = [w for w in self._waiters if w[1] is not event]
                return [], max(cursor, 0)

    def entries(self) -> list[ExecutionEntry]:
        with self._lock:
            return list(self._entries)

    def by_request(self, request_id: str) -> list[ExecutionEntry]:
        return [entry for entry in self.entries() if entry.request_id == request_id]


def stream_response(entries: list[ExecutionEntry], new_cursor: int, *, structured: bool) -> dict[str, Any]:
    """The `/api/stream_function_logs` body: `{entries, newCursor}`."""
    return {
        "entries": [e.to_json(structured=structured, strip_action_lines=True) for e in entries],
        "newCursor": new_cursor,
    }
