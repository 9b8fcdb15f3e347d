"""FunctionRunner: runs a registered function by path, with an identity (internals §4).

Queries run on `db.read`, mutations on `db.write` (retried on conflict, so the handler may
run more than once but commits exactly once), actions in the calling thread with no
transaction. `print`, `sys.stderr` and `logging` inside a function become that execution's
log lines. Every run is appended to the execution log (`executions.py`).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import math
import os
import queue
import random
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any

from console import values
from console.emulator import executions as executions_mod
from console.emulator.app import App, RegisteredFunction, canonicalize_path, is_system_path, strip_path
from console.emulator.clock import WallClock
from console.emulator.engine.validate import validate_value
from console.emulator.errors import ConvexEngineError, ConvexError
from console.emulator.executions import ExecutionEntry, ExecutionLog, LogLine
from console.emulator.functions import (
    ActionCtx,
    ConvexFunction,
    MutationCtx,
    Query,
    QueryCtx,
    SINGLE_PAGINATE_MESSAGE,
)
from console.emulator.identity import Identity

UDF_TYPE_NAMES = {"query": "Query", "mutation": "Mutation", "action": "Action"}
_JS_ERROR_NAMES = {Exception: "Error", ConvexEngineError: "Error", RuntimeError: "Error"}


@dataclass
class Services:
    """Services the runner hands to `ctx.scheduler` and `ctx.storage` (None = not available).

    scheduler: `schedule(path, args, ts_ms, *, tx=None) -> job_id`, `cancel(job_id, *, tx=None)`
    storage: `generate_upload_url()`, `get_url(id, *, tx=None)`, `get_metadata(id, *, tx=None)`,
             `delete(id, *, tx=None)`, and for actions `get(id) -> bytes | None`,
             `store(data, content_type) -> id`.
    With `tx` given the service works inside that transaction (atomic with the mutation).
    """

    scheduler: Any = None
    storage: Any = None


@dataclass
class Outcome:
    status: str  # "success" | "error"
    value: Any = None
    error_message: str | None = None
    error_data: Any = None
    is_convex_error: bool = False  # errorData is present (even when it is null)
    log_lines: list[LogLine] = field(default_factory=list)
    udf_type: str | None = None
    path: str | None = None  # canonical
    request_id: str = ""
    duration: float = 0.0  # seconds
    commit_ts: int | None = None
    read_set: Any = None
    execution_id: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def log_line_strings(self) -> list[str]:
        return [line.pretty() for line in self.log_lines]

    @property
    def identifier(self) -> str | None:
        return _identifier(self.path, self.udf_type)


class FunctionCallError(Exception):
    """Raised in a calling function when a function it called (ctx.run_*) failed."""


class _Failure(Exception):
    """A function error that is not an exception from user code (validation, lookup)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------
# Log capture


_current_sink: contextvars.ContextVar["_LogSink | None"] = contextvars.ContextVar("convex_log_sink", default=None)
_current_execution: contextvars.ContextVar["_Execution | None"] = contextvars.ContextVar(
    "convex_execution", default=None)


def current_execution():
    """The execution running in this thread (an opaque, weak-referenceable object), or None.

    Services use it to tell calls from one action apart (e.g. the scheduler's per-call limits).
    """
    return _current_execution.get()


class _LogSink:
    """The log lines of one execution, bounded as Convex bounds them."""

    def __init__(self, clock, on_line=None):
        self._clock = clock
        self._on_line = on_line
        self._lock = threading.Lock()
        self._partial: dict[str, str] = {}
        self.lines: list[LogLine] = []

    def _now(self) -> int:
        return int(self._clock.now_ms())

    def emit(self, level: str, messages: list[str]) -> None:
        line = None
        with self._lock:
            limit = executions_mod.MAX_LOG_LINES
            if len(self.lines) < limit - 1:
                line = LogLine.new(level, messages, self._now())
            elif len(self.lines) == limit - 1:
                line = executions_mod.overflow_line(self._now())
            if line is not None:
                self.lines.append(line)
        if line is not None and self._on_line is not None:
            self._on_line(line)

    def extend(self, lines: list[LogLine]) -> None:
        for line in lines:
            self.emit(line.level, line.messages)

    def write_text(self, level: str, text: str) -> None:
        with self._lock:
            buffered = self._partial.get(level, "") + text
            *complete, rest = buffered.split("\n")
            self._partial[level] = rest
        for line in complete:
            self.emit(level, [line])

    def flush(self) -> None:
        with self._lock:
            pending = [(level, text) for level, text in self._partial.items() if text]
            self._partial = {}
        for level, text in pending:
            self.emit(level, [text])

    def reset(self) -> None:
        with self._lock:
            self.lines = []
            self._partial = {}


class _StreamRouter:
    """Replaces sys.stdout/sys.stderr: text written inside a function goes to its log.

    Not an io.TextIOBase subclass, so fileno/isatty/encoding... reach the original stream.
    """

    def __init__(self, original, level: str):
        self._original = original
        self._level = level

    def write(self, text: str) -> int:
        sink = _current_sink.get()
        if sink is None:
            return self._original.write(text)
        sink.write_text(self._level, text)
        return len(text)

    def flush(self) -> None:
        if _current_sink.get() is None:
            self._original.flush()

    def writable(self) -> bool:
        return True

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        return getattr(self._original, name)


class _RoutingHandler(logging.Handler):
    _LEVELS = ((logging.ERROR, "ERROR"), (logging.WARNING, "WARN"), (logging.INFO, "INFO"))

    def emit(self, record: logging.LogRecord) -> None:
        sink = _current_sink.get()
        if sink is None:
            return
        level = next((name for number, name in self._LEVELS if record.levelno >= number), "DEBUG")
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not break the function
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        sink.emit(level, [message])


_install_lock = threading.Lock()
_handler = _RoutingHandler()

# Records below a logger's level (e.g. `logging.info` with the root logger at its default
# WARNING) are dropped before any handler sees them. Inside a function they become log lines,
# as `console.info`/`console.debug` do in Convex; outside one, nothing changes.
_logger_is_enabled_for = logging.Logger.isEnabledFor
_logger_handle = logging.Logger.handle


def _is_enabled_for(self: logging.Logger, level: int) -> bool:
    if _logger_is_enabled_for(self, level):
        return True
    return (_current_sink.get() is not None and not self.disabled
            and self.manager.disable < level)


def _handle(self: logging.Logger, record: logging.LogRecord):
    if _current_sink.get() is None or _logger_is_enabled_for(self, record.levelno):
        return _logger_handle(self, record)
    # Below this logger's level: only the function's log sees it, not the process's handlers.
    if not self.disabled and self.filter(record):
        _handler.handle(record)
    return None


def _capture_below_level() -> None:
    if logging.Logger.isEnabledFor is not _is_enabled_for:
        logging.Logger.isEnabledFor = _is_enabled_for
        logging.Logger.handle = _handle


def install_log_capture() -> None:
    """Idempotent: route stdout/stderr and logging to the running function's sink."""
    if (isinstance(sys.stdout, _StreamRouter) and isinstance(sys.stderr, _StreamRouter)
            and _handler in logging.root.handlers):
        return  # already in place (checked on every run: tests and tools swap sys.stdout)
    with _install_lock:
        if not isinstance(sys.stdout, _StreamRouter):
            sys.stdout = _StreamRouter(sys.stdout, "LOG")
        if not isinstance(sys.stderr, _StreamRouter):
            sys.stderr = _StreamRouter(sys.stderr, "ERROR")
        root = logging.getLogger()
        if _handler not in root.handlers:
            root.addHandler(_handler)
        _capture_below_level()


# ---------------------------------------------------------------------------
# Errors


def _stringify_for_error(value: Any) -> str:
    """`stringifyValueForError`: JSON with int64 as "<n>n"."""

    def convert(item):
        if isinstance(item, bool) or item is None or isinstance(item, str):
            return item
        if isinstance(item, int):
            return f"{item}n"
        if isinstance(item, float):
            return item if math.isfinite(item) else None
        if isinstance(item, bytes):
            return {}
        if isinstance(item, list):
            return [convert(i) for i in item]
        if isinstance(item, dict):
            return {k: convert(v) for k, v in item.items()}
        return str(item)

    return json.dumps(convert(value), separators=(",", ":"), ensure_ascii=False)


def _error_name(error: BaseException) -> str:
    if isinstance(error, ConvexError):
        return "ConvexError"
    return _JS_ERROR_NAMES.get(type(error), "Error" if isinstance(error, ConvexEngineError) else type(error).__name__)


def _error_text(error: BaseException) -> str:
    if isinstance(error, ConvexError):
        data = error.data
        return data if isinstance(data, str) else _stringify_for_error(data)
    return str(error)


# ---------------------------------------------------------------------------
# One execution

# Request and execution ids only need to be unique, not secret: a seeded PRNG avoids a
# `getrandom` syscall per id, which releases the GIL in the middle of a short query.
_ids = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ids.seed)


def _new_request_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


def _new_execution_id() -> str:
    return str(uuid.UUID(int=_ids.getrandbits(128), version=4))



class _Execution:
    """State of one function execution, used by the ctx objects of functions.py."""

    def __init__(self, runner: "FunctionRunner", function: RegisteredFunction | None, identity: Identity,
                 udf_type: str, request_id: str, sink: _LogSink, caller: str, parent_execution_id: str | None):
        self.runner = runner
        self.function = function
        self.identity = identity
        self.udf_type = udf_type
        self.request_id = request_id
        self.execution_id = _new_execution_id()
        self.sink = sink
        self.caller = caller
        self.parent_execution_id = parent_execution_id
        self.tx = None
        self.paginated = 0
        self.env_provider = runner.env_provider
        self.reached_out = False  # called a function, storage or the scheduler (see run_http_action)

    # -- used by functions.py
    def require_tx(self):
        if self.tx is None:
            raise ConvexEngineError(
                "The Convex database object is being used outside of a Convex query or mutation."
            )
        return self.tx

    def count_paginate(self) -> None:
        self.paginated += 1
        if self.paginated > 1:
            raise ConvexEngineError(SINGLE_PAGINATE_MESSAGE)

    def service(self, name: str):
        self.reached_out = True
        found = getattr(self.runner.services, name, None)
        if found is None:
            raise ConvexEngineError(
                f"The {name} service is not available in this deployment (no `{name}` service was "
                "given to the function runner)."
            )
        return found

    def now_ms(self) -> float:
        return self.runner.clock.now_ms()

    def resolve_target(self, function) -> RegisteredFunction:
        path = _reference_path(function)
        found = self.runner.app.functions.get(path)
        if found is None:
            raise ConvexEngineError(
                f"Could not find function for '{strip_path(path)}'. Did you forget to run "
                "`npx convex dev` or `npx convex deploy`?"
            )
        return found

    def resolve_schedule_target(self, function) -> str:
        path = _reference_path(function)
        problem = schedule_target_problem(self.runner.app, path)
        if problem:
            raise ConvexEngineError(problem)
        return path

    def run_nested(self, function, args, kind: str):
        """`ctx.run_query`/`ctx.run_mutation` inside a query or mutation: same transaction."""
        target = self.resolve_target(function)
        self.runner._check_type(target, kind)
        args = {} if args is None else args
        self.runner._check_args(target, args)
        child = _Execution(self.runner, target, self.identity, target.udf_type, self.request_id,
                           self.sink, self.caller, self.execution_id)
        child.tx = self.tx
        if target.udf_type != "mutation":
            return self.runner._finish_value(target, target.handler(QueryCtx(child), args))
        savepoint = getattr(self.tx, "savepoint", None)
        mark = savepoint() if savepoint is not None else None
        try:
            return self.runner._finish_value(target, target.handler(MutationCtx(child), args))
        except BaseException:
            if mark is not None:  # as in Convex, a failed child's writes are undone, the parent's kept
                self.tx.rollback_to(mark)
            raise

    def run_from_action(self, function, args, kind: str):
        """`ctx.run_*` in an action: the target runs as its own top-level transaction."""
        self.reached_out = True
        path = _reference_path(function)
        outcome = self.runner.run(
            path, {} if args is None else args, identity=self.identity, expected_type=kind,
            caller="action", request_id=self.request_id, parent_execution_id=self.execution_id,
            allow_internal=True,
        )
        self.sink.extend(outcome.log_lines)
        if outcome.ok:
            return outcome.value
        if outcome.is_convex_error:
            raise ConvexError(outcome.error_data)
        message = outcome.error_message or ""
        prefix = f"[Request ID: {outcome.request_id}] Server Error\n"
        raise FunctionCallError(message[len(prefix):] if message.startswith(prefix) else message)


def schedule_target_problem(app: App, canonical: str) -> str | None:
    """Convex's message for scheduling a function that does not exist (None when it does)."""
    if canonical in app.functions:
        return None
    module, _, name = canonical.rpartition(":")
    if any(function.module == module for function in app.functions.values()):
        return (f"Attempted to schedule function, but no exported function {name} found in the file: "
                f"{module}. Did you forget to export it?")
    return f"Attempted to schedule function at nonexistent path: {module}"


def _reference_path(function) -> str:
    if isinstance(function, ConvexFunction):
        if function.path is None:
            raise ConvexEngineError(
                f"{function!r} is not registered in this app (is its module inside the app package?)"
            )
        return function.path
    if isinstance(function, RegisteredFunction):
        return function.path
    if isinstance(function, str):
        try:
            return canonicalize_path(function)
        except Exception as error:  # ApiError -> a function-visible error
            raise ConvexEngineError(str(error)) from None
    raise ConvexEngineError(f"Expected a function reference or a path string, got {function!r}")


# ---------------------------------------------------------------------------
# The worker threads behind run_async


class _WorkerPool:
    """Threads that run functions for the event loop, handing results back with
    `loop.call_soon_threadsafe` (cheaper per call than `run_in_executor`).

    One thread, the leader, takes the jobs one after the other: short queries do not fight each
    other for the GIL, which costs more CPU than the queries themselves. When the leader has been
    on one job for `STALL_S` while others wait (a long action, a mutation waiting on fsync), a
    follower thread (started when needed, up to `max_workers`) becomes the leader and the slow
    job finishes on its own thread, which then waits as a follower.
    """

    STALL_S = 0.001

    def __init__(self, max_workers: int, name: str):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._max_workers = max(1, max_workers)
        self._name = name
        self._lock = threading.Lock()
        self._wake_follower = threading.Condition(self._lock)
        self._threads = 0
        self._followers = 0  # threads waiting to be promoted
        self._promotions = 0  # promotions not yet taken by a follower
        self._leader: object | None = None  # the leading thread's token (or _PROMOTING)
        self._busy_since: float | None = None  # when the leader started its current job
        self._check_pending = False
        self._check_due = 0.0
        self._closed = False

    def submit(self, loop: asyncio.AbstractEventLoop, fn, args: tuple, kwargs: dict) -> asyncio.Future:
        future = loop.create_future()
        context = contextvars.copy_context()  # each job in a fresh copy, as asyncio.to_thread does
        with self._lock:
            if self._closed:
                raise RuntimeError("the function runner is closed")
            if self._leader is None:  # first job: start the leader
                self._leader = _PROMOTING
                self._start_thread()
            # One pending check at a time (another if its loop stopped before running it).
            now = time.monotonic()
            watch = not self._check_pending or now > self._check_due + 0.05
            if watch:
                self._check_pending, self._check_due = True, now + self.STALL_S
        self._jobs.put((loop, future, context, fn, args, kwargs))
        if watch:
            loop.call_later(self.STALL_S, self._check_stall, loop)
        return future

    def _check_stall(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the loop: promote a follower when the leader is stuck on a job with work waiting."""
        with self._lock:
            self._check_pending = False
            if self._closed or self._jobs.empty():
                return
            busy_since = self._busy_since
            if busy_since is not None and time.monotonic() - busy_since >= self.STALL_S:
                promoted = True
                if self._followers > self._promotions:
                    self._promotions += 1
                    self._wake_follower.notify()
                elif self._threads < self._max_workers:
                    self._start_thread()
                else:
                    promoted = False  # every thread is busy: look again later
                if promoted:
                    self._leader = _PROMOTING
                    self._busy_since = None
            self._check_pending, self._check_due = True, time.monotonic() + self.STALL_S
        loop.call_later(self.STALL_S, self._check_stall, loop)

    def _start_thread(self) -> None:
        """With the lock held: a new thread that takes over as leader."""
        self._threads += 1
        threading.Thread(target=self._work, args=(True,), name=f"{self._name}-{self._threads}",
                         daemon=True).start()

    def _work(self, leading: bool) -> None:
        me = object()
        while True:
            with self._lock:
                if not leading:
                    self._followers += 1
                    self._wake_follower.wait_for(lambda: self._promotions > 0 or self._closed)
                    self._followers -= 1
                    if self._closed:
                        return
                    self._promotions -= 1
                self._leader = me
            leading = self._lead(me)
            if leading is None:
                return

    def _lead(self, me: object) -> bool | None:
        """Take jobs until promoted out of the lead; returns False then (None when closing)."""
        jobs = self._jobs
        while True:
            job = jobs.get()
            if job is None:
                return None
            with self._lock:
                self._busy_since = time.monotonic()
            loop, future, context, fn, args, kwargs = job
            try:
                result, error = context.run(fn, *args, **kwargs), None
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                result, error = None, exc
            with self._lock:
                still_leading = self._leader is me
                if still_leading:
                    self._busy_since = None
            try:
                loop.call_soon_threadsafe(_resolve, future, result, error)
            except RuntimeError:  # the loop closed while the function ran
                pass
            del job, loop, future, context, fn, args, kwargs, result, error
            if not still_leading:
                return None if self._closed else False

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake_follower.notify_all()
        self._jobs.put(None)  # for the leader


_PROMOTING = object()  # a leader is starting or being woken


def _resolve(future: asyncio.Future, result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


# ---------------------------------------------------------------------------
# The runner


# A query, or an HTTP action that calls nothing in the deployment, that ran this fast this many
# times in a row runs on the event loop (see run_async, runs_inline).
INLINE_QUERY_SECONDS = 0.0005
INLINE_AFTER_FAST_RUNS = 3


class FunctionRunner:
    def __init__(self, db, app: App, *, services: Services | None = None, env_provider=None,
                 clock=None, executions: ExecutionLog | None = None, max_workers: int = 16):
        self.db = db
        self.app = app
        self.services = services or Services()
        self.env_provider = env_provider if env_provider is not None else dict
        self.clock = clock or getattr(db, "clock", None) or WallClock()
        self.executions = executions or ExecutionLog()
        self._workers = _WorkerPool(max_workers, "convex-fn")
        self._inline_fast_runs: dict[str, int] = {}  # query path or "http " + route -> consecutive fast runs
        # {number: name} for id validation, refreshed on a miss and when a commit touches a new table.
        self._table_mapping: dict[int, str] = {}
        self._table_names: set[str] = set()
        self._unsubscribe = None
        add_listener = getattr(db, "add_commit_listener", None)
        if add_listener is not None:
            self._unsubscribe = add_listener(self._on_commit)
        install_log_capture()

    def close(self) -> None:
        self._workers.close()
        if callable(self._unsubscribe):
            self._unsubscribe()

    async def run_async(self, path: str, args: dict, **kwargs) -> Outcome:
        """`run` on one of the runner's worker threads (the event loop stays free), except a query
        whose recent runs all took under INLINE_QUERY_SECONDS: it runs on the loop, which saves the
        two thread hand-offs that cost more than such a query. One slow run sends it back."""
        if self.runs_inline(path) and kwargs.get("wrap_tx") is None:
            outcome = self.run(path, args, **kwargs)
        else:
            outcome = await self._workers.submit(asyncio.get_running_loop(), self.run, (path, args), kwargs)
        self._note_duration(path, outcome)
        return outcome

    def runs_inline(self, key: str) -> bool:
        """Whether the query at this path (or the HTTP action at "http " + route) may run on the
        event loop: its last INLINE_AFTER_FAST_RUNS runs were fast (and, for an HTTP action, called
        nothing in the deployment, so nothing it does can wait on a lock or a worker)."""
        return self._inline_fast_runs.get(key, 0) >= INLINE_AFTER_FAST_RUNS

    def _note_duration(self, path: str, outcome: Outcome, *, self_contained: bool = False) -> None:
        fast = outcome.ok and outcome.duration < INLINE_QUERY_SECONDS
        if fast and ((outcome.udf_type == "query" and outcome.path in self.app.functions)
                     or (outcome.udf_type == "http_action" and self_contained)):
            self._inline_fast_runs[path] = self._inline_fast_runs.get(path, 0) + 1
        else:
            self._inline_fast_runs.pop(path, None)

    def run(self, path: str, args: Any, *, identity: Identity, expected_type: str | None = None,
            caller: str = "http", request_id: str | None = None, parent_execution_id: str | None = None,
            allow_internal: bool = False, wrap_tx=None) -> Outcome:
        """Run the function at `path`. Raises ApiError(400) only for a malformed path.

        `wrap_tx(tx, run) -> result`: for a query or mutation, called inside the function's
        transaction instead of `run(tx)` (which runs the function and returns its value), so the
        caller can read and write in that same transaction, before and after the function (e.g. the
        scheduler commits a job's `success` atomically with the job's mutation). It runs again if
        the mutation is retried; an exception it raises fails the run like one from the function.
        An action has no transaction: giving `wrap_tx` for one is an error outcome.
        """
        install_log_capture()
        canonical = canonicalize_path(path)
        request_id = request_id or _new_request_id()
        started = time.perf_counter()
        function = self.app.functions.get(canonical)
        udf_type = function.udf_type if function else (expected_type or "query")
        on_line = self._progress_callback(canonical, udf_type, request_id) if udf_type == "action" else None
        sink = _LogSink(self.clock, on_line)
        execution = _Execution(self, function, identity, udf_type, request_id, sink, caller, parent_execution_id)
        if on_line is not None:
            on_line.execution = execution
        outcome = Outcome(status="success", udf_type=udf_type, path=canonical, request_id=request_id,
                          execution_id=execution.execution_id)
        try:
            self._check_access(canonical, function, identity, allow_internal)
            self._check_type(function, expected_type)
            self._check_args(function, args)
            outcome.value, outcome.commit_ts, outcome.read_set = self._execute(execution, args, wrap_tx)
        except _Failure as failure:
            self._fail(outcome, failure.message + "\n")
        except ConvexError as error:
            self._fail(outcome, self._uncaught(error))
            outcome.error_data = error.data
            outcome.is_convex_error = True
        except Exception as error:  # noqa: BLE001 - user code may raise anything
            self._fail(outcome, self._uncaught(error))
        sink.flush()
        outcome.log_lines = list(sink.lines)
        outcome.duration = time.perf_counter() - started
        self._record(outcome, execution)
        return outcome

    # -- checks
    def _check_access(self, canonical: str, function, identity: Identity, allow_internal: bool) -> None:
        if is_system_path(canonical) and not identity.can_call_internal:
            raise _Failure("Operation Executing function not permitted")
        hidden = function is not None and function.visibility == "internal" and not (
            allow_internal or identity.can_call_internal
        )
        if function is None or hidden:
            raise _Failure(
                f"Could not find public function for '{strip_path(canonical)}'. Did you forget to run "
                "`npx convex dev` or `npx convex deploy`?"
            )

    def _check_type(self, function: RegisteredFunction, expected_type: str | None) -> None:
        if expected_type is not None and function.udf_type != expected_type:
            raise _Failure(
                f"Trying to execute {function.path} as {UDF_TYPE_NAMES.get(expected_type, expected_type)}, "
                f"but it is defined as {UDF_TYPE_NAMES[function.udf_type]}."
            )

    def _check_args(self, function: RegisteredFunction, args: Any) -> None:
        if not isinstance(args, dict):
            raise _Failure(
                f"Expected to receive an object as the function's argument. Instead received: {_display(args)}"
            )
        if function.args is not None:
            problem = self._validation_problem(function.args, args)
            if problem:
                raise _Failure(f"ArgumentValidationError: {problem}")

    def _validation_problem(self, validator: dict, value: Any) -> str | None:
        if validator.get("type") == "any":
            return None
        try:
            validate_value(validator, value, "", table_name_of=self._table_name_of)
        except ConvexEngineError as error:
            return str(error)
        return None

    def _table_name_of(self, table_number: int) -> str | None:
        mapping = self._table_mapping
        found = mapping.get(table_number)
        if found is None:
            mapping = self._table_mapping = self.db.table_mapping()
            self._table_names = set(mapping.values())
            found = mapping.get(table_number)
        if found is None and hasattr(self.db, "_table_name_of"):
            # A table created by the running transaction is not in the committed mapping yet.
            found = self.db._table_name_of(table_number)
        return found

    def _on_commit(self, commit) -> None:
        """Drop the cached table mapping when a commit touches a table it does not know."""
        tables = getattr(commit, "tables", None)
        if tables is None or not self._table_names.issuperset(tables):
            self._table_mapping = {}

    # -- running
    def _execute(self, execution: _Execution, args: dict, wrap_tx=None):
        function = execution.function
        if function.udf_type == "action":
            if wrap_tx is not None:
                raise _Failure(f"{function.path} is an action: it has no transaction to run in")
            return self._run_action(execution, args), None, None
        ctx_class = QueryCtx if function.udf_type == "query" else MutationCtx

        def body(tx):
            return self._run_in_tx(execution, tx, args, ctx_class)

        in_tx = body if wrap_tx is None else (lambda tx: wrap_tx(tx, body))
        if function.udf_type == "query":
            value, read_set = self.db.read(lambda tx: (in_tx(tx), tx.read_set))
            return value, None, read_set
        value, commit_ts = self.db.write(in_tx)
        return value, commit_ts, None

    def _run_in_tx(self, execution: _Execution, tx, args: dict, ctx_class):
        execution.sink.reset()  # a retried mutation logs only its last attempt
        execution.paginated = 0
        execution.tx = tx
        tokens = _current_sink.set(execution.sink), _current_execution.set(execution)
        try:
            result = execution.function.handler(ctx_class(execution), args)
            return self._finish_value(execution.function, result)
        finally:
            execution.sink.flush()
            _current_sink.reset(tokens[0])
            _current_execution.reset(tokens[1])

    def _run_action(self, execution: _Execution, args: dict):
        tokens = _current_sink.set(execution.sink), _current_execution.set(execution)
        try:
            result = execution.function.handler(ActionCtx(execution), args)
            return self._finish_value(execution.function, result)
        finally:
            execution.sink.flush()
            _current_sink.reset(tokens[0])
            _current_execution.reset(tokens[1])

    def _finish_value(self, function: RegisteredFunction, result: Any) -> Any:
        if isinstance(result, Query):
            raise ConvexEngineError(
                "Return value is a Query. Results must be retrieved with `.collect()`, `.take(n), "
                "`.unique()`, or `.first()`."
            )
        # Not skipped for documents read from the engine: the function may have changed them.
        # check_value's fast path costs ~2 us per plain document.
        try:
            values.check_value(result)
        except ValueError as error:
            raise _Failure(f"Function {function.path} return value invalid: {error}") from None
        if function.returns is not None:
            problem = self._validation_problem(function.returns, result)
            if problem:
                raise _Failure(f"ReturnsValidationError: {problem}")
        return result

    # -- outcomes
    def _fail(self, outcome: Outcome, js_error: str) -> None:
        outcome.status = "error"
        outcome.value = None
        outcome.error_message = f"[Request ID: {outcome.request_id}] Server Error\n{js_error}"

    def _uncaught(self, error: BaseException) -> str:
        name, text = _error_name(error), _error_text(error)
        if name and text:
            first = f"Uncaught {name}: {text}"
        else:
            first = f"Uncaught {name or text}".rstrip()
        frames = self._app_frames(error)
        return first + "\n" + "".join(f"    at {frame}\n" for frame in frames)

    def _app_frames(self, error: BaseException) -> list[str]:
        dirs = [d + os.sep for d in self.app.source_dirs]
        frames = []
        for frame in traceback.extract_tb(error.__traceback__):
            filename = os.path.abspath(frame.filename)
            for directory in dirs:
                if filename.startswith(directory):
                    relative = os.path.relpath(filename, os.path.dirname(directory.rstrip(os.sep)))
                    frames.append(f"{frame.name} (../{relative}:{frame.lineno})")
                    break
        return list(reversed(frames))[:1]

    def _progress_callback(self, canonical: str, udf_type: str, request_id: str):
        runner = self

        def on_line(line: LogLine) -> None:
            execution = on_line.execution
            runner.executions.append(ExecutionEntry(
                kind="Progress", udf_type=udf_type, identifier=_identifier(canonical, udf_type),
                timestamp=runner.clock.now_ms() / 1000, request_id=request_id,
                execution_id=execution.execution_id if execution else "", log_lines=[line],
            ))

        on_line.execution = None
        return on_line

    def _record(self, outcome: Outcome, execution: _Execution) -> None:
        error = None
        if outcome.status == "error":
            prefix = f"[Request ID: {outcome.request_id}] Server Error\n"
            error = outcome.error_message[len(prefix):] if outcome.error_message.startswith(prefix) else outcome.error_message
        self.executions.append(ExecutionEntry(
            kind="Completion", udf_type=outcome.udf_type, identifier=outcome.identifier,
            timestamp=self.clock.now_ms() / 1000, request_id=outcome.request_id,
            execution_id=outcome.execution_id, log_lines=list(outcome.log_lines),
            success=outcome.ok, error=error, execution_time=outcome.duration,
            caller=executions_mod.CALLERS.get(execution.caller, execution.caller),
            parent_execution_id=execution.parent_execution_id,
            identity_type=execution.identity.identity_type,
            identity_kind=execution.identity.kind,
        ))

    # -- HTTP actions (the http_actions server calls this)
    def run_http_action(self, handler, request, *, identity: Identity, route: str,
                        request_id: str | None = None) -> Outcome:
        """Run `handler(ctx, request)` with an action ctx; logged as an HttpAction `route`."""
        install_log_capture()
        request_id = request_id or _new_request_id()
        started = time.perf_counter()
        on_line = self._progress_callback(route, "http_action", request_id)
        sink = _LogSink(self.clock, on_line)
        execution = _Execution(self, None, identity, "http_action", request_id, sink, "http_action", None)
        on_line.execution = execution
        outcome = Outcome(status="success", udf_type="http_action", path=route, request_id=request_id,
                          execution_id=execution.execution_id)
        tokens = _current_sink.set(sink), _current_execution.set(execution)
        try:
            outcome.value = handler(ActionCtx(execution), request)
        except ConvexError as error:
            self._fail(outcome, self._uncaught(error))
            outcome.error_data, outcome.is_convex_error = error.data, True
        except Exception as error:  # noqa: BLE001
            self._fail(outcome, self._uncaught(error))
        finally:
            sink.flush()
            _current_sink.reset(tokens[0])
            _current_execution.reset(tokens[1])
        outcome.log_lines = list(sink.lines)
        outcome.duration = time.perf_counter() - started
        self._record(outcome, execution)
        self._note_duration("http " + route, outcome, self_contained=not execution.reached_out)
        return outcome


# The fast path of values.check_value (kept under this name for its property test).
_surely_valid = values.surely_valid


def _identifier(path: str | None, udf_type: str | None) -> str | None:
    if not path:
        return None
    return path if udf_type == "http_action" else strip_path(path)


def _display(value: Any) -> str:
    try:
        from console.emulator.engine.validate import display_value

        return display_value(value)
    except Exception:  # noqa: BLE001 - not a Convex value
        return repr(value)
