"""The document detail pane: one option per top-level field, pretty typed values."""

from __future__ import annotations

from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from console import ids
from screens.formatting import human_time, pretty
from screens.paging import document_fields


class DocumentDetail(Vertical):
    """Header (table, id, reference depth) and the fields; the highlighted field is the one
    `c` copies, `e` edits and `enter` follows."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table: str | None = None
        self.doc: dict | None = None
        self.table_of_id: Callable[[str], str | None] | None = None

    def compose(self) -> ComposeResult:
        yield Static("No document selected", id="detail-header")
        yield OptionList(id="detail-fields")

    def show(self, table: str | None, doc: dict | None, *, depth: int = 0, note: str = "") -> None:
        self.table = table
        self.doc = doc
        header = Text()
        if depth:
            header.append(f"↳ reference {depth} (esc: back)  ", style="bold yellow")
        if doc is None:
            header.append(note or "No document selected", style="dim")
        else:
            header.append(f"{table}", style="bold")
            header.append(f"  {doc.get('_id')}", style="cyan")
        self.query_one("#detail-header", Static).update(header, layout=False)
        options = self.query_one("#detail-fields", OptionList)
        highlighted = options.highlighted
        options.clear_options()
        if doc is None:
            return
        rows = []
        for name in document_fields([doc]):
            if name not in doc:
                continue
            value = doc[name]
            prompt = Text()
            prompt.append(name, style="bold")
            prompt.append(": ")
            prompt.append_text(pretty(value, table_of_id=self.table_of_id))
            if name == "_creationTime":
                prompt.append(f"  ({human_time(value)})", style="dim")
            rows.append(Option(prompt, id=name))
        options.add_options(rows)  # one layout, not one per field
        if options.option_count:
            options.highlighted = min(highlighted or 0, options.option_count - 1) if depth == 0 else 0

    @property
    def current_field(self) -> str | None:
        options = self.query_one("#detail-fields", OptionList)
        if options.highlighted is None or self.doc is None:
            return None
        return options.get_option_at_index(options.highlighted).id

    def current_reference(self) -> str | None:
        """The id under the cursor, when the highlighted field holds one."""
        field = self.current_field
        if field is None or self.doc is None or field == "_id":
            return None
        value = self.doc.get(field)
        if isinstance(value, str) and ids.is_id(value):
            return value
        if isinstance(value, list):
            return next((item for item in value if isinstance(item, str) and ids.is_id(item)), None)
        return None
