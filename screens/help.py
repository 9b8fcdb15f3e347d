"""`?` / F1: every binding of the screen it was opened from, with the keys in effect.

The screen's own keys come first, then the Global ones (sections, help, quit), then the keys of
the console's own widgets; Textual's built-in widget keys (cursor moves, scrolling, the footer)
are left out: they are the usual ones and drown the rest."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label, Static

Row = tuple[str, str, str, str]  # (where, keys, description, binding id)


def binding_rows(app, screen: Screen) -> list[Row]:
    """(where, keys, description, binding id): the screen, Global, then the console's widgets."""
    keymap = getattr(app, "_keymap", {}) or {}
    widgets = [(type(w).__name__, w) for w in screen.walk_children() if w.BINDINGS and _own_widget(w)]
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for where, node in [("Screen", screen), ("Global", app), *widgets]:
        for binding in node._bindings:
            binding = binding[1] if isinstance(binding, tuple) else binding
            if not binding.id:  # Textual's defaults (focus cycling, palette, ...): not ours to list
                continue
            key = (binding.id, where)
            if key in seen:
                continue
            seen.add(key)
            keys = keymap.get(binding.id, binding.key)
            rows.append((where, _display_keys(app, keys), binding.description or binding.action, binding.id))
    return rows


def _own_widget(widget) -> bool:
    """A widget of the console (screens.*), not one of Textual's built-ins (DataTable, Footer, ...)."""
    return not type(widget).__module__.startswith("textual.")


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
