"""The top bar: deployment name, kind, connection state; and the unreachable banner."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

STATE_STYLES = {
    "connecting": ("◌", "yellow"),
    "connected": ("●", "green"),
    "unreachable": ("✖", "red"),
    "refused": ("✖", "red"),
    "disconnected": ("○", "white"),
}

# a screen with live views (the Data screen) has a `live_state` reactive: "" when it has none
LIVE_STYLES = {
    "connecting": ("◌ live: connecting", "yellow"),
    "live": ("⚡ live", "bold green"),
    "reconnecting": ("↻ live: reconnecting", "yellow"),
    "polling": ("⟳ polling", "yellow"),
    "failed": ("✖ live: failed", "red"),
}


class StatusBar(Static):
    """`● emulator:3210  emulator  connected · via built-in emulator   Data`."""

    DEFAULT_CSS = """
    StatusBar { dock: top; height: 1; background: $panel; color: $text; padding: 0 1; }
    """

    def on_mount(self) -> None:
        self.watch(self.app, "connection_state", self._refresh_text, init=False)
        self.watch(self.app, "section_title", self._refresh_text, init=False)
        if hasattr(self.screen, "live_state"):
            self.watch(self.screen, "live_state", self._refresh_text, init=False)
        self._refresh_text()

    def _refresh_text(self, _value: object = None) -> None:
        app = self.app
        connection = getattr(app, "connection", None)
        state = getattr(app, "connection_state", "connecting")
        symbol, style = STATE_STYLES.get(state, ("?", "white"))
        text = Text()
        text.append(f"{symbol} ", style=style)
        if connection is not None:
            text.append(connection.display_name, style="bold")
            text.append(f"  {connection.kind}", style="cyan")
            if connection.is_production:
                text.append("  PRODUCTION", style="bold white on red")
        else:
            text.append("no deployment chosen", style="bold")
        text.append(f"  {state}", style=style)
        origin = getattr(app, "origin", "")
        if origin:
            text.append(f" · {origin}", style="dim")
        live = getattr(self.screen, "live_state", "")
        if live in LIVE_STYLES:
            label, live_style = LIVE_STYLES[live]
            text.append(f"  {label}", style=live_style)
        title = getattr(app, "section_title", "")
        if title:
            text.append(f"   {title}", style="bold reverse")
        self.update(text, layout=False)


class ConnectionBanner(Horizontal):
    """Shown while the deployment cannot be reached; `r` retries. In the flow (not docked) so
    that it pushes the screen down instead of covering the status bar."""

    DEFAULT_CSS = """
    ConnectionBanner { height: auto; background: $error 30%; padding: 0 1; display: none; }
    ConnectionBanner.-shown { display: block; }
    ConnectionBanner Static { width: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="banner-text")

    def on_mount(self) -> None:
        self.watch(self.app, "connection_state", self._refresh_banner)

    def _refresh_banner(self, state: str) -> None:
        shown = state in ("unreachable", "refused")
        self.set_class(shown, "-shown")
        if shown:
            error = getattr(self.app, "connection_error", "") or "the deployment did not answer"
            verb = "Cannot use" if state == "refused" else "Cannot reach"
            connection = getattr(self.app, "connection", None)
            where = connection.url if connection is not None else "the deployment"
            self.query_one("#banner-text", Static).update(
                Text.assemble((f"{verb} {where}", "bold"), f" — {error}   ", ("r: retry", "bold reverse"),
                              "  9: connections")
            )
