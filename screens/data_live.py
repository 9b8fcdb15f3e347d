"""The Data screen's live page: the page on screen is a subscription to the very query that loaded
it (console.sync); each result is diffed against the rows shown and only the differences touch the
grid. A deployment that refuses the socket (or cannot be reached on it) is polled instead. The
table's count follows too, re-read at most once a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from textual import work
from textual.message import Message
from textual.timer import Timer

from console.client import Page
from screens.paging import PAGE_SIZE, PageRequest
from screens.query import QuerySpec
from screens.widgets.document_grid import DocumentGrid

POLL_SECONDS = 2.0  # the page is re-read this often when the deployment refuses live queries
LIVE_GRACE_SECONDS = 5.0  # not (re)connected by then: poll meanwhile
COUNT_INTERVAL = 1.0  # at most one count re-fetch a second while rows come and go
POLLING_NOTE = "live updates unavailable: polling"


@dataclass
class CountLoaded(Message):
    table: str
    count: int | None


@dataclass
class LivePage(Message):
    """A newer result of the page on screen, from the subscription or a poll."""

    generation: int
    page: Page


def _count_query(table: str) -> tuple[str, dict]:
    """The query behind the table's count (as the client's table_size / num_files)."""
    if table == "_storage":
        return "_system/frontend/fileStorageV2:numFiles", {}
    return "_system/frontend/tableSize", {"tableName": table}


class LivePageMixin:
    """The live-page half of DataScreen (it supplies table, spec, pager, page_loading, live_state,
    load_count, _update_bars, _show_highlighted and _paging_keys)."""

    def _init_live(self) -> None:
        """The live view's fields (called from the screen's __init__)."""
        self._live_generation = 0
        self._live_subscription: Any = None
        self._count_subscription: Any = None
        self._live_total: int | None = None  # the latest live count, applied at most once a second
        self._live_request: PageRequest | None = None
        self._pending_live: LivePage | None = None
        self._poll_timer: Timer | None = None
        self._grace_timer: Timer | None = None
        self._unwatch_sync: Any = None
        self._cursor_change = ""  # "changed" | "deleted": the marker in the page bar
        self._cursor_change_id: str | None = None
        self._last_count_at = 0.0
        self._count_timer: Timer | None = None

    def _start_live(self, request: PageRequest) -> None:
        self._stop_live()
        if self.table is None:
            return
        self._live_request = request
        sync = self.app.sync_client()
        if sync is None:  # no admin credential: nothing to subscribe with
            return
        if self._unwatch_sync is None:
            self._unwatch_sync = sync.on_state_change(self._sync_state_changed)
        from console.sync import SyncState

        if sync.state is SyncState.FAILED:
            self._start_polling()
            return
        path, args = self.spec.page_query(self.table, request.order, request.cursor, PAGE_SIZE)
        generation = self._live_generation
        self._live_subscription = sync.subscribe(path, args, callback=lambda result: self._live_result(generation, result))
        # the count too: rows added or removed anywhere in the table, not only on this page
        count_path, count_args = _count_query(self.table)
        self._count_subscription = sync.subscribe(
            count_path, count_args, callback=lambda result: self._live_count(generation, result))
        self._sync_state_changed(sync.state, None)

    def _stop_live(self) -> None:
        self._live_generation += 1
        for subscription in (self._live_subscription, self._count_subscription):
            if subscription is not None:
                try:
                    subscription.unsubscribe()
                except Exception:  # the client is closing with the deployment: nothing left to release
                    pass
        self._live_subscription = self._count_subscription = None
        self._live_request = None
        self._pending_live = None
        self._stop_polling()
        self._cancel_grace()
        self._cursor_change = ""
        self._live_total = None

    def _sync_state_changed(self, state: Any, _error: BaseException | None) -> None:
        """The sync client's state (on the event loop): live, reconnecting (poll after a grace), failed (poll)."""
        name = getattr(state, "value", str(state))
        if self._live_request is None or self._poll_timer is not None and name != "connected":
            return
        if name == "connected":
            self._cancel_grace()
            self._stop_polling()
            self.live_state = "live"
        elif name in ("connecting", "reconnecting"):
            self.live_state = name
            if self._grace_timer is None:
                self._grace_timer = self.set_timer(LIVE_GRACE_SECONDS, self._grace_over)
        elif name == "failed":
            self._start_polling()
        self._update_bars()

    def _grace_over(self) -> None:
        self._grace_timer = None
        if self._live_request is not None and self.live_state != "live":
            self._start_polling()

    def _cancel_grace(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.stop()
            self._grace_timer = None

    def _start_polling(self) -> None:
        if self._poll_timer is None:
            self._poll_timer = self.set_interval(POLL_SECONDS, self._poll_tick)
        self.live_state = "polling"
        self._update_bars()

    def _stop_polling(self) -> None:
        if self._poll_timer is not None:
            self._poll_timer.stop()
            self._poll_timer = None

    def _poll_tick(self) -> None:
        request, table = self._live_request, self.table
        if request is None or table is None or self.page_loading or not self.is_active:
            return
        if self.app.connection_state in ("unreachable", "refused"):
            return  # the banner says so; `r` retries
        self.poll_page(table, self.spec, request, self._live_generation)
        self._refresh_count()  # rows may come and go off this page too

    @work(exclusive=True, exit_on_error=False, group="live-poll")
    async def poll_page(self, table: str, spec: QuerySpec, request: PageRequest, generation: int) -> None:
        path, args = spec.page_query(table, request.order, request.cursor, PAGE_SIZE)
        page = Page.from_result(await self.client.query(path, args))
        self.post_message(LivePage(generation, page))

    def _live_result(self, generation: int, result: Any) -> None:
        if generation != self._live_generation:
            return
        if not result.ok:  # e.g. the table was deleted: say so, keep the rows shown
            self.live_state = "failed"
            self.notify(result.error_message or "The live query failed", title="Live update failed",
                        severity="warning")
            return
        try:
            page = Page.from_result(result.value)
        except ValueError:
            return
        if self.live_state == "failed":
            self.live_state = "live"
        self.post_message(LivePage(generation, page))

    def _live_count(self, generation: int, result: Any) -> None:
        if generation != self._live_generation or not result.ok:
            return
        value = result.value
        self._live_total = int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        self._refresh_count()

    def on_live_page(self, message: LivePage) -> None:
        if message.generation != self._live_generation or self.page_loading:
            return
        if not self.is_active:  # a modal (or another section) is on top: apply it when we are back
            self._pending_live = message
            return
        self._apply_live(message.page)

    def on_screen_resume(self) -> None:
        pending, self._pending_live = self._pending_live, None
        if pending is not None and pending.generation == self._live_generation and not self.page_loading:
            self._apply_live(pending.page)

    def _apply_live(self, page: Page) -> None:
        if page.filter_problems:
            return
        from console.sync import diff_rows

        new_docs = list(reversed(page.items)) if self.pager.anchor == "end" else list(page.items)
        diff = diff_rows(self.pager.docs, new_docs)
        bounds_changed = (page.continue_cursor, page.is_done) != (self.pager.continue_cursor, self.pager.is_done)
        if diff.empty and not bounds_changed:
            return
        grid = self.query_one("#grid", DocumentGrid)
        cursor_id = grid.current_id
        with self.app.batch_update():
            docs = self.pager.replace_live(page.items, page.continue_cursor, page.is_done)
            if not diff.empty:
                grid.apply_diff(diff, docs)
            if cursor_id is not None and diff.touches(cursor_id):
                self._cursor_change = "deleted" if cursor_id in diff.removed else "changed"
                self._cursor_change_id = grid.current_id
                self._show_highlighted()
            elif not grid.docs or cursor_id is None:
                self._show_highlighted()
            if (diff.added or diff.removed) and self.live_state != "live":  # live: the count is subscribed to
                self._refresh_count()
            self._update_bars()
        paging_keys = (self.pager.can_go_next, self.pager.can_go_previous)
        if paging_keys != self._paging_keys:
            self._paging_keys = paging_keys
            self.refresh_bindings()

    def _refresh_count(self) -> None:
        """Re-read the table's count, at most once a second (a burst of commits: one read after)."""
        if self.table is None or self._count_timer is not None:
            return
        wait = self._last_count_at + COUNT_INTERVAL - time.monotonic()
        if wait <= 0:
            self._count_now()
        else:
            self._count_timer = self.set_timer(wait, self._count_now)

    def _count_now(self) -> None:
        self._count_timer = None
        if self.table is None:
            return
        self._last_count_at = time.monotonic()
        if self.live_state == "live" and self._live_total is not None:
            self.post_message(CountLoaded(self.table, self._live_total))  # the live count: no request
        else:
            self.load_count(self.table)

    def on_unmount(self) -> None:
        self._stop_live()
        if self._unwatch_sync is not None:
            self._unwatch_sync()
            self._unwatch_sync = None
