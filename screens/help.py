"""`?` / F1: every binding of the screen it was opened from, with the keys in effect."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label, Static


def binding_rows(app, screen: Screen) -> list[tuple[str, str, str, str]]:
    """(where, keys, description, binding id) for the app, the screen and its widgets."""
    keymap = getattr(app, "_keymap", {}) or {}
    rows: list[tuple[str, str, str, str]] = []
    seen: set[tuple[str, str]] = set()
    nodes = [("Screen", screen), *[(type(w).__name__, w) for w in screen.walk_children() if w.BINDINGS]]
    nodes.append(("Global", app))
    for where, node in nodes:
        for binding in node._bindings:
            binding = binding[1] if isinstance(binding, tuple) else binding
            key = (binding.id or binding.action, where)
            if key in seen or not binding.description and not binding.id:
                continue
            seen.add(key)
            keys = keymap.get(binding.id, binding.key) if binding.id else binding.key
            rows.append((where, _display_keys(app, keys), binding.description or binding.action, binding.id or ""))
    return rows


def _display_keys(app, keys: str) -> str:
    shown = []
    for key in keys.split(","):
        key = key.strip()
        try:
            shown.append(app.get_key_display(Binding(key, "")))
        except Exception:  # unusual key names: show them as written
            shown.append(key)
    return " / ".join(shown)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,f1,q", "close", "Close", id="help.close")]

    def __init__(self, screen: Screen) -> None:
        super().__init__(classes="modal")
        self.for_screen = screen

    def compose(self) -> ComposeResult:
        name = type(self.for_screen).__name__.removesuffix("Screen") or "Console"
        with Vertical(classes="dialog help-dialog"):
            yield Label(f"Keys: {name}", classes="dialog-title")
            yield DataTable(id="help-table", cursor_type="row", zebra_stripes=True)
            yield Static(Text("ctrl+p: command palette · keys can be remapped in the config file's [keys] "
                              "table by binding id · esc closes", style="dim"))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("where", "keys", "action", "id")
        for row in binding_rows(self.app, self.for_screen):
            table.add_row(*row)
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
