"""The scheduled-jobs table: one row per `_scheduled_functions` document, newest first.

`JobTable.apply(docs)` diffs the new documents against the rows shown, by job id: changed jobs
get their cells updated, new ones are added (then the rows are re-sorted), vanished or
filtered-out ones removed; nothing is rebuilt. `tick()` refreshes pending countdowns.

Jobs older than the live window can be added with `add_older(docs)` (fetched on demand, not
live): their pages come after the live pages, so a page is either live or older, never mixed.
"""

from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from rich.text import Text
from textual.cache import LRUCache
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
CELL_CACHE_SIZE = 4_000  # rendered cells kept across updates: a page of 100 rows x 6 columns, many times over


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


@dataclass
class ApplyStats:
    added: int = 0
    updated: int = 0
    removed: int = 0
    seconds: float = 0.0


@dataclass
class _Row:
    job_id: str
    doc: dict
    cells: dict = field(default_factory=dict)


def _slot_key(index: int) -> str:
    return f"slot{index}"


class JobTable(DataTable):
    """Jobs, newest first, one page at a time; rows keyed by job id.

    Every job received is kept (`docs`, newest first, as `tableData` returns them) so that
    filters and counts cover them all; only the current page of matching jobs is in the table.
    `older` holds jobs loaded past the live window; their pages follow the live pages.
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
        self.older: dict[str, dict] = {}  # jobs loaded past the live window, newest first (not live)
        self.older_page: int | None = None  # the page among the older pages shown, None on a live page
        self.live_pages = 1  # pages of matching live jobs (at least 1)
        self.older_matching = 0  # older jobs passing the filter (not already in the live window)
        self.slots: list[_Row] = []  # the rows on screen, top to bottom
        self._cells_rendered: LRUCache = LRUCache(CELL_CACHE_SIZE)
        self.shown: dict[str, int] = {}  # job id -> row index

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    # -- rendering
    def _render_cell(self, row_index: int, column_index: int, base_style, width: int, cursor: bool = False,
                     hover: bool = False):
        """DataTable drops every rendered cell whenever any cell changes (its caches are keyed by an
        update counter), so one changed job re-renders every visible cell through Rich. Rendered
        cells are kept here by what decides their look (row, column, text, styles, cursor), so
        an update re-renders only the cells whose text changed. (Overrides a private DataTable
        method: re-check on a Textual upgrade; the snapshot test would show a difference.)"""
        if not 0 <= row_index < len(self.slots) or column_index < 0:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        key = (row_index, column_index, str(self.slots[row_index].cells[COLUMNS[column_index][0]]), base_style,
               width, cursor, hover, self.show_cursor, self._show_hover_cursor, self._pseudo_class_state,
               self.cursor_type)
        lines = self._cells_rendered.get(key)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
            self._cells_rendered[key] = lines
        return lines

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cells_rendered.clear()

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
        name = Text(short_name(job.get("name", "")), style="bold")
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
        self.older_page = None
        return self._reconcile()

    def add_older(self, docs: Iterable[dict]) -> int:
        """Keep `docs` (older than everything loaded, newest first); returns how many were new.
        The rows change only when an older page is shown."""
        before = len(self.older)
        for doc in docs:
            self.older.setdefault(doc["_id"], doc)
        if self.older_page is not None:
            self._reconcile()
        else:
            self._count_pages(self.now_ms())
        return len(self.older) - before

    def keep_pushed_out(self, docs: list[dict]) -> None:
        """Before `apply(docs)` while older jobs are loaded: the live jobs that newer ones push out
        of the live window go to the front of `older`, so no job falls between the two."""
        if not self.older or not docs:
            return
        oldest_live = docs[-1].get("_creationTime", 0.0)
        pushed = {job_id: doc for job_id, doc in self.docs.items()
                  if doc.get("_creationTime", 0.0) < oldest_live and job_id not in self.older}
        if pushed:
            self.older = {**pushed, **self.older}

    def replace_older(self, docs: Iterable[dict]) -> None:
        """Older jobs loaded again (r): the page shown stays where it is."""
        self.older = {doc["_id"]: doc for doc in docs}
        self._reconcile()

    def clear_older(self) -> None:
        self.older = {}
        self.older_page = None
        self._reconcile()

    def set_page(self, page: int) -> bool:
        """Show page `page` (0-based) of the matching jobs; False when it does not exist."""
        last = self.page_count - 1
        if page < 0 or page > last or page == self.page:
            return False
        self.page = page
        self.older_page = page - self.live_pages if page >= self.live_pages else None
        self._reconcile()
        self.move_cursor(row=0, scroll=True)
        return True

    @property
    def page_count(self) -> int:
        return self.live_pages + -(-self.older_matching // self.page_size)

    @property
    def on_older_page(self) -> bool:
        return self.older_page is not None

    @property
    def total_matching(self) -> int:
        return self.matching + self.older_matching

    def page_text(self) -> str:
        if not self.total_matching:
            return "no jobs"
        first = self.page * self.page_size + 1
        if self.older_page is not None:
            first = self.matching + self.older_page * self.page_size + 1
            last = min(self.total_matching, first + self.page_size - 1)
        else:
            last = min(self.matching, first + self.page_size - 1)
        return f"{first:,}–{last:,} of {self.total_matching:,}"

    def _matching(self, docs: dict[str, dict], now_ms: float, skip: dict | None = None) -> list[tuple[str, dict]]:
        matches = self.job_filter.matches
        active = self.job_filter.active
        return [(job_id, doc) for job_id, doc in docs.items()
                if (not active or matches(doc, now_ms)) and (skip is None or job_id not in skip)]

    def _older_matching(self, now_ms: float) -> list[tuple[str, dict]]:
        # A job that moved into the live window since it was loaded is shown live only.
        return self._matching(self.older, now_ms, skip=self.docs) if self.older else []

    def _count_pages(self, now_ms: float) -> None:
        self.older_matching = len(self._older_matching(now_ms))
        self.live_pages = max(1, -(-self.matching // self.page_size))

    def _page_slice(self, now_ms: float) -> dict[str, dict]:
        if self.job_filter.active:
            matching = self._matching(self.docs, now_ms)
        else:
            matching = list(self.docs.items())
        self.matching = len(matching)
        older = self._older_matching(now_ms)
        self.older_matching = len(older)
        self.live_pages = max(1, -(-self.matching // self.page_size))
        older_pages = -(-self.older_matching // self.page_size)
        if self.older_page is not None and older_pages:
            # Keep showing the same older page while the live window grows or shrinks.
            self.older_page = min(self.older_page, older_pages - 1)
            self.page = self.live_pages + self.older_page
            start = self.older_page * self.page_size
            return dict(older[start:start + self.page_size])
        self.older_page = None
        self.page = min(self.page, self.live_pages - 1)
        start = self.page * self.page_size
        return dict(matching[start:start + self.page_size])

    def _reconcile(self) -> ApplyStats:
        """Show the current page. Rows are keyed by position (slot), not by job: when new jobs push
        the page down, rows are rewritten in place (only the cells that differ) instead of being
        removed, added and re-sorted, which would make DataTable recompute every row's size."""
        now_ms = self.now_ms()
        stats = ApplyStats()
        selected = self.selected_id
        target = list(self._page_slice(now_ms).items())
        before = set(self.shown)
        with self.app.batch_update():
            while len(self.slots) > len(target):
                self.remove_row(_slot_key(len(self.slots) - 1))
                self.slots.pop()
            for index, (job_id, doc) in enumerate(target):
                if index == len(self.slots):
                    cells = self.render_cells(doc, now_ms)
                    self.add_row(*(cells[key] for key, _, _ in COLUMNS), key=_slot_key(index))
                    self.slots.append(_Row(job_id, doc, cells))
                else:
                    row = self.slots[index]
                    if row.job_id != job_id or row.doc != doc:
                        stats.updated += row.job_id == job_id  # the same job, changed
                        self._update_row(index, row, job_id, doc, now_ms)
            self.shown = {row.job_id: index for index, row in enumerate(self.slots)}
            stats.added = len(self.shown.keys() - before)
            stats.removed = len(before - self.shown.keys())
            if stats.added and self.slots:
                self.move_cursor(row=self.shown.get(selected, 0), scroll=False)
        return stats

    def _update_row(self, index: int, row: _Row, job_id: str, doc: dict, now_ms: float) -> None:
        cells = self.render_cells(doc, now_ms)
        for key, _, _ in COLUMNS:
            if cells[key] != row.cells[key]:
                self.update_cell(_slot_key(index), key, cells[key])
        row.job_id, row.doc, row.cells = job_id, doc, cells

    def get_row_index(self, row_key) -> int:
        """The row showing job `row_key` (a job id), or of a slot key."""
        key = getattr(row_key, "value", row_key)
        if key in self.shown:
            return self.shown[key]
        return super().get_row_index(row_key)

    def _visible_indexes(self) -> range:
        first = max(0, int(self.scroll_y) - 1)
        return range(first, min(len(self.slots), first + self.size.height + 2))

    def rerender(self) -> int:
        """Render every shown row again (after a change of clock or time zone)."""
        now_ms = self.now_ms()
        with self.app.batch_update():
            for index, row in enumerate(self.slots):
                self._update_row(index, row, row.job_id, row.doc, now_ms)
        return len(self.slots)

    def tick(self) -> int:
        """Refresh the countdowns of the pending rows on screen; returns how many cells changed.
        Rows scrolled out of view catch up on the next tick after they come into view."""
        now_ms = self.now_ms()
        changed = 0
        with self.app.batch_update():
            for index in self._visible_indexes():
                row = self.slots[index]
                if state_kind(row.doc) != "pending":
                    continue
                scheduled = self.render_cells(row.doc, now_ms)["scheduled"]
                if scheduled != row.cells["scheduled"]:
                    self.update_cell(_slot_key(index), "scheduled", scheduled)
                    row.cells["scheduled"] = scheduled
                    changed += 1
        return changed

    @property
    def selected_id(self) -> str | None:
        if not self.slots or not 0 <= self.cursor_row < len(self.slots):
            return None
        return self.slots[self.cursor_row].job_id

    @property
    def selected_job(self) -> dict | None:
        job_id = self.selected_id
        return None if job_id is None else self.job(job_id)

    def job(self, job_id: str) -> dict | None:
        """A loaded job, live or older."""
        return self.docs.get(job_id) or self.older.get(job_id)

    def all_docs(self) -> Iterable[dict]:
        """Every loaded job, live first, then the older ones not in the live window."""
        yield from self.docs.values()
        yield from (doc for job_id, doc in self.older.items() if job_id not in self.docs)

    def counts(self) -> dict[str, int]:
        """Jobs per state, over the live window and the older jobs loaded."""
        result = {kind: 0 for kind in STATES}
        for doc in self.all_docs():
            kind = state_kind(doc)
            result[kind] = result.get(kind, 0) + 1
        return result
