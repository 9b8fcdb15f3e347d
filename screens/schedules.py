"""The Schedules screen: every scheduled job in every state, live, and the cron jobs.

Jobs come from `_system/cli/tableData` on `_scheduled_functions` (newest first): by a sync
subscription when the deployment accepts one, else by polling every second (the bar says
which). Rows are diffed by job id; refreshes wait while a dialog is open. Only the newest
`JOB_LIMIT` jobs are live: paging past them (n, G) loads older jobs on demand with the same
query, continuing from the live window's cursor; those pages are a snapshot (r reloads them).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from console import values
from console.client import AdminAuth, ClientError
from screens.base import ConsoleScreen
from screens.widgets.job_table import (
    STATES, JobFilter, JobTable, countdown, format_duration, short_name, state_kind,
)
from screens.widgets.modals import ConfirmModal
from screens.widgets.schedule_filter import ScheduleFilterModal

# Newest jobs kept live (filtered, counted, paged 100 at a time on screen; the bar says "newest
# 1,000 only" when there are more). Re-measured with the faster engine (2-core machine under load):
# tableData over HTTP answers 1,000 jobs in ~0.1 s but 10,000 in ~0.7-0.9 s, and decoding 10,000
# documents costs the console's event loop ~0.2 s per update: too slow to follow 10,000 every second.
JOB_LIMIT = 1_000
OLDER_BATCH = 1_000  # older jobs fetched per request when paging past the live window
OLDER_MAX_FETCHES = 20  # requests per key press at most (G on a huge table stops there; G again goes on)
OLDER_NOTE = "older jobs — not live, r refreshes"
POLL_INTERVAL = 1.0
CRON_POLL_INTERVAL = 5.0
ARGS_PREVIEW_BYTES = 2_000
RUNS_SHOWN = 5
FINISHED = ("success", "failed", "canceled")
UNREACHABLE_NOTE = "deployment unreachable"
CRON_STATUS = {"success": ("✔", "green"), "err": ("✖", "bold red"), "canceled": ("⊘", "dim")}


def plural(count: int, noun: str) -> str:
    """`1 job`, `2 jobs`, `0 cron jobs`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def jobs_args(limit: int | None = None) -> dict:
    return {"table": "_scheduled_functions", "order": "desc",
            "paginationOpts": {"numItems": float(limit or JOB_LIMIT), "cursor": None}}


DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def describe_schedule(schedule: dict) -> str:
    """A stored `cronSchedule` in words: `every 5 minutes`, `daily at 08:00 UTC`, `cron 0 * * * *`."""
    kind = schedule.get("type")
    if kind == "interval":
        seconds = int(schedule.get("seconds", 0))
        for unit, size in (("hour", 3600), ("minute", 60), ("second", 1)):
            if seconds >= size and seconds % size == 0:
                count = seconds // size
                return f"every {plural(count, unit)}"
        return f"every {plural(seconds, 'second')}"
    if kind == "cron":
        return f"cron {schedule.get('cronExpr', '')}"
    minute = int(schedule.get("minuteUTC", 0))
    at = f"{int(schedule.get('hourUTC', 0)):02d}:{minute:02d} UTC"
    if kind == "hourly":
        return f"hourly at :{minute:02d}"
    if kind == "daily":
        return f"daily at {at}"
    if kind == "weekly":
        return f"weekly on {DAYS[int(schedule.get('dayOfWeek', 0)) % 7]} at {at}"
    if kind == "monthly":
        return f"monthly on day {schedule.get('day')} at {at}"
    return str(kind)


class SchedulesScreen(ConsoleScreen):
    AUTO_FOCUS = "#jobs"
    BINDINGS = [
        Binding("slash", "filter", "Filter", id="schedules.filter"),
        Binding("n", "next_page", "Next", id="schedules.next-page"),
        Binding("p", "previous_page", "Prev", id="schedules.previous-page"),
        Binding("g", "first_page", "First", show=False, id="schedules.first-page"),
        Binding("G", "last_page", "Last", show=False, id="schedules.last-page"),
        Binding("s", "cycle_state", "State", id="schedules.cycle-state"),
        Binding("f", "filter_function", "This function", id="schedules.filter-function"),
        Binding("x", "clear_filters", "Clear filters", show=False, id="schedules.clear-filters"),
        Binding("d,delete", "cancel_job", "Cancel", id="schedules.cancel"),
        Binding("D", "cancel_function", "Cancel fn", id="schedules.cancel-function"),
        Binding("X", "cancel_all", "Cancel all", id="schedules.cancel-all"),
        Binding("ctrl+r", "rerun", "Re-run", id="schedules.rerun"),
        Binding("r", "refresh", "Refresh", id="schedules.refresh"),
        Binding("y", "copy_id", "Copy ID", show=False, id="schedules.copy-id"),
        Binding("c", "copy_args", "Copy args", show=False, id="schedules.copy-args"),
        Binding("C", "toggle_tab", "Jobs/Crons", id="schedules.toggle-tab"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.mode_note = "connecting…"
        self.pending_jobs: tuple[list[dict], str | None, bool] | None = None
        self.live_cursor: str | None = None  # continues after the live window
        self.live_done = True  # the live window holds every job
        self.older_cursor: str | None = None  # continues after the older jobs loaded
        self.older_done = False
        self.older_fetched = False  # older_cursor/older_done describe a fetch made since the last reload
        self.older_status = ""  # "loading older jobs…" or an error
        self.crons_stale = False  # crons or runs arrived while paused: render them on resume
        self.crons: list[dict] = []
        self.cron_runs: list[dict] = []
        self.loaded = False
        self.full_args: dict[str, Any] = {}  # job id -> args fetched on demand
        self.last_apply_seconds = 0.0
        self._sync = None

    # -- layout -------------------------------------------------------------------------

    def compose_body(self) -> ComposeResult:
        with TabbedContent(id="schedules-tabs", initial="tab-jobs"):
            with TabPane("Jobs", id="tab-jobs"):
                yield Static("", id="jobs-bar")
                yield JobTable(id="jobs")
                with VerticalScroll(id="job-detail-pane"):
                    yield Static("Select a job to see its arguments.", id="job-detail", markup=False)
            with TabPane("Cron jobs", id="tab-crons"):
                yield Static("", id="crons-bar")
                yield DataTable(id="crons", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="cron-detail-pane"):
                    yield Static("", id="cron-detail", markup=False)

    def on_mount(self) -> None:
        crons = self.query_one("#crons", DataTable)
        for key, label in (("name", "Name"), ("schedule", "Schedule"), ("fn", "Function"),
                           ("next", "Next run"), ("runs", "Last runs"), ("last", "Last outcome")):
            crons.add_column(label, key=key)
        self.set_interval(1.0, self._tick)
        self.watch(self.app, "connection_state", self._connection_changed)
        self._update_bar()

    def _connection_changed(self, state: str) -> None:
        if state == "connected":
            if not self.loaded or self.mode_note.startswith(UNREACHABLE_NOTE):
                self.mode_note = "connecting…"
                self._update_bars()
                self.follow()
        elif state in ("unreachable", "refused"):
            error = getattr(self.app, "connection_error", "")
            self.mode_note = f"{UNREACHABLE_NOTE}: {error} · r retries" if error else f"{UNREACHABLE_NOTE} · r retries"
            self._update_bars()

    def _update_bars(self) -> None:
        self._update_bar()
        self._fill_crons()

    def on_unmount(self) -> None:
        self._close_sync()

    @property
    def client(self):
        return self.app.client

    @property
    def table(self) -> JobTable:
        return self.query_one("#jobs", JobTable)

    # -- live data ----------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="live")
    async def follow(self) -> None:
        sync = await self._open_sync()
        if sync is None:
            await self._poll_forever()
            return
        self._sync = sync
        self.mode_note = "live"
        self._update_bar()
        jobs = sync.subscribe("_system/cli/tableData", jobs_args(), callback=self._jobs_result)
        crons = sync.subscribe("_system/frontend/listCronJobs", {}, callback=self._crons_result)
        runs = sync.subscribe("_system/frontend/listCronJobRuns", {}, callback=self._runs_result)
        try:
            await asyncio.Event().wait()  # until the worker is cancelled
        finally:
            for sub in (jobs, crons, runs):
                sub.unsubscribe()
            self._close_sync()

    async def _open_sync(self):
        """A sync client with the admin key, or None (then the screen polls)."""
        auth = getattr(self.client, "auth", None)
        connection = getattr(self.client, "connection", None)
        if not isinstance(auth, AdminAuth) or connection is None:
            return None
        try:
            from console.sync import AdminAuth as SyncAdminAuth, SyncClient
        except ImportError:
            return None
        sync = SyncClient(connection.url, SyncAdminAuth(auth.key))
        try:
            await sync.connect(timeout=3.0)
        except Exception:  # refused, unreachable, no sync support: poll instead
            await sync.close()
            return None
        return sync

    def _close_sync(self) -> None:
        sync, self._sync = self._sync, None
        if sync is not None:
            asyncio.ensure_future(sync.close())

    async def _poll_forever(self) -> None:
        self.mode_note = f"polling every {POLL_INTERVAL:g} s (no live subscription)"
        self._update_bar()
        last_crons = 0.0
        while True:
            started = time.monotonic()
            try:
                page = await self.client.scheduled_functions(num_items=JOB_LIMIT)
                self.receive_jobs(page.items, cursor=page.continue_cursor, is_done=page.is_done)
                if time.monotonic() - last_crons >= CRON_POLL_INTERVAL or not self.crons:
                    last_crons = time.monotonic()
                    self.receive_crons(await self.client.list_cron_jobs(), await self.client.list_cron_job_runs())
                if self.mode_note.startswith("polling:"):
                    self.mode_note = f"polling every {POLL_INTERVAL:g} s (no live subscription)"
                    self._update_bars()
            except ClientError as error:
                self.mode_note = f"polling: {error}"
                self._update_bar()
            # A slow deployment is not polled harder than it answers.
            await asyncio.sleep(max(POLL_INTERVAL, 2 * (time.monotonic() - started)))

    def _jobs_result(self, result) -> None:
        if result.ok:
            value = result.value or {}
            self.receive_jobs(list(value.get("page") or []), cursor=value.get("continueCursor"),
                              is_done=bool(value.get("isDone", True)))
        else:
            self.mode_note = f"live: {result.error_message.splitlines()[-1] if result.error_message else 'error'}"
            self._update_bar()

    def _crons_result(self, result) -> None:
        if result.ok:
            self.receive_crons(crons=list(result.value or []))

    def _runs_result(self, result) -> None:
        if result.ok:
            self.receive_crons(runs=list(result.value or []))

    @property
    def paused(self) -> bool:
        """True while a dialog (or another screen) is on top: refreshes wait."""
        return self.app.screen is not self

    def receive_jobs(self, docs: list[dict], *, cursor: str | None = None, is_done: bool = True) -> None:
        if self.paused:
            self.pending_jobs = (docs, cursor, is_done)
            return
        self.live_cursor, self.live_done = cursor, is_done
        self.table.keep_pushed_out(docs)
        stats = self.table.apply(docs)
        self.last_apply_seconds = stats.seconds
        self.loaded = True
        self._update_bar()
        self._show_selected()

    def receive_crons(self, crons: list[dict] | None = None, runs: list[dict] | None = None) -> None:
        """Keep the latest crons and runs (each arrives on its own); only the drawing waits while paused."""
        if crons is not None:
            self.crons = crons
        if runs is not None:
            self.cron_runs = runs
        if self.paused:
            self.crons_stale = True
            return
        self.crons_stale = False
        self._fill_crons()

    def on_screen_resume(self) -> None:
        jobs, self.pending_jobs = self.pending_jobs, None
        if jobs is not None:
            docs, cursor, is_done = jobs
            self.receive_jobs(docs, cursor=cursor, is_done=is_done)
        if self.crons_stale:
            self.receive_crons()

    def _tick(self) -> None:
        if not self.paused and self.loaded:
            self.table.tick()
            if self.crons:
                self._fill_crons()

    # -- bars and details ---------------------------------------------------------------

    def _update_bar(self) -> None:
        table = self.table
        counts = table.counts()
        parts = [f"{counts.get(kind, 0)} {kind}" for kind in STATES if counts.get(kind)]
        text = Text()
        if not self.loaded:  # nothing known yet: no "0 jobs"
            text.append("Jobs", style="bold")
            text.append(f"  [{self.mode_note}]", style="dim italic")
            self.query_one("#jobs-bar", Static).update(text)
            return
        older = self.older_loaded
        text.append(plural(len(table.docs) + older, "job"), style="bold")
        if parts:
            text.append(" · " + " · ".join(parts))
        if table.job_filter.active:
            text.append(f"  ▸ filter: {table.job_filter.describe()}", style="yellow")
        if table.docs or older:
            text.append(f"  showing {table.page_text()}")
        capped = not self.live_done or len(table.docs) >= JOB_LIMIT
        if table.on_older_page:
            text.append(f"  {OLDER_NOTE}", style="bold yellow")
        if capped:
            text.append(self._window_note(older), style="dim")
        if self.older_status:
            text.append(f"  {self.older_status}", style="italic")
        text.append(f"  [{self.mode_note}]", style="dim italic")
        self.query_one("#jobs-bar", Static).update(text)

    @property
    def older_loaded(self) -> int:
        """Older jobs loaded and shown (those not in the live window)."""
        table = self.table
        return sum(1 for job_id in table.older if job_id not in table.docs)

    @property
    def more_older(self) -> bool:
        """Older jobs exist past those loaded."""
        if self.live_done or self.live_cursor is None:
            return False
        return not (self.older_fetched and self.older_done)

    def _window_note(self, older: int) -> str:
        scope = f"newest {JOB_LIMIT:,} live" + (f" + {older:,} older loaded" if older else "")
        more = "; n past the end loads older" if self.more_older else ""
        if self.table.job_filter.active:
            return f"  (the filter covers the {scope.replace(' live', ' jobs')} only{more})"
        return f"  ({scope}{more})"

    def _show_selected(self) -> None:
        job = self.table.selected_job
        detail = self.query_one("#job-detail", Static)
        if job is None:
            detail.update("No job selected." if self.table.row_count else "No scheduled jobs.")
            return
        detail.update(self._job_detail(job))

    def _job_detail(self, job: dict) -> str:
        kind = state_kind(job)
        lines = [f"{short_name(job.get('name', ''))}   {kind}   id {job['_id']}"]
        if kind == "inProgress":
            lines.append("Running: cancelling lets it finish; its state stays canceled and what it schedules is canceled.")
        args = self.full_args.get(job["_id"], job.get("args"))
        text = json.dumps(values.to_clean_json(args), indent=2, ensure_ascii=False)
        if len(text) > ARGS_PREVIEW_BYTES and job["_id"] not in self.full_args:
            text = text[:ARGS_PREVIEW_BYTES] + f"\n… ({len(text):,} characters: press enter to load them all)"
        lines.append("args: " + text)
        error = (job.get("state") or {}).get("error")
        if error:
            lines.append("error: " + error)
        return "\n".join(lines)

    @on(DataTable.RowHighlighted, "#jobs")
    def _highlighted(self) -> None:
        self._show_selected()

    @on(DataTable.RowSelected, "#jobs")
    def _selected(self) -> None:
        job = self.table.selected_job
        if job is not None:
            self.load_args(job["_id"])

    @work(exclusive=True, exit_on_error=False, group="args")
    async def load_args(self, job_id: str) -> None:
        """The job's full arguments, fetched fresh (large args are not rendered until asked)."""
        found = await self.client.list_by_id([(job_id, "_scheduled_functions")])
        doc = found[0] if found else None
        if doc is not None:
            self.full_args[job_id] = doc.get("args")
        self._show_selected()

    # -- crons ----------------------------------------------------------------------------

    def _fill_crons(self) -> None:
        table = self.query_one("#crons", DataTable)
        selected = table.cursor_row
        table.clear()
        now_ns = time.time_ns()
        for cron in sorted(self.crons, key=lambda c: c.get("name", "")):
            spec = cron.get("cronSpec") or {}
            next_run = cron.get("nextRun") or {}
            next_ts = next_run.get("nextTs")
            next_text = ""
            if next_ts is not None:
                when = self.table._clock(int(next_ts) / 1e6)
                next_text = f"{when} ({countdown(int(next_ts) / 1e6, now_ns / 1e6)})"
                if (next_run.get("state") or {}).get("type") == "inProgress":
                    next_text = "running now"
            runs = self._runs_of(cron.get("name"))
            marks = Text()
            for run in runs[:RUNS_SHOWN]:
                mark, style = CRON_STATUS.get((run.get("status") or {}).get("type"), ("?", ""))
                marks.append(mark + " ", style=style)
            last = runs[0] if runs else None
            table.add_row(
                cron.get("name", ""), describe_schedule(spec.get("cronSchedule") or {}),
                short_name(spec.get("udfPath", "")), next_text, marks, self._run_outcome(last), key=cron.get("name"),
            )
        if table.row_count:
            table.move_cursor(row=min(max(selected, 0), table.row_count - 1), scroll=False)
        counted = plural(len(self.crons), "cron job") if self.loaded or self.crons else "Cron jobs"
        self.query_one("#crons-bar", Static).update(Text(f"{counted}  [{self.mode_note}]", style="bold"))
        self._show_cron()

    def _runs_of(self, name: str | None) -> list[dict]:
        return sorted((r for r in self.cron_runs if r.get("name") == name), key=lambda r: -int(r.get("ts", 0)))

    def _run_outcome(self, run: dict | None) -> Text:
        if run is None:
            return Text("never ran", style="dim")
        status = run.get("status") or {}
        mark, style = CRON_STATUS.get(status.get("type"), ("?", ""))
        when = self.table._clock(int(run.get("ts", 0)) / 1e6)
        detail = f"{mark} {when} ({format_duration(float(run.get('executionTime', 0.0)) * 1000)})"
        if status.get("type") == "err":
            detail += " " + str(status.get("error", "")).splitlines()[0][:60]
        return Text(detail, style=style)

    @on(DataTable.RowHighlighted, "#crons")
    def _show_cron(self) -> None:
        table = self.query_one("#crons", DataTable)
        detail = self.query_one("#cron-detail", Static)
        if not table.row_count:
            detail.update("No cron jobs: declare them in the app's crons module." if self.loaded else "")
            return
        name = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        lines = [f"Runs of {name!r} (newest first):"]
        for run in self._runs_of(name):
            status = run.get("status") or {}
            outcome = {"success": "success", "err": "failed", "canceled": "canceled"}.get(status.get("type"), "?")
            line = f"  {self.table._clock(int(run.get('ts', 0)) / 1e6)}  {outcome:<8} " \
                   f"{format_duration(float(run.get('executionTime', 0.0)) * 1000)}"
            if status.get("type") == "err":
                line += f"  {status.get('error')}"
            lines.append(line)
        detail.update("\n".join(lines))

    # -- actions: filters -----------------------------------------------------------------

    def _apply_filter(self, job_filter: JobFilter) -> None:
        self.table.set_filter(job_filter)
        self._update_bar()
        self._show_selected()

    def action_filter(self) -> None:
        functions = sorted({short_name(doc.get("name", "")) for doc in self.table.all_docs()})

        def done(result: JobFilter | None) -> None:
            if result is not None:
                self._apply_filter(result)

        self.app.push_screen(ScheduleFilterModal(self.table.job_filter, functions), done)

    def action_cycle_state(self) -> None:
        order = ("all", *STATES)
        current = self.table.job_filter
        following = order[(order.index(current.state) + 1) % len(order)]
        self._apply_filter(JobFilter(current.function, following, current.window))

    def action_filter_function(self) -> None:
        job = self.table.selected_job
        current = self.table.job_filter
        if current.function:
            self._apply_filter(JobFilter("", current.state, current.window))
        elif job is not None:
            self._apply_filter(JobFilter(short_name(job["name"]), current.state, current.window))

    def _go_to_page(self, page: int) -> bool:
        if self.table.set_page(page):
            self._update_bar()
            self._show_selected()
            return True
        return False

    def action_next_page(self) -> None:
        table = self.table
        if table.page + 1 < table.page_count or not self.more_older:
            self._go_to_page(table.page + 1)
        else:
            self.load_older(table.page + 1)

    def action_previous_page(self) -> None:
        self._go_to_page(self.table.page - 1)

    def action_first_page(self) -> None:
        self._go_to_page(0)

    def action_last_page(self) -> None:
        if self.more_older:
            self.load_older(None)
        else:
            self._go_to_page(self.table.page_count - 1)

    # -- older jobs (past the live window, on demand) ---------------------------------------------

    def _older_wanted(self, page: int | None) -> int | None:
        """Older matching jobs needed to show `page` in full (None: all of them)."""
        if page is None:
            return None
        return (page - self.table.live_pages + 1) * self.table.page_size

    @work(exclusive=True, exit_on_error=False, group="older")
    async def load_older(self, page: int | None) -> None:
        """Fetch older jobs until page `page` is full (None: to the oldest), then show it."""
        table = self.table
        self.older_status = "loading older jobs…"
        self._update_bar()
        try:
            for _ in range(OLDER_MAX_FETCHES):
                wanted = self._older_wanted(page)
                if not self.more_older or (wanted is not None and table.older_matching >= wanted):
                    break
                await self._fetch_older()
            self.older_status = ""
        except ClientError as error:
            self.older_status = f"older jobs: {error}"
        last = table.page_count - 1
        if not self._go_to_page(last if page is None else min(page, last)):
            self._update_bar()

    async def _fetch_older(self) -> None:
        cursor = self.older_cursor if self.older_fetched else self.live_cursor
        items, self.older_cursor, self.older_done = await self._older_page(cursor)
        self.older_fetched = True
        self.table.add_older(items)

    async def _older_page(self, cursor: str | None) -> tuple[list[dict], str | None, bool]:
        result = await self.client.scheduled_functions(cursor=cursor, num_items=OLDER_BATCH)
        return result.items, result.continue_cursor, result.is_done

    async def _reload_older(self) -> None:
        """Load the older jobs again, as many as were loaded, after the current live window."""
        wanted = len(self.table.older)
        docs: list[dict] = []
        cursor, done = self.live_cursor, self.live_done or self.live_cursor is None
        while not done and len(docs) < wanted:
            items, cursor, done = await self._older_page(cursor)
            docs.extend(items)
        self.older_cursor, self.older_done, self.older_fetched = cursor, done, True
        self.table.replace_older(docs)

    def action_clear_filters(self) -> None:
        self._apply_filter(JobFilter())

    # -- actions: cancel, re-run ------------------------------------------------------------

    def _production(self) -> bool:
        connection = getattr(self.app, "connection", None)
        return connection is not None and connection.is_production

    def action_cancel_job(self) -> None:
        job = self.table.selected_job
        if job is None:
            return
        kind = state_kind(job)
        name = short_name(job["name"])
        if kind in FINISHED:
            self.notify(f"This {name} job already ended ({kind}): nothing to cancel.", title="Cancel")
            return
        if kind == "inProgress":
            message = (f"{name} is running. It will finish; its state will stay canceled and anything "
                       "it schedules will be canceled.")
        else:
            message = f"{name}, scheduled {self.table.render_cells(job, self.table.now_ms())['scheduled']}, will not run."

        def done(confirmed: bool) -> None:
            if confirmed:
                self.cancel_jobs(f"Canceled the {name} job", job_id=job["_id"])

        self.app.push_screen(ConfirmModal("Cancel scheduled job", message, confirm_label="Cancel job",
                                          cancel_label="Keep job",
                                          require_text="cancel" if self._production() else None), done)

    def action_cancel_function(self) -> None:
        job = self.table.selected_job
        if job is None:
            return
        name = short_name(job["name"])
        waiting = sum(1 for d in self.table.all_docs() if d["name"] == job["name"] and state_kind(d) in ("pending", "inProgress"))
        message = (f"Cancel every pending or running job of {name} ({waiting} listed)? "
                   "Running ones will finish; what they schedule is canceled.")

        def done(confirmed: bool) -> None:
            if confirmed:
                self.cancel_jobs(f"Canceled the jobs of {name}", udf_path=name)

        self.app.push_screen(ConfirmModal(f"Cancel all jobs of {name}", message, confirm_label="Cancel jobs",
                                          require_text=name if self._production() else None), done)

    def action_cancel_all(self) -> None:
        counts = self.table.counts()
        message = (f"Cancel every pending ({counts.get('pending', 0)}) and running ({counts.get('inProgress', 0)}) "
                   "job? Running ones will finish; what they schedule is canceled.")

        def done(confirmed: bool) -> None:
            if confirmed:
                self.cancel_jobs("Canceled all scheduled jobs", all_jobs=True)

        self.app.push_screen(ConfirmModal("Cancel all scheduled jobs", message, confirm_label="Cancel all",
                                          require_text="cancel all" if self._production() else None), done)

    @work(exclusive=False, exit_on_error=False, group="cancel")
    async def cancel_jobs(self, summary: str, *, job_id: str | None = None, udf_path: str | None = None,
                          all_jobs: bool = False) -> None:
        if job_id is not None:
            await self.client.cancel_job(job_id)
        elif udf_path is not None or all_jobs:
            await self.client.cancel_all_jobs(udf_path=udf_path)
        self.notify(summary, title="Schedules")
        if self._sync is None:
            await self._refresh_once()

    def action_rerun(self) -> None:
        job = self.table.selected_job
        if job is None:
            return
        kind = state_kind(job)
        if kind not in FINISHED:
            self.notify(f"The job is {kind}: re-run it once it has ended.", title="Re-run", severity="warning")
            return
        self.rerun(short_name(job["name"]), (job.get("args") or [{}])[0])

    @work(exclusive=False, exit_on_error=False, group="rerun")
    async def rerun(self, path: str, args: dict) -> None:
        result = await self.client.rerun_function(path, args)
        if result.ok:
            self.notify(f"{path} ran as admin in {format_duration(result.elapsed * 1000)}.", title="Re-run")
        else:
            first = (result.error_message or "").splitlines()
            self.notify(first[-1] if first else "failed", title=f"Re-run of {path} failed", severity="error")

    # -- actions: misc --------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if self.app.connection_state != "connected":
            self.app.retry_connection()  # following starts again once it answers
            return
        self.refresh_now()

    @work(exclusive=True, exit_on_error=False, group="refresh")
    async def refresh_now(self) -> None:
        await self._refresh_once()
        if self.table.older:
            try:
                await self._reload_older()
            except ClientError as error:
                self.older_status = f"older jobs: {error}"
            self._update_bar()
            self._show_selected()

    async def _refresh_once(self) -> None:
        page = await self.client.scheduled_functions(num_items=JOB_LIMIT)
        self.receive_jobs(page.items, cursor=page.continue_cursor, is_done=page.is_done)
        self.receive_crons(await self.client.list_cron_jobs(), await self.client.list_cron_job_runs())

    def action_copy_id(self) -> None:
        job_id = self.table.selected_id
        if job_id:
            self.app.copy_to_clipboard(job_id)
            self.notify("Job ID copied")

    def action_copy_args(self) -> None:
        job = self.table.selected_job
        if job is not None:
            self.app.copy_to_clipboard(json.dumps(values.to_clean_json((job.get("args") or [{}])[0])))
            self.notify("Arguments copied")

    def focus_jobs_to_cancel(self) -> None:
        """The palette's "Cancel scheduled job…": show the jobs still waiting, ready for d."""
        tabs = self.query_one("#schedules-tabs", TabbedContent)
        tabs.active = "tab-jobs"
        current = self.table.job_filter
        if current.state == "all":
            self._apply_filter(JobFilter(current.function, "pending", current.window))
        self.table.focus()
        self.notify("Pick a job, then d to cancel it (s changes the state shown).", title="Cancel a job")

    def action_toggle_tab(self) -> None:
        tabs = self.query_one("#schedules-tabs", TabbedContent)
        tabs.active = "tab-crons" if tabs.active == "tab-jobs" else "tab-jobs"
        target = "#crons" if tabs.active == "tab-crons" else "#jobs"
        self.query_one(target).focus()


def make_screen() -> SchedulesScreen:
    return SchedulesScreen()
