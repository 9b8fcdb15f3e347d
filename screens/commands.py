"""The command palette's state-aware commands: sections, tables, functions, profiles, connection,
and the DESIGN §6 shortcuts (decode a token from the clipboard, cancel a scheduled job)."""

from __future__ import annotations

from functools import partial
from typing import Iterable

from textual.command import DiscoveryHit, Hit, Hits, Provider


def in_section(app, mode: str, method: str, *args, tries: int = 25) -> None:
    """Switch to `mode`, then call its screen's `method(*args)` once the screen is ready. A screen
    opened for the first time is still loading its list: a False answer is retried for a while."""
    app.action_section(mode)

    def call() -> None:
        if app.current_mode != mode:
            return  # the user went elsewhere meanwhile
        screen = app.screen
        handler = getattr(screen, method, None)
        if handler is None or handler(*args) is not False:
            return
        if tries > 1 and not getattr(screen, "spec_loaded", True):
            app.set_timer(0.2, lambda: in_section(app, mode, method, *args, tries=tries - 1))
        else:
            app.notify(f"{args[0] if args else method} was not found on this deployment.", severity="warning")

    app.call_after_refresh(call)


class ConsoleCommands(Provider):
    def _commands(self) -> Iterable[tuple[str, object, str]]:
        from screens.app import SECTIONS

        app = self.app
        for mode, key, title in SECTIONS:
            yield f"Go to: {title}", partial(app.action_section, mode), f"Section {key}"
        for table in getattr(app, "table_names", []):
            yield f"Open table: {table}", partial(self._open_table, table), "Data"
        for path in getattr(app, "function_paths", []):
            yield f"Run function: {path}", partial(self._open_function, path), "Functions"
        for name in self._profiles():
            yield f"Switch profile: {name}", partial(self._switch_profile, name), "Connect"
        if getattr(app, "connection", None) is not None:
            yield "Retry connection", app.retry_connection, "Check the deployment again"
            yield "Decode token from clipboard", self._decode_clipboard, "Auth"
            yield "Cancel scheduled job…", self._cancel_job, "Schedules: pick a job, then d"
        screen = app.screen
        if type(screen).__name__ == "DataScreen" and getattr(screen, "table", None):
            yield "Filter documents", screen.action_filter, "Data"
            yield "Toggle ascending/descending", screen.action_toggle_order, "Data"
            yield "Insert a document", screen.action_insert, "Data"
        yield "Show keys", app.action_help, "Help"

    def _profiles(self) -> list[str]:
        try:
            from screens.connect import list_profiles

            return [profile.name for profile in list_profiles(self.app)]
        except Exception:  # no saved sessions available
            return []

    def _open_table(self, table: str) -> None:
        app = self.app
        app.action_section("data")

        def open_it() -> None:
            screen = app.screen
            if hasattr(screen, "open_table"):
                screen.open_table(table)

        app.call_after_refresh(open_it)

    def _open_function(self, path: str) -> None:
        in_section(self.app, "functions", "open_function", path)

    def _decode_clipboard(self) -> None:
        in_section(self.app, "auth", "action_from_clipboard")

    def _cancel_job(self) -> None:
        in_section(self.app, "schedules", "focus_jobs_to_cancel")

    def _switch_profile(self, name: str) -> None:
        from screens.connect import connect_profile

        connect_profile(self.app, name)

    async def discover(self) -> Hits:
        for title, callback, help_text in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_text in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
