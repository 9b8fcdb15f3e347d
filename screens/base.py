"""The base of every section screen: status bar, unreachable banner, footer, and the single
handler that turns any failed worker into a notification or an error modal."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.worker import Worker, WorkerState

from screens.widgets.status_bar import ConnectionBanner, StatusBar


class ConsoleFooter(Footer):
    """Textual's Footer rebuilds all its keys after every bindings change (each focus change,
    each `refresh_bindings`): at start-up that was four rebuilds of ~15 keys before the first
    rows show. This one folds the changes made before the next refresh into one rebuild."""

    _rebuild_pending = False

    def bindings_changed(self, screen: Screen) -> None:
        if not self._rebuild_pending:
            self._rebuild_pending = True
            self.call_after_refresh(self._rebuild, screen)

    def _rebuild(self, screen: Screen) -> None:
        self._rebuild_pending = False
        super().bindings_changed(screen)  # schedules the one recompose


class ConsoleScreen(Screen):
    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield ConnectionBanner()
        yield from self.compose_body()
        yield ConsoleFooter()

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
