"""Scheduled functions and cron jobs (PROTOCOL §8.1, §2.3; QUERIES §1.3, §4.5).

Jobs live in the system table `_scheduled_functions`, one document per job, exactly as Convex
shows them: `{name: "mod.js:fn", args: [args], scheduledTime: ms, completedTime?: ms,
state: {kind: pending | inProgress | success | failed (error) | canceled}}`.

`SchedulerService` is what `ctx.scheduler` calls (`runner.services.scheduler`): inside a
mutation it writes in the mutation's transaction, from an action it commits at once.
`Executor` runs due jobs (8 at once) and cron jobs. A scheduled mutation commits its
`success` state in its own transaction (exactly once; OCC conflicts are retried); an action is
marked `inProgress` first and runs at most once. The executor sleeps until the next due time,
a commit touching the scheduler tables, or a manual clock advance: it never polls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import json
import logging
import threading
import time
import weakref
from typing import Any, Callable

from console import values
from console.emulator import crons as cron_lib
from console.emulator.engine import IndexDefinition
from console.emulator.errors import ConvexEngineError
from console.emulator.identity import Identity

log = logging.getLogger(__name__)

JOBS_TABLE = "_scheduled_functions"
CRON_JOBS_TABLE = "_cron_jobs"
CRON_NEXT_RUN_TABLE = "_cron_next_run"
CRON_LOGS_TABLE = "_cron_job_logs"
SCHEDULER_TABLES = {JOBS_TABLE, CRON_JOBS_TABLE, CRON_NEXT_RUN_TABLE}

PARALLELISM = 8  # SCHEDULED_JOB_EXECUTION_PARALLELISM
MAX_SCHEDULED_PER_CALL = 1000  # TRANSACTION_MAX_NUM_SCHEDULED
MAX_SCHEDULED_ARGS_BYTES = 16 * 1024 * 1024  # TRANSACTION_MAX_SCHEDULED_TOTAL_ARGUMENT_SIZE_BYTES
MAX_DELAY_SECONDS = 5 * 366 * 24 * 3600
RETENTION_MS = 7 * 24 * 3600 * 1000  # SCHEDULED_JOB_RETENTION
CRON_LOGS_KEPT = 5  # runs kept per cron job
GC_BATCH = 100
GC_INTERVAL_S = 3600.0
TRANSIENT_ACTION_ERROR = "Transient error while executing action"
OCC_EXHAUSTED = "changed while it was being run and on every subsequent retry"
CANCEL_BATCH = 1000

STATE_INDEX = "by_state"  # [state.kind, scheduledTime]
COMPLETED_INDEX = "by_completed"  # [completedTime]

# The job the current thread is running (scheduling from a canceled job gives canceled jobs).
_current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("scheduled_job", default=None)


class _NotPending(Exception):
    """The job (or cron run) was canceled or already ran: the mutation must not commit."""

    MARKER = "scheduled job is no longer pending"

    def __init__(self):
        super().__init__(self.MARKER)


def ensure_tables(db) -> None:
    """Create the scheduler's system tables and indexes (idempotent)."""
    db.define_system_table(JOBS_TABLE, [
        IndexDefinition(STATE_INDEX, ["state.kind", "scheduledTime"]),
        IndexDefinition(COMPLETED_INDEX, ["completedTime"]),
    ])
    db.define_system_table(CRON_JOBS_TABLE, [IndexDefinition("by_name", ["name"])])
    db.define_system_table(CRON_NEXT_RUN_TABLE, [
        IndexDefinition("by_cron_job_id", ["cronJobId"]),
        IndexDefinition("by_next_ts", ["nextTs"]),
    ])
    db.define_system_table(CRON_LOGS_TABLE, [IndexDefinition("by_name_and_ts", ["name", "ts"])])


# ---------------------------------------------------------------------------
# Queries as SerializedQuery JSON (QUERIES §2.1)


def _index_query(table: str, index: str, range_exprs: list, order: str = "asc", limit: int | None = None) -> dict:
    operators = [{"limit": limit}] if limit is not None else []
    source = {"type": "IndexRange", "indexName": f"{table}.{index}", "range": range_exprs, "order": order}
    return {"source": source, "operators": operators}


def _expr(kind: str, field: str, value: Any) -> dict:
    return {"type": kind, "fieldPath": field, "value": values.encode(value)}


def jobs_in_states(kinds: tuple[str, ...], *, start_ms: float | None = None, end_ms: float | None = None) -> list[dict]:
    """Index queries listing the jobs in `kinds`, by scheduled time (one query per kind)."""
    queries = []
    for kind in kinds:
        range_exprs = [_expr("Eq", "state.kind", kind)]
        if start_ms is not None:
            range_exprs.append(_expr("Gte", "scheduledTime", float(start_ms)))
        if end_ms is not None:
            range_exprs.append(_expr("Lte", "scheduledTime", float(end_ms)))
        queries.append(_index_query(JOBS_TABLE, STATE_INDEX, range_exprs))
    return queries


def args_bytes(args_array: list) -> bytes:
    """The JSON bytes Convex keeps for a job's args array (`udfArgs`)."""
    return json.dumps(values.encode(args_array), separators=(",", ":")).encode("utf-8")


def _error_text(outcome) -> str:
    """A failed outcome's message without the `[Request ID: …] Server Error` prefix."""
    message = outcome.error_message or ""
    prefix = f"[Request ID: {outcome.request_id}] Server Error\n"
    if message.startswith(prefix):
        message = message[len(prefix):]
    return message.rstrip("\n")


# ---------------------------------------------------------------------------
# The service behind ctx.scheduler


class SchedulerService:
    def __init__(self, db, runner, clock):
        self.db = db
        self.runner = runner
        self.clock = clock
        self._counts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._counts_lock = threading.Lock()

    # -- ctx.scheduler
    def schedule(self, path: str, args: dict, ts_ms: float, *, tx=None) -> str:
        if tx is not None:
            return self._schedule_in(tx, path, args, ts_ms, self._budget_key(tx))
        key = self._budget_key(None)
        return self.db.write(lambda t: self._schedule_in(t, path, args, ts_ms, key))[0]

    def cancel(self, job_id: str, *, tx=None) -> None:
        if tx is not None:
            self.cancel_in(tx, job_id)
        else:
            self.db.write(lambda t: self.cancel_in(t, job_id))

    def _budget_key(self, tx):
        """What the 1,000-per-call limit counts against: the transaction, or the running action."""
        if tx is not None:
            return tx
        from console.emulator.runtime import current_execution

        return current_execution()

    def _charge(self, key, size: int) -> None:
        if key is None:
            return
        with self._counts_lock:
            count, total = self._counts.get(key, (0, 0))
            if count >= MAX_SCHEDULED_PER_CALL:
                raise ConvexEngineError(
                    f"Too many functions scheduled by this mutation (limit: {MAX_SCHEDULED_PER_CALL})"
                )
            if total + size > MAX_SCHEDULED_ARGS_BYTES:
                raise ConvexEngineError(
                    "Too large total size of the arguments of scheduled functions from this mutation "
                    f"(limit: {MAX_SCHEDULED_ARGS_BYTES} bytes)"
                )
            self._counts[key] = (count + 1, total + size)

    def _schedule_in(self, tx, path: str, args: dict, ts_ms: float, budget_key) -> str:
        now_ms = self.clock.now_ms()
        self._check_time(ts_ms, now_ms)
        if not isinstance(args, dict):
            raise ConvexEngineError(
                f"Expected to receive an object as the function's argument. Instead received: {args!r}"
            )
        try:
            values.check_value(args)
        except ValueError as error:
            raise ConvexEngineError(str(error)) from None
        from console.emulator.runtime import schedule_target_problem

        problem = schedule_target_problem(self.runner.app, path)
        if problem:
            raise ConvexEngineError(problem)
        self._charge(budget_key, values.value_size([args]))
        job = {"name": path, "args": [args], "scheduledTime": float(ts_ms), "state": {"kind": "pending"}}
        parent = _current_job.get()
        if parent is not None and self._is_canceled(tx, parent):
            job.update(scheduledTime=now_ms, completedTime=now_ms, state={"kind": "canceled"})
        return tx.insert(JOBS_TABLE, job, system=True)

    @staticmethod
    def _check_time(ts_ms: float, now_ms: float) -> None:
        delta = (ts_ms - now_ms) / 1000
        shown = f"UnixTimestamp({ts_ms / 1000:.3f}s)"
        if delta > MAX_DELAY_SECONDS:
            raise ConvexEngineError(f"{shown} is more than 5 years in the future")
        if delta < -MAX_DELAY_SECONDS:
            raise ConvexEngineError(f"{shown} is more than 5 years in the past")

    @staticmethod
    def _is_canceled(tx, job_id: str) -> bool:
        job = tx.get(job_id, table=JOBS_TABLE, is_system=True)
        return job is not None and job["state"]["kind"] == "canceled"

    def cancel_in(self, tx, job_id: str) -> bool:
        """Cancel a pending or running job; a finished or unknown one is left alone (no error)."""
        job = tx.get(job_id, table=JOBS_TABLE, is_system=True)
        if job is None or job["state"]["kind"] not in ("pending", "inProgress"):
            return False
        tx.shallow_merge(
            job_id, {"state": {"kind": "canceled"}, "completedTime": self.clock.now_ms()}, is_system=True
        )
        return True

    # -- admin
    def cancel_all(self, udf_path: str | None = None, start_ms: float | None = None,
                   end_ms: float | None = None) -> int:
        """Cancel every pending or running job (of one function, scheduled in a time range)."""
        total = 0
        while True:
            canceled = self.db.write(lambda tx: self._cancel_batch(tx, udf_path, start_ms, end_ms))[0]
            total += canceled
            if canceled < CANCEL_BATCH:
                return total

    def _cancel_batch(self, tx, udf_path, start_ms, end_ms) -> int:
        count = 0
        for query in jobs_in_states(("inProgress", "pending"), start_ms=start_ms, end_ms=end_ms):
            for job in tx.collect(query):
                if udf_path is not None and job["name"] != udf_path:
                    continue
                self.cancel_in(tx, job["_id"])
                count += 1
                if count >= CANCEL_BATCH:
                    return count
        return count

    def delete_all(self) -> int:
        """Remove every job document (`/api/delete_scheduled_functions_table`)."""
        query = {"source": {"type": "FullTableScan", "tableName": JOBS_TABLE, "order": "asc"},
                 "operators": [{"limit": CANCEL_BATCH}]}
        total = 0
        while True:
            removed = self.db.write(lambda tx: [tx.remove(d["_id"], is_system=True) for d in tx.collect(query)])[0]
            total += len(removed)
            if len(removed) < CANCEL_BATCH:
                return total

    # -- executor support
    def due_jobs(self, now_ms: float, limit: int, exclude: set[str]) -> tuple[list[dict], float | None]:
        """Up to `limit` pending jobs due at `now_ms` (not in `exclude`), and the next due time."""
        query = _index_query(JOBS_TABLE, STATE_INDEX, [_expr("Eq", "state.kind", "pending")])

        def read(tx):
            due: list[dict] = []
            query_id = tx.query_stream(query)
            try:
                while True:
                    job, done = tx.query_stream_next(query_id)
                    if done:
                        return due, None
                    if job["_id"] in exclude:
                        continue
                    if job["scheduledTime"] <= now_ms and len(due) < limit:
                        due.append(job)
                        continue
                    return due, job["scheduledTime"]
            finally:
                tx.query_cleanup(query_id)

        return self.db.read(read)

    def recover(self) -> int:
        """After a restart: a job left `inProgress` was an action cut short (at most once)."""
        def fail_all(tx) -> int:
            jobs = tx.collect(jobs_in_states(("inProgress",))[0])
            for job in jobs:
                self._finish(tx, job["_id"], {"kind": "failed", "error": TRANSIENT_ACTION_ERROR})
            return len(jobs)

        return self.db.write(fail_all)[0]

    def collect_garbage(self) -> int:
        """Delete jobs completed more than 7 days ago (100 per transaction)."""
        cutoff = self.clock.now_ms() - RETENTION_MS
        query = _index_query(JOBS_TABLE, COMPLETED_INDEX, [
            _expr("Gte", "completedTime", float("-inf")), _expr("Lt", "completedTime", float(cutoff)),
        ], limit=GC_BATCH)
        total = 0
        while True:
            removed = self.db.write(lambda tx: [tx.remove(d["_id"], is_system=True) for d in tx.collect(query)])[0]
            total += len(removed)
            if len(removed) < GC_BATCH:
                return total

    def _finish(self, tx, job_id: str, state: dict, *, from_kinds=("pending", "inProgress")) -> bool:
        job = tx.get(job_id, table=JOBS_TABLE, is_system=True)
        if job is None or job["state"]["kind"] not in from_kinds:
            return False  # canceled meanwhile (or removed): completing is a no-op
        tx.shallow_merge(job_id, {"state": state, "completedTime": self.clock.now_ms()}, is_system=True)
        return True

    # -- running one job (in an executor thread)
    def is_mutation(self, job: dict) -> bool:
        function = self.runner.app.functions.get(job["name"])
        return function is not None and function.udf_type == "mutation"

    def start_actions(self, jobs: list[dict]) -> set[str]:
        """Mark due action jobs `inProgress` in one transaction; returns the ids now running.
        (Mutations need no mark: their end state commits with their own transaction.)"""
        def mark(tx) -> set[str]:
            return {job["_id"] for job in jobs if self._finish_to(tx, job["_id"], {"kind": "inProgress"})}

        return self.db.write(mark)[0] if jobs else set()

    def execute(self, job: dict, *, started: bool = False) -> str:
        """Run one due job to its end state; returns the state kind it ended in (or "skipped").
        `started`: an action job already marked `inProgress` (by `start_actions`)."""
        token = _current_job.set(job["_id"])
        try:
            if self.is_mutation(job):
                return self._run_mutation(job)
            return self._run_action(job, started=started)
        finally:
            _current_job.reset(token)

    def _run(self, job: dict, caller: str = "scheduler", wrap_tx=None):
        args = job["args"][0] if job.get("args") else {}
        return self.runner.run(job["name"], args, identity=Identity.anonymous(), caller=caller,
                               allow_internal=True, wrap_tx=wrap_tx)

    def _run_mutation(self, job: dict) -> str:
        job_id = job["_id"]

        def hook(tx, fn):
            current = tx.get(job_id, table=JOBS_TABLE, is_system=True)
            if current is None or current["state"]["kind"] != "pending":
                raise _NotPending()
            result = fn(tx)
            self._finish(tx, job_id, {"kind": "success"}, from_kinds=("pending",))
            return result

        return self._run_transactional(job, hook, lambda tx, message: self._finish(
            tx, job_id, {"kind": "failed", "error": message}, from_kinds=("pending",)))

    def _run_transactional(self, job: dict, hook, record_failure, caller: str = "scheduler") -> str:
        """Run a mutation with `hook(tx, run)` around it in its transaction (the runner's
        `wrap_tx`); OCC exhaustion retries with backoff."""
        delay = 0.05
        while True:
            outcome = self._run(job, caller, wrap_tx=hook)
            if outcome.ok:
                return "success"
            message = _error_text(outcome)
            if _NotPending.MARKER in message:
                return "skipped"
            if OCC_EXHAUSTED in message:
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.db.write(lambda tx: record_failure(tx, message))
            return "failed"

    def _run_action(self, job: dict, *, started: bool = False) -> str:
        job_id = job["_id"]
        if not started and not self.db.write(lambda tx: self._finish_to(tx, job_id, {"kind": "inProgress"}))[0]:
            return "skipped"
        outcome = self._run(job)
        state = {"kind": "success"} if outcome.ok else {"kind": "failed", "error": _error_text(outcome)}
        self.db.write(lambda tx: self._finish(tx, job_id, state, from_kinds=("inProgress",)))
        return state["kind"]

    def _finish_to(self, tx, job_id: str, state: dict) -> bool:
        job = tx.get(job_id, table=JOBS_TABLE, is_system=True)
        if job is None or job["state"]["kind"] != "pending":
            return False
        tx.shallow_merge(job_id, {"state": state}, is_system=True)
        return True


# ---------------------------------------------------------------------------
# Cron jobs


class CronService:
    """Keeps `_cron_jobs`/`_cron_next_run` in step with the app's `crons` and runs them."""

    def __init__(self, scheduler: SchedulerService):
        self.scheduler = scheduler
        self.db = scheduler.db
        self.clock = scheduler.clock

    def declared(self) -> dict[str, dict]:
        crons = getattr(self.scheduler.runner.app, "crons", None)
        if crons is None:
            return {}
        if hasattr(crons, "resolved"):
            return crons.resolved()
        return dict(getattr(crons, "crons", crons) or {})

    def sync(self) -> None:
        """Install the declared crons: new or changed ones get a fresh next run; removed ones go."""
        from console.emulator.app import canonicalize_path

        wanted = {}
        for identifier, entry in self.declared().items():
            if not entry.get("name"):
                raise ConvexEngineError(f"Cron job {identifier!r} refers to a function that is not registered")
            spec = {
                "udfPath": canonicalize_path(entry["name"]),
                "udfArgs": args_bytes(list(entry.get("args") or [{}])),
                "cronSchedule": cron_lib.stored_schedule(entry["schedule"]),
            }
            wanted[identifier] = spec
        self.db.write(lambda tx: self._sync_in(tx, wanted))

    def _sync_in(self, tx, wanted: dict[str, dict]) -> None:
        now_ns = self.clock.now_ns()
        existing = {job["name"]: job for job in tx.collect(_full_scan(CRON_JOBS_TABLE))}
        for name, job in existing.items():
            if wanted.get(name) != job["cronSpec"]:
                for run in self._next_runs(tx, job["_id"]):
                    tx.remove(run["_id"], is_system=True)
                tx.remove(job["_id"], is_system=True)
        for name, spec in wanted.items():
            if name in existing and existing[name]["cronSpec"] == spec:
                continue
            job_id = tx.insert(CRON_JOBS_TABLE, {"name": name, "cronSpec": spec}, system=True)
            tx.insert(CRON_NEXT_RUN_TABLE, {
                "cronJobId": job_id, "state": {"type": "pending"}, "prevTs": None,
                "nextTs": cron_lib.next_run_ns(spec["cronSchedule"], None, now_ns),
            }, system=True)

    @staticmethod
    def _next_runs(tx, cron_job_id: str) -> list[dict]:
        return tx.collect(_index_query(CRON_NEXT_RUN_TABLE, "by_cron_job_id", [_expr("Eq", "cronJobId", cron_job_id)]))

    def recover(self) -> None:
        """A cron action left `inProgress` by a crash is logged as failed and moves on."""
        def fix(tx):
            for run in tx.collect(_full_scan(CRON_NEXT_RUN_TABLE)):
                if run["state"]["type"] == "inProgress":
                    job = tx.get(run["cronJobId"], is_system=True)
                    if job is not None:
                        self._log(tx, job, run, {"type": "err", "error": TRANSIENT_ACTION_ERROR}, [], 0.0)
                        self._advance(tx, job, run)
        self.db.write(fix)

    def due_runs(self, now_ns: int, exclude: set[str]) -> tuple[list[dict], int | None]:
        query = _index_query(CRON_NEXT_RUN_TABLE, "by_next_ts", [])

        def read(tx):
            due = []
            for run in tx.collect(query):
                if run["_id"] in exclude or run["state"]["type"] != "pending":
                    continue
                if run["nextTs"] <= now_ns:
                    due.append(run)
                else:
                    return due, run["nextTs"]
            return due, None

        return self.db.read(read)

    def execute(self, run: dict) -> str:
        job = self.db.read(lambda tx: tx.get(run["cronJobId"], is_system=True))
        if job is None:
            return "skipped"
        spec = job["cronSpec"]
        path = spec["udfPath"]
        args_array = values.decode(json.loads(spec["udfArgs"].decode("utf-8")))
        fake_job = {"_id": run["_id"], "name": path, "args": args_array}
        function = self.scheduler.runner.app.functions.get(path)
        if function is not None and function.udf_type == "mutation":
            return self._run_mutation(job, run, fake_job)
        return self._run_action(job, run, fake_job)

    def _current_run(self, tx, run: dict, state: str) -> dict | None:
        current = tx.get(run["_id"], is_system=True)
        if current is None or current["nextTs"] != run["nextTs"] or current["state"]["type"] != state:
            return None
        return current

    def _run_mutation(self, job: dict, run: dict, fake_job: dict) -> str:
        started = time.perf_counter()

        def hook(tx, fn):
            if self._current_run(tx, run, "pending") is None:
                raise _NotPending()
            result = fn(tx)
            self._log(tx, job, run, {"type": "success", "result": result}, [], time.perf_counter() - started)
            self._advance(tx, job, run)
            return result

        def record_failure(tx, message):
            if self._current_run(tx, run, "pending") is not None:
                self._log(tx, job, run, {"type": "err", "error": message}, [], time.perf_counter() - started)
                self._advance(tx, job, run)

        return self.scheduler._run_transactional(fake_job, hook, record_failure, caller="cron")

    def _run_action(self, job: dict, run: dict, fake_job: dict) -> str:
        def begin(tx) -> bool:
            if self._current_run(tx, run, "pending") is None:
                return False
            tx.shallow_merge(run["_id"], {"state": {"type": "inProgress"}}, is_system=True)
            return True

        if not self.db.write(begin)[0]:
            return "skipped"
        outcome = self.scheduler._run(fake_job, caller="cron")
        status = ({"type": "success", "result": outcome.value} if outcome.ok
                  else {"type": "err", "error": _error_text(outcome)})
        lines = [line.pretty() for line in outcome.log_lines]

        def end(tx):
            if self._current_run(tx, run, "inProgress") is not None:
                self._log(tx, job, run, status, lines, outcome.duration)
                self._advance(tx, job, run)

        self.db.write(end)
        return "success" if outcome.ok else "failed"

    def _log(self, tx, job: dict, run: dict, status: dict, lines: list[str], seconds: float) -> None:
        tx.insert(CRON_LOGS_TABLE, {
            "name": job["name"], "ts": int(run["nextTs"]), "udfPath": job["cronSpec"]["udfPath"],
            "udfArgs": job["cronSpec"]["udfArgs"], "status": status,
            "logLines": {"logLines": lines, "isTruncated": False}, "executionTime": float(seconds),
        }, system=True)
        logs = tx.collect(_index_query(CRON_LOGS_TABLE, "by_name_and_ts", [_expr("Eq", "name", job["name"])], "desc"))
        for old in logs[CRON_LOGS_KEPT:]:
            tx.remove(old["_id"], is_system=True)

    def _advance(self, tx, job: dict, run: dict) -> None:
        next_ts = cron_lib.next_run_ns(job["cronSpec"]["cronSchedule"], run["nextTs"], self.clock.now_ns())
        tx.shallow_merge(run["_id"], {"state": {"type": "pending"}, "prevTs": run["nextTs"], "nextTs": next_ts},
                         is_system=True)


def _full_scan(table: str) -> dict:
    return {"source": {"type": "FullTableScan", "tableName": table, "order": "asc"}, "operators": []}


# ---------------------------------------------------------------------------
# The executor


class Executor:
    """Runs due jobs and cron runs, at most `PARALLELISM` at once, on its own threads."""

    def __init__(self, scheduler: SchedulerService, crons: CronService):
        self.scheduler = scheduler
        self.crons = crons
        self.clock = scheduler.clock
        self._pool = concurrent.futures.ThreadPoolExecutor(PARALLELISM, thread_name_prefix="convex-scheduler")
        self._reader = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="convex-scheduler-io")
        self._in_flight: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._unsubscribe: Callable | None = None
        self._last_gc = float("-inf")
        self.wakeups = 0  # loop iterations (tests check it does not busy-loop)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await self._in_reader(self.scheduler.recover)
        await self._in_reader(self.crons.recover)
        await self._in_reader(self.crons.sync)
        self._unsubscribe = self.scheduler.db.add_commit_listener(self._on_commit)
        if hasattr(self.clock, "on_advance"):
            self.clock.on_advance(lambda _now: self.wake())
        self._task = asyncio.create_task(self._run(), name="convex-scheduler")

    async def stop(self) -> None:
        self._stopping = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.wake()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._reader.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # loop closed during shutdown
            pass

    def _on_commit(self, commit) -> None:
        if SCHEDULER_TABLES.intersection(commit.tables):
            self.wake()

    async def _in_reader(self, fn, *args):
        return await self._loop.run_in_executor(self._reader, fn, *args)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            self.wakeups += 1
            try:
                next_ms = await self._dispatch()
            except Exception:  # noqa: BLE001 - keep scheduling; the next wake retries
                log.exception("scheduler pass failed")
                next_ms = self.clock.now_ms() + 1000
            await self._sleep_until(next_ms)

    async def _dispatch(self) -> float | None:
        """Start every due job that fits; returns when the next one is due (ms), if known."""
        now_ms = self.clock.now_ms()
        if now_ms - self._last_gc >= GC_INTERVAL_S * 1000:
            self._last_gc = now_ms
            await self._in_reader(self.scheduler.collect_garbage)
        next_times = []
        free = PARALLELISM - len(self._in_flight)
        if free > 0:
            runs, next_cron_ns = await self._in_reader(self.crons.due_runs, self.clock.now_ns(), set(self._in_flight))
            for run in runs[:free]:
                self._launch(run["_id"], self.crons.execute, run)
            if next_cron_ns is not None:
                next_times.append(next_cron_ns / 1e6)
            free = PARALLELISM - len(self._in_flight)
        if free > 0:
            jobs, next_job_ms = await self._in_reader(
                self.scheduler.due_jobs, self.clock.now_ms(), free, set(self._in_flight))
            actions = [job for job in jobs if not self.scheduler.is_mutation(job)]
            running = await self._in_reader(self.scheduler.start_actions, actions)
            for job in jobs:
                if job in actions and job["_id"] not in running:
                    continue  # canceled meanwhile
                self._launch(job["_id"], functools.partial(self.scheduler.execute, started=job in actions), job)
            if next_job_ms is not None:
                next_times.append(next_job_ms)
        return min(next_times) if next_times else None

    def _launch(self, key: str, fn, item: dict) -> None:
        self._in_flight.add(key)
        future = self._loop.run_in_executor(self._pool, self._guarded, fn, item)

        def done(_future) -> None:
            self._in_flight.discard(key)
            self._wake.set()

        future.add_done_callback(done)

    @staticmethod
    def _guarded(fn, item: dict) -> str | None:
        try:
            return fn(item)
        except Exception:  # noqa: BLE001 - a broken job must not stop the executor
            log.exception("scheduled job %s failed to run", item.get("_id"))
            return None

    async def _sleep_until(self, next_ms: float | None) -> None:
        """Wait for a wake-up (commit, clock advance, a job ending) or the next due time."""
        if self._stopping:
            return
        now_ms = self.clock.now_ms()
        full = len(self._in_flight) >= PARALLELISM
        if next_ms is not None and next_ms <= now_ms and not full:
            await asyncio.sleep(0)  # more due work than one pass took: go again
            return
        timeout = None
        if self.clock.kind != "manual":
            timeout = GC_INTERVAL_S
            if next_ms is not None and not full:
                timeout = min(timeout, (next_ms - now_ms) / 1000)
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except asyncio.TimeoutError:
            pass


# ---------------------------------------------------------------------------
# Plugging into the deployment (server.SERVICES)


def install(deployment) -> SchedulerService:
    """Create the tables and put the service behind `ctx.scheduler` (no executor)."""
    existing = deployment.extras.get("scheduler")
    if existing is not None:
        return existing
    ensure_tables(deployment.db)
    runner = deployment.runner
    service = SchedulerService(deployment.db, runner, deployment.clock)
    runner.services.scheduler = service
    deployment.extras["scheduler"] = service
    deployment.extras["crons"] = CronService(service)
    return service


async def start(deployment):
    """`SERVICES` entry: install the service and run the executor until the server stops."""
    service = install(deployment)
    executor = Executor(service, deployment.extras["crons"])
    deployment.extras["scheduler_executor"] = executor
    await executor.start()
    return executor.stop
