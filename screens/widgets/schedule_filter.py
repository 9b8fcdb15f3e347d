"""The Schedules screen's filter dialog: function (substring), state and time window."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from screens.widgets.job_table import STATES, TIME_WINDOWS, JobFilter


class ScheduleFilterModal(ModalScreen[JobFilter | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="schedules.filter-cancel")]

    def __init__(self, current: JobFilter, functions: list[str]) -> None:
        super().__init__(classes="modal")
        self.current = current
        self.functions = functions

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="schedule-filter"):
            yield Label("Filter scheduled jobs", classes="dialog-title")
            yield Label("Function (part of mod:fn)")
            yield Input(self.current.function, placeholder=", ".join(self.functions[:3]) or "mod:fn", id="filter-function")
            yield Label("State")
            yield Select([("all states", "all"), *((kind, kind) for kind in STATES)],
                         value=self.current.state, allow_blank=False, id="filter-state")
            yield Label("Time")
            yield Select([(label, key) for key, label in TIME_WINDOWS.items()],
                         value=self.current.window, allow_blank=False, id="filter-window")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Apply", variant="primary", id="apply")
                yield Button("Clear", id="clear")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#filter-function", Input).focus()

    def _chosen(self) -> JobFilter:
        return JobFilter(
            function=self.query_one("#filter-function", Input).value.strip(),
            state=str(self.query_one("#filter-state", Select).value),
            window=str(self.query_one("#filter-window", Select).value),
        )

    @on(Input.Submitted, "#filter-function")
    @on(Button.Pressed, "#apply")
    def _apply(self) -> None:
        self.dismiss(self._chosen())

    @on(Button.Pressed, "#clear")
    def _clear(self) -> None:
        self.dismiss(JobFilter())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
