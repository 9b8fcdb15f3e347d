"""A modal JSON editor (plain TextArea: no tree-sitter highlighting, see DESIGN §14).

The text is JSON plus `123n` for int64 (see screens.formatting.parse_jsonish). It returns the
parsed Convex value, checked with `validate` before closing.
"""

from __future__ import annotations

from typing import Any, Callable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static, TextArea

from console import values
from screens.formatting import parse_jsonish


class JsonEditor(ModalScreen[Any]):
    BINDINGS = [
        Binding("f2", "save", "Save", id="editor.save"),
        # priority: the TextArea (tab_behavior="indent") takes a plain Esc to move focus out, which
        # made closing the editor cost two presses.
        Binding("escape", "cancel", "Cancel", priority=True, id="editor.cancel"),
    ]

    def __init__(self, title: str, text: str, *, hint: str = "",
                 validate: Callable[[Any], None] | None = None) -> None:
        super().__init__(classes="modal")
        self.title_text = title
        self.initial_text = text
        self.hint = hint
        self.validate = validate

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog editor-dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(
                self.hint or "JSON; int64 as 123n, bytes as {\"$bytes\": \"base64\"}. F2 saves, Esc cancels.",
                classes="dialog-hint",
            )
            yield TextArea(self.initial_text, id="json-text", show_line_numbers=True, tab_behavior="indent",
                           soft_wrap=False)
            yield Static("", id="json-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (F2)", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def parse(self) -> Any:
        value = parse_jsonish(self.query_one(TextArea).text)
        values.check_value(value)
        if self.validate is not None:
            self.validate(value)
        return value

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        try:
            value = self.parse()
        except ValueError as error:
            self.query_one("#json-error", Static).update(f"✖ {error}")
            return
        self.dismiss(value)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
