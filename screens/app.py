"""The Textual App: a thin composition root.

It owns the connection, the deployment client, the saved-session store and the keymap; each
section is a Textual mode with its own screen module. Every worker failure ends up in
`on_worker_state_changed`, which turns it into a notification or an error modal.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.reactive import reactive
from textual.worker import Worker, WorkerState

from console.client import ApiError, AuthError, BadResponse, DeploymentClient, FunctionError, Unreachable
from console.connection import Connection
from screens.commands import ConsoleCommands
from screens.session_state import SessionState
from screens.widgets.modals import ErrorModal

CSS_PATH = Path(__file__).resolve().parent.parent / "assets" / "console.tcss"

# (mode, number key, title); sections without a screen yet show a placeholder.
SECTIONS = [
    ("data", "1", "Data"),
    ("functions", "2", "Functions"),
    ("schedules", "3", "Schedules"),
    ("files", "4", "Files"),
    ("auth", "5", "Auth"),
    ("http", "6", "HTTP"),
    ("logs", "7", "Logs"),
    ("settings", "8", "Settings"),
    ("connect", "9", "Connect"),
]
SECTION_TITLES = {mode: title for mode, _key, title in SECTIONS}


# mode -> (module, class) of its screen; built lazily so start-up imports only what is shown.
SCREENS = {
    "data": ("screens.data", "DataScreen"),
    "functions": ("screens.functions", "FunctionsScreen"),
    "schedules": ("screens.schedules", "SchedulesScreen"),
    "files": ("screens.files", "FilesScreen"),
    "auth": ("screens.auth", "AuthScreen"),
    "http": ("screens.http", "HttpScreen"),
    "logs": ("screens.logs", "LogsScreen"),
    "settings": ("screens.settings", "SettingsScreen"),
    "connect": ("screens.connect", "ConnectScreen"),
}


def _screen_factory(mode: str):
    def make():
        import importlib

        module_name, class_name = SCREENS.get(mode, ("", ""))
        screen_class = None
        if module_name:
            try:
                screen_class = getattr(importlib.import_module(module_name), class_name, None)
            except ModuleNotFoundError as error:
                if error.name != module_name:  # a real bug inside the screen: the error modal shows it
                    raise
                screen_class = None  # a section being written by another part of the project
        if screen_class is None:
            from screens.placeholder import PlaceholderScreen

            return PlaceholderScreen(mode, SECTION_TITLES[mode])
        return screen_class()

    return make


class ConsoleApp(App):
    """Convex Console."""

    TITLE = "Convex Console"
    CSS_PATH = str(CSS_PATH)
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    ENABLE_COMMAND_PALETTE = True
    COMMAND_PALETTE_BINDING = "ctrl+p"
    MODES = {mode: _screen_factory(mode) for mode, _key, _title in SECTIONS}
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
        *[
            Binding(key, f"section('{mode}')", title, show=False, id=f"app.section.{mode}")
            for mode, key, title in SECTIONS
        ],
        # alt+N works even while a text box (which takes plain digits) has the focus
        *[
            Binding(f"alt+{key}", f"section('{mode}')", title, show=False, priority=True,
                    id=f"app.section-alt.{mode}")
            for mode, key, title in SECTIONS
        ],
    ]

    connection_state: reactive[str] = reactive("connecting")
    section_title: reactive[str] = reactive("")

    def __init__(self, connection: Connection | None, origin: str = "", settings: Any = None,
                 *, client: DeploymentClient | None = None) -> None:
        session = SessionState(settings, connection)
        if connection is not None and session.last_screen() == "data":
            # Start in the Data mode itself: no default screen to build and leave, and two
            # whole-stylesheet re-parses fewer than switching to it from on_mount.
            self.DEFAULT_MODE = "data"
        super().__init__()
        self.connection = connection
        self.origin = origin
        self.session = session
        self.client = client if client is not None or connection is None else DeploymentClient(connection)
        self.connection_error = ""
        self.instance_name: str | None = None
        self.table_names: list[str] = []  # kept fresh by the data screen, used by the palette
        # shared UI state (docs/internals.md §5): set by the Auth and Functions screens
        self.bearer_token: str | None = None
        self.acting_identity: dict | None = None
        self.function_paths: list[str] = []
        self.sync_url: str | None = None  # None: the deployment URL (tests point it elsewhere)
        self._sync_client: Any = None

    # -- lifecycle ---------------------------------------------------------------

    def on_mount(self) -> None:
        keymap = self.session.keymap()
        if keymap:
            self.set_keymap(keymap)
        start = self.session.last_screen() if self.connection is not None else "connect"
        start = start if start in self.MODES else "data"
        if self.current_mode == start:  # started in it (DEFAULT_MODE)
            self.section_title = SECTION_TITLES[start]
            self.session.remember(screen=start)
        else:
            self.switch_section(start)
        if self.connection is not None:
            self.check_connection()
        else:
            self.connection_state = "disconnected"

    async def on_unmount(self) -> None:
        await self.close_sync_client()
        if self.client is not None:
            await self.client.aclose()

    # -- live queries ------------------------------------------------------------------

    def sync_client(self):
        """The one WebSocket sync client of this deployment, created (and started) on first use;
        None when there is no admin credential to subscribe to `_system/*` queries with."""
        if self._sync_client is None:
            connection = self.connection
            if connection is None or connection.credential.kind == "none":
                return None
            from console.sync import AdminAuth, SyncClient

            self._sync_client = SyncClient(self.sync_url or connection.url, AdminAuth(connection.credential.secret))
            self._sync_client.on_state_change(self._sync_state_changed)
            self._sync_client.start()
        return self._sync_client

    def _sync_state_changed(self, state: Any, _error: BaseException | None) -> None:
        # the socket is back: the deployment answers again, so the banner can go (after a check)
        if getattr(state, "value", state) == "connected" and self.connection_state == "unreachable":
            self.check_connection()

    async def close_sync_client(self) -> None:
        client, self._sync_client = self._sync_client, None
        if client is not None:
            await client.close()

    def switch_section(self, mode: str) -> None:
        title = SECTION_TITLES.get(mode, mode)
        if self.client is None and mode != "connect":
            self.notify(f"Connect to a deployment first to open {title}.", title="No deployment", timeout=4)
            return
        try:
            self.switch_mode(mode)
        except Exception as error:  # a bug in the section's module: show it, stay where we are
            self.report_error(error, f"opening {title}")
            return
        self.section_title = title
        self.session.remember(screen=mode)

    def action_section(self, mode: str) -> None:
        if mode in self.MODES and mode != self.current_mode:
            self.switch_section(mode)

    def action_help(self) -> None:
        from screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    # -- connection ----------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="connection")
    async def check_connection(self) -> None:
        self.connection_state = "connecting"
        name, _check = await asyncio.gather(self.client.instance_name(), self.client.check_admin_key())
        self.instance_name = name
        self.connection_error = ""
        self.connection_state = "connected"

    def deployment_answered(self) -> None:
        """A screen's admin request succeeded: the deployment is reachable and takes the key
        (the rows can show before the connection check's own answers come back)."""
        if self.connection_state == "connecting":
            self.connection_error = ""
            self.connection_state = "connected"

    def retry_connection(self) -> None:
        if self.connection is not None:
            self.check_connection()

    async def use_connection(self, connection: Connection, origin: str, profile: str | None = None) -> None:
        """Switch deployment (from the connect screen or the palette)."""
        if self.client is not None:
            await self.client.aclose()
        await self.close_sync_client()
        self.connection = connection
        self.origin = origin
        self.client = DeploymentClient(connection)
        self.session.switch(connection, profile)
        self.table_names = []
        if self.current_mode != "connect":
            await self.switch_mode("connect")
        for mode, _key, _title in SECTIONS:  # every section starts again on the new deployment
            if mode != "connect":
                await self.remove_mode(mode)
                self.add_mode(mode, _screen_factory(mode))
        self.connection_state = "connecting"
        self.check_connection()
        self.switch_section(self.session.last_screen() if self.session.last_screen() != "connect" else "data")

    # -- errors ----------------------------------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The app's own workers; screens forward theirs (screens/base.py) to report_error.
        if event.state == WorkerState.ERROR:
            self.report_error(event.worker.error, event.worker.group)

    def report_error(self, error: BaseException | None, group: str = "") -> None:
        """The one place a failed worker becomes something the user can read."""
        if isinstance(error, Unreachable):
            already = self.connection_state == "unreachable"
            self.connection_error = error.reason
            self.connection_state = "unreachable"
            if not already:  # several workers fail together: one notification
                self.notify(str(error), title="Deployment unreachable", severity="error", timeout=6)
        elif isinstance(error, AuthError):
            self.connection_error = f"the key was refused ({error.message})"
            self.connection_state = "refused"
            self.notify(error.message, title="Not authorized", severity="error", timeout=6)
        elif isinstance(error, BadResponse):
            self.connection_error = error.detail
            self.connection_state = "unreachable"
            self.notify(str(error), title="Not a Convex deployment", severity="error", timeout=6)
        elif isinstance(error, (FunctionError, ApiError, ValueError)):
            title = "The deployment refused" if not isinstance(error, ValueError) else "Invalid input"
            self.notify(str(error), title=title, severity="error", timeout=8)
        else:
            name = type(error).__name__ if error is not None else "Error"
            self.push_screen(ErrorModal(f"Unexpected {name} in {group or 'a task'}", str(error) or name))

    def show_error(self, title: str, message: str) -> None:
        self.push_screen(ErrorModal(title, message))


def run_app(connection: Connection | None, origin: str, settings: Any = None) -> int:
    """Run the console on `connection` (None: start on the connect screen)."""
    app = ConsoleApp(connection, origin, settings)
    app.run()
    return app.return_code or 0
