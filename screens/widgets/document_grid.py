"""The document grid: one page of documents, row key = document id, updated by diff."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from screens.formatting import cell, human_time
from screens.paging import document_fields

MARK_COLUMN = "·"


class DocumentGrid(DataTable):
    """Columns: mark, `_id`, `_creationTime` (human time), then the page's fields."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.fields: list[str] = []
        self.docs: dict[str, dict] = {}
        self.marked: set[str] = set()
        self.rebuilds = 0  # times every row was replaced (live updates must not move it)

    def _on_hide(self, event) -> None:
        # A transient zero-size layout while the table is rebuilt sends Hide; keep the focus
        # (the default blurs, which would drop the user's place) when we are still displayed.
        if self.display and self.screen.is_current:
            event.prevent_default()

    def show_page(self, docs: list[dict]) -> None:
        """Show `docs`; keeps rows (and the cursor) whose documents did not change."""
        fields = document_fields(docs) if docs else ["_id", "_creationTime"]
        new_ids = [str(doc.get("_id")) for doc in docs]
        same_shape = fields == self.fields and new_ids == list(self.docs)
        if same_shape:
            self._update_changed(docs)
        else:
            self._rebuild(fields, docs)
        self.docs = {str(doc.get("_id")): doc for doc in docs}
        self.marked &= set(self.docs)

    def _rebuild(self, fields: list[str], docs: list[dict]) -> None:
        self.rebuilds += 1
        with self.app.batch_update():
            if fields != self.fields:
                self.clear(columns=True)
                self.add_column(MARK_COLUMN, key=MARK_COLUMN, width=1)
                for name in fields:
                    self.add_column(name, key=name)
                self.fields = fields
            else:
                self.clear()
            self.add_rows_keyed(docs)

    def add_rows_keyed(self, docs: list[dict]) -> None:
        for doc in docs:
            key = str(doc.get("_id"))
            self.add_row(*self._cells(doc, key), key=key)

    def _update_changed(self, docs: list[dict]) -> None:
        with self.app.batch_update():
            for doc in docs:
                key = str(doc.get("_id"))
                if self.docs.get(key) == doc:
                    continue
                for name, value in zip([MARK_COLUMN, *self.fields], self._cells(doc, key)):
                    self.update_cell(key, name, value)

    def apply_diff(self, diff, docs: list[dict]) -> None:
        """Update in place to show `docs`: only the added, removed, changed and moved rows
        (`diff` is console.sync.diff_rows(shown docs, docs)); the cursor stays on its document."""
        if not self._diff_fits(diff):  # computed against other rows than these: start over
            self.show_page(docs)
            return
        current = self.current_id
        row_before = self.cursor_row
        with self.app.batch_update():
            self._add_new_columns(docs)
            for doc_id in diff.removed:
                self.remove_row(doc_id)
            for doc in diff.changed:
                key = str(doc.get("_id"))
                for name, value in zip([MARK_COLUMN, *self.fields], self._cells(doc, key)):
                    self.update_cell(key, name, value)
            self.add_rows_keyed(list(diff.added))
            self.docs = {str(doc.get("_id")): doc for doc in docs}
            self.marked &= set(self.docs)
            if diff.added or diff.moved:
                self._sort_as(list(self.docs))
            if current in self.docs:
                self.move_cursor(row=self.get_row_index(current), scroll=False)
            elif self.row_count:
                self.move_cursor(row=min(row_before, self.row_count - 1), scroll=False)

    def _diff_fits(self, diff) -> bool:
        return (all(doc_id in self.docs for doc_id in diff.removed)
                and all(str(doc.get("_id")) in self.docs for doc in diff.changed)
                and not any(str(doc.get("_id")) in self.docs for doc in diff.added))

    def _add_new_columns(self, docs: list[dict]) -> None:
        for name in document_fields(docs):
            if name not in self.fields:
                self.add_column(name, key=name, default=Text(""))
                self.fields.append(name)

    def _sort_as(self, ordered_ids: list[str]) -> None:
        # DataTable sorts by cell values; each row's mark cell is its own object, so rank by identity
        rank = {id(self.get_cell(doc_id, MARK_COLUMN)): position for position, doc_id in enumerate(ordered_ids)}
        self.sort(MARK_COLUMN, key=lambda mark: rank.get(id(mark), len(rank)))

    def _cells(self, doc: dict, key: str) -> list[Text]:
        cells = [Text("●" if key in self.marked else " ", style="bold yellow")]
        for name in self.fields:
            if name not in doc:
                cells.append(Text("", style="dim"))
            elif name == "_creationTime":
                cells.append(Text(human_time(doc[name]), style="dim"))
            else:
                cells.append(cell(doc[name]))
        return cells

    @property
    def current_id(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # cursor outside the table while it is being rebuilt
            return None
        return key.value

    @property
    def current_doc(self) -> dict | None:
        doc_id = self.current_id
        return self.docs.get(doc_id) if doc_id else None

    def toggle_mark(self) -> None:
        doc_id = self.current_id
        if doc_id is None:
            return
        if doc_id in self.marked:
            self.marked.discard(doc_id)
        else:
            self.marked.add(doc_id)
        self.update_cell(doc_id, MARK_COLUMN, Text("●" if doc_id in self.marked else " ", style="bold yellow"))

    def clear_marks(self) -> None:
        for doc_id in self.marked & set(self.docs):
            self.update_cell(doc_id, MARK_COLUMN, Text(" ", style="bold yellow"))
        self.marked.clear()

    def selected_ids(self) -> list[str]:
        """Marked documents, else the one under the cursor."""
        if self.marked:
            return [doc_id for doc_id in self.docs if doc_id in self.marked]
        return [self.current_id] if self.current_id else []
