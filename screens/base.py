"""The base of every section screen: status bar, unreachable banner, footer, and the single
handler that turns any failed worker into a notification or an error modal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from screens.widgets.status_bar import ConnectionBanner, StatusBar


class ConsoleScreen(Screen):
    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield ConnectionBanner()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker.StateChanged does not bubble: each screen forwards to the app's one reporter.
        if event.state == WorkerState.ERROR:
            self.worker_failed(event.worker)
            self.app.report_error(event.worker.error, event.worker.group)
        elif event.state == WorkerState.SUCCESS:
            self.worker_succeeded(event.worker)

    def worker_failed(self, worker: Worker) -> None:
        """Hook: undo a 'loading' state."""

    def worker_succeeded(self, worker: Worker) -> None:
        """Hook."""
