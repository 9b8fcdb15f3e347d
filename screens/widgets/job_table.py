"""The scheduled-jobs table: one row per `_scheduled_functions` document, newest first.

`JobTable.apply(docs)` diffs the new documents against the rows shown, by job id: changed jobs
get their cells updated, new ones are added (then the rows are re-sorted), vanished or
filtered-out ones removed; nothing is rebuilt. `tick()` refreshes pending countdowns.
"""

from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from rich.text import Text
from textual.widgets import DataTable

STATES = ("pending", "inProgress", "success", "failed", "canceled")
STATE_BADGES = {
    "pending": ("● pending", "yellow"),
    "inProgress": ("▶ running", "bold cyan"),
    "success": ("✔ success", "green"),
    "failed": ("✖ failed", "bold red"),
    "canceled": ("⊘ canceled", "dim"),
}
COLUMNS = (("fn", "Function", 30), ("state", "State", 11), ("scheduled", "Scheduled", 24),
           ("completed", "Completed", 15), ("duration", "Duration", 9), ("error", "Error", 60))
TIME_WINDOWS = {
    "all": "any time",
    "past-hour": "scheduled in the past hour",
    "past-day": "scheduled in the past day",
    "next-hour": "due in the next hour",
    "future": "due in the future",
}
ERROR_WIDTH = 60
PAGE_SIZE = 100


def short_name(canonical: str) -> str:
    """`mod.js:fn` -> `mod:fn` (`mod.js:default` -> `mod`)."""
    module, _, name = canonical.rpartition(":")
    module = module[:-3] if module.endswith(".js") else module
    return module if name == "default" else f"{module}:{name}"


def state_kind(job: dict) -> str:
    return (job.get("state") or {}).get("kind", "?")


def format_duration(ms: float) -> str:
    ms = max(0.0, ms)
    if ms < 1000:
        return f"{ms:.0f}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f}m"
    return f"{ms / 3_600_000:.1f}h"


def countdown(due_ms: float, now_ms: float) -> str:
    """`in 42s`, `in 5m`, `in 3h`, `in 2d` (coarse so it changes rarely), or `due`."""
    seconds = (due_ms - now_ms) / 1000
    if seconds <= 0:
        return "due"
    for unit, size, limit in (("s", 1, 60), ("m", 60, 3600), ("h", 3600, 86400)):
        if seconds <= limit:
            return f"in {math.ceil(seconds / size)}{unit}"
    return f"in {math.ceil(seconds / 86400)}d"


@dataclass
class JobFilter:
    function: str = ""  # substring of the function name (mod:fn)
    state: str = "all"  # "all" or one of STATES
    window: str = "all"  # a key of TIME_WINDOWS

    def matches(self, job: dict, now_ms: float) -> bool:
        if self.function and self.function.lower() not in short_name(job.get("name", "")).lower():
            return False
        if self.state != "all" and state_kind(job) != self.state:
            return False
        return self._in_window(job.get("scheduledTime", 0.0), now_ms)

    def _in_window(self, scheduled: float, now_ms: float) -> bool:
        if self.window == "past-hour":
            return now_ms - 3_600_000 <= scheduled <= now_ms
        if self.window == "past-day":
            return now_ms - 86_400_000 <= scheduled <= now_ms
        if self.window == "next-hour":
            return now_ms <= scheduled <= now_ms + 3_600_000
        if self.window == "future":
            return scheduled > now_ms
        return True

    @property
    def active(self) -> bool:
        return bool(self.function) or self.state != "all" or self.window != "all"

    def describe(self) -> str:
        parts = []
        if self.function:
            parts.append(f"function ~ {self.function!r}")
        if self.state != "all":
            parts.append(f"state = {self.state}")
        if self.window != "all":
            parts.append(TIME_WINDOWS[self.window])
        return ", ".join(parts) or "all jobs"


class _OrderedText(Text):
    """The function cell; carries the job's creation time so rows sort newest first."""

    order: float = 0.0


@dataclass
class ApplyStats:
    added: int = 0
    updated: int = 0
    removed: int = 0
    seconds: float = 0.0


@dataclass
class _Row:
    doc: dict
    cells: dict = field(default_factory=dict)


class JobTable(DataTable):
    """Jobs, newest first, one page at a time; rows keyed by job id.

    Every job received is kept (`docs`, newest first, as `tableData` returns them) so that
    filters and counts cover them all; only the current page of matching jobs is in the table.
    """

    DEFAULT_CSS = "JobTable { height: 1fr; }"

    def __init__(self, *, now_ms: Callable[[], float] | None = None, time_zone=None, page_size: int = PAGE_SIZE,
                 **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.now_ms = now_ms or (lambda: time.time() * 1000)
        self.time_zone = time_zone  # None: the local zone
        self.job_filter = JobFilter()
        self.page_size = page_size
        self.page = 0
        self.matching = 0  # jobs passing the filter
        self.docs: dict[str, dict] = {}  # every job received (filtered or not), newest first
        self.shown: dict[str, _Row] = {}

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    # -- rendering
    def _clock(self, ms: float | None) -> str:
        if ms is None:
            return ""
        moment = datetime.datetime.fromtimestamp(ms / 1000, tz=self.time_zone or datetime.timezone.utc)
        if self.time_zone is None:
            moment = moment.astimezone()
        today = datetime.datetime.fromtimestamp(self.now_ms() / 1000, tz=moment.tzinfo).date()
        return moment.strftime("%H:%M:%S" if moment.date() == today else "%m-%d %H:%M:%S")

    def render_cells(self, job: dict, now_ms: float) -> dict:
        kind = state_kind(job)
        name = _OrderedText(short_name(job.get("name", "")), style="bold")
        name.order = job.get("_creationTime", 0.0)
        label, style = STATE_BADGES.get(kind, (kind, ""))
        scheduled = job.get("scheduledTime")
        when = self._clock(scheduled)
        if kind == "pending" and scheduled is not None:
            when = f"{when} ({countdown(scheduled, now_ms)})"
        completed = job.get("completedTime")
        duration = format_duration(completed - scheduled) if completed is not None and scheduled is not None else ""
        error = (job.get("state") or {}).get("error") or ""
        first_line = error.splitlines()[0] if error else ""
        if len(first_line) > ERROR_WIDTH:
            first_line = first_line[: ERROR_WIDTH - 1] + "…"
        return {
            "fn": name, "state": Text(label, style=style), "scheduled": when,
            "completed": self._clock(completed), "duration": duration, "error": Text(first_line, style="red"),
        }

    # -- updating
    def apply(self, docs: Iterable[dict]) -> ApplyStats:
        """Show `docs` (all jobs known), diffed against the rows on screen."""
        started = time.perf_counter()
        self.docs = {doc["_id"]: doc for doc in docs}
        stats = self._reconcile()
        stats.seconds = time.perf_counter() - started
        return stats

    def set_filter(self, job_filter: JobFilter) -> ApplyStats:
        self.job_filter = job_filter
        self.page = 0
        return self._reconcile()

    def set_page(self, page: int) -> bool:
        """Show page `page` (0-based) of the matching jobs; False when it does not exist."""
        last = max(0, (self.matching - 1) // self.page_size)
        if page < 0 or page > last or page == self.page:
            return False
        self.page = page
        self._reconcile()
        self.move_cursor(row=0, scroll=True)
        return True

    @property
    def page_count(self) -> int:
        return max(1, -(-self.matching // self.page_size))

    def page_text(self) -> str:
        if not self.matching:
            return "no jobs"
        first = self.page * self.page_size + 1
        last = min(self.matching, first + self.page_size - 1)
        return f"{first:,}–{last:,} of {self.matching:,}"

    def _page_slice(self, now_ms: float) -> dict[str, dict]:
        matches = self.job_filter.matches
        if self.job_filter.active:
            matching = [(job_id, doc) for job_id, doc in self.docs.items() if matches(doc, now_ms)]
        else:
            matching = list(self.docs.items())
        self.matching = len(matching)
        self.page = min(self.page, max(0, (self.matching - 1) // self.page_size))
        start = self.page * self.page_size
        return dict(matching[start:start + self.page_size])

    def _reconcile(self) -> ApplyStats:
        now_ms = self.now_ms()
        stats = ApplyStats()
        selected = self.selected_id if self.shown else None
        target = self._page_slice(now_ms)
        for job_id in [job_id for job_id in self.shown if job_id not in target]:
            self.remove_row(job_id)
            del self.shown[job_id]
            stats.removed += 1
        for job_id, doc in target.items():
            row = self.shown.get(job_id)
            if row is None:
                cells = self.render_cells(doc, now_ms)
                self.add_row(*(cells[key] for key, _, _ in COLUMNS), key=job_id)
                self.shown[job_id] = _Row(doc, cells)
                stats.added += 1
            elif row.doc != doc:
                self._update_row(job_id, row, doc, now_ms)
                stats.updated += 1
        if stats.added:
            self.sort("fn", key=lambda cell: -getattr(cell, "order", 0.0))
            if selected in self.shown:
                self.move_cursor(row=self.get_row_index(selected), scroll=False)
            else:
                self.move_cursor(row=0, scroll=False)
        return stats

    def _update_row(self, job_id: str, row: _Row, doc: dict, now_ms: float) -> None:
        cells = self.render_cells(doc, now_ms)
        for key, _, _ in COLUMNS:
            if key == "fn" and str(cells[key]) == str(row.cells[key]):
                continue
            if cells[key] != row.cells[key]:
                self.update_cell(job_id, key, cells[key])
        row.doc, row.cells = doc, {**cells, "fn": row.cells["fn"]}

    def rerender(self) -> int:
        """Render every shown row again (after a change of clock or time zone)."""
        now_ms = self.now_ms()
        for job_id, row in self.shown.items():
            self._update_row(job_id, row, row.doc, now_ms)
        return len(self.shown)

    def tick(self) -> int:
        """Refresh the countdowns of pending rows; returns how many cells changed."""
        now_ms = self.now_ms()
        changed = 0
        for job_id, row in self.shown.items():
            if state_kind(row.doc) != "pending":
                continue
            cells = self.render_cells(row.doc, now_ms)
            if cells["scheduled"] != row.cells["scheduled"]:
                self.update_cell(job_id, "scheduled", cells["scheduled"])
                row.cells["scheduled"] = cells["scheduled"]
                changed += 1
        return changed

    @property
    def selected_id(self) -> str | None:
        if not self.row_count or self.cursor_row < 0:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:  # no row under the cursor
            return None

    @property
    def selected_job(self) -> dict | None:
        job_id = self.selected_id
        return None if job_id is None else self.docs.get(job_id)

    def counts(self) -> dict[str, int]:
        result = {kind: 0 for kind in STATES}
        for doc in self.docs.values():
            kind = state_kind(doc)
            result[kind] = result.get(kind, 0) + 1
        return result
