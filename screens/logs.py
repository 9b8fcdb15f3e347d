"""The Logs screen: a live tail of `stream_function_logs` (PROTOCOL §3.6) with filters by
function, status, level and free text, pause/resume, and a drill-down into one request.

A long-poll worker posts batches of rows; the LogView appends them (ring buffer, diffed
appends). While paused, new rows wait in a bounded queue and are appended on resume.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from console.client import ClientError
from screens.base import ConsoleScreen
from screens.widgets.log_view import DEFAULT_CAPACITY, LEVELS, LogFilter, LogRow, LogView, RowMaker, row_text

STATUSES = [("any status", "all"), ("success", "success"), ("failure", "failure")]
LEVEL_CHOICES = [("any level", "all")] + [(level, level) for level in LEVELS]
RETRY_SECONDS = (1.0, 2.0, 5.0, 10.0)


def make_screen() -> "LogsScreen":
    return LogsScreen()


@dataclass
class RowsArrived(Message):
    rows: list[LogRow]
    cursor: object


@dataclass
class TailProblem(Message):
    message: str  # "" when the tail works again


class RequestDetail(ModalScreen[None]):
    """Every row of one request (log lines and completion), oldest first."""

    BINDINGS = [Binding("escape,enter,q", "close", "Close", id="logs.detail-close"),
                Binding("c", "copy", "Copy request id", id="logs.detail-copy")]

    def __init__(self, request_id: str, rows: list[LogRow]) -> None:
        super().__init__(classes="modal")
        self.request_id = request_id
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog logs-detail-dialog"):
            first = self.rows[0] if self.rows else None
            title = f"Request {self.request_id}"
            if first is not None:
                title += f" · {first.udf_type} {first.identifier}"
            yield Label(title, classes="dialog-title")
            with VerticalScroll():
                yield Static(self._body(), id="logs-detail-body")
            yield Static("Esc closes · c copies the request id", classes="dialog-hint")

    def _body(self) -> Text:
        text = Text()
        if not self.rows:
            return Text("No rows of this request are left in the buffer.")
        for row in self.rows:
            text.append_text(row_text(row))
            text.append("\n")
        last = self.rows[-1]
        extra = [f"caller {last.caller}" if last.caller else "", f"identity {last.identity}" if last.identity else "",
                 f"execution {last.execution_id}" if last.execution_id else ""]
        text.append("\n" + " · ".join(e for e in extra if e), style="dim")
        return text

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.request_id)
        self.notify("Request id copied.")


class LogsScreen(ConsoleScreen):
    BINDINGS = [
        Binding("space", "toggle_pause", "Pause/Resume", id="logs.pause"),
        Binding("slash", "focus('logs-text')", "Search", id="logs.filter"),
        Binding("f", "focus('logs-function')", "Function", id="logs.function"),
        Binding("s", "cycle('logs-status')", "Status", id="logs.status"),
        Binding("l", "cycle('logs-level')", "Level", id="logs.level"),
        Binding("a", "toggle_system", "_system", id="logs.system"),
        Binding("x", "clear_filters", "Clear filters", id="logs.clear-filters"),
        Binding("C", "clear", "Clear", show=False, id="logs.clear"),
        Binding("r", "restart", "Restart tail", show=False, id="logs.restart"),
        Binding("escape", "back", "Back", show=False, id="logs.back"),
    ]

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        super().__init__()
        self.capacity = capacity
        self.paused = False
        self.pending: collections.deque[LogRow] = collections.deque(maxlen=capacity)
        self.skipped_while_paused = 0
        self.cursor: object = 0
        self.problem = ""
        self.batches = 0
        self.show_system = False

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="logs-filters"):
            yield Input(placeholder="/ search text, request id", id="logs-text")
            yield Input(placeholder="f function", id="logs-function")
            yield Select(STATUSES, value="all", allow_blank=False, id="logs-status")
            yield Select(LEVEL_CHOICES, value="all", allow_blank=False, id="logs-level")
        yield Static("", id="logs-state")
        yield LogView(id="logs-view")

    def on_mount(self) -> None:
        self.view.model.capacity = self.capacity
        self.watch(self.app, "connection_state", self._show_state, init=False)
        self._show_state()
        self.tail()
        self.view.focus()

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    # -- tail ------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="logs-tail")
    async def tail(self) -> None:
        maker = RowMaker()
        cursor: object = 0
        failures = 0
        while True:
            try:
                batch = await self.app.client.stream_function_logs(cursor)
            except ClientError as error:
                self.post_message(TailProblem(f"{error} · retrying"))
                await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])  # back off
                failures += 1
                continue
            if failures:
                failures = 0
                self.post_message(TailProblem(""))
                if self.app.connection_state in ("unreachable", "refused"):
                    self.app.retry_connection()  # the deployment answers again: let the banner go
            cursor = batch.new_cursor
            if batch.entries:
                self.post_message(RowsArrived(maker.rows(batch.entries), cursor))

    def on_rows_arrived(self, message: RowsArrived) -> None:
        self.cursor = message.cursor
        self.batches += 1
        if self.paused:
            overflow = len(self.pending) + len(message.rows) - self.capacity
            self.skipped_while_paused += max(0, overflow)
            self.pending.extend(message.rows)
        else:
            self.view.add_rows(message.rows)
        self._show_state()

    def on_tail_problem(self, message: TailProblem) -> None:
        self.problem = message.message
        self._show_state()

    def _tail_down(self) -> bool:
        """The tail is not receiving: its last request failed, or the app knows the deployment is down."""
        return bool(self.problem) or getattr(self.app, "connection_state", "") in ("unreachable", "refused")

    def _show_state(self, _state: object = None) -> None:
        model = self.view.model
        text = Text()
        if self._tail_down():
            text.append("✖ not receiving", style="bold red")
            if self.paused:
                text.append(" · paused", style="yellow")
        elif self.paused:
            text.append("⏸ paused", style="bold yellow")
            text.append(f" · {len(self.pending):,} new waiting (space resumes)", style="yellow")
        else:
            text.append("● live", style="bold green")
        text.append(f" · {len(model.visible):,} shown of {len(model.ring):,} buffered (max {model.capacity:,})", style="dim")
        if model.filter.active and model.filter != LogFilter(system=model.filter.system):
            text.append(" · filtered (x clears)", style="cyan")
        text.append(" · _system shown (a)" if model.filter.system else " · _system hidden (a)", style="dim")
        if getattr(self.app, "connection_state", "") in ("unreachable", "refused"):
            text.append(" · deployment unreachable (the banner says why) · r retries", style="red")
        elif self.problem:
            text.append(f" · {self.problem}", style="red")
        self.query_one("#logs-state", Static).update(text)

    # -- pause -------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused and self.pending:
            rows = list(self.pending)
            self.pending.clear()
            if self.skipped_while_paused:
                self.notify(f"{self.skipped_while_paused:,} rows were dropped while paused (buffer full).")
                self.skipped_while_paused = 0
            self.view.add_rows(rows)
        self._show_state()

    # -- filters ------------------------------------------------------------------------

    def _filter(self) -> LogFilter:
        return LogFilter(
            system=self.show_system,
            text=self.query_one("#logs-text", Input).value.strip(),
            function=self.query_one("#logs-function", Input).value.strip(),
            status=str(self.query_one("#logs-status", Select).value),
            level=str(self.query_one("#logs-level", Select).value),
        )

    @on(Input.Changed, "#logs-text")
    @on(Input.Changed, "#logs-function")
    @on(Select.Changed, "#logs-status")
    @on(Select.Changed, "#logs-level")
    def _filters_changed(self) -> None:
        new = self._filter()
        if new != self.view.model.filter:
            self.view.set_filter(new)
            self._show_state()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.view.focus()

    def action_cycle(self, select_id: str) -> None:
        select = self.query_one(f"#{select_id}", Select)
        options = [value for _label, value in (STATUSES if select_id == "logs-status" else LEVEL_CHOICES)]
        select.value = options[(options.index(str(select.value)) + 1) % len(options)]

    def action_toggle_system(self) -> None:
        self.show_system = not self.show_system
        self._filters_changed()
        self.notify("Showing _system/* calls." if self.show_system else "Hiding _system/* calls.")

    def action_focus(self, widget_id: str) -> None:
        self.query_one(f"#{widget_id}").focus()

    def action_clear_filters(self) -> None:
        self.query_one("#logs-text", Input).value = ""
        self.query_one("#logs-function", Input).value = ""
        self.query_one("#logs-status", Select).value = "all"
        self.query_one("#logs-level", Select).value = "all"

    def action_clear(self) -> None:
        self.view.clear()
        self.pending.clear()
        self._show_state()

    def action_back(self) -> None:
        self.view.focus()

    def action_restart(self) -> None:
        if self.app.connection_state in ("unreachable", "refused"):
            self.app.retry_connection()
        self.problem = ""
        self.tail()
        self._show_state()

    # -- drill-down ----------------------------------------------------------------------

    @on(LogView.Opened)
    def _open_request(self, event: LogView.Opened) -> None:
        request_id = event.row.request_id
        rows = self.view.model.request_rows(request_id) if request_id else [event.row]
        self.app.push_screen(RequestDetail(request_id or "(no request id)", rows))

    def worker_failed(self, worker) -> None:
        if worker.group == "logs-tail":
            self.problem = "the log tail stopped: r restarts it"
            self._show_state()


def lag_seconds(row: LogRow) -> float:
    """How far behind real time a row is when shown (benchmarks)."""
    return time.time() - row.ts
