"""Sections whose screens are not built yet say so plainly."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Center, Middle
from textual.widgets import Static

from screens.base import ConsoleScreen

PLANNED = {
    "functions": "Run functions with validated arguments, as admin or as an identity.",
    "schedules": "Scheduled functions in every state; cancel one or all.",
    "files": "File storage: list, upload, download, delete.",
    "auth": "Decode and verify tokens, match auth providers.",
    "http": "HTTP routes and a request builder.",
    "logs": "Live function logs with filters.",
    "settings": "Environment variables and deployment information.",
}


class PlaceholderScreen(ConsoleScreen):
    def __init__(self, mode: str, title: str) -> None:
        super().__init__()
        self.mode_name = mode
        self.title_text = title

    def compose_body(self) -> ComposeResult:
        with Middle(), Center():
            yield Static(
                f"[b]{self.title_text}[/b]\n\n{PLANNED.get(self.mode_name, '')}\n\n"
                "Not built yet: this section comes with a later issue.\n"
                "1: Data · 9: Connect · ?: keys",
                id="placeholder-text",
            )
