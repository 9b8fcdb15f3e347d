"""The command palette's state-aware commands: sections, tables, profiles, connection."""

from __future__ import annotations

from functools import partial
from typing import Iterable

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ConsoleCommands(Provider):
    def _commands(self) -> Iterable[tuple[str, object, str]]:
        from screens.app import SECTIONS

        app = self.app
        for mode, key, title in SECTIONS:
            yield f"Go to: {title}", partial(app.action_section, mode), f"Section {key}"
        for table in getattr(app, "table_names", []):
            yield f"Open table: {table}", partial(self._open_table, table), "Data"
        for name in self._profiles():
            yield f"Switch profile: {name}", partial(self._switch_profile, name), "Connect"
        if getattr(app, "connection", None) is not None:
            yield "Retry connection", app.retry_connection, "Check the deployment again"
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
